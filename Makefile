# The README's two commands are `make demo` and `make test`; every other target is a step of theirs
# or an operator convenience. Both do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV        ?= .venv
SAM_VENV    ?= .venv-sam
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
SAM         := $(SAM_VENV)/bin/sam
TORCH_PINS  := torch==2.14.1 torchvision==0.29.1
SAM_CLI_PIN := aws-sam-cli==1.170.0

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# sam build for the python3.12 Lambda runtime needs both interpreters visible to pyenv.
export PYENV_VERSION := 3.11.7:3.12.1

.PHONY: help install sam-install lint validate security build test demo bench lock clean openapi reliability

help:
	@echo "make demo   run the whole pipeline locally (sets everything up first)"
	@echo "make test   lint, validate the template and run every test (sets everything up first)"

# The virtual environment is reused while pyproject.toml and constraints.txt are unchanged.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==25.3
	$(PIP) install --quiet $(TORCH_PINS)
	$(PIP) install --quiet -c constraints.txt -e '.[dev,deploy]'
	touch $@

install: $(VENV)/.installed

# aws-sam-cli pins its own boto3/pydantic, so it lives in a virtual environment of its own.
$(SAM_VENV)/.installed:
	test -x $(SAM_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet $(SAM_CLI_PIN)
	touch $@

sam-install: $(SAM_VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

validate: sam-install
	$(SAM) validate --lint --template template.yaml

# docs/openapi.json from the predict_api resolver (placeholder settings: only the routes matter).
openapi: install
	ENDPOINT_NAME=openapi RESULTS_BUCKET=openapi-docs PREDICTIONS_TABLE=openapi IDEMPOTENCY_TABLE=openapi \
	AWS_DEFAULT_REGION=us-east-1 POWERTOOLS_TRACE_DISABLED=true PYTHONPATH=functions:training_job \
	$(PY) -c 'from predict_api.app import openapi_document; open("docs/openapi.json", "w").write(openapi_document() + "\n")'

build: sam-install
	$(SAM) build --template template.yaml

# bandit over the product code (settings in pyproject.toml). functions/request_guards and
# functions/dataset_check are symlinks into training_job/: bandit does not follow them, so each file is
# scanned once, under training_job/. Then the dependency audit (docs/security.md): it fails on
# known-exploited pins; where pip-audit's service cannot answer it says so and passes on the offline check.
security: install
	$(VENV)/bin/bandit -c pyproject.toml -r src functions training_job -q
	$(PY) -m dogbreed.security.dependency_audit --allow-unreachable

test: install sam-install lint validate security
	$(VENV)/bin/pytest

demo: install
	$(VENV)/bin/dogbreed local demo

# The full-size reliability suites (make test runs each of them small): the hostile-input corpus,
# every fault scenario, the load test (2,000 API requests at concurrency 32 plus 500 dropped images)
# and a longer fuzzing budget. -s shows the corpus, fault and load tables.
reliability: install
	DOGBREED_RELIABILITY=full DOGBREED_FUZZ_SECONDS=300 $(VENV)/bin/pytest -s tests/reliability tests/security/test_fuzz_inputs.py

# Pin every transitive dependency of the current environment (torch's CUDA wheels excluded:
# they follow from the torch pin).
lock: install
	$(PIP) freeze --exclude-editable | grep -viE '^(nvidia|cuda|triton)' > constraints.txt

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache build dist
