#!/usr/bin/env bash
# Sourced by the other scripts: installs what paperboy needs on a Debian machine and makes sure a
# Redis and (for tests) a PostgreSQL answer. Uses the ones already running on the standard ports;
# starts private ones otherwise. Exports PAPERBOY_REDIS_URL and PAPERBOY_TEST_POSTGRES_URL.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    apt_install cargo rustc
  fi
}

redis_up() { redis-cli -u "$1" ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  apt_install redis-server redis-tools
  export PAPERBOY_REDIS_URL="${PAPERBOY_REDIS_URL:-redis://127.0.0.1:6379}"
  if redis_up "$PAPERBOY_REDIS_URL"; then return 0; fi
  echo "no Redis at $PAPERBOY_REDIS_URL: starting one on 127.0.0.1:6379" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/paperboy-redis.log
  export PAPERBOY_REDIS_URL="redis://127.0.0.1:6379"
  for _ in $(seq 50); do redis_up "$PAPERBOY_REDIS_URL" && return 0; sleep 0.1; done
  echo "Redis did not start; see /tmp/paperboy-redis.log" >&2
  return 1
}

pg_up() { psql "$1" -Atc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  apt_install postgresql postgresql-client
  local url="${PAPERBOY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if pg_up "$url"; then export PAPERBOY_TEST_POSTGRES_URL="$url"; return 0; fi
  # A private cluster with trust auth on a loopback port, owned by the postgres user.
  local port=55432 dir=/tmp/paperboy-pg
  url="postgres://postgres@127.0.0.1:$port/postgres"
  if ! pg_up "$url"; then
    echo "no PostgreSQL with trust auth on 127.0.0.1:5432: starting one on port $port" >&2
    local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ ! -f "$dir/PG_VERSION" ]; then
      $SUDO mkdir -p "$dir" && $SUDO chown postgres: "$dir"
      $SUDO -u postgres "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
    fi
    $SUDO -u postgres "$bin/pg_ctl" -D "$dir" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" \
      -l "$dir.log" -w start >/dev/null
  fi
  export PAPERBOY_TEST_POSTGRES_URL="$url"
}

ensure_tools() {
  apt_install tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu poppler-utils qpdf gnupg pkg-config chromium \
    dovecot-imapd openssl
}
