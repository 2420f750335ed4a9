# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What running the site needs, and what testing it adds (pytest, Playwright, ruff, mypy).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install install-run run test lint format translations bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	@touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	@touch $(DEV_STAMP) $(RUN_STAMP)

## install: create .venv with the app, its tests and its tools
install: $(DEV_STAMP)

## install-run: create .venv with only what serving the site needs
install-run: $(RUN_STAMP)

## run: create or upgrade the SQLite database, load demo data, serve on :5000
##      (PORT=5101 for another) with a worker that prints queued email to this
##      console; email links point at the port served unless PORTAL_BASE_URL is set
run: export PORTAL_ENV = development
run: export PORTAL_BASE_URL ?= http://$(HOST):$(PORT)
run: install-run
	$(BIN)/python manage.py init
	$(BIN)/python manage.py seed
	@echo "Serving on http://$(HOST):$(PORT) (Ctrl+C stops the site and the mail worker)"
	@$(BIN)/python manage.py emails worker --idle-sleep 1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py run --debug --host $(HOST) --port $(PORT)

## test: the whole suite on every core (SQLite always; PostgreSQL, Redis, SMTP,
##       Chromium when present). PYTEST_ARGS="-n0 tests/test_x.py" runs a part in one process.
test: install
	$(BIN)/python -m pytest --numprocesses=auto $(PYTEST_ARGS)

## lint: ruff (lint and format check) and mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## format: apply ruff's fixes and formatting
format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## translations: extract marked text, merge it into each language's catalogue, compile
translations: install
	$(BIN)/pybabel extract -F portal/translations/babel.cfg -k _l -k lazy_gettext -k lazy_ngettext:1,2 \
		--add-location=file --sort-by-file --no-wrap --project=Portal --copyright-holder=Portal \
		-o portal/translations/messages.pot .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations --no-wrap \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d portal/translations --statistics

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
