#!/usr/bin/env bash
# What the integration tests need on this machine, started or installed when missing:
# Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432 (trust auth), Debian's Chromium
# for the Evidently viewer test, Debian's Prometheus (prometheus, promtool, alertmanager,
# amtool, pushgateway) for the alert tests, and podman (with runc and debootstrap, through
# infra/container_tools.sh, which the image targets run too) for the image tests. `make test`
# runs this first; it is idempotent.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else echo "need root to run: $*" >&2; return 1; fi
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  command -v redis-server >/dev/null 2>&1 || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
  echo "starting redis on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/tests.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 0.2; done
  echo "redis did not start" >&2; exit 1
}

start_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then return; fi
  [ -d /etc/postgresql ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  echo "starting postgresql on 127.0.0.1:5432"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1 && return; sleep 0.2; done
  echo "postgresql did not start" >&2; exit 1
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  echo "installing chromium (Debian package) for the Evidently viewer test"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
}

install_prometheus() {
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    && command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 \
    && command -v prometheus-pushgateway >/dev/null 2>&1; then return; fi
  echo "installing prometheus, alertmanager and pushgateway (Debian packages) for the alert tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq prometheus \
    prometheus-alertmanager prometheus-pushgateway >/dev/null
}

start_redis
start_postgres
install_chromium
install_prometheus
bash "$(dirname "$0")/../infra/container_tools.sh"
