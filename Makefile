# Everything a fresh clone needs: `make demo` and `make test` create the
# virtual environment, install the package with the right extras, and run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# mkdocs-material prints a banner about its end of life on every build; the
# version is pinned in pyproject.toml, so the banner is only noise here.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

.PHONY: demo test matrix docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/emoji-async demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MKDOCS) build --strict
	$(BIN)/python -m pytest

# The suite under the other Pythons the project supports (`make test` covers the
# default one), each in a venv of its own that nox makes under .nox/; noxfile.py
# finds the interpreters, pyenv's included. MATRIX_JOBS=2 runs them side by side.
# Every venv is made first, one after the other: a session's tests never run beside
# another's installing (a wheel unpacked on a busy core stalls the tests' clock).
MATRIX ?= 3.12 3.13
MATRIX_JOBS ?= 1
matrix: $(VENV)/.installed-test
	$(BIN)/nox --install-only --python $(MATRIX)
	$(BIN)/nox --no-install --parallel $(MATRIX_JOBS) --python $(MATRIX)

# The documentation site, in site/ (any warning is an error).
docs: $(VENV)/.installed-docs
	$(MKDOCS) build --strict

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .nox site
