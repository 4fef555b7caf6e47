# Listener — the two commands (see README):
#   make run    set up (virtualenv, torch, the package) and run the main job on the embedded default
#   make test   set up and run the whole test suite (SQLite pass, then PostgreSQL pass)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and exactly this version: the CPU wheel; nothing may upgrade it
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else 'torch ' + v + ' installed, 2.13.0 required')"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/listener init
	$(BIN)/listener run --once
	$(BIN)/listener queue
	@echo "next: . $(BIN)/activate (or type $(BIN)/listener), then the README's five-minute tour"

test: setup
	./scripts/test

lint: setup
	$(BIN)/ruff check listener classifiers tests bench
	$(BIN)/ruff format --check listener classifiers tests bench
	$(BIN)/mypy

bench: setup
	./scripts/bench

clean:
	rm -rf $(VENV) listener.db listener.db-wal listener.db-shm var
