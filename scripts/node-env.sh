#!/usr/bin/env bash
# Installs Azurite, the Azure Storage emulator the Azure warehouse test runs against,
# into .node/ (from the npm registry).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .node/node_modules/.bin/azurite-blob ]; then
  mkdir -p .node
  npm install --prefix .node --silent --no-audit --no-fund "azurite@3.37.0"
fi
