# eventops: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# jsii (under the CDK) prints a banner on every start that Node 20 is end-of-life; harmless.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: demo serve worker test test-fast test-clock-ahead lint typecheck checks lock lock-check synth bench soak clean help screenshots

help:
	@echo "make demo       run the dashboard on the local emulator with live demo traffic (127.0.0.1:8000)"
	@echo "make test       install dev dependencies, lint, type-check, check and run every test"
	@echo "make test-fast  the same without the slow end-to-end and browser tests"
	@echo "make test-clock-ahead  the unit tests with the clock 60 days ahead"
	@echo "make serve      web server + Celery worker and beat against the AWS your environment points at"
	@echo "make synth      synthesize the CDK app into infra/cdk.out/ and cfn-lint it"
	@echo "make bench      run the benchmarks under bench/"
	@echo "make soak       run the devstack for 10 minutes: memory and order rate each minute"
	@echo "make screenshots  save every page of a running demo at 1440 and 390 px, light and dark, in var/screenshots/"
	@echo "make lock       regenerate requirements/*.txt from pyproject.toml (UPGRADE=pkg to upgrade one)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Everything comes from the lock files (exact versions, hashes checked); the project itself
# is installed without dependencies and with the locked build backend. Reinstall only when a
# lock changes. requirements/README.md says how to upgrade a package.
define install_lock
	$(PIP) install --quiet --require-hashes --no-deps -r $(1)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
endef

$(VENV)/.installed-demo: requirements/demo.txt | $(PY)
	$(call install_lock,requirements/demo.txt)
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt | $(PY)
	$(call install_lock,requirements/dev.txt)
	touch $@ $(VENV)/.installed-demo

lock: $(VENV)/.installed-dev
	scripts/lock.sh

lock-check: $(VENV)/.installed-dev
	scripts/lock.sh --check

# The demo is local development: DEBUG on unless set (settings.py leaves it off).
demo: export DEBUG := $(or $(DEBUG),true)
demo: $(VENV)/.installed-demo
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PY=$(PY) scripts/demo.sh

serve: $(VENV)/.installed-demo
	$(PY) manage.py migrate --noinput
	PY=$(PY) NO_DEVSTACK=1 scripts/demo.sh

# From a running `make demo` (EVENTOPS_URL, EVENTOPS_USER, EVENTOPS_PASSWORD; see the script).
screenshots: $(VENV)/.installed-dev
	$(PY) scripts/screenshots.py

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Development tooling loads the settings: DEBUG on unless set (no SECRET_KEY needed).
typecheck: export DEBUG := $(or $(DEBUG),true)
typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy dashboard operations infra

# Development tooling loads the settings: DEBUG on unless set (no SECRET_KEY needed).
checks: export DEBUG := $(or $(DEBUG),true)
checks: $(VENV)/.installed-dev
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

test: lock-check lint typecheck checks
	$(PY) -m pytest

test-fast: lint typecheck checks
	$(PY) -m pytest -m "not slow"

# The unit tests with the clock 60 days ahead (tests/conftest.py starts time-machine before
# the first test): a test that works only near the day it was written fails here. CI runs it
# after make test.
CLOCK_AHEAD_DAYS ?= 60
test-clock-ahead: $(VENV)/.installed-dev
	EVENTOPS_TEST_CLOCK_AHEAD_DAYS=$(CLOCK_AHEAD_DAYS) $(PY) -m pytest \
	  -m "not slow and not browser and not integration" -p no:cacheprovider -q

synth: $(VENV)/.installed-dev
	$(PY) -m infra.app
	$(VENV)/bin/cfn-lint infra/cdk.out/*.template.json

# Development tooling loads the settings: DEBUG on unless set (no SECRET_KEY needed).
bench: export DEBUG := $(or $(DEBUG),true)
bench: $(VENV)/.installed-dev
	$(PY) bench/overview.py
	$(PY) bench/redrive.py
	$(PY) bench/redrive_fifo.py
	$(PY) bench/trace.py
	$(PY) bench/masking.py

# Development tooling loads the settings: DEBUG on unless set (no SECRET_KEY needed).
soak: export DEBUG := $(or $(DEBUG),true)
soak: $(VENV)/.installed-demo
	$(PY) bench/devstack_soak.py --minutes 10 --rate 2

clean:
	rm -rf var infra/cdk.out .pytest_cache .mypy_cache .ruff_cache
