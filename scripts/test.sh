#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests and integration tests against real Redis and
# PostgreSQL. Installs and starts what it needs on a Debian machine.
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_rust
ensure_tools
ensure_redis
ensure_postgres
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export PAPERBOY_TEST_REDIS_URL="$PAPERBOY_REDIS_URL"

cargo fmt --all -- --check
cargo build --workspace --all-targets --locked
cargo clippy --workspace --all-targets --locked -- -D warnings
# Deployment files: YAML/structure, promtool check/test rules, dashboard PromQL, kustomize,
# systemd-analyze (installs promtool, which tests/tests/metrics_lint.rs needs too).
bash scripts/check-deploy.sh
# Integration tests spawn the binaries built above; two test threads on a 2-core machine.
cargo test --workspace --locked -- --test-threads=2
