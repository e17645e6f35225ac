# Two commands a new user needs: `make demo` and `make test`.
# uv is bootstrapped from PyPI into .tools/ when it is not on PATH.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
# Debian packages the tests need (Go's reference sumdb/note for the ledger interop tests,
# ssh-keygen for the key-format tests, chromium for the console's browser tests);
# `make system-deps` (as root; .ci/run does it) installs the missing ones. One line to extend.
DEBIAN_PACKAGES := golang-go golang-golang-x-mod-dev openssh-client chromium
RUN := $(UV) run --frozen --no-sync

.PHONY: demo test check lint types pytest bench env clean mutate system-deps

$(UV):
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --python python3 --compile-bytecode
	$(VENV)/bin/python -m compileall -q src
	@touch $@

env: $(VENV)/.synced

demo: env
	$(RUN) custodiet demo

lint: env
	$(RUN) ruff check src tests bench tools
	$(RUN) ruff format --check src tests bench tools

types: env
	$(RUN) mypy

pytest: env
	$(RUN) pytest

test: system-deps lint types pytest

check: test

bench: env
	$(RUN) python bench/run_all.py

# Mutation testing of the security-critical modules in tools/mutate/modules.toml (slow: not part of
# `make test`). One module: make mutate MODULES=gateway/aggregate.py; several: MODULES="a.py b.py".
MODULES ?=
JOBS ?= 2
mutate: env
	$(RUN) python tools/mutate/mutate.py --jobs $(JOBS) $(if $(MODULES),--modules $(MODULES))

system-deps:
	@missing=$$(for pkg in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$pkg 2>/dev/null | grep -q 'install ok installed' \
			|| echo $$pkg; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y --no-install-recommends $$missing; \
		elif command -v sudo >/dev/null; then sudo apt-get update && sudo apt-get install -y --no-install-recommends $$missing; \
		else echo "note: install $$missing (Debian) for the Go interop tests; without them they are skipped"; fi; \
	fi

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
