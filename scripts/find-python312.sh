#!/usr/bin/env bash
# Print the path of a working Python 3.12 interpreter, or fail with a clear message.
# A normal machine has python3.12 on PATH; on pyenv machines the shim fails unless 3.12 is
# selected, so ask pyenv for the newest installed 3.12.
set -euo pipefail
if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' >/dev/null 2>&1; then
    python3.12 -c 'import sys; print(sys.executable)'
    exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
    version=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -n 1 || true)
    if [ -n "$version" ]; then
        PYENV_VERSION="$version" pyenv which python3.12
        exit 0
    fi
fi
echo "error: Python 3.12 not found (tried python3.12 on PATH and pyenv). Install Python 3.12 and retry." >&2
exit 1
