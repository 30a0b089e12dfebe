#!/usr/bin/env bash
# Creates .venv with what the tests and benchmarks run in Python: PyIceberg (the
# independent reader) and confluent-kafka (the benchmark's baseline pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import pyiceberg, confluent_kafka" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "pyiceberg[sql-sqlite,pyarrow]==0.12.0" "confluent-kafka==2.12.1"
fi
