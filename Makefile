# eventops: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# jsii (under the CDK) prints a banner on every start that Node 20 is end-of-life; harmless.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: demo serve worker test test-fast lint typecheck checks synth bench clean help

help:
	@echo "make demo       run the dashboard on the local emulator with live demo traffic (127.0.0.1:8000)"
	@echo "make test       install dev dependencies, lint, type-check, check and run every test"
	@echo "make test-fast  the same without the slow end-to-end and browser tests"
	@echo "make serve      web server + Celery worker against the AWS your environment points at"
	@echo "make synth      synthesize the CDK app into infra/cdk.out/ and cfn-lint it"
	@echo "make bench      run the benchmarks under bench/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Reinstall only when pyproject.toml changes.
$(VENV)/.installed-demo: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[devstack]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev,infra]'
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PY=$(PY) scripts/demo.sh

serve: $(VENV)/.installed-demo
	$(PY) manage.py migrate --noinput
	PY=$(PY) NO_DEVSTACK=1 scripts/demo.sh

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy dashboard operations infra

checks: $(VENV)/.installed-dev
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

test: lint typecheck checks
	$(PY) -m pytest

test-fast: lint typecheck checks
	$(PY) -m pytest -m "not slow"

synth: $(VENV)/.installed-dev
	$(PY) -m infra.app
	$(VENV)/bin/cfn-lint infra/cdk.out/*.template.json

bench: $(VENV)/.installed-dev
	$(PY) bench/overview.py
	$(PY) bench/redrive.py
	$(PY) bench/trace.py

clean:
	rm -rf var infra/cdk.out .pytest_cache .mypy_cache .ruff_cache
