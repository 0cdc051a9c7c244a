# The README's two commands are `make demo` and `make test`; every other target is a step of theirs
# or an operator convenience. Both do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV        ?= .venv
SAM_VENV    ?= .venv-sam
AWS_VENV    ?= .venv-aws
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
SAM         := $(SAM_VENV)/bin/sam
TORCH_PINS  := torch==2.14.1 torchvision==0.29.1
SAM_CLI_PIN := aws-sam-cli==1.170.0
AWS_CLI_PIN := awscli==1.46.2

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# sam build for the python3.12 Lambda runtime needs both interpreters visible to pyenv.
export PYENV_VERSION := 3.11.7:3.12.1
# The AWS CLI the tests drive against the local cloud's exports (tests/support/aws_cli.py reads it).
export DOGBREED_AWS_CLI := $(abspath $(AWS_VENV))/bin/aws
# pytest-xdist worker processes. The work groups of tests/conftest.py keep the shared-cloud tests in one
# worker and the whole-pipeline and training tests in one lane each; every other module runs in one
# worker. Three workers on 2 cores: one lane of each kind, and the local cloud's waits (bakes, alarm
# periods) overlap with the other lanes' work. `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 3

.PHONY: help install sam-install aws-cli-install lint validate security audit build test demo bench lock clean openapi reliability

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

# The shared layer's requirements as wheels for the Lambda runtime (CPython 3.12, x86_64), so the test
# that runs `sam build` resolves them offline (PIP_NO_INDEX with this folder as PIP_FIND_LINKS).
LAMBDA_WHEELS := $(SAM_VENV)/lambda-wheels
$(LAMBDA_WHEELS)/.downloaded: functions/shared/requirements.txt $(SAM_VENV)/.installed
	rm -rf $(LAMBDA_WHEELS)
	$(SAM_VENV)/bin/pip download --quiet --only-binary=:all: --implementation cp --python-version 3.12 \
		--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
		-r functions/shared/requirements.txt -d $(LAMBDA_WHEELS)
	touch $@

sam-install: $(SAM_VENV)/.installed $(LAMBDA_WHEELS)/.downloaded

# The AWS CLI (v1, from PyPI) pins its own botocore, so it too has an environment of its own.
$(AWS_VENV)/.installed:
	test -x $(AWS_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(AWS_VENV)
	$(AWS_VENV)/bin/pip install --quiet $(AWS_CLI_PIN)
	touch $@

aws-cli-install: $(AWS_VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

validate: sam-install
	$(SAM) validate --lint --template template.yaml

# docs/openapi.json from the predict_api resolver (placeholder settings: only the routes matter).
openapi: install
	ENDPOINT_NAME=openapi RESULTS_BUCKET=openapi-docs PREDICTIONS_TABLE=openapi IDEMPOTENCY_TABLE=openapi \
	AWS_DEFAULT_REGION=us-east-1 POWERTOOLS_TRACE_DISABLED=true PYTHONPATH=functions:functions/shared \
	$(PY) -c 'from predict_api.app import openapi_document; open("docs/openapi.json", "w").write(openapi_document() + "\n")'

build: sam-install
	$(SAM) build --template template.yaml

# bandit over the product code (settings in pyproject.toml).
security: install
	$(VENV)/bin/bandit -c pyproject.toml -r src functions training_job -q

# pip-audit over exactly the pinned set (docs/security.md). Not part of make test: it needs pip-audit's
# vulnerability service, and it fails (--strict) whenever a pin could not be audited, so it never
# passes without having audited everything.
audit: install
	$(VENV)/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r constraints.txt

# The full-size scenarios (marker `reliability`) are make reliability's; make test runs a smaller test
# of each of their capabilities (pytest reports them as deselected).
test: install sam-install aws-cli-install lint validate security
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) -m "not reliability"

# sam-install too: the README's `sam build` / `sam deploy` use .venv-sam after either target.
demo: install sam-install
	$(VENV)/bin/dogbreed local demo

# The full-size reliability suites (make test runs each of them small, fuzzing on fixed seeds): the
# hostile-input corpus, every fault scenario, the load test (2,000 API requests at concurrency 32 plus
# 500 dropped images), fuzzing on fresh seeds for 300 s and the full endpoint benchmark. -s shows the
# corpus, fault, load, fuzzing and benchmark tables. Then the other full-size scenarios (marker
# `reliability`): the serverless whole-pipeline run, the SM_HOSTS launch of the DDP job.
reliability: install sam-install aws-cli-install
	DOGBREED_RELIABILITY=full DOGBREED_FUZZ_SECONDS=300 $(VENV)/bin/pytest -s \
		tests/reliability tests/security/test_fuzz_inputs.py tests/integration/test_bench_endpoint.py
	$(VENV)/bin/pytest -s -m reliability --ignore=tests/reliability

# Pin every transitive dependency of the current environment (torch's CUDA wheels excluded:
# they follow from the torch pin).
lock: install
	$(PIP) freeze --exclude-editable | grep -viE '^(nvidia|cuda|triton)' > constraints.txt

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache build dist
