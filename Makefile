# ferflow: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export RAY_USAGE_STATS_ENABLED := 0
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test test-slow test-e2e lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## demo: the whole pipeline on the embedded default (synthetic data, local Prefect/Ray/MLflow)
demo: install
	$(VENV)/bin/ferflow demo

## test: every test except the slow/gpu ones (real Prefect, Ray, MLflow, ONNX Runtime, S3 on loopback)
test: install
	$(PY) -m pytest -m "not slow and not gpu" -p no:cacheprovider $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m "slow and not gpu" -p no:cacheprovider $(PYTEST_ARGS)

test-gpu: install
	$(PY) -m pytest -m gpu -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check fer_core tasks flows ferflow tests benchmarks

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
