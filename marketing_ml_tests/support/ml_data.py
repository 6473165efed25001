"""Helpers for the ML tests: a generated gold.daily_adset_metrics, with signal to learn.

Under-pacing persists (utilization follows an AR(1) per ad set) and ROAS levels differ by ad set,
so a model has something real to find; the data never leaves the test's temporary folder.
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from marketing_ml.defs.models.model_assets import ML_ASSETS
from marketing_ml.defs.models.model_checks import ML_ASSET_CHECKS
from marketing_ml.ml.features import feature_sql, label_sql, training_dataset_sql
from marketing_ml.storage.io_manager import lakehouse_resources

AGE_BANDS = ("25-45", "55+", "18-30", "28-50")
SOURCES = ("high_value_customers", "family_bookers", "business_customers", "adventure_travelers")


def daily_metrics(ad_sets: int = 12, days: int = 60, seed: int = 7) -> pd.DataFrame:
    """A frame shaped like gold.daily_adset_metrics (one row per date and ad set)."""
    rng = np.random.default_rng(seed)
    start = date(2024, 8, 1)
    rows = []
    for number in range(ad_sets):
        budget = float(rng.choice([250, 300, 450, 500]))
        roas_level = rng.uniform(2.0, 6.5)
        utilization = rng.uniform(0.6, 1.1)
        for day in range(days):
            utilization = float(
                np.clip(0.85 + 0.8 * (utilization - 0.85) + rng.normal(0, 0.08), 0.2, 1.4)
            )
            spend = round(budget * utilization, 2)
            impressions = int(rng.integers(20_000, 80_000))
            clicks = int(impressions * rng.uniform(0.01, 0.03))
            bookings = int(rng.poisson(3))
            revenue = round(spend * max(0.0, rng.normal(roas_level, 1.5)), 2)
            status = (
                "under_pacing"
                if utilization < 0.8 + rng.normal(0, 0.03)
                else "over_pacing"
                if utilization > 1.1
                else "on_pace"
            )
            rows.append(
                {
                    "date": start + timedelta(days=day),
                    "ad_set_id": f"AS_{number:03d}",
                    "ad_set_name": f"Ad set {number}",
                    "target_age": AGE_BANDS[number % len(AGE_BANDS)],
                    "lookalike_source": SOURCES[number % len(SOURCES)],
                    "daily_budget": budget,
                    "spend": spend,
                    "impressions": impressions,
                    "clicks": clicks,
                    "frequency": round(rng.uniform(1.2, 3.0), 2),
                    "bookings": bookings,
                    "revenue": revenue,
                    "roas": revenue / spend if spend else None,
                    "cpa": spend / bookings if bookings else None,
                    "ctr": clicks * 100.0 / impressions,
                    "cvr": bookings * 100.0 / clicks if clicks else None,
                    "cpm": spend * 1000.0 / impressions,
                    "planned_spend": budget,
                    "actual_spend": spend,
                    "budget_utilization": round(utilization, 2),
                    "pacing_status": status,
                }
            )
    return pd.DataFrame(rows)


def write_daily_metrics(database: Path, frame: pd.DataFrame) -> Path:
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS gold")
        connection.register("frame", frame)
        connection.execute(
            "CREATE OR REPLACE TABLE gold.daily_adset_metrics AS "
            "SELECT * REPLACE (CAST(date AS DATE) AS date, "
            "CAST(impressions AS BIGINT) AS impressions, CAST(clicks AS BIGINT) AS clicks, "
            "CAST(bookings AS BIGINT) AS bookings) FROM frame"
        )
    return database


def materialize_ml(database: Path, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    """Every ML asset and check over the gold.daily_adset_metrics already in `database`."""
    return dg.materialize(
        [dg.AssetSpec(["gold", "daily_adset_metrics"]), *ML_ASSETS, *ML_ASSET_CHECKS],
        resources=lakehouse_resources(str(database)),
        run_config=run_config,
        raise_on_error=False,
    )


def training_frame(tmp_path: Path, daily=None, roas_target: float = 4.0):
    database = write_daily_metrics(
        tmp_path / "lakehouse.duckdb", daily if daily is not None else daily_metrics(8, 50)
    )
    with duckdb.connect(str(database)) as connection:
        connection.execute(f"CREATE TABLE features AS {feature_sql('gold.daily_adset_metrics')}")
        connection.execute(
            f"CREATE TABLE labels AS {label_sql('gold.daily_adset_metrics', roas_target)}"
        )
        query = training_dataset_sql("features", "labels", "gold.daily_adset_metrics")
        return connection.execute(f"{query} ORDER BY ad_set_id, date").df()


FAST_RUN_CONFIG = {
    "ops": {
        f"models__{name}": {"config": {"max_rounds": 30, "bootstrap_samples": 50}}
        for name in ("pacing_risk_model", "conversion_model")
    }
}
"""Run config for the ML assets that trains both models in seconds (30 rounds, 50 bootstraps)."""
