# Every target in one line each: `make help`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# jsii prints a large end-of-life banner for Node 20 on every synth; Node 22+ is recommended.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CHECKPOINT_DISABLE := 1

.PHONY: help setup layer synth validate scan test lint clean bench drill deploy-local destroy-local plan preflight

# KEEP=1: deploy-local leaves the deployment and the emulator running; destroy-local leaves the emulator running.
KEEP ?=
# TARGET=aws: make plan against your AWS account (your credentials) instead of the local emulator.
# TARGET=deployed: make drill against the deployment `make deploy-local KEEP=1` left running.
TARGET ?= emulator
keep_flag = $(if $(filter 1 yes true,$(KEEP)),--keep)

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt lambdas/requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed ## Install pinned Python deps (.venv) and the cdktf CLI (node_modules); idempotent

layer: setup ## Build the Powertools Lambda layer into build/powertools-layer (pip, PyPI); skipped when up to date
	$(PY) -m tools.package layer

synth: setup layer ## Synthesize every stack into cdktf.out
	$(PY) main.py

validate: synth ## terraform init -backend=false + validate in every stack (offline with a provider mirror)
	$(PY) -m tools.terraform validate

scan: synth ## checkov over every stack with policies/ and the reviewed suppressions; reports in reports/
	$(PY) -m tools.scan

lint: setup ## ruff over the whole repository
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint layer ## The whole test suite (what CI runs): lint, pytest, then the policy scan
	$(PY) -m pytest
	$(MAKE) --no-print-directory scan

drill: setup layer ## DR drill: both regions' real handlers, faults injected; table, reports/drill.json, reports/drill/*.html (TARGET=deployed: on the kept deployment, each function with its role; reports/drill/iam.md)
	$(PY) -m tools.drill $(if $(filter deployed,$(TARGET)),--target deployed)

deploy-local: synth ## Deploy every stack to a local AWS emulator (moto), print the outputs, destroy; KEEP=1 keeps it all running
	$(PY) -m tools.deploy deploy-local $(keep_flag)

destroy-local: setup ## Destroy the kept local deployment in reverse order, check nothing is left, stop the emulator (KEEP=1: leave it up)
	$(PY) -m tools.deploy destroy-local $(keep_flag)

plan: synth ## Plan every stack against the kept emulator (TARGET=aws: your account); review reports/plan/summary.md
	$(PY) -m tools.deploy plan --target $(TARGET)

preflight: setup ## Before a first apply in a real account (your credentials): concurrency quota, state bucket, delegation, zone IDs, API Gateway logging role
	$(PY) -m tools.preflight

bench: layer ## Benchmarks: synth vs floor, validate/scan times, Lambda cold import + warm CPU, RTO/RPO, DR drill time (reports/bench.json)
	$(PY) benchmarks/bench.py

clean: ## Remove generated output (cdktf.out, reports, staged Lambda code); keeps .venv, node_modules, the layer
	rm -rf cdktf.out reports .pytest_cache build/lambda
