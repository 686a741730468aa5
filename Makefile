# Two commands on a fresh machine: `make run` and `make test`. Python 3.11 is all they need.
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
MANAGE  = $(PY) manage.py
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Development defaults; a real deployment sets these in the environment (README).
export DEBUG ?= 1

.PHONY: install run worker migrate test lint stop-db dbshell clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(MANAGE) migrate --no-input

# The worker runs beside the server and stops with it (Ctrl-C).
run: migrate
	$(MANAGE) ensure_dev_admin
	@$(MANAGE) run_worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(MANAGE) runserver $(HOST):$(PORT)

worker: migrate
	$(MANAGE) run_worker

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

stop-db: install
	$(MANAGE) embedded_db stop

dbshell: install
	$(MANAGE) dbshell

clean: stop-db
	rm -rf .data
