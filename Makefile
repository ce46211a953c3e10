# ferflow: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_DISABLE_TELEMETRY := true
export OMP_NUM_THREADS ?= 2

.PHONY: install demo reference ship reference-gpu test test-slow test-e2e browser lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## demo: the whole pipeline on the embedded default (synthetic data, local Prefect/Ray/MLflow)
demo: install
	$(VENV)/bin/ferflow demo

## reference: FER2013 from ../shared/data/fer2013 to a packaged student and the results report (2-core CPU, ~2-2.5 h)
REFERENCE ?= configs/fer2013_cpu.yaml
reference: install
	$(VENV)/bin/ferflow pipeline --config $(REFERENCE)
	$(VENV)/bin/ferflow report --config $(REFERENCE)

## ship: publish the reference run's champion to models/fer2013 (model card + held-out file list; review the diff)
ship: install
	$(VENV)/bin/ferflow ship --config $(REFERENCE)

## reference-gpu: the team's configuration (224 px, ResNet-18 + EfficientNet-B3 -> MobileNetV3-L) on a GPU worker
reference-gpu: REFERENCE = configs/fer2013_gpu.yaml
reference-gpu: reference

## test: every test except the slow/gpu ones (real Prefect, Ray, MLflow, ONNX Runtime, S3 on loopback)
test: install
	$(PY) -m pytest -m "not slow and not gpu" -p no:cacheprovider $(PYTEST_ARGS)

## browser: headless Chromium from Debian's `chromium` package and Playwright in the venv, for the slow browser test.
## Idempotent; Playwright drives the system Chromium through executable_path (no `playwright install` download).
SUDO := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)
browser: install
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check playwright

test-slow: install browser
	$(PY) -m pytest -m "slow and not gpu" -p no:cacheprovider $(PYTEST_ARGS)

test-gpu: install
	$(PY) -m pytest -m gpu -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check fer_core fer_spec fer_adapters tasks flows ferflow tests benchmarks

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
