#!/usr/bin/env bash
# Installs the npm package ocpp-rpc (an independent OCPP charge point, strict schema validation)
# into the git-ignored .peers/ocpp-rpc/ from the committed package.json + package-lock.json.
# Idempotent: does nothing when the installed lock file matches the committed one.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/tests/interop/ocpp_rpc"
dest="$root/.peers/ocpp-rpc"
if ! command -v npm >/dev/null 2>&1; then
    echo "ocpp-rpc peer: npm not found; OCPP interop tests will be skipped" >&2
    exit 0
fi
if [ -d "$dest/node_modules/ocpp-rpc" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
    exit 0
fi
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --silent)
echo "ocpp-rpc peer installed in $dest"
