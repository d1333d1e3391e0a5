# The two commands: `make demo` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKSPACE ?= .sagestep

.PHONY: demo test unit functional static bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sagestep demo --workspace $(WORKSPACE)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile tests

unit: $(STAMP)
	$(PY) -m pytest tests/unit

functional: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile tests/functional

static: $(STAMP)
	$(PY) -m pytest tests/static

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(WORKSPACE)
