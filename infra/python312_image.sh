#!/usr/bin/env bash
# The Python 3.12 base of the seldon-core v1 wrapper's image, made locally (no registry pull):
# the Debian bookworm base (infra/base_image.sh) with this machine's CPython 3.12 copied to
# /opt/python3.12. seldon-core 1.19 needs Python 3.12 and bookworm has 3.11 only; with a
# registry, infra/Dockerfile.seldon-v1 builds on python:3.12-slim instead.
#   bash infra/python312_image.sh <python3.12> [tag] [base image]
set -euo pipefail
PYTHON312="${1:?the path of a CPython 3.12 interpreter}"
TAG="${2:-localhost/python:3.12-bookworm}"
BASE="${3:-localhost/debian:bookworm}"
PREFIX="$("$PYTHON312" -c 'import sys; print(sys.base_prefix)')"
"$PYTHON312" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'
CONTEXT="$(mktemp -d /tmp/recsys-python312.XXXXXX)"
trap 'rm -rf "$CONTEXT"' EXIT
mkdir "$CONTEXT/python"
# the interpreter and its standard library; no test suite, byte code or installed packages
tar -C "$PREFIX" --exclude='./lib/python3.12/test' --exclude='__pycache__' \
    --exclude='./lib/python3.12/site-packages/*' -c . | tar -C "$CONTEXT/python" -x
cat > "$CONTEXT/Containerfile" <<CONTAINERFILE
FROM $BASE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libffi8 libsqlite3-0 \\
      zlib1g libbz2-1.0 liblzma5 libuuid1 libreadline8 libncursesw6 \\
 && rm -rf /var/lib/apt/lists/*
COPY python /opt/python3.12
# The interpreter links libpython by its build prefix: the loader finds it here instead.
# It is reached by its own folder on PATH (not a link elsewhere), so it and the virtualenvs
# made from it find their standard library next to it.
ENV PATH=/opt/python3.12/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN echo /opt/python3.12/lib > /etc/ld.so.conf.d/python3.12.conf && ldconfig \\
 && python3.12 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib' \\
 && python3.12 -m venv /tmp/check && /tmp/check/bin/python -m pip --version && rm -r /tmp/check
CONTAINERFILE
echo "Python 3.12 base image $TAG from $PREFIX"
podman build --network host --format docker -t "$TAG" "$CONTEXT" >/dev/null
