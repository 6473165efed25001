"""Measure the models against the issue's quality bar on generated data (not a timed test).

    python -m marketing_ml.ml.measure --ad-sets 200 --days 365 --seed 42

Generates sample data into a temporary folder, materializes the whole graph in process, and prints
each model's validation AUC (beside the heuristic's and the logistic regression's), Brier (beside
the base rate's), ECE, how many days the served model is behind the data, and the wall time.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

from marketing_ml.ml.training import CONVERSION, PACING_RISK

QUALITY_BAR = {"auc": 0.70, "ece": 0.05}


def model_figures(database: Path) -> dict[str, dict]:
    """Validation and backtest figures of each stored model row."""
    figures = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        for spec in (PACING_RISK, CONVERSION):
            metrics, backtest, version, days_behind = connection.execute(
                "SELECT metrics, backtest, model_version, "
                f"date_diff('day', refit_end, trained_at_data_date) FROM models.{spec.name}"
            ).fetchone()
            validation = json.loads(metrics)["validation"]
            pooled = json.loads(backtest)["pooled"]
            figures[spec.name] = {
                "version": version,
                "validation_rows": validation["rows"],
                "served_model_days_behind_data": days_behind,
                "auc": validation["model"]["auc"],
                "heuristic_auc": validation["heuristic"]["auc"],
                "logistic_auc": validation["logistic"]["auc"],
                "brier": validation["model"]["brier"],
                "base_rate_brier": validation["base_rate"]["brier"],
                "ece": validation["ece"],
                "skill_over_heuristic": validation["skill_over_heuristic"],
                "backtest_auc": pooled["model"]["auc"],
            }
    return figures


def meets_bar(figures: dict) -> bool:
    return (
        figures["auc"] is not None
        and figures["auc"] >= QUALITY_BAR["auc"]
        and figures["brier"] < figures["base_rate_brier"]
        and figures["ece"] <= QUALITY_BAR["ece"]
    )


def main() -> None:
    from marketing_ml.definitions import build_definitions
    from marketing_ml.sample_data import write_sample_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ad-sets", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        raw, database = Path(folder) / "raw", Path(folder) / "lakehouse.duckdb"
        write_sample_data(raw, args.ad_sets, args.days, args.seed)
        definitions = build_definitions(str(database), str(raw), str(Path(folder) / "serving"))
        started = time.perf_counter()
        result = dg.materialize(
            [*definitions.assets, *definitions.asset_checks],
            resources=definitions.resources,
            raise_on_error=False,
        )
        elapsed = time.perf_counter() - started
        print(
            f"{args.ad_sets} ad sets x {args.days} days: run success={result.success}, "
            f"{elapsed:.1f}s"
        )
        for name, figures in model_figures(database).items():
            verdict = "meets" if meets_bar(figures) else "MISSES"
            print(f"{name} ({verdict} the bar): {json.dumps(figures)}")


if __name__ == "__main__":
    main()
