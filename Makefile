# Quick start: `make report` (the main job) and `make test` (the whole test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: report test install install-dev bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first: on these machines that is the CPU wheel, so no CUDA packages are pulled.
# The report installs the [hf] extra too: its transformer experiment runs a real (tiny) causal LM.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[hf]"
	touch $(STAMP)

$(DEVSTAMP): $(STAMP) pyproject.toml
	$(PIP) install -q -e ".[dev,hf,ray,track]"
	touch $(DEVSTAMP)

install: $(STAMP)
install-dev: $(DEVSTAMP)

report: $(STAMP)
	$(VENV)/bin/oraclerl report

test: $(DEVSTAMP)
	$(PY) -m pytest -n 2 --dist loadfile

bench: $(DEVSTAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs report .pytest_cache
