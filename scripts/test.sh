#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with warnings as errors, and all tests
# (unit, SQL cases, end-to-end against a broker process, the PyIceberg reader; the crash
# and quality tests a second time against tansu) and the benchmark in smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/floe-target}"

# PyIceberg (the independent reader of the end-to-end tests) and the benchmark's baseline.
scripts/python-env.sh
export FLOE_TEST_PYTHON="$PWD/.venv/bin/python"
# Azurite, the Azure Storage emulator.
scripts/node-env.sh

cargo fmt --all -- --check
.venv/bin/hadolint Dockerfile
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --test-threads 2
# The second-broker leg: the kill -9, crash-point, slow-rebalance and dead-letter tests
# again, against tansu instead of librdkafka's mock cluster (CONTRIBUTING.md, "A second broker").
FLOE_E2E_TANSU="$(scripts/tansu.sh)" FLOE_CRASH_KILLS=6 cargo test -p floe-cli --test e2e \
  -- --test-threads 2 --include-ignored kill_minus_nine a_crash_between slow_to quality a_timestamp_job group_offsets_job a_restart_after_a_clean_stop
# The benchmark's smoke mode (a few thousand events, every stage), so it does not rot.
cargo build -p floe-cli -p floe-bench
"$CARGO_TARGET_DIR/debug/floe-bench" --smoke
