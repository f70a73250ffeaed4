#!/usr/bin/env bash
# podman, runc and debootstrap (Debian packages) for the image targets and the image tests,
# installed when missing (as root, or through sudo), and podman set up for a machine
# without systemd: runc with cgroupfs, no default ulimits. Idempotent.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else echo "need root to run: $* (or install podman, runc and debootstrap yourself)" >&2; return 1; fi
}

if ! command -v podman >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 \
  || ! command -v runc >/dev/null 2>&1; then
  echo "installing podman, runc and debootstrap (Debian packages) for the images"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq podman runc debootstrap >/dev/null
fi
if [ ! -f /etc/containers/containers.conf ]; then
  as_root mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
    | as_root tee /etc/containers/containers.conf >/dev/null
fi
