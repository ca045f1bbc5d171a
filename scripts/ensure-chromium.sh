#!/usr/bin/env bash
# The report tests open report.html in headless Chromium (Debian's package). Install it if missing.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the report tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: the browser tests will fail" >&2
else
  echo "chromium is missing and this user cannot install it: the browser tests will fail" >&2
fi
exit 0
