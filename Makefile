# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv, installs genlab, a first look at every family -> report/
#   make test   creates .venv, installs genlab, runs the test suite
# torch is pinned to the CPU build only here, for the quick start; the library itself asks
# for torch>=2.2.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.genlab-installed

.PHONY: demo test bench lint docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]" torch==2.13.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/genlab demo --out report

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]" torch==2.13.0
	@echo "Benchmarks: see bench/README.md for each script and bench/RESULTS.md for results."

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

docs: $(STAMP)
	$(PY) -c "import sys; from genlab.settings import main; sys.exit(main(sys.argv[1:]))" docs/*.md

clean:
	rm -rf report runs .pytest_cache
