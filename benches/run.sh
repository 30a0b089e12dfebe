#!/usr/bin/env bash
# The end-to-end ingest benchmark: builds Floe in release mode, installs the Python
# baseline's packages into .venv, and runs floe-bench. Arguments go to floe-bench
# (`benches/run.sh --help`); results land in benches/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/floe-target}"
scripts/python-env.sh
cargo build --release -p floe-cli -p floe-bench
exec "$CARGO_TARGET_DIR/release/floe-bench" "$@"
