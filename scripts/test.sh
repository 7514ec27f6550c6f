#!/usr/bin/env bash
# Install everything the tests need and run the whole test suite (the README's second command).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the soak/load runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
