#!/usr/bin/env bash
# Creates the git-ignored .peers/opendnp3/ virtual environment holding dnp3-python 0.3.0b2,
# the Python binding of the opendnp3 C++ stack (an independent DNP3 outstation for interop
# tests). Its wheels exist for Python 3.10 only, so it gets pyenv's 3.10 interpreter.
# Idempotent: does nothing when the environment already imports dnp3-python 0.3.0b2.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.peers/opendnp3"
version="0.3.0b2"
if [ -x "$dest/bin/python" ] && "$dest/bin/python" -c "import dnp3_python, importlib.metadata as m; assert m.version('dnp3-python') == '$version'" >/dev/null 2>&1; then
    exit 0
fi
py=""
if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys' >/dev/null 2>&1; then
    py="$(command -v python3.10)"
elif command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -V | tail -n 1 || true)
    if [ -n "$v" ]; then
        py="$(PYENV_VERSION="$v" pyenv which python3.10)"
    fi
fi
if [ -z "$py" ]; then
    echo "opendnp3 peer: no Python 3.10 found; DNP3 opendnp3 interop tests will be skipped" >&2
    exit 0
fi
rm -rf "$dest"
"$py" -m venv "$dest"
"$dest/bin/python" -m pip install -q --disable-pip-version-check "dnp3-python==$version"
echo "opendnp3 peer installed in $dest"
