# The two entry points the README promises: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,etcd]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kubeboot server --data-dir ./kubeboot-data

lint: $(STAMP)
	$(BIN)/ruff check src tests bench hack
	$(BIN)/ruff format --check src tests bench hack

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench.join_storm

clean:
	rm -rf $(VENV) kubeboot-data .mypy_cache .pytest_cache .ruff_cache
