#!/usr/bin/env bash
# Installs tansu 0.6.0, a Kafka-compatible broker written in Rust (the end-to-end suite's
# second broker), once per machine into $HOME/.cache/tansu-0.6.0, and prints its path.
# A debug build: about 4 minutes on 2 cores instead of 14 for a release build, and the
# suite's few thousand records do not need a fast broker.
set -euo pipefail
root="$HOME/.cache/tansu-0.6.0"
bin="$root/bin/tansu"
if [ ! -x "$bin" ]; then
  cargo install tansu --version 0.6.0 --locked --features dynostore --debug \
    --root "$root" --target-dir "$root/target" >&2
  rm -rf "$root/target"
fi
echo "$bin"
