#!/usr/bin/env bash
# One command for a first look on a fresh machine: installs what is missing, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node --max-semi-space-size=32 bin/plantgate.js demo "$@"
