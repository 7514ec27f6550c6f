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
# Kerberos (WEF over HTTP): the tests run a throw-away MIT KDC (krb5-kdc, krb5-admin-server,
# krb5-user), and python-gssapi/krb5 have no binary wheels, so pip builds them against libkrb5-dev.
krb_missing=""
for p in krb5-kdc krb5-admin-server krb5-user libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || krb_missing="$krb_missing $p"
done
command -v gcc >/dev/null || krb_missing="$krb_missing gcc python3-dev"
if [ -n "$krb_missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $krb_missing >/dev/null
  else
    echo "missing for Kerberos (WEF over HTTP and its tests):$krb_missing (sudo apt-get install$krb_missing)" >&2
  fi
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
# The RELP test drives Debian's rsyslog with omrelp as the sending peer (tests/test_relp.py).
if [[ ",$extras," == *",test,"* ]] && ! { [ -x /usr/sbin/rsyslogd ] && ls /usr/lib/*/rsyslog/omrelp.so >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-relp >/dev/null
  else
    echo "the RELP test needs Debian's rsyslog and rsyslog-relp: sudo apt-get install rsyslog rsyslog-relp" >&2; exit 1
  fi
fi
# The packaging test checks the shipped unit with systemd-analyze and drops to a user with setpriv.
if [[ ",$extras," == *",test,"* ]] && ! command -v systemd-analyze >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd util-linux >/dev/null
  else
    echo "the packaging test needs systemd-analyze: sudo apt-get install systemd" >&2; exit 1
  fi
fi
# The console's end-to-end test drives Debian's chromium through Playwright (never `playwright install`).
if [[ ",$extras," == *",test,"* ]] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the web console test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1
  fi
fi
