# The two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint typecheck fmt clean install lock bench bench-swap bench-scale bench-wide bench-ab soak

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Through constraints.txt: the versions `make test` passed on (docs/development.md).
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(TEST_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)

## make lock: resolve pyproject.toml's ranges afresh (every extra) in a scratch venv and pin what
## it installed in constraints.txt; then `make test` and the benchmarks on the new versions.
LOCK_VENV := $(VENV)-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[test,dask,s3]'
	{ grep '^#' constraints.txt; $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

## make run: Redis, Celery worker + beat, candidate, ranker, gateway, UI; trains the first model.
run: $(STAMP)
	$(BIN)/recsys up

## make test: lint, format check, types, then the whole pytest suite (starts its own servers);
## of tests/research only the smoke runs (`pytest -m research tests/research`: the rest).
test: $(TEST_STAMP) lint typecheck
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# research/ is left out: experiments, not product code (research/README.md).
typecheck: $(TEST_STAMP)
	$(BIN)/mypy shared services ui tests benchmarks

fmt: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make bench: /recommend on the whole `make run` stack (UI, worker, beat included) vs an in-process
## and a trivial-endpoint floor, 50-400 req/s, 5 runs per rate, CPU per request per process, on
## an Online Retail model trained through the queue (10-15 minutes).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_serve

## make soak: the `make run` stack at 150 req/s for SOAK_MINUTES (30) with a retrain every 5 min,
## a ranker kill and a Redis restart; errors, degraded answers, latency and RSS per minute, a plot.
SOAK_MINUTES ?= 30
soak: $(STAMP)
	$(BIN)/python -m benchmarks.bench_soak --minutes $(SOAK_MINUTES)

## make bench-swap: publish 10 model versions under 100 req/s; failures, mixed versions, swap delay.
bench-swap: $(STAMP)
	$(BIN)/python -m benchmarks.bench_swap

## make bench-scale: exact vs HNSW candidate k-NN on 100k and 1M synthetic items (minutes).
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.bench_scale

## make bench-wide VERSION_DIR=store/v1: stage one on a trained version padded to 1M products,
## scores per reached item vs arrays over the catalog, in process (a few minutes); ARGS=--stack:
## end to end on the make-run stack against Online Retail at 100 req/s (~10 minutes).
bench-wide: $(STAMP)
	$(BIN)/python -m benchmarks.bench_wide --version-dir $(VERSION_DIR) $(ARGS)

## make bench-ab: simulated shoppers with hidden tastes (the synthetic generator's) drive an A/B
## between a good and a deliberately weak version through the HTTP API until a verdict (own stack).
bench-ab: $(STAMP)
	$(BIN)/python -m benchmarks.simulator

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
