#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium; it
# cannot download its own browsers here). Does nothing when chromium is already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "The browser tests need Debian's chromium: run 'sudo apt-get install chromium'." >&2
    exit 1
fi
echo "Installing Debian's chromium for the browser tests..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
