#!/usr/bin/env bash
# System packages the test suite uses: headless Chromium for the digest browser test.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the digest browser test..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
else
  echo "note: chromium not found and cannot install it here; browser tests will be skipped" >&2
fi
