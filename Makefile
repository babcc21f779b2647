# The two entry points of the README. Both create .venv if missing, install torch==2.13.0
# FIRST (a local CPU wheel; any other spec pulls a multi-GB CUDA build), then qstar.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test install lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/qstar demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

bench: install
	$(BIN)/python -m benchmarks.system1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
