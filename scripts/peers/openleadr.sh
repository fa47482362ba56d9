#!/usr/bin/env bash
# Creates the git-ignored .peers/openleadr/ virtual environment holding openleadr 0.5.36
# (an independent OpenADR 2.0b VEN and VTN). It pins xmltodict==0.13.0 and signxml<5, which
# clash with ours, so it gets its own Python 3.11 (or 3.10) interpreter from pyenv.
# Idempotent: does nothing when openleadr 0.5.36 is already installed there.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.peers/openleadr"
version="0.5.36"
if [ -x "$dest/bin/python" ] && "$dest/bin/python" -c "import importlib.metadata as m; assert m.version('openleadr') == '$version'" >/dev/null 2>&1; then
    exit 0
fi
py=""
for candidate in 3.11 3.10; do
    if command -v "python$candidate" >/dev/null 2>&1 && "python$candidate" -c 'import sys' >/dev/null 2>&1; then
        py="$(command -v "python$candidate")"
        break
    fi
    if command -v pyenv >/dev/null 2>&1; then
        v=$(pyenv versions --bare 2>/dev/null | grep -E "^${candidate//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1 || true)
        if [ -n "$v" ]; then
            py="$(PYENV_VERSION="$v" pyenv which "python$candidate")"
            break
        fi
    fi
done
if [ -z "$py" ]; then
    echo "openleadr peer: no Python 3.11 or 3.10 found; OpenADR 2.0b interop tests will be skipped" >&2
    exit 0
fi
rm -rf "$dest"
"$py" -m venv "$dest"
"$dest/bin/python" -m pip install -q --disable-pip-version-check "openleadr==$version"
echo "openleadr peer installed in $dest"
