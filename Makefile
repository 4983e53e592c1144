# Gatehouse: every target bootstraps what it needs on a machine with only Python 3.11+.
# uv is installed with pip into .tools/ (no global installs); the workspace goes into .venv/.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: help run test test-fast lint fmt bench clean install

help:
	@echo "make run    - the whole system in one process (gateway on http://127.0.0.1:8000)"
	@echo "make test   - the full test suite (real PostgreSQL/Redis/RabbitMQ when their URLs are set)"
	@echo "make lint   - ruff format --check, ruff check, mypy --strict"
	@echo "make fmt    - format and autofix"
	@echo "make bench  - gateway cost per proxied request (needs wrk); see bench/RESULTS.md"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): $(UV) uv.lock pyproject.toml libs/*/pyproject.toml gateway/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP)

uv.lock: pyproject.toml libs/*/pyproject.toml gateway/pyproject.toml services/*/pyproject.toml | $(UV)
	$(UV) lock --python $(PYTHON)

run: $(STAMP)
	GATEHOUSE_LOG_JSON=$${GATEHOUSE_LOG_JSON:-false} $(VENV)/bin/gatehouse run all

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(VENV)/bin/python bench/gateway_overhead.py

clean:
	rm -rf $(VENV) $(TOOLS) .data .mypy_cache .ruff_cache
