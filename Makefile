# Two commands (see README):  `make demo`  and  `make test` (`make test-fast` while developing).
# Each creates .venv if absent and installs the pinned requirements and the package, idempotently.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: demo test test-fast render lint format install install-test clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make re-runs cheap: pip runs again only when a requirements file changes.
$(VENV)/.installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Main job on built-in data (synthetic phantoms): writes a new run folder under runs/.
## `make demo ARGS=--resume` continues the latest unfinished demo run.
demo: $(VENV)/.installed
	$(BIN)/kerassev demo --out runs $(ARGS)

## Every test: lint, unit and real-data tests, and the notebooks under nbval (smoke preset);
## the 15 slowest are listed at the end (the CI budget is 20 minutes on 2 cores of the slower AMD kind).
## The notebooks' run folders go to a temporary folder, removed afterwards: test runs never mix
## with a user's runs/ and never pile up on disk.
test: $(VENV)/.installed-test
	$(BIN)/ruff check kerassev tests benchmarks notebooks tools
	$(BIN)/ruff format --check kerassev tests benchmarks notebooks tools
	runs=$$(mktemp -d "$${TMPDIR:-/tmp}/kerassev-test-runs.XXXXXX") && \
	KERASSEV_RUNS=$$runs KERASSEV_PRESET=smoke \
	  $(BIN)/pytest -n 2 --dist loadfile --durations=15 --nbval-lax tests notebooks; \
	status=$$?; rm -rf "$$runs"; exit $$status

## The developer loop (under 3 minutes on 2 cores): lint and the unit tests, leaving out what is
## marked slow (end-to-end smoke runs, clusters, anything over ~20 s) and the notebooks.
test-fast: $(VENV)/.installed-test
	$(BIN)/ruff check kerassev tests benchmarks notebooks tools
	$(BIN)/pytest -n 2 --dist loadfile --durations=10 -m "not slow" tests

## The notebooks of the papers with a finished cpu run (see docs/results), executed from that run
## (its models reloaded, nothing retrained; the run itself untouched) into docs/notebooks/ with
## their figures; prints each notebook's time and the total. Runs are looked up under RENDER_RUNS
## (default runs; dir1:dir2 for several); a paper without one is skipped, saying why.
render: $(VENV)/.installed
	RENDER_RUNS=$${RENDER_RUNS:-runs} $(BIN)/python tools/render_notebooks.py $(NOTEBOOKS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check kerassev tests benchmarks notebooks tools

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix kerassev tests benchmarks notebooks tools
	$(BIN)/ruff format kerassev tests benchmarks notebooks tools

clean-venv:
	rm -rf $(VENV)
