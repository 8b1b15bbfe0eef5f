# The two commands a newcomer needs: `make run` (embedded default) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

# The test suite runs on the real stack; each of these can be overridden from the environment.
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/cqrs
REDIS_URL ?= redis://127.0.0.1:6379/14
# RabbitMQ, on a vhost of the suite's own (.ci/run creates it); Redis is the cache.
CELERY_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672/cqrs
# With DATABASE_URL set the service refuses to start without a secret key: the suite brings its own.
DJANGO_SECRET_KEY ?= test-suite-only-key-never-used-in-production-4d1f0c9a7e
STACK_ENV = DATABASE_URL=$(DATABASE_URL) REDIS_URL=$(REDIS_URL) CELERY_BROKER_URL=$(CELERY_BROKER_URL) \
	DJANGO_SECRET_KEY=$(DJANGO_SECRET_KEY)
# The embedded default: no services, SQLite under var/, Celery tasks in-process.
EMBEDDED_ENV = env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL

.PHONY: run test lint typecheck contracts pytest install clean screenshots bench bench-quick bench-statements bench-vhost chaos schemathesis event-catalog

$(VENV)/.installed: requirements/base.txt requirements/local.txt requirements/production.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/local.txt -r requirements/production.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(EMBEDDED_ENV) $(PY) manage.py migrate --noinput
	$(EMBEDDED_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Create an API client with: $(EMBEDDED_ENV) $(PY) manage.py create_api_client demo --scopes read,write,catalog"
	$(EMBEDDED_ENV) $(PY) manage.py runserver 0.0.0.0:8000

# Lint the code, the Dockerfile (hadolint) and docker-compose.yml (Debian's docker-compose validates it without an
# engine; the file requires DJANGO_SECRET_KEY, so any value is given for the check).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	DJANGO_SECRET_KEY=compose-validation-only docker-compose -f docker-compose.yml config --quiet

# mypy's Django plugin loads the settings: the suite's, key included.
typecheck: install
	$(STACK_ENV) $(BIN)/mypy .

contracts: install
	$(BIN)/lint-imports

pytest: install
	$(STACK_ENV) $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck contracts pytest

# The read side's copy of the event catalog, after adding or changing an event (tests/unit/test_event_catalog.py).
event-catalog: install
	$(EMBEDDED_ENV) $(PY) manage.py event_catalog --output queries_app/event_catalog.json

# Schemathesis for longer than `make test` runs it (40 examples per operation there, about 1.5 minutes): every
# phase and check against gunicorn, a worker and beat (tests/e2e/test_schemathesis.py, schemathesis.toml).
SCHEMATHESIS_MAX_EXAMPLES ?= 500
schemathesis: install
	$(STACK_ENV) SCHEMATHESIS_MAX_EXAMPLES=$(SCHEMATHESIS_MAX_EXAMPLES) $(BIN)/pytest tests/e2e/test_schemathesis.py -s -q

# Refresh the admin screenshots in docs/screenshots/ (needs Debian's chromium).
screenshots: install
	$(STACK_ENV) SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/e2e/test_admin_in_a_browser.py -q

# Benchmarks and the chaos run (docs/benchmarks.md): their own database and Redis DBs, never the tests' ones.
# `make bench` takes 22-26 minutes here (the HTTP module needs `wrk`) and rewrites docs/benchmarks.md; `make bench-quick`
# about 3 (var/bench/).
BENCH_ARGS ?=
CHAOS_MINUTES ?= 3
# e.g. CHAOS_ARGS="--broker redis" for the run on the Redis broker
CHAOS_ARGS ?=
# The benches run on the production broker, RabbitMQ, on a vhost of their own (created here if missing); set
# BENCH_BROKER_URL= (empty) for the Redis broker DB instead.
BENCH_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672/cqrs_bench
bench-vhost:
	@if [ -n "$(BENCH_BROKER_URL)" ] && command -v rabbitmqctl >/dev/null; then \
	  rabbitmqctl -q list_vhosts | grep -qx cqrs_bench || rabbitmqctl -q add_vhost cqrs_bench; \
	  rabbitmqctl -q set_permissions -p cqrs_bench guest ".*" ".*" ".*"; fi

bench: install bench-vhost
	BENCH_BROKER_URL=$(BENCH_BROKER_URL) $(PY) -m bench.run $(BENCH_ARGS)

bench-quick: install bench-vhost
	BENCH_BROKER_URL=$(BENCH_BROKER_URL) $(PY) -m bench.run --quick $(BENCH_ARGS)

# The orders bench on a private PostgreSQL that counts its statements (pg_stat_statements): var/bench/statements.md
bench-statements: install bench-vhost
	BENCH_BROKER_URL=$(BENCH_BROKER_URL) $(PY) -m bench.statements $(BENCH_ARGS)

chaos: install
	$(PY) -m bench.chaos --minutes $(CHAOS_MINUTES) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
