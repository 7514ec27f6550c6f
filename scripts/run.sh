#!/usr/bin/env bash
# Install dcsentry and run its main job on embedded defaults (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/dcsentry serve --demo "$@"
