"""Plan settings outside their ranges are refused, naming the field, before anything is planned
or written (issue 20, item 6): by `PlanSettings` itself (planning.settings, the one place the
values are checked), by the plan's run config before the plan step writes, and by the What-if,
with the same message. Locks and caps naming ad sets that are not planned are refused too.
"""

import json
import math
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import queries
from app.budget_plan import PublishedPlan, load_curves, replan
from app.text import unescape_markdown
from marketing_ml.defs.planning.plan_assets import (
    BUDGET_PLAN,
    BUDGET_PLAN_SUMMARY,
    BudgetPlanConfig,
)
from marketing_ml_tests.support.dashboard_harness import CLOSED_PORT_ENDPOINT, DASHBOARD
from marketing_ml_tests.support.lakehouse import Lakehouse, check_outcomes, write_clean_raw_dir
from planning import PlanSettings, PlanSettingsError
from planning.settings import (
    LOWER_FACTOR_RANGE,
    MARGIN_RANGE,
    MAX_DAILY_CHANGE_RANGE,
    MIN_TOTAL,
    PERIOD_DAYS_RANGE,
    TARGET_ROAS_RANGE,
    UPPER_FACTOR_RANGE,
)

NAN, INF = math.nan, math.inf
CONFIG = "ops.gold__budget_plan.config"
PUBLISHED_CONFIG = {"locked_ad_sets": ["AS_002"], "daily_budget_caps": {"AS_001": 300.0}}
"""The fixture's plan is made with a lock and a cap, as a run config would set them."""


# ------------------------------------------------------------------------- the values alone
@pytest.mark.parametrize(
    ("settings", "field", "found"),
    [
        ({"total": NAN}, "fixed_total", "NaN is not a number"),
        ({"total": INF}, "fixed_total", "infinity is not a finite number"),
        ({"total": -INF}, "fixed_total", "-infinity is not a finite number"),
        ({"total": -500.0}, "fixed_total", "-500 is below 1"),
        ({"total": 0.0}, "fixed_total", "0 is below 1"),
        ({"target_marginal_roas": NAN}, "target_marginal_roas", "NaN is not a number"),
        ({"target_marginal_roas": INF}, "target_marginal_roas", "infinity is not a finite"),
        ({"target_marginal_roas": -INF}, "target_marginal_roas", "-infinity is not a finite"),
        ({"target_marginal_roas": -2.0}, "target_marginal_roas", "-2 is below 0.1"),
        ({"target_marginal_roas": 0.0}, "target_marginal_roas", "0 is below 0.1"),
        ({"lower_factor": NAN}, "lower_factor", "NaN is not a number"),
        ({"lower_factor": -INF}, "lower_factor", "-infinity is not a finite number"),
        ({"lower_factor": -0.1}, "lower_factor", "-0.1 is below 0"),
        ({"lower_factor": 1.2, "upper_factor": 1.1}, "lower_factor", "1.2 is above 1"),
        ({"upper_factor": NAN}, "upper_factor", "NaN is not a number"),
        ({"upper_factor": INF}, "upper_factor", "infinity is not a finite number"),
        ({"lower_factor": 0.5, "upper_factor": 0.4}, "upper_factor", "0.4 is below 1"),
        ({"upper_factor": 0.0}, "upper_factor", "0 is below 1"),
        ({"upper_factor": 10.0}, "upper_factor", "10 is above 3"),
        ({"budget_caps": (("AS_001", NAN),)}, "daily_budget_caps", "'AS_001': NaN"),
        ({"budget_caps": (("AS_001", INF),)}, "daily_budget_caps", "'AS_001': infinity"),
        ({"budget_caps": (("AS_001", -5.0),)}, "daily_budget_caps", "'AS_001': -5"),
        ({"scenario": "most_revenue"}, "scenario", "'most_revenue' is not a scenario"),
        ({"margin": 0.0}, "margin", "0 is below 0.01"),
        ({"margin": 1.5}, "margin", "1.5 is above 1"),
        ({"margin": NAN}, "margin", "NaN is not a number"),
        ({"max_daily_change": 0.0}, "max_daily_change", "0 is below 0.01"),
        ({"max_daily_change": 2.0}, "max_daily_change", "2 is above 1"),
        ({"min_move": -1.0}, "min_move", "-1 is below 0"),
        ({"min_move": INF}, "min_move", "infinity is not a finite number"),
        ({"min_move_share": 1.5}, "min_move_share", "1.5 is above 1"),
        ({"max_moves": 0}, "max_moves", "0 is below 1"),
        ({"max_moves": 2.5}, "max_moves", "2.5 is not a whole number"),
        ({"max_moves": NAN}, "max_moves", "NaN is not a number"),
        ({"period_days": 0}, "period_days", "0 is below 1"),
        ({"period_days": 92}, "period_days", "92 is above 91"),
        ({"period_days": 7.5}, "period_days", "7.5 is not a whole number"),
    ],
)
def test_a_value_outside_its_range_is_refused_naming_the_field(settings, field, found):
    with pytest.raises(PlanSettingsError) as refused:
        PlanSettings(**settings)
    assert refused.value.fields == [field]
    message = str(refused.value)
    assert message.startswith(f"{field}: ")
    assert found in message
    assert "; set " in message or "; choose " in message, "the message says what to set instead"


def test_every_problem_is_named_on_its_own_line():
    with pytest.raises(PlanSettingsError) as refused:
        PlanSettings(
            total=NAN, upper_factor=INF, budget_caps=tuple((f"AS_{i}", -1.0) for i in range(7))
        )
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "upper_factor",
        "fixed_total",
        "daily_budget_caps",
    ]
    assert "7 caps are not a finite number of £0 or more" in lines[2]
    assert "'AS_4': -1 and 2 more" in lines[2], "at most five named, the rest counted"


def test_the_ends_of_every_range_are_accepted():
    PlanSettings(target_marginal_roas=0.1, lower_factor=0.0, upper_factor=UPPER_FACTOR_RANGE[1])
    PlanSettings(target_marginal_roas=50, lower_factor=1.0, upper_factor=1.0, total=1)
    PlanSettings(budget_caps=(("AS_001", 0.0),), total=None)
    PlanSettings(margin=0.01, max_daily_change=0.01, min_move=0, min_move_share=0, period_days=1)
    PlanSettings(margin=1, max_daily_change=1, min_move_share=1, max_moves=1, period_days=91)


def test_the_target_defaults_to_break_even_never_to_the_average_roas_target():
    assert PlanSettings().target == pytest.approx(1 / 0.40)
    assert PlanSettings(margin=0.25).break_even_roas == pytest.approx(4.0)
    assert PlanSettings(margin=0.25, target_marginal_roas=3.0).target == 3.0
    # A margin so thin that break-even is past the range a set target may take is still a plan.
    assert PlanSettings(margin=0.01).target == pytest.approx(100.0)


def test_locks_and_caps_naming_ad_sets_not_planned_are_refused_naming_them():
    settings = PlanSettings(
        locked=tuple(f"AS_9{i:02d}" for i in range(7)) + ("AS_001",),
        budget_caps=(("AS_002", 100.0), ("as_003", 50.0)),
    )
    with pytest.raises(PlanSettingsError) as refused:
        settings.check_ad_sets(["AS_001", "AS_002", "AS_003"], "with spend in the window")
    locks, caps = str(refused.value).splitlines()
    assert locks.startswith(
        "locked_ad_sets: 7 ad sets are not among the 3 ad sets with spend in the window: "
        "'AS_900', 'AS_901', 'AS_902', 'AS_903', 'AS_904' and 2 more;"
    )
    assert caps.startswith("daily_budget_caps: 1 ad set is not among the 3 ad sets")
    assert "'as_003'" in caps and "e.g. 'AS_001'" in caps
    PlanSettings(locked=("AS_001",)).check_ad_sets(["AS_001"], "planned")


def test_the_run_config_refuses_a_nan_total_naming_its_path():
    with pytest.raises(dg.Failure) as refused:
        BudgetPlanConfig(fixed_total=NAN).settings()
    assert refused.value.description.startswith(
        f"{CONFIG}.fixed_total: NaN is not a number; set a total in £ per day of at least £1, "
        "or leave it unset for today's total"
    )


# ---------------------------------------------------------------- a run on a real lakehouse
@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> Lakehouse:
    """The three-week fixture's graph materialized once, its plan made with a lock and a cap."""
    root = tmp_path_factory.mktemp("plan_settings")
    lakehouse = Lakehouse(
        write_clean_raw_dir(root / "raw"), root / "lakehouse.duckdb", root / "serving.duckdb"
    )
    definitions = lakehouse.definitions
    result = dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources=definitions.resources,
        run_config={"ops": {"gold__budget_plan": {"config": PUBLISHED_CONFIG}}},
        raise_on_error=False,
    )
    assert result.success
    return lakehouse


def stored_plan(lakehouse: Lakehouse) -> tuple[pd.DataFrame, pd.DataFrame]:
    with duckdb.connect(str(lakehouse.database), read_only=True) as connection:
        return tuple(
            connection.execute(f"SELECT * FROM {table} ORDER BY ALL").df()
            for table in ("gold.budget_plan", "gold.budget_plan_summary")
        )


def plan_run(lakehouse: Lakehouse, config_json: str) -> dg.ExecuteInProcessResult:
    """The plan step alone with a run config as `dagster asset materialize --config-json`
    reads it (Python's json takes NaN and Infinity)."""
    definitions = lakehouse.definitions
    return dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources=definitions.resources,
        selection=dg.AssetSelection.assets(BUDGET_PLAN, BUDGET_PLAN_SUMMARY),
        run_config=json.loads(config_json),
        raise_on_error=False,
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            '{"fixed_total": NaN}',
            [
                f"{CONFIG}.fixed_total: NaN is not a number; set a total in £ per day of at "
                "least £1, or leave it unset for today's total"
            ],
        ),
        (
            '{"upper_factor": Infinity, "daily_budget_caps": {"AS_001": -1}}',
            [f"{CONFIG}.upper_factor: infinity is not", f"{CONFIG}.daily_budget_caps: 1 cap"],
        ),
        (
            '{"locked_ad_sets": ["AS_001", "AS_999"], "daily_budget_caps": {"AS_404": 10}}',
            [
                f"{CONFIG}.locked_ad_sets: 1 ad set is not among the 3 ad sets with spend in "
                "the last 180 days of gold.daily_adset_metrics: 'AS_999';",
                f"{CONFIG}.daily_budget_caps: 1 ad set is not among the 3 ad sets",
            ],
        ),
    ],
)
def test_a_bad_run_config_fails_the_plan_step_and_writes_nothing(planned, config, expected):
    before = stored_plan(planned)
    result = plan_run(planned, f'{{"ops": {{"gold__budget_plan": {{"config": {config}}}}}}}')
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == "gold__budget_plan"
    message = failure.step_failure_data.user_failure_data.description
    *problems, outcome = message.splitlines()
    assert len(problems) == len(expected), message
    for line, start in zip(problems, expected, strict=True):
        assert line.startswith(start), message
    assert outcome == (
        "The plan was not made: gold.budget_plan and gold.budget_plan_summary are unchanged."
    )
    assert not result.get_asset_materialization_events()
    assert not check_outcomes(result), "the plan's checks never ran on a plan never made"
    for was, now in zip(before, stored_plan(planned), strict=True):
        pd.testing.assert_frame_equal(now, was)


# ------------------------------------------------------------------------------ the What-if
@pytest.fixture
def app_env(planned: Lakehouse, monkeypatch) -> Lakehouse:
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(planned.serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    yield planned
    st.cache_data.clear()


def whatif(session: dict | None = None) -> AppTest:
    app = AppTest.from_file(DASHBOARD, default_timeout=60)
    app.session_state["tab"] = "What-if"
    for key, value in (session or {}).items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def test_the_whatif_opens_at_the_published_settings_caps_included(app_env):
    app = whatif()
    assert any("published plan's settings" in caption.value for caption in app.caption)
    assert app.multiselect(key="plan_locked").value == ["AS_002"]


def test_the_whatif_inputs_offer_exactly_the_ranges_a_run_accepts(app_env):
    app = whatif()
    target, total = app.number_input(key="plan_target"), app.number_input(key="plan_total")
    lower, upper = app.slider(key="plan_lower"), app.slider(key="plan_upper")
    assert (target.min, target.max) == TARGET_ROAS_RANGE
    assert (lower.min, lower.max) == LOWER_FACTOR_RANGE
    assert (upper.min, upper.max) == UPPER_FACTOR_RANGE
    assert total.min == MIN_TOTAL
    margin, step = app.number_input(key="plan_margin"), app.number_input(key="plan_step")
    period, moves = app.number_input(key="plan_period"), app.number_input(key="plan_moves")
    assert (margin.min / 100, margin.max / 100) == MARGIN_RANGE
    assert (step.min / 100, step.max / 100) == MAX_DAILY_CHANGE_RANGE
    assert (period.min, period.max) == PERIOD_DAYS_RANGE
    assert moves.min == 1 and moves.value is None, "automatic N unless set"


def test_the_whatif_refuses_a_value_a_run_would_refuse_with_the_same_message(app_env):
    app = whatif({"plan_total": NAN})
    [error] = app.error
    assert unescape_markdown(error.value) == (
        "fixed_total: NaN is not a number; set a total in £ per day of at least £1, or leave it "
        "unset for today's total"
    )
    assert not [frame for frame in app.get("dataframe") if "role" in frame.value], "no plan shown"


def test_replanning_refuses_locks_and_caps_naming_ad_sets_not_in_the_plan(planned):
    found = PublishedPlan.from_tables(queries.published_plan(Path(planned.serving)))
    curves = load_curves(queries.response_curves(Path(planned.serving)), found)
    assert curves.settings == PlanSettings(locked=("AS_002",), budget_caps=(("AS_001", 300.0),))
    with pytest.raises(PlanSettingsError) as refused:
        replan(curves, PlanSettings(locked=("AS_999",)))
    assert str(refused.value).startswith(
        "locked_ad_sets: 1 ad set is not among the 3 ad sets being re-planned: 'AS_999';"
    )
