# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
PYTHON312 = $(shell scripts/find-python312.sh)

.PHONY: demo test lint env peers lock bench clean

$(UV):
	@py=$$(scripts/find-python312.sh) && $$py -m venv $(TOOLS)/uv && $(TOOLS)/uv/bin/pip install -q "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --python "$(PYTHON312)"
	@touch $@

env: $(VENV)/.synced

lock: | $(UV)
	$(UV) lock --python "$(PYTHON312)"

# Interop peers whose pins clash with ours live in their own environments under .peers/;
# every script in scripts/peers/ creates one (and is quick when it already exists).
peers: env
	@for script in scripts/peers/*.sh; do [ -e "$$script" ] || continue; bash "$$script" || exit 1; done

demo: env
	$(VENV)/bin/derms demo

lint: env
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

test: env peers lint
	$(PY) -m pytest -q -ra

bench: env
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(TOOLS) .peers .pytest_cache .ruff_cache
