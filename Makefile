# The commands the README names. Everything runs from .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RAW_DIR := $(or $(MARKETING_ML_RAW_DIR),data/raw)
SAMPLE_AD_SETS ?= 60
SAMPLE_DAYS ?= 240
SAMPLE_SEED ?= 42
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: install dev-install run test test-fast dev app up check-raw sample-data lint dagster-home bench compose-test \
	spark-install spark-cluster-test calibrate

$(BIN)/dagster: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt --editable .
	touch $@

$(VENV)/.dev-installed: $(BIN)/dagster
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

$(VENV)/.spark-installed: $(BIN)/dagster
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[spark]'
	touch $@

install: $(BIN)/dagster

dev-install: $(VENV)/.dev-installed

spark-install: $(VENV)/.spark-installed

dagster-home:
	@mkdir -p "$(DAGSTER_HOME)"
	@test -f "$(DAGSTER_HOME)/dagster.yaml" || cp deploy/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

sample-data: install
	@if ls "$(RAW_DIR)"/*.csv >/dev/null 2>&1; then \
		echo "Using the CSVs in $(RAW_DIR)"; \
	else \
		$(BIN)/python -m marketing_ml.sample_data --out "$(RAW_DIR)" \
			--ad-sets $(SAMPLE_AD_SETS) --days $(SAMPLE_DAYS) --seed $(SAMPLE_SEED); \
	fi

# Dagster's full log goes to $(DAGSTER_HOME)/logs/run-<UTC time>.log; the terminal gets a summary.
run: install dagster-home sample-data
	$(BIN)/python scripts/run_summary.py

test: dev-install spark-install
	$(BIN)/python -m pytest

# Unit and integration tiers only (marketing_ml_tests/unit, /integration): no AppTest, browser,
# deploy or Spark; a couple of minutes. `make test` runs every tier.
test-fast: dev-install
	$(BIN)/python -m pytest -m "unit or integration"

dev: install dagster-home
	$(BIN)/dg dev -h 127.0.0.1 -p 3000

app: install
	$(BIN)/streamlit run app/serve.py --server.address 127.0.0.1 --server.port 8501

# The UI and the dashboard together; Ctrl-C stops both. UI_PORT, DASHBOARD_PORT choose the ports.
up: install dagster-home
	BIN=$(BIN) bash scripts/up.sh

check-raw: install
	$(BIN)/python -m marketing_ml.check_raw "$(RAW_DIR)"

lint: dev-install
	$(BIN)/ruff check marketing_ml marketing_ml_tests app planning serving_contract

# Whole graph, daily refresh and dashboard at three data scales; writes benchmarks/latest.json
# (ENGINE=spark: latest-spark.json) and BENCHMARKS.md from every engine's JSON there.
# SCALES=small,medium for a quick run; BENCH_ARGS for more of the bench's options (the package
# scripts/bench/; `.venv/bin/python -m scripts.bench --help` from the repository root), e.g.
# make bench ENGINE=spark SCALES=medium,medium2x,medium4x BENCH_ARGS=--cluster (the scaling run
# on a standalone cluster: latest-spark-cluster.json).
SCALES ?= small,medium,large
ENGINE ?= duckdb
BENCH_ARGS ?=
bench: dev-install $(if $(filter spark,$(ENGINE)),spark-install)
	$(BIN)/python -m scripts.bench --engine $(ENGINE) --scales $(SCALES) $(BENCH_ARGS)

# The budget plan against planted truth: every generator variant x seeds 1-3 at 50 ad sets x 240
# days, built by the real pipeline and scored; writes benchmarks/calibration.json and .md. A
# measurement, not a gate. CALIBRATE_ARGS for scripts/calibrate.py's options, e.g.
# CALIBRATE_ARGS='--variants baseline,level_step --seeds 1,2,3,4,5 --ad-sets 100';
# CALIBRATE_ARGS='--generator other' for marketing_ml/other_world.py (a world the plan never saw).
CALIBRATE_ARGS ?=
calibrate: install
	$(BIN)/python scripts/calibrate.py $(CALIBRATE_ARGS)

compose-test: install
	bash scripts/compose_test.sh

# The Spark engine on a standalone cluster (master + 2 workers on 127.0.0.1, from pyspark's own
# distribution; needs Java 17+) against DuckDB: both whole-graph runs, then their serving files
# compared table by table. Prints both runs' timings.
spark-cluster-test: spark-install
	bash scripts/spark_cluster_test.sh
