#!/usr/bin/env bash
# The base image of every recsys image, made locally: no registry is pulled from. Debian
# bookworm (its python3 is 3.11, the project's) with debootstrap's minimal variant,
# imported into podman under the tag given (default localhost/debian:bookworm).
# Needs root, debootstrap and podman (apt-get install podman runc debootstrap).
set -euo pipefail
TAG="${1:-localhost/debian:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOT="$(mktemp -d /tmp/recsys-rootfs.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
echo "debootstrap bookworm from $MIRROR (about 30 s)"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >/dev/null
tar -C "$ROOT" -c . | podman import - "$TAG" >/dev/null
echo "base image $TAG"
