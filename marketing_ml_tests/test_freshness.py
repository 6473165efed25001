"""Freshness: the plan says when its data ends, warns when that is old against today's clock, and
says how much newer the data is than what the models learnt from (app/freshness.py), from the
summary fields the pipeline stores (gold.budget_plan_summary: data_end, models_trained_through)."""

from datetime import date, timedelta

import pytest

from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.conftest import Lakehouse
from marketing_ml_tests.test_app import served_lakehouse


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Lakehouse:
    return served_lakehouse(tmp_path_factory)


def test_the_summary_stores_the_data_end_and_the_models_training_day(served: Lakehouse):
    [(last_day,)] = served.query("SELECT max(date) FROM gold.daily_adset_metrics")
    [(refit_end,)] = served.query("SELECT refit_end FROM models.pacing_risk_model")
    for query in (served.query, served.serving_query):
        [(data_end, trained_through, plan_date)] = query(
            "SELECT data_end, models_trained_through, plan_date FROM gold.budget_plan_summary"
        )
        assert (data_end, trained_through) == (last_day, refit_end)
        assert plan_date == last_day + timedelta(days=1)
    types = served.serving_query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'budget_plan_summary' "
        "AND column_name IN ('data_end', 'models_trained_through') ORDER BY column_name"
    )
    assert types == [("data_end", "DATE"), ("models_trained_through", "DATE")]


def test_an_untrained_model_stores_a_null_training_day_as_a_date(tmp_path):
    """A first export of one day trains no model: the field is NULL, still a DATE column."""
    lakehouse = Lakehouse(
        tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "serving.duckdb"
    )
    write_sample_data(lakehouse.raw_dir, ad_sets=6, days=1, seed=2)
    assert lakehouse.materialize().success
    [(status,)] = lakehouse.serving_query("SELECT status FROM models.pacing_risk_model")
    assert status.startswith("not trained")
    [(data_end, trained_through)] = lakehouse.serving_query(
        "SELECT data_end, models_trained_through FROM gold.budget_plan_summary"
    )
    assert data_end == date(2024, 8, 1) and trained_through is None  # the sample's first day
    [(kind,)] = lakehouse.serving_query(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'budget_plan_summary' AND column_name = 'models_trained_through'"
    )
    assert kind == "DATE"
