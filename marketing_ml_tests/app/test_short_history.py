"""Too little history: a new user's first exports publish, and the models say they are not trained.

A model whose label window, validation days and training days do not fit in the history is stored
as "not trained: D days of history, needs at least N"; its scores are NULL with that status, its
warning checks say so, nothing blocks publish, and the next file drop trains it once the history
is long enough.
"""

import json
import math
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.text import unescape_markdown
from marketing_ml.ml.features import LABEL_HORIZON_DAYS
from marketing_ml.ml.store import CalibratedModel, store_model
from marketing_ml.ml.training import CONVERSION, PACING_RISK, TrainingParameters, train_model
from marketing_ml.sample_data import write_sample_data
from marketing_ml.storage import FULL_LOAD_TAG
from marketing_ml_tests.support.automation import Automation, keys_of
from marketing_ml_tests.support.dashboard_harness import DASHBOARD
from marketing_ml_tests.support.lakehouse import Lakehouse, load_outcomes
from marketing_ml_tests.support.ml_data import daily_metrics, training_frame

FEW_AD_SETS = {"max_rounds": 30, "bootstrap_samples": 50, "min_minority_rows": 1}
"""These tests are about days of history, not label balance: six ad sets over a few weeks hold
fewer than the default 50 days of either outcome, which would make every label uninformative."""
FAST = TrainingParameters(**FEW_AD_SETS)
FAST_RUN = {
    "ops": {
        f"models__{name}": {"config": FEW_AD_SETS}
        for name in ("pacing_risk_model", "conversion_model")
    }
}
AD_SETS, SEED = 6, 11
SHORT_DAYS, ENOUGH_DAYS = 10, 20
BLOCKING = {
    "features_exclude_labels",
    "features_point_in_time",
    "split_invariants",
    "model_features_exclude_labels",
    "scores_are_probabilities_one_per_key",
}
MODEL_WARNINGS = {
    "validation_has_both_classes",
    "beats_base_rate",
    "skill_over_heuristic",
    "feature_drift",
}


def days_needed_by_hand(horizon: int, validation_fraction: float = 0.2) -> int:
    """The fewest consecutive days a model trains from, worked out from the rules, not the code:
    the last `horizon` days have no label; of the L labelled days the last
    min(L - 1, max(1, ceil(L × fraction))) are validation; a training day's window must end by
    the cutoff, so horizon more days go; one training day must be left."""
    days = horizon + 1
    while True:
        labelled = days - horizon
        validation = min(labelled - 1, max(1, math.ceil(labelled * validation_fraction)))
        if labelled - validation - horizon >= 1:
            return days
        days += 1


def not_trained_status(days: int, horizon: int) -> str:
    return f"not trained: {days} days of history, needs at least {days_needed_by_hand(horizon)}"


def folder(root: Path, *names: str) -> Path:
    path = root.joinpath(*names)
    path.mkdir(parents=True)
    return path


def outcomes(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def run_job(lakehouse: Lakehouse, name: str, instance) -> dg.ExecuteInProcessResult:
    job = lakehouse.definitions.resolve_job_def(name)
    trains = name != "daily_refresh"  # the daily refresh rescores with the stored models
    return job.execute_in_process(
        instance=instance, run_config=FAST_RUN if trains else None, raise_on_error=False
    )


def new_lakehouse(root: Path, days: int) -> Lakehouse:
    lakehouse = Lakehouse(root / "raw", root / "lakehouse.duckdb", root / "serving.duckdb")
    write_sample_data(lakehouse.raw_dir, ad_sets=AD_SETS, days=days, seed=SEED)
    return lakehouse


def serving_rows(lakehouse: Lakehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(lakehouse.serving), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """Ten days of exports, everything materialized as the full refresh does it."""
    lakehouse = new_lakehouse(tmp_path_factory.mktemp("short"), SHORT_DAYS)
    with dg.instance_for_test() as instance:
        result = run_job(lakehouse, "full_refresh", instance)
        yield lakehouse, result


def test_the_days_a_model_needs_are_the_fewest_it_trains_from(tmp_path):
    """The N in "needs at least N" is the real boundary: one day fewer is not trained and says
    so, N days train."""
    assert days_needed_by_hand(LABEL_HORIZON_DAYS[CONVERSION.label]) == 17
    for spec in (PACING_RISK, CONVERSION):
        needed = days_needed_by_hand(spec.horizon_days)
        short = training_frame(folder(tmp_path, spec.name, "short"), daily_metrics(6, needed - 1))
        model = train_model(short, spec, FAST)
        assert not model.trained
        assert model.card.status == not_trained_status(needed - 1, spec.horizon_days)
        enough = training_frame(folder(tmp_path, spec.name, "enough"), daily_metrics(6, needed))
        assert train_model(enough, spec, FAST).card.status == "trained"


def test_a_model_not_trained_round_trips_through_duckdb_and_scores_nothing(tmp_path):
    frame = training_frame(tmp_path, daily_metrics(4, SHORT_DAYS))
    model = train_model(frame, CONVERSION, FAST)
    with duckdb.connect(str(tmp_path / "store.duckdb")) as connection:
        connection.execute("CREATE SCHEMA models")
        store_model(connection, "models.conversion_model", model)
        row = connection.execute("SELECT * FROM models.conversion_model").df().iloc[0]
    assert row["status"] == not_trained_status(SHORT_DAYS, 7)
    assert pd.isna(row["booster"]) and pd.isna(row["model_version"])
    loaded = CalibratedModel.from_row(row)
    assert loaded.card == model.card and loaded.version is None
    assert np.isnan(loaded.predict_proba(frame)).all()


def test_ten_days_publish_with_the_conversion_model_marked_not_trained(short):
    lakehouse, result = short
    assert result.success
    assert serving_rows(lakehouse, "SELECT count(DISTINCT date) FROM gold.daily_adset_metrics") == [
        (SHORT_DAYS,)
    ]
    status = not_trained_status(SHORT_DAYS, 7)
    assert serving_rows(
        lakehouse, "SELECT status, model_version, training_rows FROM models.conversion_model"
    ) == [(status, None, 0)]
    assert serving_rows(lakehouse, "SELECT status FROM models.pacing_risk_model") == [("trained",)]
    assert serving_rows(
        lakehouse,
        "SELECT model_status, count(*), count(roas_on_target_prob), count(model_version) "
        "FROM gold.scored_conversions GROUP BY ALL",
    ) == [(status, SHORT_DAYS * AD_SETS, 0, 0)]
    assert serving_rows(
        lakehouse,
        "SELECT model_status, count(*) FILTER (under_pacing_risk BETWEEN 0 AND 1) "
        "FROM gold.scored_adsets GROUP BY ALL",
    ) == [("trained", SHORT_DAYS * AD_SETS)]


def test_ten_days_checks_block_nothing_and_warn_that_the_model_is_not_trained(short):
    _, result = short
    checks = outcomes(result)
    assert all(e.passed for (_, name), e in checks.items() if name in BLOCKING)
    status = not_trained_status(SHORT_DAYS, 7)
    for name in MODEL_WARNINGS:
        verdict = checks[("models/conversion_model", name)]
        assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
        assert verdict.metadata["status"].value == status
    split = checks[("models/conversion_model", "split_invariants")]
    assert split.metadata["status"].value == status and split.metadata["problems"].value == []
    scores = checks[("gold/scored_conversions", "scores_are_probabilities_one_per_key")]
    assert scores.metadata["rows_of_a_model_not_trained"].value == SHORT_DAYS * AD_SETS


def test_ten_days_forecasts_tab_says_the_model_is_not_trained(short, monkeypatch):
    lakehouse, _ = short
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(lakehouse.serving))
    monkeypatch.setenv("LM_ENDPOINT", "http://127.0.0.1:9/v1")
    st.cache_data.clear()
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    app.session_state["tab"] = "Forecasts"  # only the open tab runs
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    forecasts = app.tabs[1]
    assert forecasts.label == "Forecasts"
    status = not_trained_status(SHORT_DAYS, 7)
    shown = [unescape_markdown(info.value) for info in forecasts.info]
    assert [text for text in shown if status in text] == [
        f"ROAS on target model {status}. Its forecasts appear after the weekly retrain once "
        "there is that much history."
    ]
    table = forecasts.dataframe[0].value
    assert "under_pacing_risk" in table and "roas_on_target_prob" not in table
    assert table["under_pacing_risk"].between(0, 100).all()
    app.session_state["tab"] = "Models"
    app.run()
    st.cache_data.clear()
    models = [info.value.replace("\\", "") for info in app.tabs[3].info]  # Markdown escapes off
    assert any(status in text for text in models)


def test_a_file_drop_trains_a_model_stored_as_not_trained_without_a_full_load(tmp_path):
    """While a model is stored as not trained, every file drop retrains it in the run that reads
    the new rows: bronze appends them (no full load), the curves are not refitted."""
    lakehouse = new_lakehouse(tmp_path, SHORT_DAYS)
    with dg.instance_for_test() as instance:
        assert run_job(lakehouse, "full_refresh", instance).success
        automation = Automation(lakehouse, instance)
        assert isinstance(automation.look_at_raw_folder(), dg.SkipReason)  # the build read them
        assert automation.tick() is None
        write_sample_data(lakehouse.raw_dir, ad_sets=AD_SETS, days=ENOUGH_DAYS, seed=SEED)
        request, run = automation.drop_and_run(FAST_RUN)
        assert FULL_LOAD_TAG not in run.dagster_run.tags
        assert {"gold/labels", "gold/training_dataset", "models/conversion_model"} <= keys_of(
            request
        )
        assert "gold/response_curves" not in keys_of(request)
        bronze_loads = {
            key: load for key, load in load_outcomes(run).items() if key.startswith("bronze/")
        }
        assert bronze_loads["bronze/budget_pacing"].startswith("appended")
        assert all(  # the audience file is rewritten as it was: nothing to load
            load.startswith(("appended", "unchanged")) for load in bronze_loads.values()
        )

        row = serving_rows(
            lakehouse, "SELECT status, model_version, metrics FROM models.conversion_model"
        )
        assert row[0][0] == "trained" and row[0][1] is not None
        assert json.loads(row[0][2])["validation"]["rows"] > 0
        assert serving_rows(
            lakehouse,
            "SELECT DISTINCT model_status, model_version, "
            "count(*) FILTER (roas_on_target_prob BETWEEN 0 AND 1) = count(*) "
            "FROM gold.scored_conversions GROUP BY ALL",
        ) == [("trained", row[0][1], True)]
        assert serving_rows(lakehouse, "SELECT max(date) FROM gold.scored_conversions") == [
            (date(2024, 8, ENOUGH_DAYS),)
        ]

        write_sample_data(lakehouse.raw_dir, ad_sets=AD_SETS, days=ENOUGH_DAYS + 1, seed=SEED)
        assert isinstance(automation.look_at_raw_folder(), dg.SensorResult)
        assert not {"models/conversion_model", "gold/labels"} & keys_of(automation.tick())


def test_enough_days_but_a_one_class_label_is_uninformative_warns_and_publishes(tmp_path):
    lakehouse = new_lakehouse(tmp_path, ENOUGH_DAYS)
    definitions = lakehouse.definitions
    unreachable = {"ops": {**FAST_RUN["ops"], "gold__labels": {"config": {"roas_target": 1000.0}}}}
    result = dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources=definitions.resources,
        run_config=unreachable,
        raise_on_error=False,
    )
    assert result.success
    checks = outcomes(result)
    assert all(e.passed for (_, name), e in checks.items() if name in BLOCKING)
    both_classes = checks[("models/conversion_model", "validation_has_both_classes")]
    assert not both_classes.passed and both_classes.severity == dg.AssetCheckSeverity.WARN
    assert both_classes.metadata["status"].value.startswith("uninformative: 0.0% of ")
    [(status, labelled)] = serving_rows(
        lakehouse,
        "SELECT status, json_extract(metrics, '$.label.rows')::INT FROM models.conversion_model",
    )
    assert status.startswith("uninformative: ") and "no model was fitted" in status
    assert serving_rows(
        lakehouse,
        "SELECT DISTINCT model_status, roas_on_target_prob FROM gold.scored_conversions",
    ) == [(status, pytest.approx(1 / (labelled + 2)))]
