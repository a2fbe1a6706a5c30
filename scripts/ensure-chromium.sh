#!/usr/bin/env bash
# `make test` step: the browser tests (tests/support/browser.py) drive Debian's headless chromium. Installs it when it
# is missing and we are root (CI); otherwise says how. Never lets the browser tests skip.
set -euo pipefail
if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then exit 0; fi
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test setup: installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
  exit 0
fi
echo "test setup: the browser tests need chromium: run 'sudo apt-get install -y chromium'" \
     "(or set CHROMIUM to a Chromium binary), then make test again" >&2
exit 1
