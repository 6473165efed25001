"""The ML assets and checks materialized in process over a generated gold table."""

import duckdb
import pandas as pd
import pytest

from marketing_ml.defs.models.model_checks import build_scores_check
from marketing_ml.resources import LakehouseResource
from marketing_ml.table_keys import SCORED_ADSETS
from marketing_ml_tests.support.ml_data import (
    FAST_RUN_CONFIG,
    daily_metrics,
    materialize_ml,
    write_daily_metrics,
)


@pytest.fixture
def daily_frame() -> pd.DataFrame:
    return daily_metrics()


@pytest.fixture
def ml_lakehouse(tmp_path, daily_frame):
    """A lakehouse file holding only a generated gold.daily_adset_metrics."""
    return write_daily_metrics(tmp_path / "lakehouse.duckdb", daily_frame)


BLOCKING = {
    "features_exclude_labels",
    "features_point_in_time",
    "split_invariants",
    "model_features_exclude_labels",
    "scores_are_probabilities_one_per_key",
}


def outcomes(result) -> dict[tuple[str, str], tuple[bool, str]]:
    return {
        (e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value)
        for e in result.get_asset_check_evaluations()
    }


def stored(database, query: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(query).df()


def test_ml_graph_materializes_scores_every_key_and_passes_its_gates(ml_lakehouse, daily_frame):
    result = materialize_ml(ml_lakehouse, FAST_RUN_CONFIG)
    assert result.success
    checks = outcomes(result)
    assert len(checks) == 16
    assert all(passed for (_, name), (passed, _) in checks.items() if name in BLOCKING)
    scored = stored(ml_lakehouse, "SELECT * FROM gold.scored_adsets")
    latest = pd.Timestamp(daily_frame["date"].max())
    window = daily_frame[pd.to_datetime(daily_frame["date"]) > latest - pd.Timedelta(days=28)]
    assert len(scored) == len(window) < len(daily_frame)
    assert scored["date"].min() == latest - pd.Timedelta(days=27)
    assert scored["date"].max() == latest
    assert scored["under_pacing_risk"].between(0, 1).all()
    conversions = stored(ml_lakehouse, "SELECT * FROM gold.scored_conversions")
    assert list(conversions.columns) == [
        "ad_set_id",
        "date",
        "roas_on_target_prob",
        "roas_target",
        "model_version",
        "trained_through",
        "model_status",
    ]
    assert (conversions["roas_target"] == 4.0).all()
    assert (conversions["model_status"] == "trained").all()
    model = stored(ml_lakehouse, "SELECT * EXCLUDE (booster) FROM models.pacing_risk_model")
    assert len(model) == 1 and model["model_version"].iloc[0] == scored["model_version"].iloc[0]


def test_two_runs_write_byte_identical_models_and_scores(ml_lakehouse, tmp_path, daily_frame):
    other = write_daily_metrics(tmp_path / "other.duckdb", daily_frame)
    assert (
        materialize_ml(ml_lakehouse, FAST_RUN_CONFIG).success
        and materialize_ml(other, FAST_RUN_CONFIG).success
    )
    for table in (
        "models.pacing_risk_model",
        "models.conversion_model",
        "gold.scored_adsets",
        "gold.scored_conversions",
        "gold.features",
    ):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        pd.testing.assert_frame_equal(stored(ml_lakehouse, query), stored(other, query))


def test_a_roas_target_from_config_reaches_labels_and_scores(ml_lakehouse):
    config = {"ops": {**FAST_RUN_CONFIG["ops"], "gold__labels": {"config": {"roas_target": 3.0}}}}
    assert materialize_ml(ml_lakehouse, config).success
    targets = stored(ml_lakehouse, "SELECT DISTINCT roas_target FROM gold.scored_conversions")
    assert targets["roas_target"].tolist() == [3.0]


def test_a_tiny_sample_materializes_with_warnings_not_crashes(tmp_path):
    database = write_daily_metrics(tmp_path / "tiny.duckdb", daily_metrics(6, 21))
    result = materialize_ml(database, FAST_RUN_CONFIG)
    assert result.success
    assert all(passed for (_, name), (passed, _) in outcomes(result).items() if name in BLOCKING)


def test_a_certain_score_fails_the_scores_check(ml_lakehouse):
    """Calibrated probabilities are never exactly 0 or 1: a score of 0 blocks publish."""
    assert materialize_ml(ml_lakehouse, FAST_RUN_CONFIG).success
    check = build_scores_check(SCORED_ADSETS, "under_pacing_risk")
    lakehouse = LakehouseResource(database=str(ml_lakehouse))
    assert check(lakehouse=lakehouse).passed
    with duckdb.connect(str(ml_lakehouse)) as connection:
        connection.execute(
            "UPDATE gold.scored_adsets SET under_pacing_risk = 0 "
            "WHERE date = (SELECT max(date) FROM gold.scored_adsets)"
        )
    result = check(lakehouse=lakehouse)
    assert not result.passed and result.metadata["outside_0_1_or_null"].value == 12
