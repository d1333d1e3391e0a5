# The two commands: `make demo` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKSPACE ?= .sagestep
# `sagestep validate` runs `sam validate --lint` from its own venv (aws-sam-cli pins its own boto3) and, as a
# second opinion on the ASL, asl-validator pinned in tools/asl-validator/package.json.
SAM_CLI_VERSION := 1.170.0
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
ASL_DIR := tools/asl-validator
ASL_STAMP := $(ASL_DIR)/node_modules/.installed
# The container images' libraries, locally (src/sagestep/local/interpreters.py): jobs run ml/ entry points with the
# job image's (SageMaker Distribution 3.2.0: Python 3.12), model servers and batch transform with the serving image's
# (sagemaker-xgboost 3.0-5: Python 3.10). The pins and their sources: tools/images/*.txt. The Pythons come from pyenv
# or PATH; missing one, 3.11 stands in (README, "Known differences").
PYENV_ROOT ?= $(or $(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)
# the first candidate that runs (a pyenv shim for a version that is not selected exists but fails)
first_python = $(shell for p in $(wildcard $(PYENV_ROOT)/versions/$(1)*/bin/python$(1)) python$(1) $(PYTHON); do \
	"$$p" -c 'import sys' 2>/dev/null && { command -v "$$p"; break; }; done)
JOB_PYTHON ?= $(call first_python,3.12)
SERVE_PYTHON ?= $(call first_python,3.10)
JOB_PINS := tools/images/sagemaker-distribution-3.2.0-cpu.txt
SERVE_PINS := tools/images/sagemaker-xgboost-3.0-5.txt
JOB_STAMP := .venv-job/.installed
SERVE_STAMP := .venv-serve/.installed
# The serving container's offline wheels (ml/requirements.txt), as `sam build` downloads them (ml/Makefile).
ML_WHEELS := ml/wheels/.downloaded

# The console's graph layout (dagre) is vendored from the npm package pinned in tools/console-assets; the static
# tests check the vendored copy against it. Its browser tests drive Debian's chromium (no browser download).
CONSOLE_ASSETS := tools/console-assets
CONSOLE_STAMP := $(CONSOLE_ASSETS)/node_modules/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test test-under-load unit functional static validate bench clean console-assets browser job-env serve-env ml-wheels

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(SAM_STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 2; }
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $(SAM_STAMP)

$(ASL_STAMP): $(ASL_DIR)/package.json $(ASL_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js (asl-validator checks the state machines)"; exit 2; }
	npm ci --prefix $(ASL_DIR) --no-audit --no-fund --silent
	touch $(ASL_STAMP)

$(CONSOLE_STAMP): $(CONSOLE_ASSETS)/package.json $(CONSOLE_ASSETS)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js (the console's assets are checked against their npm package)"; exit 2; }
	npm ci --prefix $(CONSOLE_ASSETS) --no-audit --no-fund --silent
	touch $(CONSOLE_STAMP)

# Re-vendor the console's JavaScript after changing the pinned version in tools/console-assets/package.json.
console-assets: $(CONSOLE_STAMP)
	cp $(CONSOLE_ASSETS)/node_modules/@dagrejs/dagre/dist/dagre.min.js src/sagestep/console/static/vendor/dagre.min.js
	cp $(CONSOLE_ASSETS)/node_modules/@dagrejs/dagre/LICENSE src/sagestep/console/static/vendor/dagre.LICENSE

# Headless Chromium for the console's browser tests: Debian's package, installed when missing and we are root.
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq >/dev/null 2>&1 \
		&& apt-cache show chromium >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
		echo "!!! WARNING: no Chromium at $(CHROMIUM), and this OS offers no Debian chromium package to install:  !!!"; \
		echo "!!! the console's browser tests (tests/functional/test_console_browser.py) will be SKIPPED.     !!!"; \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi

$(JOB_STAMP): $(JOB_PINS)
	@command -v $(JOB_PYTHON) >/dev/null || { echo "error: no Python for .venv-job (wanted 3.12); run 'make JOB_PYTHON=/path/to/python3.12 ...'"; exit 2; }
	@$(JOB_PYTHON) -c 'import sys; sys.version_info[:2] == (3, 12) or print("warning: .venv-job uses Python %d.%d, not the job image'"'"'s 3.12 (README, Known differences)" % sys.version_info[:2])'
	rm -rf .venv-job && $(JOB_PYTHON) -m venv .venv-job
	.venv-job/bin/python -m pip install --quiet --only-binary=:all: -r $(JOB_PINS)
	touch $(JOB_STAMP)

$(ML_WHEELS): ml/requirements.txt ml/Makefile $(STAMP)
	rm -rf ml/wheels
	$(MAKE) --no-print-directory -f ml/Makefile wheels WHEELS_DIR=$(CURDIR)/ml/wheels PYTHON=$(CURDIR)/$(PY)
	touch $(ML_WHEELS)

# The image's libraries, then ml/requirements.txt exactly as the container installs it at start: offline, from the
# wheels (a missing wheel fails here as it would in AWS). xgboost's Linux wheel requires nvidia-nccl-cu12 (300 MB,
# GPU only): the CPU serving stack is installed without it.
$(SERVE_STAMP): $(SERVE_PINS) $(ML_WHEELS)
	@command -v $(SERVE_PYTHON) >/dev/null || { echo "error: no Python for .venv-serve (wanted 3.10); run 'make SERVE_PYTHON=/path/to/python3.10 ...'"; exit 2; }
	@$(SERVE_PYTHON) -c 'import sys; sys.version_info[:2] == (3, 10) or print("warning: .venv-serve uses Python %d.%d, not the serving image'"'"'s 3.10 (README, Known differences)" % sys.version_info[:2])'
	rm -rf .venv-serve && $(SERVE_PYTHON) -m venv .venv-serve
	grep -v '^xgboost==' $(SERVE_PINS) > .venv-serve/pins.txt
	.venv-serve/bin/python -m pip install --quiet -r .venv-serve/pins.txt
	.venv-serve/bin/python -m pip install --quiet --no-deps $$(grep '^xgboost==' $(SERVE_PINS))
	.venv-serve/bin/python -m pip install --quiet -r ml/requirements.txt
	touch $(SERVE_STAMP)

ml-wheels: $(ML_WHEELS)

job-env: $(JOB_STAMP)
serve-env: $(SERVE_STAMP)

demo: $(STAMP) $(ML_WHEELS) $(JOB_STAMP) $(SERVE_STAMP)
	$(VENV)/bin/sagestep demo --workspace $(WORKSPACE)

test: $(STAMP) $(SAM_STAMP) $(ASL_STAMP) $(CONSOLE_STAMP) $(ML_WHEELS) $(JOB_STAMP) $(SERVE_STAMP) browser
	$(PY) -m pytest -n 3 --dist loadfile --no-loadscope-reorder tests

# The suite with two CPU-bound processes beside it on this 2-core machine: no local deadline expires because real
# work is slow (the local cloud's virtual clock holds Wait states while model servers start).
test-under-load: $(STAMP) $(SAM_STAMP) $(ASL_STAMP) $(CONSOLE_STAMP) $(ML_WHEELS) $(JOB_STAMP) $(SERVE_STAMP) browser
	@echo "make test with two CPU-bound processes beside it"
	@$(PY) -c 'while True: pass' & b1=$$!; $(PY) -c 'while True: pass' & b2=$$!; \
	  trap "kill $$b1 $$b2" EXIT; $(MAKE) --no-print-directory test

unit: $(STAMP) $(ML_WHEELS)
	$(PY) -m pytest tests/unit

functional: $(STAMP) $(ML_WHEELS) $(JOB_STAMP) $(SERVE_STAMP) browser
	$(PY) -m pytest -n 3 --dist loadfile --no-loadscope-reorder tests/functional

static: $(STAMP) $(SAM_STAMP) $(ASL_STAMP) $(CONSOLE_STAMP)
	$(PY) -m pytest tests/static

validate: $(STAMP) $(SAM_STAMP) $(ASL_STAMP)
	$(VENV)/bin/sagestep validate

# Peers for benchmarks live in their own venv: they pin their own versions of shared libraries.
BENCH_STAMP := .venv-bench/.installed
$(BENCH_STAMP):
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet mlflow==3.17.2 mlflow-skinny==3.17.2 lightgbm==4.7.0
	touch $(BENCH_STAMP)

# Drift peers in a venv of their own: nannyml 0.13.1 needs lightgbm<4.6 (the serving bench pins 4.7.0) and
# evidently 0.7.23 does not import with pandas 3.
DRIFT_BENCH_STAMP := .venv-bench-drift/.installed
$(DRIFT_BENCH_STAMP):
	$(PYTHON) -m venv .venv-bench-drift
	.venv-bench-drift/bin/pip install --quiet nannyml==0.13.1 evidently==0.7.23 pandas==2.2.3 pyarrow==26.0.1
	touch $(DRIFT_BENCH_STAMP)

# The serving image's own model-server stack (bench/serving_stack.py): the SageMaker containers toolkit as in
# sagemaker-xgboost 3.0-5 (flask 1.1.1, gunicorn 23 + gevent, protobuf <= 3.20.3) on the image's libraries, with the
# image Dockerfile's own patch (collections.Mapping -> collections.abc.Mapping for Python >= 3.10). requirements.txt is
# not installed here: the toolkit installs it offline at start, as the container does.
SERVING_BENCH_STAMP := .venv-bench-serving/.installed
$(SERVING_BENCH_STAMP): $(SERVE_PINS)
	rm -rf .venv-bench-serving && $(SERVE_PYTHON) -m venv .venv-bench-serving
	.venv-bench-serving/bin/pip install --quiet "setuptools<81" wheel
	.venv-bench-serving/bin/pip install --quiet sagemaker-containers==2.8.6.post2 MarkupSafe==1.1.1 flask==1.1.1 jinja2==2.11.3 \
	  Werkzeug==0.15.6 itsdangerous==2.0.1 gunicorn==23.0.0 gevent==23.9.1 psutil==5.8.0 protobuf==3.20.3
	grep -v '^xgboost==' $(SERVE_PINS) > .venv-bench-serving/pins.txt
	.venv-bench-serving/bin/pip install --quiet -r .venv-bench-serving/pins.txt
	.venv-bench-serving/bin/pip install --quiet --no-deps $$(grep '^xgboost==' $(SERVE_PINS))
	sed -i 's/collections\.Mapping/collections.abc.Mapping/g' .venv-bench-serving/lib/python3*/site-packages/sagemaker_containers/_mapping.py
	touch $(SERVING_BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP) $(DRIFT_BENCH_STAMP) $(SERVING_BENCH_STAMP) $(ML_WHEELS) $(SERVE_STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "error: wrk not found; install the Debian package wrk"; exit 2; }
	@command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq nginx >/dev/null; } || echo "warning: nginx not found: the image stack is measured without it"
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .venv-job .venv-serve ml/wheels $(ASL_DIR)/node_modules $(CONSOLE_ASSETS)/node_modules $(WORKSPACE) test-artifacts
