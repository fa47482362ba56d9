#!/usr/bin/env bash
# Installs Debian's chromium for the console's Playwright browser tests (tests/console,
# marked `browser`). Playwright drives it through executable_path=/usr/bin/chromium; it never
# downloads a browser of its own. Idempotent: a no-op when /usr/bin/chromium exists.
# Without root or apt-get it only warns: the browser tests then skip with that reason.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium peer: /usr/bin/chromium missing and apt-get unavailable; browser tests will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium installed at /usr/bin/chromium"
