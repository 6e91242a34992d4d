# Two commands on a fresh machine:
#   make demo   set up .venv and run the pipeline on the bundled sample feeds
#   make test   set up .venv with dev extras and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
DEMO_DB ?= demo.duckdb
# The busiest day of the bundled sample feeds, for the demo digest.
DEMO_DAY := 2026-11-20

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_UI_ENABLED := false
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: demo test lint setup setup-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first: a bare torch requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install -q $(TORCH)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

demo: setup
	STORYLINE_CONFIG=samples/storyline.toml $(BIN)/storyline run --sources samples/sources.toml --db $(DEMO_DB)
	$(BIN)/storyline stories --db $(DEMO_DB) --limit 8
	STORYLINE_CONFIG=samples/storyline.toml $(BIN)/storyline digest --db $(DEMO_DB) --date $(DEMO_DAY)

test: setup-dev
	bash scripts/test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .prefect $(DEMO_DB) $(DEMO_DB).wal digests
