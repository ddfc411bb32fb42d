#!/usr/bin/env bash
# Install Debian's chromium (headless browser for the console's chromedp tests)
# and smoke-test it. Idempotent; needs root for apt-get. Without it, the browser
# tests skip with a message naming /usr/bin/chromium.
set -euo pipefail
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-chromium: not root; skipping (browser tests will skip)" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# 2>/dev/null: the wrapper's /etc/chromium.d/dev-shm prints a harmless "[: ...: unexpected operator".
timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --disable-background-networking --disable-component-update --disable-sync --no-first-run \
  --user-data-dir="$TMP/profile" --dump-dom 'data:text/html,<h1>ok</h1>' 2>/dev/null | grep -q '<h1>ok</h1>'
echo "$(chromium --version 2>/dev/null) headless OK (/usr/bin/chromium)"
