"""Freshness: the plan says when its data ends, warns when that is old against today's clock, and
says how much newer the data is than what the models learnt from (app/freshness.py), from the
summary fields the pipeline stores (gold.budget_plan_summary: data_end, models_trained_through)."""

import os
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from app.freshness import (
    RETRAIN_AFTER_DAYS,
    STALE_DAYS,
    freshness_html,
    freshness_notes,
    freshness_of,
)
from app.html_report import build_report
from app.text import unescape_markdown
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support.chromium import chromium_page, evaluate, streamlit_server, wait_for
from marketing_ml_tests.support.dashboard_harness import DASHBOARD
from marketing_ml_tests.support.lakehouse import Lakehouse

DATA_END = date(2025, 3, 28)
PLAN_DATE = date(2025, 3, 29)


def summary(data_end=DATA_END, trained_through=None, plan_date=PLAN_DATE) -> dict:
    return {"plan_date": plan_date, "data_end": data_end, "models_trained_through": trained_through}


def test_the_line_says_when_the_data_ends():
    line, _ = freshness_notes(summary(), DATA_END + timedelta(days=1))
    assert line == "Data to Fri 28 Mar 2025"


def test_data_older_than_three_days_is_warned_with_its_age_and_the_plan_date():
    today = date(2026, 12, 7)
    _, warning = freshness_notes(summary(), today)
    assert warning == (
        "The data ends 28 Mar 2025, 619 days ago: the plan is for 29 Mar 2025, not for "
        "tomorrow. Load newer files to plan ahead."
    )


def test_data_three_days_old_is_not_warned_and_four_days_is():
    assert freshness_notes(summary(), DATA_END + timedelta(days=STALE_DAYS))[1] == ""
    warning = freshness_notes(summary(), DATA_END + timedelta(days=STALE_DAYS + 1))[1]
    assert warning.startswith(f"The data ends 28 Mar 2025, {STALE_DAYS + 1} days ago: ")


def test_the_models_age_is_told_against_the_data_they_score():
    fresh = summary(trained_through=DATA_END - timedelta(days=RETRAIN_AFTER_DAYS))
    line, _ = freshness_notes(fresh, PLAN_DATE)
    assert line == "Data to Fri 28 Mar 2025 · Models trained through 21 Mar, scoring data to " + (
        "28 Mar (7 days newer)"
    )
    old = summary(trained_through=date(2025, 3, 14))
    line, _ = freshness_notes(old, PLAN_DATE)
    assert line.endswith(
        "Models trained through 14 Mar, scoring data to 28 Mar (14 days newer): "
        "the weekly retrain is due."
    )
    assert freshness_of(old, PLAN_DATE).retrain_due
    assert not freshness_of(fresh, PLAN_DATE).retrain_due


def test_models_trained_in_another_year_name_the_year_and_one_day_is_singular():
    line, _ = freshness_notes(summary(date(2025, 1, 1), date(2024, 12, 31), None), date(2025, 1, 2))
    assert line == (
        "Data to Wed 01 Jan 2025 · Models trained through 31 Dec 2024, scoring data to 01 Jan "
        "(1 day newer)"
    )


def test_untrained_models_add_nothing_and_a_plan_without_data_end_ends_the_day_before():
    line, warning = freshness_notes(summary(data_end=None), PLAN_DATE)
    assert line == "Data to Fri 28 Mar 2025" and warning == ""
    assert freshness_notes(None, PLAN_DATE) == ("", "")
    assert freshness_notes(summary(data_end=None, plan_date=None), PLAN_DATE) == ("", "")


def test_the_report_escapes_the_notes_and_boxes_the_warning():
    old = summary(trained_through=date(2025, 3, 14))
    paragraphs = freshness_html(old, date(2025, 4, 10))
    assert len(paragraphs) == 2
    assert "Data to Fri 28 Mar 2025 · Models trained through 14 Mar" in paragraphs[0]
    assert paragraphs[1].startswith('<p class="stale"')
    assert "13 days ago" in paragraphs[1]


# ------------------------------------------------------------------ the pipeline and the pages
@pytest.fixture(scope="module")
def served(served_lakehouse) -> Lakehouse:
    return served_lakehouse


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
    line, _ = freshness_notes({"data_end": data_end, "models_trained_through": None}, data_end)
    assert line == "Data to Thu 01 Aug 2024"


def test_the_headline_and_the_whatif_warn_that_the_served_data_is_old(served, monkeypatch):
    """The sample data ends in 2024: against today's clock the plan is for a day long past."""
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(served.serving))
    monkeypatch.setenv("LM_ENDPOINT", "http://127.0.0.1:9/v1")
    [(data_end,)] = served.serving_query("SELECT data_end FROM gold.budget_plan_summary")
    days_old = (date.today() - data_end).days
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    for tab in ("Overview", "What-if"):
        app.session_state["tab"] = tab
        app.run()
        assert not app.exception
        warnings = [unescape_markdown(w.value) for w in app.warning]
        expected = f"The data ends {data_end:%d %b %Y}, {days_old} days ago: the plan is for "
        assert sum(text.startswith(expected) for text in warnings) == 1, (tab, warnings)
        captions = [unescape_markdown(c.value) for c in app.caption]
        assert any(c.startswith(f"Data to {data_end:%a %d %b %Y} · Models") for c in captions)
    report = build_report(served.serving)
    assert f"The data ends {data_end:%d %b %Y}, {days_old} days ago" in report


FRESHNESS_BOX = """
(() => {
  const block = document.querySelector('.st-key-freshness');
  if (!block) return null;
  const box = block.getBoundingClientRect();
  const cut = [...block.querySelectorAll('*')].filter(
    (element) => element.scrollWidth > element.clientWidth + 1 && element.clientWidth > 0
  ).length;
  return {text: block.innerText, left: box.left, right: box.right, width: innerWidth, cut: cut};
})()
"""


@pytest.mark.parametrize(
    "screen",
    [
        {"width": 1366, "height": 768, "mobile": False},
        {"width": 414, "height": 896, "mobile": True},
    ],
    ids=["laptop", "phone"],
)
def test_the_freshness_notes_are_shown_whole_on_a_laptop_and_a_phone(
    served, tmp_path, screen, monkeypatch
):
    """A real Chromium: the warning and the line wrap inside the page, nothing cut or hidden."""
    [(data_end,)] = served.serving_query("SELECT data_end FROM gold.budget_plan_summary")
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(served.serving),
        "LM_ENDPOINT": "http://127.0.0.1:9/v1",
    }
    with (
        streamlit_server(DASHBOARD, env, tmp_path / "streamlit.log") as (url, _),
        contextmanager(chromium_page)(tmp_path) as devtools,
    ):
        devtools("Emulation.setDeviceMetricsOverride", deviceScaleFactor=1, **screen)
        devtools("Page.navigate", url=url)

        def notes_with_the_warning():
            found = evaluate(devtools, FRESHNESS_BOX)
            return found if found and "Load newer" in found["text"] else None

        box = wait_for(notes_with_the_warning, 60, "the freshness notes")
    text = " ".join(box["text"].split())
    assert f"The data ends {data_end:%d %b %Y}" in text
    assert "Load newer files to plan ahead." in text
    assert f"Data to {data_end:%a %d %b %Y} · Models trained through" in text
    assert 0 <= box["left"] < box["right"] <= box["width"] == screen["width"], box
    assert box["cut"] == 0, box
