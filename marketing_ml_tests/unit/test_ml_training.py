"""Training on generated data: the model round-trips through DuckDB, and awkward data is handled."""

import json
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from marketing_ml.defs.models.model_checks import split_invariants
from marketing_ml.ml.features import (
    FEATURE_COLUMNS,
    MODEL_FEATURES,
)
from marketing_ml.ml.store import CalibratedModel, feature_array, store_model
from marketing_ml.ml.training import (
    CONVERSION,
    PACING_RISK,
    LabelledRows,
    TrainingParameters,
    train_model,
    uninformative_status,
)
from marketing_ml_tests.support.ml_data import daily_metrics, training_frame

FAST = TrainingParameters(max_rounds=30, bootstrap_samples=50)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    return training_frame(tmp_path_factory.mktemp("training"))


@pytest.fixture(scope="module")
def pacing_model(frame):
    return train_model(frame, PACING_RISK, FAST)


@pytest.fixture(scope="module")
def conversion_model(frame):
    return train_model(frame, CONVERSION, FAST)


def test_model_round_trips_through_duckdb_with_identical_predictions(frame, pacing_model, tmp_path):
    model = pacing_model
    with duckdb.connect(str(tmp_path / "store.duckdb")) as connection:
        connection.execute("CREATE SCHEMA models")
        store_model(connection, "models.pacing_risk_model", model)
        row = connection.execute("SELECT * FROM models.pacing_risk_model").df().iloc[0]
        types = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'pacing_risk_model'"
            ).fetchall()
        )
    loaded = CalibratedModel.from_row(row)
    assert loaded.version == model.version
    assert loaded.card == model.card
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert types["booster"] == "BLOB" and types["validation_start"] == "DATE"


def test_a_tampered_model_row_is_refused(pacing_model):
    row = pacing_model.to_row().iloc[0].copy()
    row["calibration"] = '{"x": [0.0, 1.0], "y": [1.0, 1.0]}'
    with pytest.raises(ValueError, match="does not match its contents"):
        CalibratedModel.from_row(row)


def test_training_twice_gives_the_same_model_bytes(frame, conversion_model):
    assert train_model(frame, CONVERSION, FAST).to_row().equals(conversion_model.to_row())


def test_card_reports_validation_backtest_reliability_importances_and_drift(conversion_model):
    card = conversion_model.card
    validation = card.metrics["validation"]
    assert {"model", "base_rate", "heuristic", "model_minus_heuristic", "ece"} <= set(validation)
    assert len(card.backtest["folds"]) == 3
    assert len(card.reliability) == 10
    assert {row["feature"] for row in card.importances} == {row["feature"] for row in card.psi}
    assert card.roas_target == 4.0 and card.metrics["split_violations"] == []


def test_a_label_nearly_all_one_class_fits_nothing_and_scores_its_base_rate(tmp_path):
    frame = training_frame(tmp_path, roas_target=1000.0)  # no window reaches 1000x
    model = train_model(frame, CONVERSION, FAST)
    labelled = frame[CONVERSION.label].notna().sum()
    assert model.card.status.startswith("uninformative: 0.0% of ")
    assert "no model was fitted" in model.card.status
    assert model.booster == b"" and not model.trained and model.uninformative
    assert model.version is not None  # it serves scores: they carry a version
    expected = 1 / (labelled + 2)  # no positive of n: (0 + 1) / (n + 2)
    np.testing.assert_allclose(model.predict_proba(frame), expected)
    assert model.card.refit_end == frame.loc[frame[CONVERSION.label].notna(), "date"].max().date()
    with duckdb.connect(str(tmp_path / "store.duckdb")) as connection:
        connection.execute("CREATE SCHEMA models")
        store_model(connection, "models.conversion_model", model)
        row = connection.execute("SELECT * FROM models.conversion_model").df().iloc[0]
    loaded = CalibratedModel.from_row(row)
    assert loaded.card == model.card and loaded.version == model.version
    np.testing.assert_allclose(loaded.predict_proba(frame), expected)


def test_the_split_gate_refuses_an_uninformative_row_with_a_booster_or_a_certain_rate(tmp_path):
    model = train_model(training_frame(tmp_path, roas_target=1000.0), CONVERSION, FAST)
    row = model.to_row().iloc[0].to_dict()
    row["booster_is_null"] = row["booster"] is None
    assert split_invariants(row, None).passed
    assert not split_invariants({**row, "booster_is_null": False}, None).passed
    certain = json.loads(row["metrics"])
    certain["label"]["served_probability"] = 0.0
    refused = split_invariants({**row, "metrics": json.dumps(certain)}, None)
    assert not refused.passed
    assert "not strictly between 0 and 1" in refused.metadata["problems"].data[0]


@pytest.mark.parametrize(
    ("positives", "rows", "uninformative"),
    [
        (49, 10_000, True),  # fewer than 50 of the rarer outcome
        (150, 10_000, True),  # 1.5%: under 2%
        (9_850, 10_000, True),  # 98.5% positive: the rarer outcome is 1.5%
        (200, 10_000, False),  # 2% and 200 rows
        (50, 2_000, False),  # 2.5% and 50 rows
        (49, 100, True),
    ],
)
def test_a_label_is_uninformative_under_2_percent_or_50_days_of_its_rarer_outcome(
    positives, rows, uninformative
):
    labels = np.zeros(rows)
    labels[:positives] = 1.0
    assert (uninformative_status(labels, PACING_RISK, FAST) is not None) == uninformative


def test_the_served_model_is_refit_through_the_last_labelled_day(frame, pacing_model):
    """Validation is honest (trained before T, judged after it); the served model then learns
    from every day whose label is known: one label window behind the data, not the validation
    window."""
    card = pacing_model.card
    labelled = frame.loc[frame[PACING_RISK.label].notna(), "date"]
    last_labelled = labelled.max().date()
    assert card.refit_end == last_labelled == pacing_model.trained_through
    assert card.refit_start == labelled.min().date()
    assert card.trained_at_data_date - card.refit_end == timedelta(days=PACING_RISK.horizon_days)
    assert card.training_end < card.validation_cutoff < card.validation_start
    assert card.validation_end == last_labelled  # the validated fit never saw these days
    validated_rows = card.metrics["validated_fit"]["training_rows"]
    assert validated_rows < card.training_rows <= frame[PACING_RISK.label].notna().sum()


def test_validation_reports_a_logistic_regression_beside_the_heuristic(conversion_model):
    validation = conversion_model.card.metrics["validation"]
    logistic = validation["logistic"]
    assert 0.5 < logistic["auc"] <= 1 and logistic["brier"] < validation["base_rate"]["brier"]
    assert validation["model"]["ece"] == validation["ece"]
    assert conversion_model.card.backtest["pooled"]["logistic"]["auc"] is not None


def test_all_null_features_train_a_base_rate_model(frame):
    frame = frame.copy()
    frame.loc[
        :, [c for c in frame.columns if c.endswith(("d", "lag1")) and frame[c].dtype.kind == "f"]
    ] = np.nan
    model = train_model(frame, PACING_RISK, FAST)
    predictions = model.predict_proba(frame)
    assert np.all((predictions >= 0) & (predictions <= 1))
    assert len(np.unique(predictions)) <= 7  # only static features are left to split on


def test_an_ad_set_with_a_single_day_is_scored_from_its_static_features(tmp_path):
    daily = daily_metrics(6, 40)
    lone = daily[daily["ad_set_id"] == "AS_005"].head(1).assign(ad_set_id="AS_LONE")
    frame = training_frame(tmp_path, daily=pd.concat([daily, lone]))
    model = train_model(frame, PACING_RISK, FAST)
    lone_row = frame[frame["ad_set_id"] == "AS_LONE"]
    assert lone_row["label_under_pacing_next"].isna().all()
    assert 0 <= model.predict_proba(lone_row)[0] <= 1


def test_data_without_any_observed_label_gives_a_model_marked_not_trained(tmp_path):
    frame = training_frame(tmp_path, daily=daily_metrics(3, 1))
    model = train_model(frame, PACING_RISK, FAST)
    assert model.card.status == "not trained: 1 day of history, needs at least 4"
    assert not model.trained and model.version is None and model.card.training_rows == 0
    assert np.isnan(model.predict_proba(frame)).all()


def test_a_missing_category_is_missing_in_training_as_in_scoring():
    """An ad set missing from audience_segments has no lookalike_source: training must code it
    NaN, as scoring does, not learn a category named "None"."""
    frame = pd.DataFrame({name: [1.0, 2.0, 3.0] for name in FEATURE_COLUMNS})
    frame["lookalike_source"] = ["past_bookers", None, "past_bookers"]
    frame["ad_set_id"] = ["AS_1", "AS_2", "AS_3"]
    frame["date"] = pd.to_datetime(["2024-08-01"] * 3)
    frame[PACING_RISK.label] = [1.0, 0.0, 1.0]
    rows = LabelledRows.of(frame, PACING_RISK)
    every_row = np.arange(3)
    categories = rows.categories_of(every_row)
    assert categories == {"lookalike_source": ("past_bookers",)}
    np.testing.assert_array_equal(
        rows.matrix(every_row, categories), feature_array(frame, MODEL_FEATURES, categories)
    )


def test_a_row_budget_fits_the_booster_on_whole_ad_sets_and_judges_on_every_row(frame):
    """The final fit keeps every day of a hashed sample of ad sets; calibration and validation
    still read every row, so the card's validation is comparable with an unbudgeted model's."""
    labelled = frame[frame[CONVERSION.label].notna()]
    budget = TrainingParameters(max_rounds=30, bootstrap_samples=50, max_fit_rows=60)
    model = train_model(frame, CONVERSION, budget)
    unbudgeted = train_model(frame, CONVERSION, FAST)

    sample = model.card.metrics["fit_sample"]
    assert sample["max_rows"] == 60 and sample["of_ad_sets"] == labelled["ad_set_id"].nunique()
    assert 0 < sample["ad_sets"] < sample["of_ad_sets"]
    assert sample["rows"] < sample["of_rows"] == unbudgeted.card.metrics["fit_sample"]["rows"]
    assert sample["rows"] % (sample["of_rows"] // sample["of_ad_sets"]) == 0
    validated = model.card.metrics["validation"]["rows"]
    assert validated == unbudgeted.card.metrics["validation"]["rows"] > 0
    assert model.card.training_rows == unbudgeted.card.training_rows - (
        sample["of_rows"] - sample["rows"]
    )
    trained_folds = [fold for fold in model.card.backtest["folds"] if "fit_sample" in fold]
    assert trained_folds
    assert {fold["fit_sample"]["max_rows"] for fold in trained_folds} == {
        budget.backtest_max_fit_rows
    }
