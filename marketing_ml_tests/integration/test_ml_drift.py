"""feature_drift on in-process Dagster runs: a clean build of generated data passes it (a count
of days is not a model feature, so it cannot drift), and a real shift in a feature still fails it."""

import json

import duckdb
import pandas as pd
import pytest

from marketing_ml.ml.features import FEATURE_COLUMNS
from marketing_ml_tests.support.ml_data import (
    FAST_RUN_CONFIG,
    daily_metrics,
    materialize_ml,
    write_daily_metrics,
)

MODELS = ("models/pacing_risk_model", "models/conversion_model")
CALENDAR = "days_since_first_day"
"""Counts days: the latest 28 days always lie past every training value."""
BUDGET_DERIVED = {
    feature for feature in FEATURE_COLUMNS if feature.startswith(("planned_spend_", "utilization_"))
}
"""What tripling the budget (planned spend) moves: the budget features and utilization (actual ÷
planned spend); the verdict names these and nothing else."""


def drift_checks(result) -> dict[str, object]:
    return {
        evaluation.asset_key.to_user_string(): evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "feature_drift"
    }


@pytest.fixture(scope="module")
def generated() -> pd.DataFrame:
    """80 ad sets x 90 days: with fewer, the latest 28 days of a 28-day window hold a handful of
    independent values per ad set and PSI over deciles is noise (0.2-0.5 at 12 ad sets)."""
    return daily_metrics(ad_sets=80, days=90)


def test_a_clean_build_of_generated_data_passes_feature_drift(tmp_path, generated):
    database = write_daily_metrics(tmp_path / "clean.duckdb", generated)
    result = materialize_ml(database, FAST_RUN_CONFIG)
    assert result.success
    checks = drift_checks(result)
    assert sorted(checks) == sorted(MODELS)
    for key, evaluation in checks.items():
        assert evaluation.passed, (key, evaluation.metadata["drifted_features"])
        assert CALENDAR in evaluation.metadata["calendar_features"].text
    with duckdb.connect(str(database), read_only=True) as connection:
        for model in ("pacing_risk_model", "conversion_model"):
            psi, importances = connection.execute(
                f"SELECT psi, importances FROM models.{model}"
            ).fetchone()
            features = {item["feature"] for item in json.loads(importances)}
            assert features == set(FEATURE_COLUMNS) - {CALENDAR}
            assert "day_of_week" in {item["feature"] for item in json.loads(psi)}


def test_a_feature_with_a_real_shift_still_fails_feature_drift(tmp_path, generated):
    """Budgets tripled over the latest four weeks: the day's planned budget drifts, and the check
    says so."""
    dates = pd.to_datetime(generated["date"])
    latest = dates > dates.max() - pd.Timedelta(days=28)
    shifted = generated.copy()
    shifted.loc[latest, "planned_spend"] = shifted.loc[latest, "planned_spend"] * 3
    result = materialize_ml(
        write_daily_metrics(tmp_path / "shifted.duckdb", shifted), FAST_RUN_CONFIG
    )
    checks = drift_checks(result)
    assert sorted(checks) == sorted(MODELS)
    for key, evaluation in checks.items():
        drifted = evaluation.metadata["drifted_features"].data
        assert not evaluation.passed, key
        assert "planned_spend_1d" in drifted, (key, drifted)
        assert set(drifted) <= BUDGET_DERIVED, (key, sorted(set(drifted) - BUDGET_DERIVED))
