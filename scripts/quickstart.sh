#!/usr/bin/env bash
# Brings up a local paperboy (SQLite, a local Redis) and runs jobs end to end:
# a ping round trip through a worker, then consumes the sample documents.
#   scripts/quickstart.sh            # leaves the worker running (see .data/worker.log)
#   scripts/quickstart.sh stop       # stops that worker
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PAPERBOY_DATA_DIR="${PAPERBOY_DATA_DIR:-$ROOT/.data/data}"
export PAPERBOY_MEDIA_ROOT="${PAPERBOY_MEDIA_ROOT:-$ROOT/.data/media}"
export PAPERBOY_CONSUMPTION_DIR="${PAPERBOY_CONSUMPTION_DIR:-$ROOT/.data/consume}"
export PAPERBOY_METRICS_ADDR="${PAPERBOY_METRICS_ADDR:-127.0.0.1:9464}"
PIDFILE=$ROOT/.data/worker.pid

if [ "${1:-}" = stop ]; then
  [ -f "$PIDFILE" ] && kill -TERM "$(cat "$PIDFILE")" && rm -f "$PIDFILE" && echo "worker stopped"
  exit 0
fi

source scripts/services.sh
ensure_rust
ensure_tools
ensure_redis
apt_install curl
mkdir -p "$PAPERBOY_DATA_DIR" "$PAPERBOY_MEDIA_ROOT" "$PAPERBOY_CONSUMPTION_DIR"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -p paperboy -p paperboy-worker
BIN=$CARGO_TARGET_DIR/release
export PATH="$BIN:$PATH"

paperboy-worker migrate

if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "worker already running (pid $(cat "$PIDFILE"))"
else
  nohup paperboy-worker run >"$ROOT/.data/worker.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do
    curl -fsS "http://$PAPERBOY_METRICS_ADDR/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "worker started (pid $(cat "$PIDFILE")), log: .data/worker.log, metrics: http://$PAPERBOY_METRICS_ADDR/metrics"
fi

echo "== paperboy ping --wait"
paperboy ping --wait --timeout 30
echo "== paperboy consume (sample documents) --wait"
paperboy consume --wait --timeout 120 "$ROOT"/tests/data/consume/*
echo "== paperboy documents list"
paperboy documents list
echo "== paperboy status"
paperboy status
echo "Stop the worker with: scripts/quickstart.sh stop"
