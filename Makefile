# Two entry points on a fresh machine: `make demo` (install + a short training with a plot) and `make test`;
# `make docs` builds the documentation.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint docs

# constraints.txt pins what the project's machines carry (the CPU build of torch); pyproject.toml declares ranges.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) scripts/quickstart.py

# ruff, then import-linter's contracts ([tool.importlinter] in pyproject.toml: the package's layers).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -n 2 --durations=10

# The documentation (Sphinx, MyST pages in docs/) as HTML in docs/_build/html; a warning fails the build.
docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
