# Two commands on a fresh machine: `make run` and `make test`. Python 3.11 is all `make run`
# needs; `make test` also runs supabase-js under Node 20+ (npm; tests/js).
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
MANAGE  = $(PY) manage.py
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The events process (manage.py run_events: GET /api/v1/generations/events under uvicorn).
EVENTS_PORT ?= 8001
JS      = tests/js
# Development defaults; a real deployment sets these in the environment (README).
# `serve` is the production server and `worker` its workers: there DEBUG is off unless
# given (env or command line). `make run` starts its own workers, in development.
ifeq ($(origin DEBUG),undefined)
ifneq ($(filter serve worker,$(MAKECMDGOALS)),)
DEBUG = 0
endif
endif
export DEBUG ?= 1
# Metrics (README, "Operating it: metrics and alerts"): the server and both workers of one
# machine write their counters into one folder, which /metrics adds up (prometheus-client's
# multiprocess mode). `make run` empties it when it starts, gunicorn (`make serve`) too.
ifneq ($(filter run serve worker,$(MAKECMDGOALS)),)
export PROMETHEUS_MULTIPROC_DIR ?= $(abspath $(or $(VELRO_DATA_DIR),.data))/prometheus
endif
# `make run FAKE_FAL=1`: the whole fal flow without a fal account — the fake fal
# (tests/fakes/fal.py) on FAKE_FAL_PORT, every model sent to it, its signed webhooks to
# this server (README, "Providers").
ifneq ($(filter 1 true yes on,$(FAKE_FAL)),)
FAKE_FAL_PORT ?= 8765
export GENERATION_PROVIDER = fal
export FAL_KEY = fal-dev-key
export FAL_QUEUE_URL = http://127.0.0.1:$(FAKE_FAL_PORT)
export FAL_JWKS_URL = http://127.0.0.1:$(FAKE_FAL_PORT)/.well-known/jwks.json
export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
endif

.PHONY: install install-js install-browser install-promtool run worker migrate serve backup backup-verify restore test fuzz bench lint stop-db dbshell clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

# supabase-js for its test (tests/accounts/test_supabase_js.py), exactly as locked; again
# when the lockfile changes. Only `make test` needs it. tests/js/.npmrc keeps supabase-js's
# "Node >= 22" (engines) a warning: it runs on Node 20 with --experimental-websocket.
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs Node 20+ and npm (supabase-js's test, $(JS))" >&2; exit 2; }
	cd $(JS) && npm ci --loglevel=error
	@touch $@

install-js: $(JS)/node_modules/.installed

# Debian's Chromium and its chromedriver, for the browser tests (tests/e2e); only when
# missing. As root, or through sudo. A test tool's own browser download cannot work here.
install-browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "make test needs chromium and chromedriver (tests/e2e)" >&2; exit 2; }; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's chromium and chromium-driver for the browser tests"; \
	  $$sudo apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q chromium chromium-driver >/dev/null; }; }

# Debian's prometheus package for its promtool, which checks and unit-tests the alert rules
# (deploy/prometheus, tests/metrics/test_alert_rules.py); only when missing. As root, or
# through sudo, like install-browser. The package's own server is not started here.
install-promtool:
	@command -v promtool >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "make test needs promtool (Debian's prometheus package)" >&2; exit 2; }; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's prometheus package for promtool (the alert rules' tests)"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || \
	  { $$sudo apt-get update -q >/dev/null && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }; }

migrate: install
	$(MANAGE) migrate --no-input

# Both workers run beside the server and stop with it (Ctrl-C): the generation worker
# and procrastinate's, which runs every other background task (velro/tasks.py). So does
# the events process on EVENTS_PORT: runserver (WSGI) cannot stream, and redirects
# GET /api/v1/generations/events there (EVENTS_URL).
run: migrate
	$(MANAGE) ensure_dev_admin
	$(if $(filter 1 true yes on,$(DEBUG)),$(MANAGE) seed_demo --quiet)
	@rm -rf "$(PROMETHEUS_MULTIPROC_DIR)" && mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)"
	@$(if $(filter 1 true yes on,$(FAKE_FAL)),$(PY) -m tests.fakes.fal --port $(FAKE_FAL_PORT) --key $(FAL_KEY) & fal=$$!;) \
	$(MANAGE) run_worker & worker=$$!; \
	$(MANAGE) procrastinate worker & tasks=$$!; \
	$(MANAGE) run_events --host $(HOST) --port $(EVENTS_PORT) & events=$$!; \
	trap 'kill $$worker $$tasks $$events $$fal 2>/dev/null; wait $$worker $$tasks $$events $$fal 2>/dev/null' EXIT INT TERM; \
	EVENTS_URL=$${EVENTS_URL:-http://$(HOST):$(EVENTS_PORT)} $(MANAGE) runserver $(HOST):$(PORT)

# Both workers, without the server: procrastinate's in the background, stopped with the
# generation worker (Ctrl-C, or when it exits).
worker: migrate
	@mkdir -p "$(PROMETHEUS_MULTIPROC_DIR)"
	@$(MANAGE) procrastinate worker & tasks=$$!; \
	trap 'kill $$tasks 2>/dev/null; wait $$tasks 2>/dev/null' EXIT INT TERM; \
	$(MANAGE) run_worker

# Production: gunicorn (gunicorn.conf.py) on HOST:PORT, static files by WhiteNoise.
#   DEBUG=0 SECRET_KEY=<50+ random chars> JWT_SIGNING_KEYS='<manage.py jwt_signing_key prints one>' \
#   ALLOWED_HOSTS=127.0.0.1 SECURE_SSL_REDIRECT=0 make serve
# (SECURE_SSL_REDIRECT=0 only to try it over plain http; behind a TLS proxy set
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https instead.) Run workers with `make worker`.
# The events process (GET /api/v1/generations/events, uvicorn) runs beside it on
# EVENTS_PORT and stops with it; a reverse proxy routes that path there (README, Deploy).
serve: migrate
	$(MANAGE) collectstatic --no-input --verbosity 0
	@$(MANAGE) run_events --host $(HOST) --port $(EVENTS_PORT) & events=$$!; \
	trap 'kill $$events 2>/dev/null; wait $$events 2>/dev/null' EXIT INT TERM; \
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py velro.wsgi

# pg_dump -Fc of the configured database into the backup storage (.data/backups/, or the
# media bucket's backups/ with MEDIA_STORAGE=s3; OUTPUT=file: that file), then retention.
backup: install
	$(MANAGE) backup $(if $(OUTPUT),--output $(OUTPUT))

# Prove the newest backup: restored into a scratch database, checked, counted, dropped.
backup-verify: install
	$(MANAGE) backup --verify

# Restore FILE into the configured database (asks for --yes: it replaces its contents).
restore: install
	@test -n "$(FILE)" || { echo "usage: make restore FILE=path/to/backup.dump [ARGS=--yes]"; exit 2; }
	$(MANAGE) restore $(FILE) $(ARGS)

# PYTEST_ARGS: extra pytest arguments (e.g. -k, --ignore).
test: install install-js install-browser install-promtool
	$(PY) -m pytest $(PYTEST_ARGS)

# Schemathesis against the API's own OpenAPI schema (tests/fuzz). `make test` runs it with a
# fixed seed and the CI budget; this runs ten times the examples with a new seed each time
# (printed with any failure): FUZZ_SEED=<n> replays a run, FUZZ_EXAMPLES=<n> sets the budget.
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_SEED=$${FUZZ_SEED:-random} $(PY) -m pytest tests/fuzz

# The performance benchmark (README, "Performance"): 10k and 1M generations in benchmark
# databases on the same server (loaded once, then reused), the app under gunicorn with the
# production settings against a psycopg-only baseline, driven by locust over loopback.
# Prints every target with PASS/FAIL and writes bench/results.json. ARGS=--smoke: the tiny
# run the tests do; ARGS=--drop-data: remove the benchmark databases afterwards.
bench: install
	$(MANAGE) bench $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

stop-db: install
	$(MANAGE) embedded_db stop

dbshell: install
	$(MANAGE) dbshell

clean: stop-db
	rm -rf .data
