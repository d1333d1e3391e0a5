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

# The console's graph layout (dagre) is vendored from the npm package pinned in tools/console-assets; the static
# tests check the vendored copy against it. Its browser tests drive Debian's chromium (no browser download).
CONSOLE_ASSETS := tools/console-assets
CONSOLE_STAMP := $(CONSOLE_ASSETS)/node_modules/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: demo test test-under-load unit functional static validate bench clean console-assets browser

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

demo: $(STAMP)
	$(VENV)/bin/sagestep demo --workspace $(WORKSPACE)

test: $(STAMP) $(SAM_STAMP) $(ASL_STAMP) $(CONSOLE_STAMP) browser
	$(PY) -m pytest -n 2 --dist loadfile tests

# The suite with two CPU-bound processes beside it on this 2-core machine: no local deadline expires because real
# work is slow (the local cloud's virtual clock holds Wait states while model servers start).
test-under-load: $(STAMP) $(SAM_STAMP) $(ASL_STAMP) $(CONSOLE_STAMP) browser
	@echo "make test with two CPU-bound processes beside it"
	@$(PY) -c 'while True: pass' & b1=$$!; $(PY) -c 'while True: pass' & b2=$$!; \
	  trap "kill $$b1 $$b2" EXIT; $(MAKE) --no-print-directory test

unit: $(STAMP)
	$(PY) -m pytest tests/unit

functional: $(STAMP) browser
	$(PY) -m pytest -n 2 --dist loadfile tests/functional

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

bench: $(STAMP) $(BENCH_STAMP) $(DRIFT_BENCH_STAMP)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "error: wrk not found; install the Debian package wrk"; exit 2; }
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) $(ASL_DIR)/node_modules $(CONSOLE_ASSETS)/node_modules $(WORKSPACE) test-artifacts
