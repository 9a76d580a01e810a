# zhcharge: the two commands are `make run` and `make test`; everything else is set up on the way.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
ZH    := $(VENV)/bin/zhcharge
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: setup setup-system setup-test assets run test bench db-start demo clean

setup: setup-system $(STAMP) assets

setup-system:
	@bash scripts/setup-system.sh

setup-test:
	@bash scripts/setup-system.sh --test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $(STAMP)

# Front-end libraries come from the npm registry (package-lock.json) and are served by the app.
assets: portal_site/static/vendor/.stamp

portal_site/static/vendor/.stamp: package.json package-lock.json scripts/copy-assets.sh
	npm ci --no-audit --no-fund --loglevel=error
	bash scripts/copy-assets.sh
	@touch $@

db-start: setup
	$(ZH) db start
	$(ZH) db migrate
	$(ZH) geo load-districts

demo: db-start
	@if $(ZH) demo --help >/dev/null 2>&1; then $(ZH) demo load; fi

run: demo
	$(ZH) serve

test: setup setup-test
	$(ZH) db start
	$(VENV)/bin/pytest

bench: setup
	$(VENV)/bin/pip install -q -e '.[dev,bench]'
	$(ZH) db start
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules portal_site/static/vendor
