# Two entry points for a fresh machine: `make run` (chat UI on the bundled corpus) and
# `make test`. Both create .venv and install everything on first use.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint eval bench browser-deps clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch from local disk first; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/assistant ui

browser-deps:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup browser-deps
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

eval: setup
	$(BIN)/assistant eval

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data test-artifacts
