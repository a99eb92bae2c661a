# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA_DIR := $(or $(PERSONAHUB_DATA_DIR),data)
export DAGSTER_HOME ?= $(abspath $(DATA_DIR))/dagster
# llama-cpp-python builds from source; use both cores.
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install demo update rebuild retract test check ui report lint clean screenshots

# Every install goes through constraints.txt, which holds the torch pin (the `vllm` extra
# resolves against it too).
PIP_INSTALL := $(BIN)/python -m pip install --quiet -c constraints.txt
# The CPU build of torch first, so that nothing below pulls a CUDA build from the registry.
TORCH_SPEC ?= torch

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_INSTALL) '$(TORCH_SPEC)'
	$(PIP_INSTALL) -e '.[dev,embeddings,cluster]'
	# Distil the static persona embedding model once (offline, from the packaged MiniLM).
	HF_HUB_OFFLINE=1 TQDM_DISABLE=1 $(BIN)/python -m personahub_assets.cli.distill
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m personahub_assets.demo

# Register what is new in data/incoming/ and let automation carry it to the exports.
# SELECT=asset[,asset] stops at those assets (and everything upstream of them).
update: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m personahub_assets.update $(if $(SELECT),--select $(SELECT))

# A warehouse from an older version: set it aside, then ingest everything again as batches.
# The response cache stays, so no finished model call is repeated.
rebuild: install $(DAGSTER_HOME)/dagster.yaml
	test ! -e $(DATA_DIR)/warehouse.duckdb || mv $(DATA_DIR)/warehouse.duckdb \
		$(DATA_DIR)/warehouse.duckdb.old-$$(date +%Y%m%d%H%M%S)
	rm -rf $(DATA_DIR)/exports
	$(BIN)/python -m personahub_assets.update

# Take a batch back out: every row and export derived from it goes; the hub is replayed.
retract: install $(DAGSTER_HOME)/dagster.yaml
	@test -n "$(BATCH)" || (echo "usage: make retract BATCH=<batch key>" && exit 2)
	$(BIN)/python -m personahub_assets.retract --batch $(BATCH)

# The whole suite (CI). `make check` is the inner loop: only the tests that carry none of the
# tier markers of pyproject.toml (slow, cluster, browser, model), in under 3 minutes.
# Both run on TEST_WORKERS pytest-xdist workers, a test file per worker (servers, module
# fixtures and data folders stay within one process); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: install
	$(PYTEST)

check: install
	$(PYTEST) -m "not slow and not cluster and not browser and not model"

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

report: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m personahub_assets.report

# The README's pictures: a seeded instance, the real webserver, headless Chromium.
screenshots: install
	PERSONAHUB_SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest -q personahub_assets_tests/test_ui_browser.py

lint: install
	$(BIN)/ruff check personahub_assets personahub_assets_tests benchmarks

clean:
	rm -rf $(DATA_DIR)/warehouse.duckdb* $(DATA_DIR)/llm_cache.duckdb* $(DATA_DIR)/exports \
		$(DATA_DIR)/dagster
