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

COMPOSE ?= docker compose
SERVICES := gateway authors realtime auth
VERSION ?= 0.1.0
# promtool from Debian's prometheus package, unpacked into .tools/ (no daemon installed):
# it checks deploy/prometheus/alerts.yml and runs its unit tests in `make test`.
PROMTOOL := $(TOOLS)/prometheus/usr/bin/promtool

.PHONY: help run test test-fast lint fmt bench contract chaos authors-long clean install up down images k8s-check compose-check alerts-check

help:
	@echo "make run    - the whole system in one process (gateway on http://127.0.0.1:8000)"
	@echo "make test   - the full test suite (real PostgreSQL/Redis/RabbitMQ when their URLs are set)"
	@echo "make lint   - ruff format --check, ruff check, mypy --strict"
	@echo "make fmt    - format and autofix"
	@echo "make bench  - gateway cost per proxied request (needs wrk); see bench/RESULTS.md"
	@echo "make contract - schemathesis over the gateway with a large example budget (tests/contract)"
	@echo "make chaos  - the fault suite at full length (tests/chaos); figures for bench/RESULTS.md"
	@echo "make authors-long - the authors properties (hypothesis) and schemathesis with large budgets"
	@echo "make up     - the split stack in Docker Compose (gateway :8000, Grafana :3000); make down"
	@echo "make images - one image per service from the Dockerfile (gatehouse-<service>:VERSION)"
	@echo "make k8s-check / compose-check / alerts-check - validate deploy/ offline"

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

test: $(STAMP) $(PROMTOOL)
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
	$(VENV)/bin/python bench/gateway_ws_memory.py

$(PROMTOOL):
	@# Where apt is missing or unreachable the alert tests skip with the reason (CI: fail).
	mkdir -p $(TOOLS)/debs
	-cd $(TOOLS)/debs && { apt-get download prometheus 2>/dev/null || \
		{ apt-get update -qq && apt-get download prometheus; }; } && \
		dpkg-deb -x $$(ls -t prometheus_*.deb | head -1) ../prometheus
	rm -rf $(TOOLS)/debs

alerts-check: $(STAMP) $(PROMTOOL)
	$(VENV)/bin/python -m pytest tests/deploy/test_observability.py -q $(PYTEST_ARGS)

# Secrets of the compose stack: generated once, kept in .env (0600, git-ignored).
.env:
	@umask 077; $(PYTHON) deploy/docker/generate_env.py docker-compose.yml > $@
	@echo "wrote .env with generated secrets (keep it: the volumes are initialised with them)"

up: .env
	$(COMPOSE) up --detach --build --wait

down:
	$(COMPOSE) down

images:
	for service in $(SERVICES); do \
		docker build --build-arg SERVICE=$$service --build-arg VERSION=$(VERSION) \
			--build-arg REVISION=$$(git rev-parse HEAD) -t gatehouse-$$service:$(VERSION) . || exit 1; \
	done

k8s-check: $(STAMP)
	$(VENV)/bin/python -m pytest tests/deploy/test_k8s.py -q $(PYTEST_ARGS)

compose-check: $(STAMP)
	$(VENV)/bin/python -m pytest tests/deploy/test_compose.py tests/deploy/test_dockerfile.py -q $(PYTEST_ARGS)

# The long versions of two suites whose short versions run inside `make test`.
contract: $(STAMP)
	GATEHOUSE_CONTRACT=full $(VENV)/bin/python -m pytest tests/contract $(PYTEST_ARGS)

# The authors properties and schemathesis run searching hard (make test runs a few examples).
authors-long: $(STAMP)
	GATEHOUSE_HYPOTHESIS_EXAMPLES=500 GATEHOUSE_SCHEMATHESIS_EXAMPLES=100 \
		GATEHOUSE_SCHEMATHESIS_PHASES=examples,coverage,fuzzing,stateful \
		$(VENV)/bin/python -m pytest services/authors/tests/test_text_properties.py \
		services/authors/tests/test_openapi_contract.py $(PYTEST_ARGS)

CHAOS_REPORT := $(CURDIR)/.data/chaos-report.jsonl
chaos: $(STAMP)
	@mkdir -p .data && rm -f $(CHAOS_REPORT)
	GATEHOUSE_CHAOS=full GATEHOUSE_CHAOS_REPORT=$(CHAOS_REPORT) \
		$(VENV)/bin/python -m pytest tests/chaos $(PYTEST_ARGS); status=$$?; \
		$(VENV)/bin/python -m tests.chaos.report $(CHAOS_REPORT); exit $$status

clean:
	rm -rf $(VENV) $(TOOLS) .data .mypy_cache .ruff_cache
