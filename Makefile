# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Local runs default to debug mode (a throwaway secret key); production sets DJANGO_DEBUG=0.
export DJANGO_DEBUG ?= 1
BIND ?= 127.0.0.1:8000

.PHONY: run test setup install migrate seed messages lint format bench bench-10x chaos clean

run: setup seed
	@echo "Serving http://$(BIND)  (API docs: http://$(BIND)/api/v1/docs/, health: http://$(BIND)/healthz)"
	@echo "Database: $${DATABASE_URL:-embedded SQLite in var/}   Broker: $${CELERY_BROKER_URL:-embedded filesystem broker in var/broker}"
	@echo "The demo regulator signs in with a code too: scan the QR code on http://$(BIND)/login/ (debug mode), or print the current one: $(PY) manage.py demo_totp_code"
	@echo "Ctrl-C stops the web server, the worker and beat."
	$(PY) manage.py runplatform --bind $(BIND)

# The suite runs in TEST_WORKERS processes (pytest-xdist), each on a test database of its own
# (pytest-django names them test_<name>_gw0, _gw1, ...), a file at a time: a module's fixtures (the
# demo of tests/test_seed_demo.py) are set up once. What one file leaves in its process must not
# reach the next: tests/conftest.py puts Celery's current app and join flag back before each test.
# TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

setup: install var/local.env messages migrate
	@$(PY) manage.py collectstatic --noinput -v0

# This checkout's own debug switch and secret key, so that README's `manage.py` commands run as
# written (config/env.py reads it under the environment; images never have it). Written once.
var/local.env:
	@mkdir -p var
	@$(PYTHON) -c 'import secrets; print("DJANGO_DEBUG=1\nDJANGO_SECRET_KEY=django-insecure-" + secrets.token_urlsafe(40))' > $@
	@echo "wrote $@ (this checkout's debug mode and secret key; never used in production)"

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

messages:
	@if command -v msgfmt >/dev/null; then $(PY) manage.py compilemessages -v0 --ignore '.venv'; \
	 else echo "msgfmt not found: using the committed compiled messages"; fi

migrate:
	$(PY) manage.py migrate --noinput -v1

# Loads the demo data into an empty database (once: run again, seed_demo finds it and does nothing)
# and prints the demo logins of each role.
seed:
	@$(PY) manage.py seed_demo

# ruff everywhere; mypy (with django-stubs) on the services and selectors, as pyproject.toml lists.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks need PostgreSQL on 127.0.0.1:5432; each creates and drops its own database. Every one
# runs even if another fails; then bench/report.py writes bench/results.json and the table of
# bench/README.md (a result older than this run is marked stale), and the target fails if any did.
# BENCH_ARGS="--quick" makes a smoke run: flow.py and workload.py have no --quick, they get
# FLOW_ARGS and WORKLOAD_ARGS instead (short runs).
BENCHMARKS := ledger settlement risk flow $(if $(wildcard bench/workload.py),workload) notify export verify hotrow
QUICK := $(findstring --quick,$(BENCH_ARGS))
FLOW_ARGS ?= $(if $(QUICK),--clients 8 --seconds 3)
WORKLOAD_ARGS ?= $(if $(QUICK),--seconds 5)
# The risk model's evaluation (bench/README.md, "The risk model, measured"): small sizes here;
# its throwaway database is made next to DATABASE_URL's (PostgreSQL on 127.0.0.1:5432 if unset).
RISK_EVAL_ARGS ?= $(if $(QUICK),--merchants-per-archetype 1 --days 80 --warmup 40,--merchants-per-archetype 2 --days 120 --warmup 50)
bench: install
	@started=$$(date +%s); failed=""; \
	for name in $(BENCHMARKS); do \
	  case $$name in flow) args='$(FLOW_ARGS)';; workload) args='$(WORKLOAD_ARGS)';; *) args='$(BENCH_ARGS)';; esac; \
	  echo "== $(PY) bench/$$name.py $$args"; \
	  $(PY) bench/$$name.py $$args || failed="$$failed $$name"; \
	done; \
	echo "== $(PY) manage.py evaluate_risk $(RISK_EVAL_ARGS)"; \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} \
	  $(PY) manage.py evaluate_risk $(RISK_EVAL_ARGS) || failed="$$failed evaluate_risk"; \
	$(PY) bench/report.py --since $$started $(if $(QUICK),--quick) || failed="$$failed report"; \
	if [ -n "$$failed" ]; then echo "benchmarks failed:$$failed"; exit 1; fi

# Issue 20's scale: the settlement, risk and verification benchmarks at SCALE times the default
# data (10: 100,000 merchants, 50 M postings), one after the other; results in
# bench/out/<name>-<SCALE>x.json, rows of their own in the table (report.py --merge keeps the
# other rows). Each database is dropped before the next starts; at 10 the settlement's held 8.5 GB of
# journal and postings alone. Hours on 2 CPUs (bench/README.md, "At 10x"). All three run even if one fails.
SCALE ?= 10
SCALED_BENCHMARKS := settlement risk verify
bench-10x: install
	@failed=""; \
	for name in $(SCALED_BENCHMARKS); do \
	  echo "== $(PY) bench/$$name.py --scale $(SCALE) $(BENCH_ARGS)"; uptime; \
	  $(PY) bench/$$name.py --scale $(SCALE) $(BENCH_ARGS) || failed="$$failed $$name"; \
	done; \
	$(PY) bench/report.py --merge || failed="$$failed report"; \
	if [ -n "$$failed" ]; then echo "benchmarks failed:$$failed"; exit 1; fi

# The chaos "bank test" run long (tests/chaos/; `make test` runs it for 45 s). Needs PostgreSQL:
# DATABASE_URL=postgres://... make chaos [CHAOS_SECONDS=600] [CHAOS_SEED=...]
CHAOS_SECONDS ?= 600
chaos: setup
	CHAOS_SECONDS=$(CHAOS_SECONDS) REQUIRE_POSTGRES=1 $(PY) -m pytest tests/chaos/test_chaos.py -s $(PYTEST_ARGS)

clean:
	rm -rf var staticfiles .pytest_cache
