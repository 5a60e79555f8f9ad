# Đoàn viên số: developer and operator commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DOANVIEN_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project/profiles
SCALE ?= small
SEED ?= 42
PORT ?= 8501

.PHONY: help install demo data pipeline serve dagster-home test test-fast bench lock clean browser-deps

help: ## list the commands
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/doanvien: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@# PYTHONDONTWRITEBYTECODE may be set: compile once here so dbt/Dagster/GX never pay for it again.
	$(BIN)/python -m compileall -q -j 2 $(VENV)/lib > /dev/null || true
	@touch $(BIN)/doanvien

install: $(BIN)/doanvien ## create the virtual environment and install pinned dependencies

dagster-home:
	@mkdir -p $(DAGSTER_HOME) && cp -n pipelines/dagster_instance.yaml $(DAGSTER_HOME)/dagster.yaml 2>/dev/null || true

data: install ## generate the sample data set (SCALE=small by default) into the data root
	$(BIN)/doanvien generate --scale $(SCALE) --seed $(SEED) --out $(DOANVIEN_DATA_DIR)

pipeline: install dagster-home ## run the whole monthly pipeline (ingest, dbt build, publish) in-process
	$(BIN)/doanvien refresh

serve: install dagster-home ## serve the Streamlit app on localhost:$(PORT) (and the Dagster UI on :3000)
	@($(BIN)/dagster dev -m pipelines.definitions -p 3000 > $(DOANVIEN_DATA_DIR)/dagster.log 2>&1 &) ; \
	echo "Dagster UI:     http://localhost:3000  (log: $(DOANVIEN_DATA_DIR)/dagster.log)"
	@echo "Ứng dụng / app: http://localhost:$(PORT)   (đăng nhập / login: see README, 'Demo accounts')"
	$(BIN)/streamlit run dashboards/streamlit_app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false --client.toolbarMode minimal

demo: install dagster-home ## install, generate the small data set, run the pipeline into DuckDB, serve the app
	@if [ ! -f $(DOANVIEN_DATA_DIR)/ground_truth/members.parquet ]; then $(MAKE) --no-print-directory data; fi
	$(BIN)/doanvien refresh
	$(BIN)/doanvien users demo-accounts
	$(MAKE) --no-print-directory serve

browser-deps: ## install headless Chromium from Debian's packages (for the browser tests)
	@command -v chromium > /dev/null && command -v chromedriver > /dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null)

test: install browser-deps dagster-home ## run the whole test suite (under 15 minutes)
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout 900 -n 2 --dist loadgroup tests

test-fast: install dagster-home ## unit tests only (no warehouse builds, no browser)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow and not browser" tests

bench: install ## measure the monthly cycle against DuckDB's floor (SCALE=small|national)
	$(BIN)/python -m bench.run --scale $(SCALE) --seed $(SEED)

lock: ## re-resolve requirements.in into requirements.lock (exact versions, no addresses)
	$(PYTHON) -m venv /tmp/doanvien-lock && /tmp/doanvien-lock/bin/pip install -q -r requirements.in && \
	  /tmp/doanvien-lock/bin/pip freeze --exclude-editable > requirements.lock

clean: ## remove generated data and builds (keeps data/reference)
	find data -mindepth 1 -maxdepth 1 ! -name reference ! -name README.md -exec rm -rf {} +
