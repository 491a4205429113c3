# Two entry points for a fresh machine: `make run` (chat UI on the bundled corpus) and
# `make test`. Both create .venv and install everything on first use.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast lint eval bench browser-deps clean

setup: $(STAMP)

# pip shows its progress (a first install takes a few minutes); each step says what it does.
$(STAMP): pyproject.toml
	@echo "== [1/4] Creating the virtual environment in $(VENV)"
	$(PY) -m venv $(VENV)
	@echo "== [2/4] Upgrading pip"
	$(BIN)/pip install --progress-bar on --upgrade pip
	@echo "== [3/4] Installing CPU torch (from local disk when cached)"
	# CPU torch from local disk first; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --progress-bar on torch==2.13.0
	@echo "== [4/4] Installing the assistant and its dependencies (a few minutes the first time)"
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "== Setup done."

run: setup
	@echo "== Starting the chat (the first run also indexes seeds/, ~70 s)"
	$(BIN)/assistant ui

browser-deps:
	@command -v chromium >/dev/null || { \
	  echo "Installing Debian chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup browser-deps
	$(BIN)/python -m pytest

# The fast lane: no model, no browser, no server (tests marked slow or browser are skipped).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser" -p no:cacheprovider

# ruff, the import layers (import-linter contracts in pyproject.toml) and mypy on assistant/.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The external SciFact / PubMedQA files (assistant eval --external) of this workspace.
export ASSISTANT_EXTERNAL_DIR ?= $(abspath ../shared/external)

eval: setup
	$(BIN)/assistant eval

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) data test-artifacts
