# shardvault: every entry point does its own set-up on a fresh machine.
#   make demo   virtual environment, install, then server + 3 co-signers + hardhat:
#               an approved MPC transfer end to end (src/shardvault/demo.py)
#   make test   the same set-up, then the whole test suite
#   make lint   ruff (lint and format), mypy strict, import-layer contracts
#   make bench  the benchmark scripts under bench/
#   make bench-peers  installs the peer threshold-signature libraries (bench/peers/, npm)
#               and times them; not needed by the tests

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint format bench bench-peers clean system-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages and npm tools that the tests use (SoftHSM2, libsecp256k1 for
# python-bitcointx, hardhat 2 and bitcoinjs-lib). Idempotent; needs root for apt.
system-deps:
	bash scripts/system-deps.sh

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

# hardhat (npm) is the demo's local chain.
demo: $(STAMP) node_modules/.installed
	$(PY) -m shardvault.demo

test: $(STAMP) system-deps node_modules/.installed
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# The peers install into bench/peers/node_modules from bench/peers/package.json (pinned),
# never into the root package.json: the tests do not need them. Each script prints its
# table and writes bench/peers/results/; libsecp256k1 then checks every signature again.
bench-peers: $(STAMP)
	npm install --prefix bench/peers --no-audit --no-fund --loglevel=error
	cd bench/peers && for s in frost dkls bitgo; do echo "== bench/peers/$$s.mjs"; node $$s.mjs || exit 1; done
	$(PY) bench/peers/check_signatures.py bench/peers/results/frost-signatures.json \
	  bench/peers/results/dkls-signatures.json bench/peers/results/bitgo-signatures.json

clean:
	rm -rf $(VENV) node_modules bench/peers/node_modules build *.egg-info .pytest_cache .mypy_cache .ruff_cache
