PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Extras for `make test`: dev, or dev,local-embeddings to run the local embedding tests too (install PyTorch
# first: $(BIN)/pip install -r requirements/torch.txt).
EXTRAS ?= dev
# Test processes for `make test`: one per core (`logical`), or a number (0: all in one process).
TEST_WORKERS ?= logical
# Every install comes from a lock: each package pinned, with the hashes of its files (see requirements/).
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/$(if $(findstring local-embeddings,$(EXTRAS)),dev-embeddings,dev).txt
LOCK_TOOLS := $(VENV)/.lock-tools
INSTALL := $(BIN)/pip install --quiet --require-hashes
# Hutch itself, without a dependency or a build backend that the lock did not bring.
INSTALL_HUTCH := $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .

.PHONY: run test lint typecheck bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(INSTALL) -r $(RUNTIME_LOCK)
	$(INSTALL_HUTCH)
	touch $@

$(DEV_STAMP): $(DEV_LOCK) $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
ifneq (,$(findstring local-embeddings,$(EXTRAS)))
	@$(BIN)/python -c "import torch" 2>/dev/null || { echo "The local-embeddings extra needs PyTorch, \
	which the lock leaves out: $(BIN)/pip install -r requirements/torch.txt first."; exit 1; }
endif
	$(INSTALL) -r $(DEV_LOCK)
	$(INSTALL_HUTCH)
	touch $@ $(STAMP)

## Start Hutch on http://127.0.0.1:8000 (embedded PostgreSQL unless HUTCH_DATABASE_URL is set).
run: $(STAMP)
	$(BIN)/hutch serve

## Run the whole test suite.
test: $(DEV_STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python bench/run_all.py

$(LOCK_TOOLS)/bin/uv: requirements/tools.txt
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet --require-hashes -r requirements/tools.txt
	touch $@

## Write the lock files again after a change to pyproject.toml (UPGRADE=1: newest allowed releases).
lock: $(LOCK_TOOLS)/bin/uv
	$(PYTHON) requirements/lock.py --uv $(LOCK_TOOLS)/bin/uv $(if $(UPGRADE),--upgrade)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
