"""The ML assets' two measures on the DuckDB lakehouse a whole graph built: the feature SQL at
twice the days (nothing quadratic), and the training budget against the previous one (what the
faster training costs in model quality)."""

import json
import statistics
import sys
import time
from pathlib import Path

import duckdb

from marketing_ml.ml.features import feature_sql, label_sql, training_dataset_sql

from .bench_host import probe

ROAS_TARGET = 4.0


def feature_scaling(lakehouse: Path, repeats: int = 3) -> dict:
    """Features, labels and training data on gold's daily rows and on twice the days per ad set
    (the year again, a year earlier): the time ratio must stay under 2.5× (nothing quadratic)."""
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{lakehouse}' AS lakehouse (READ_ONLY)")
        connection.execute(
            "CREATE TEMP TABLE daily_1x AS SELECT * FROM lakehouse.gold.daily_adset_metrics"
        )
        span = connection.execute(
            "SELECT date_diff('day', min(date), max(date)) + 1 FROM daily_1x"
        ).fetchone()[0]
        connection.execute(
            f"""CREATE TEMP TABLE daily_2x AS
            SELECT * FROM daily_1x UNION ALL
            SELECT * REPLACE (CAST(date - INTERVAL {span} DAY AS DATE) AS date) FROM daily_1x"""
        )
        connection.execute("DETACH lakehouse")

        def once(daily: str) -> float:
            started = time.perf_counter()
            connection.execute(f"CREATE OR REPLACE TEMP TABLE f AS {feature_sql(daily)}")
            connection.execute(f"CREATE OR REPLACE TEMP TABLE l AS {label_sql(daily, ROAS_TARGET)}")
            connection.execute(
                f"CREATE OR REPLACE TEMP TABLE t AS {training_dataset_sql('f', 'l', daily)}"
            )
            return time.perf_counter() - started

        single = statistics.median(once("daily_1x") for _ in range(repeats))
        double = statistics.median(once("daily_2x") for _ in range(repeats))
        rows = connection.execute("SELECT count(*) FROM daily_1x").fetchone()[0]
    return {
        "daily_rows": rows,
        "seconds_1x": round(single, 3),
        "seconds_2x": round(double, 3),
        "ratio": round(double / single, 2),
        "limit": 2.5,
        "passed": double / single < 2.5,
    }


TRAINING_BUDGET_PROBE = r"""
import json, sys, time
import duckdb
from marketing_ml.ml.training import CONVERSION, PACING_RISK, TrainingParameters, train_model

budgets = {"previous": TrainingParameters(**json.loads(sys.argv[2])), "current": TrainingParameters()}
with duckdb.connect(sys.argv[1], read_only=True) as connection:
    frame = connection.sql("SELECT * FROM gold.training_dataset").df()
figures = {}
for spec in (PACING_RISK, CONVERSION):
    for budget, params in budgets.items():
        started = time.perf_counter()
        card = train_model(frame, spec, params).card
        validation = card.metrics["validation"]
        figures.setdefault(spec.name, {})[budget] = {
            "seconds": round(time.perf_counter() - started, 2),
            "auc": validation["model"]["auc"],
            "ece": validation["ece"],
            "validation_rows": validation["rows"],
            "backtest_auc": card.backtest["pooled"]["model"]["auc"],
            "fit_rows": card.metrics["fit_sample"]["rows"],
        }
print(json.dumps(figures))
"""
PREVIOUS_TRAINING_BUDGET = {
    "learning_rate": 0.2,
    "early_stopping_rounds": 20,
    "max_fit_rows": 10**12,
    "backtest_max_fit_rows": 150_000,
}
"""The training budget before the first-build work: every row, 0.2, 20 rounds, 150,000-row
backtest fits."""


def training_budget(lakehouse: Path) -> dict:
    """Both models trained on the lakehouse's training data with the previous budget and with
    the current defaults, side by side in one process: the current budget may cost at most
    0.003 validation AUC per model, and its ECE must stay <= 0.02."""
    models = probe(
        [
            sys.executable,
            "-c",
            TRAINING_BUDGET_PROBE,
            str(lakehouse),
            json.dumps(PREVIOUS_TRAINING_BUDGET),
        ]
    )
    if "error" in models:
        return models
    return {
        "models": models,
        "auc_drop": round(
            max(m["previous"]["auc"] - m["current"]["auc"] for m in models.values()), 4
        ),
        "ece": round(max(m["current"]["ece"] for m in models.values()), 4),
    }
