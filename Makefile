# Two entry points on a fresh machine with Python 3.11, pip and make:
#   make book   build the HTML book into _build/html/ (quick profile)
#   make test   run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# smoke, quick or full: see inpaintlib/profiles.yml
PROFILE ?= quick
# CLASSROOM=1: a classroom edition, the exercises without their solutions
CLASSROOM ?=

.PHONY: book test test-exercises test-fast bench install clean

# Reinstall when the package's requirements change.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[book,dev]'
	touch $@

install: $(VENV)/.installed

book: install
	$(BIN)/inpaint book --profile $(PROFILE) $(if $(CLASSROOM),--classroom)
	@echo "Open _build/html/index.html in a browser."

test: install
	$(BIN)/python -m pytest -m "not chains"

# Every exercise set, run at the smoke profile and graded, and the README's -p examples built (10 to 25 minutes; CI runs it after make test).
test-exercises: install
	$(BIN)/python -m pytest -m chains tests/test_exercise_chains.py

# The edit loop: everything but the book builds, the kill tests and the longer trainings.
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not chains"

bench: install
	$(BIN)/python bench/data.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/vaegan_designs.py
	$(BIN)/python bench/time_to_quality.py

clean:
	rm -rf _build
