"""Campaign budgets: the audience file's campaign columns reach the plan's state, and a
campaign-level budget is planned as one unit (planning.campaigns)."""

import io
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from app.budget_plan import plan_csv
from marketing_ml.contract import AUDIENCE_SEGMENTS
from marketing_ml.defs.planning.plan_assets import current_state_sql
from marketing_ml.sample_data import make_population, reference_spend, write_sample_data
from marketing_ml_tests.support.lakehouse import Lakehouse
from planning import PlanSettings, build_plan
from planning.campaigns import (
    ad_set_spend,
    budget_units,
    campaign_revenue,
    unit_bounds,
    unit_curves,
    unit_spend,
)
from planning.curves import hill_marginal, hill_revenue

UP_TO_GOLD = dg.AssetSelection.assets(["gold", "daily_adset_metrics"]).upstream()

IDS = ["AS_1", "AS_2", "AS_3", "AS_4", "AS_5", "AS_6", "AS_7"]
CAMPAIGNS = ["C1", "C1", None, "C1", "C2", "C3", "C3"]
LEVELS = ["campaign", "campaign", "ad_set", "campaign", "ad_set", None, "campaign"]
CURRENT = [100.0, 300.0, 50.0, 600.0, 80.0, 40.0, 0.0]


def example_units(**options):
    return budget_units(IDS, CAMPAIGNS, LEVELS, CURRENT, **options)


def test_a_campaign_level_budget_is_one_unit_and_every_other_ad_set_its_own():
    """C2 is at ad-set level, and C3's level is blank for AS_6: they stay ad-set units; C3's
    one campaign-level ad set is a campaign unit of one."""
    units = example_units(
        ad_set_name=[f"name {i}" for i in IDS], campaign_name=["Spring", "Spring"] + [None] * 5
    )
    assert list(units.unit_ids) == ["C1", "AS_3", "AS_5", "AS_6", "C3"]
    assert list(units.unit_levels) == ["campaign", "ad_set", "ad_set", "ad_set", "campaign"]
    assert list(units.unit_names) == ["Spring", "name AS_3", "name AS_5", "name AS_6", "C3"]
    assert list(units.unit_of) == [0, 0, 1, 0, 2, 3, 4]
    np.testing.assert_allclose(units.shares[[0, 1, 3]], [0.1, 0.3, 0.6])
    np.testing.assert_allclose(units.unit_current, [1000.0, 50.0, 80.0, 40.0, 0.0])


def test_shares_sum_to_one_per_campaign_and_are_equal_when_it_spent_nothing():
    units = budget_units(
        ["A", "B", "C", "D"], ["X", "X", "Y", "Y"], ["campaign"] * 4, [0, 0, 5, 15]
    )
    np.testing.assert_allclose(np.bincount(units.unit_of, weights=units.shares), [1.0, 1.0])
    np.testing.assert_allclose(units.shares, [0.5, 0.5, 0.25, 0.75])


def test_spend_round_trips_between_ad_sets_and_units():
    units = example_units()
    np.testing.assert_allclose(ad_set_spend(units, unit_spend(units, CURRENT)), CURRENT)
    planned = np.array([1500.0, 60.0, 70.0, 44.0, 12.0])
    spend = ad_set_spend(units, planned)
    np.testing.assert_allclose(unit_spend(units, spend), planned)
    np.testing.assert_allclose(spend[[0, 1, 3]], [150.0, 450.0, 900.0])


def test_an_ad_set_without_a_curve_keeps_its_spend_outside_its_campaign():
    """AS_2 (new) is fixed at £300: C1's unit is AS_1 and AS_4 at their split (1:6), its curve
    theirs alone; a campaign none of whose ad sets has a curve has no curve."""
    has_curve = [True, False, True, True, True, True, False]
    units = example_units(has_curve=has_curve)
    assert list(units.fixed) == [False, True, False, False, False, False, False]
    np.testing.assert_allclose(units.shares[[0, 1, 3]], [1 / 7, 0.0, 6 / 7])
    np.testing.assert_allclose(units.unit_current[0], 700.0)
    spend = ad_set_spend(units, [1400.0, 50.0, 80.0, 40.0, 0.0])
    np.testing.assert_allclose(spend[:4], [200.0, 300.0, 50.0, 1200.0])
    vmax = np.array([500.0, np.nan, 200.0, 3000.0, 300.0, 100.0, np.nan])
    half = np.array([150.0, np.nan, 60.0, 700.0, 90.0, 30.0, np.nan])
    shape = np.array([0.8, np.nan, 0.9, 0.7, 1.0, 0.6, np.nan])
    curves = unit_curves(units, vmax, half, shape)
    grid = np.array([300.0, 700.0, 1500.0])
    members = [0, 3]
    summed = campaign_revenue(
        grid, units.shares[members], vmax[members], half[members], shape[members]
    )
    fitted = hill_revenue(grid, curves.vmax[0], curves.half_saturation[0], curves.shape[0])
    np.testing.assert_allclose(fitted, summed, rtol=0.02)
    assert np.isnan(curves.vmax[4]) and np.isnan(curves.fit_error[4])
    assert (curves.vmax[1], curves.half_saturation[1], curves.shape[1]) == (200.0, 60.0, 0.9)


def test_a_campaign_of_one_ad_set_is_its_curve_exactly():
    units = budget_units(
        ["A", "B"], ["X", "X"], ["campaign"] * 2, [100.0, 0.0], has_curve=[True, False]
    )
    curves = unit_curves(units, [400.0, np.nan], [120.0, np.nan], [0.7, np.nan])
    assert curves.fit_error[0] == 0.0
    assert (curves.vmax[0], curves.half_saturation[0], curves.shape[0]) == (400.0, 120.0, 0.7)


def test_the_fitted_campaign_curve_is_within_two_percent_of_the_summed_curves():
    """On the sample generator's own curves and campaigns at 2,000 ad sets: the worst relative
    error of any campaign's fit over 0.25x-3x its spend, and its marginal ROAS at today's spend."""
    population, curves, _ = make_population(42, 2000)
    campaign_id, _, level = zip(*population.campaigns, strict=True)
    units = budget_units(population.ids, campaign_id, level, reference_spend(population))
    fitted = unit_curves(units, curves.vmax, curves.half_saturation, curves.shape)
    campaigns = np.flatnonzero(units.is_campaign)
    assert len(campaigns) > 100
    assert np.max(fitted.fit_error[campaigns]) < 0.02
    for unit in campaigns[:40]:
        members = units.members(unit)
        current = units.unit_current[unit]
        grid = current * np.geomspace(0.25, 3.0, 200)
        args = (curves.vmax[members], curves.half_saturation[members], curves.shape[members])
        summed = campaign_revenue(grid, units.shares[members], *args)
        own = hill_revenue(
            grid, fitted.vmax[unit], fitted.half_saturation[unit], fitted.shape[unit]
        )
        assert np.max(np.abs(own / summed - 1)) < 0.02
        marginal = np.sum(
            units.shares[members] * hill_marginal(units.shares[members] * current, *args)
        )
        unit_marginal = hill_marginal(
            current, fitted.vmax[unit], fitted.half_saturation[unit], fitted.shape[unit]
        )
        assert unit_marginal == pytest.approx(marginal, rel=0.03)


def test_a_campaign_is_bounded_by_its_first_ad_set_to_reach_its_bound():
    units = example_units()
    lower = np.array([50.0, 150.0, 25.0, 300.0, 40.0, 20.0, 0.0])
    upper = np.array([200.0, 450.0, 75.0, 1200.0, 120.0, 60.0, 30.0])
    unit_lower, unit_upper = unit_bounds(units, lower, upper)
    np.testing.assert_allclose(unit_lower, [500.0, 25.0, 40.0, 20.0, 0.0])
    np.testing.assert_allclose(unit_upper, [1500.0, 75.0, 120.0, 60.0, 30.0])
    at_upper = ad_set_spend(units, unit_upper)
    assert np.all(at_upper <= upper + 1e-9)
    assert np.isclose(at_upper[[0, 1, 3]], upper[[0, 1, 3]]).any()
    # AS_2 (share 0.3) may not fall below 270: the campaign cannot go below 900
    lower[1] = 270.0
    unit_lower, _ = unit_bounds(units, lower, upper)
    assert unit_lower[0] == pytest.approx(900.0)
    at_lower = ad_set_spend(units, unit_lower)
    assert np.all(at_lower[[0, 1, 3]] >= lower[[0, 1, 3]] - 1e-9), "no ad set below its bound"


def write_daily(connection, rows: list[tuple]) -> str:
    connection.execute(
        "CREATE TABLE daily (date DATE, ad_set_id VARCHAR, ad_set_name VARCHAR, "
        "daily_budget DOUBLE, campaign_id VARCHAR, campaign_name VARCHAR, budget_level VARCHAR, "
        "spend DOUBLE, revenue DOUBLE)"
    )
    connection.executemany("INSERT INTO daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return "daily"


def test_current_state_carries_each_ad_sets_campaign_and_budget_level():
    connection = duckdb.connect()
    rows = []
    for day in pd.date_range("2025-03-01", periods=10):
        rows.append((day.date(), "AS_1", "One", 100.0, "C1", "Spring", "campaign", 90.0, 300.0))
        rows.append((day.date(), "AS_2", "Two", 50.0, None, None, None, 45.0, 100.0))
    state = connection.execute(current_state_sql(write_daily(connection, rows))).df()
    assert list(state["campaign_id"].fillna("")) == ["C1", ""]
    assert list(state["campaign_name"].fillna("")) == ["Spring", ""]
    assert list(state["budget_level"]) == ["campaign", "ad_set"]


def current_state(lakehouse: Lakehouse) -> pd.DataFrame:
    with duckdb.connect(str(lakehouse.database), read_only=True) as connection:
        return connection.execute(current_state_sql("gold.daily_adset_metrics")).df()


def gold_state(lakehouse: Lakehouse) -> pd.DataFrame:
    result = lakehouse.materialize(selection=UP_TO_GOLD)
    assert result.success
    return current_state(lakehouse)


def test_the_sample_datas_campaigns_reach_the_plans_state(tmp_path: Path):
    lakehouse = Lakehouse(
        tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "serving.duckdb"
    )
    write_sample_data(lakehouse.raw_dir, ad_sets=12, days=30, seed=3)
    state = gold_state(lakehouse).set_index("ad_set_id")
    audience = pd.read_csv(
        lakehouse.raw_dir / AUDIENCE_SEGMENTS.file_name, encoding="utf-8-sig", dtype=str
    ).set_index("ad_set_id")
    assert set(audience["budget_level"]) == {"ad_set", "campaign"}
    for column in AUDIENCE_SEGMENTS.optional_columns:
        assert state[column].to_dict() == audience.loc[state.index, column].to_dict()


def test_a_file_without_campaign_columns_plans_every_ad_set_at_its_own_budget(clean_build):
    state = current_state(clean_build.lakehouse)
    assert len(state) > 0
    assert state["campaign_id"].isna().all() and state["campaign_name"].isna().all()
    assert (state["budget_level"] == "ad_set").all()


def campaign_plan_frame() -> pd.DataFrame:
    """Six ad sets with curves of different strength: three share campaign C1's budget, the
    others have their own; every budget is known and spend follows it."""
    rng = np.random.default_rng(7)
    current = np.array([400.0, 250.0, 350.0, 300.0, 500.0, 200.0])
    return pd.DataFrame(
        {
            "ad_set_id": [f"AS_{i}" for i in range(6)],
            "ad_set_name": [f"Set {i}" for i in range(6)],
            "campaign_id": ["C1", "C1", "C1", "C2", "C3", "C4"],
            "campaign_name": ["Spring", "Spring", "Spring", None, None, None],
            "budget_level": ["campaign", "campaign", "campaign", "ad_set", "ad_set", "ad_set"],
            "current_spend": current,
            "daily_budget": current,
            "planned_budget": current,
            "vmax": current * rng.uniform(3.0, 9.0, 6),
            "half_saturation": current * rng.uniform(0.6, 1.6, 6),
            "shape": np.ones(6),
            "fit": "own",
        }
    )


def test_a_campaign_budget_moves_its_ad_sets_together_and_is_exported_once():
    settings = PlanSettings(min_move=0.0, min_move_share=0.0, max_daily_change=1.0)
    plan = build_plan(campaign_plan_frame(), None, settings).ad_sets
    members = plan[plan["budget_level"] == "campaign"]
    ratio = members["target_spend"] / members["current_spend"]
    assert ratio.max() - ratio.min() < 1e-9, "the platform's split is kept"
    assert abs(ratio.iloc[0] - 1) > 0.01, "the campaign moves"
    assert members["current_daily_budget"].nunique() == 1, "one budget: the campaign's"
    assert members["current_daily_budget"].iloc[0] == pytest.approx(1000.0)
    assert all("campaign's daily budget" in reason for reason in members["reason"])
    assert plan["budget_level"].tolist()[3:] == ["ad_set"] * 3
    exported = pd.read_csv(io.StringIO(plan_csv(plan, settings, date(2025, 3, 29))))
    [campaign] = exported[exported["budget_level"] == "campaign"].itertuples()
    assert campaign.campaign_id == "C1" and pd.isna(campaign.ad_set_id)
    assert campaign.new_daily_budget == pytest.approx(members["new_daily_budget"].iloc[0], 0.01)
    assert campaign.expected_spend == pytest.approx(members["recommended_spend"].sum(), abs=0.05)


def test_locking_one_ad_set_of_a_campaign_fixes_the_campaign():
    settings = PlanSettings(locked=("AS_1",), min_move=0.0, min_move_share=0.0)
    plan = build_plan(campaign_plan_frame(), None, settings).ad_sets
    members = plan[plan["campaign_id"] == "C1"]
    np.testing.assert_allclose(members["recommended_spend"], members["current_spend"])
    assert plan.loc[plan["campaign_id"] != "C1", "budget_change"].abs().max() > 0.005


def test_no_ad_set_of_a_campaign_leaves_its_own_bounds_when_one_is_pooled():
    """A pooled ad set moves at most 10%: its campaign moves no further, up or down (found at
    2,000 ad sets, where a cut campaign took its pooled ad set 20% below its bound)."""
    frame = campaign_plan_frame().assign(fit=["own", "pooled", "own", "own", "own", "own"])
    for scenario in ("same_budget", "target_roas", "same_revenue"):
        plan = build_plan(frame, None, PlanSettings(scenario=scenario, max_daily_change=1.0))
        rows = plan.ad_sets
        for spend in ("recommended_spend", "target_spend"):
            assert (rows[spend] >= rows["lower_bound"] - 0.005).all(), (scenario, spend)
            assert (rows[spend] <= rows["upper_bound"] + 0.005).all(), (scenario, spend)
