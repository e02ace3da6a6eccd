# Sheaf: two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed from this repository's own pinned files; re-runs are no-ops.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
export SHEAF_CACHE ?= $(HOME)/.cache/sheaf
export PATH := $(CURDIR)/tools:$(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(CURDIR)/build/bin:$(PATH)
export GOFLAGS := -mod=readonly
export SHEAF_GNARK_BIN := $(CURDIR)/build/bin/sheaf-gnark

GNARK_SRC   := $(shell find gnark -name '*.go' 2>/dev/null) gnark/go.mod gnark/go.sum
PROTO_SRC   := $(shell find proto -name '*.proto' 2>/dev/null)
STAMP       := build/stamps

.PHONY: help setup test demo bench bench-tree64 lint fmt clean check-tools postgres lock-python
help:
	@echo "make demo   set up everything, then run the end-to-end job on local defaults"
	@echo "make test   set up everything, then run the whole test suite"
	@echo "make bench  set up, then run the benchmarks (tables + bench/results/*.json)"
	@echo "make bench-tree64  a real 64-leaf recursion-tree batch on anvil (K=4/F=4 keys: ~1.5 h cold setup, then ~40 min)"
	@echo "make lint   ruff, mypy, go vet, forge fmt --check"
	@echo "make setup  only install/build (idempotent)"

setup: check-tools postgres chromium $(STAMP)/venv $(STAMP)/npm $(STAMP)/proto $(STAMP)/client build/bin/sheaf-gnark $(STAMP)/srs
	@echo "setup: ok (cache: $(SHEAF_CACHE))"

check-tools:
	@tools/check-tools

# PostgreSQL server binaries for the PostgreSQL store's tests (installed with apt-get as root when
# missing; the tests start their own throwaway servers: aggregator/pg_local.py)
postgres:
	@tools/ensure-postgres

# Debian's chromium for the explorer's browser test (apt-get as root when missing; playwright-core
# from package.json drives it, nothing downloads a browser)
chromium:
	@tools/ensure-chromium

$(STAMP)/venv: requirements.lock pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
	@touch $@

$(STAMP)/npm: package.json package-lock.json
	@mkdir -p $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Generated at setup (not committed): protoc from grpcio-tools, so the code always matches proto/.
$(STAMP)/proto: $(PROTO_SRC) $(STAMP)/venv
	@mkdir -p $(STAMP)
	rm -rf sheaf/v1 && mkdir -p sheaf/v1
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --mypy_out=. --mypy_grpc_out=. $(PROTO_SRC)
	@touch $@

# The standalone Python client (client/, package sheaf-client): its gRPC code is generated from
# proto/ into client/src/sheaf_client/_pb/ (not committed), then it is installed into the venv
# (editable, no deps: grpcio/protobuf/pycryptodome are already pinned in requirements.lock).
CLIENT_SRC  := $(shell find client/src -name '*.py' -not -path '*/_pb/*' 2>/dev/null) client/pyproject.toml client/gen_pb.py
$(STAMP)/client: $(PROTO_SRC) $(CLIENT_SRC) $(STAMP)/venv
	@mkdir -p $(STAMP)
	$(PY) client/gen_pb.py
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e ./client
	@touch $@

build/bin/sheaf-gnark: $(GNARK_SRC)
	@mkdir -p build/bin
	cd gnark && go build -trimpath -o ../build/bin/sheaf-gnark ./cmd/sheaf-gnark

# INSECURE dev SRS for ezkl (known toxic waste); production passes a ceremony SRS path instead.
$(STAMP)/srs: $(STAMP)/venv
	$(PY) -m provers.srs ensure
	@touch $@

test: setup
	tools/run-tests

demo: setup
	$(PY) -m demo

bench: setup
	$(PY) -m bench

bench-tree64: setup
	$(PY) -m bench.recursion_tree_64 --setup

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file client/pyproject.toml client/src
	cd gnark && go vet ./...
	forge fmt --check

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	cd gnark && gofmt -w .
	forge fmt

lock-python:
	$(PY) -m pip freeze --exclude-editable > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf build sheaf/v1 client/src/sheaf_client/_pb .pytest_cache .mypy_cache .ruff_cache
