#!/usr/bin/env bash
# Create .venv (once) and install dcsentry into it, with extras "$1" (e.g. test).
# Works on a fresh Debian with Python 3.11: installs python3-venv when root and it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "dcsentry needs Python >= 3.11 (found: $("$py" --version 2>&1))" >&2; exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$py" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$py" -m venv .venv
    else
      echo "python3 -m venv failed: install the python3-venv package (sudo apt-get install python3-venv)" >&2; exit 1
    fi
  fi
fi
# The distributed-mode tests start a private nats-server with JetStream (tests/natskit.py).
if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q -e "$spec" 2>&1 | grep -v -e '^WARNING: Location' -e 'is ignored' >&2 || true
.venv/bin/python -c 'import dcsentry' || { echo "dcsentry failed to install" >&2; exit 1; }
