"""A plan for a period (planning/period.py): days priced at their weekday, one total with a range."""

import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from marketing_ml_tests.support.planning_cases import curves_frame, random_case
from planning import PlanSettings, build_plan
from planning.calendar import WEEKDAY_COLUMNS, priced_for_day
from planning.claims import claim
from planning.curves import hill_revenue
from planning.period import DAY_COLUMNS, ROW_COLUMNS, SUMMARY_FIELDS, price_period

PLANTED = np.array([1.15, 1.05, 1.0, 0.95, 0.9, 0.8, 1.15]) / np.mean(
    [1.15, 1.05, 1.0, 0.95, 0.9, 0.8, 1.15]
)
WEDNESDAY = date(2025, 3, 26)
MARGIN = 0.4


def world(seed: int = 1, n: int = 40, width: int = 200, factors=None, demand: float = 1.0):
    """Curves as stored (the average day's, weekday factors and demand level beside them) and
    bootstrap draws around them."""
    rng = np.random.default_rng(seed)
    vmax, half, shape, current = random_case(seed, n, concave=True)
    curves = curves_frame(vmax, half, shape, current)
    if factors is not None:
        for column, factor in zip(WEEKDAY_COLUMNS, factors, strict=True):
            curves[column] = factor
    curves["demand_level"] = demand
    draws = {
        "vmax": vmax[:, None] * np.exp(0.1 * rng.standard_normal((n, width))),
        "half_saturation": half[:, None] * np.exp(0.1 * rng.standard_normal((n, width))),
        "shape": np.repeat(shape[:, None], width, axis=1),
    }
    return curves, draws


def priced(curves: pd.DataFrame, draws: dict, day) -> tuple[pd.DataFrame, dict]:
    """The curves and draws priced for `day`, as budget_plan and the What-if price them."""
    frame, factor = priced_for_day(curves, day)
    return frame, {**draws, "vmax": draws["vmax"] * factor}


def ramp(current: np.ndarray, target: np.ndarray, days: int, step: float = 0.2) -> np.ndarray:
    """Each ad set's spend moving at most `step` a day toward its target, then holding it."""
    path = np.empty((len(current), days))
    spend = current.astype(float)
    for day in range(days):
        spend = np.clip(target, spend * (1 - step), spend * (1 + step))
        path[:, day] = spend
    return path


def planned_ramp(curves: pd.DataFrame, draws: dict, days: int) -> np.ndarray:
    plan = build_plan(curves, settings=PlanSettings(), draws=draws).ad_sets
    target = plan["recommended_spend"].to_numpy()
    return ramp(plan["current_spend"].to_numpy(), target, days)


def test_the_period_has_its_columns_days_and_dates():
    curves, draws = world(factors=PLANTED)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    period = price_period(curves, current, planned_ramp(curves, draws, 7), WEDNESDAY, MARGIN, draws)
    assert tuple(period.days.columns) == DAY_COLUMNS
    assert tuple(period.rows.columns) == ROW_COLUMNS
    assert tuple(period.summary) == SUMMARY_FIELDS
    assert list(period.days["date"]) == [WEDNESDAY + timedelta(days=d) for d in range(7)]
    assert list(period.days["weekday"])[:2] == ["wednesday", "thursday"]
    assert period.summary["period_days"] == 7
    assert period.summary["period_start"] == WEDNESDAY
    assert period.summary["period_end"] == date(2025, 4, 1)
    assert list(period.rows["ad_set_id"]) == list(curves["ad_set_id"])


def test_the_period_totals_are_the_sums_of_its_days_and_of_its_ad_sets():
    curves, draws = world(factors=PLANTED, demand=1.1)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    path = planned_ramp(curves, draws, 28)
    period = price_period(curves, current, path, WEDNESDAY, MARGIN, draws)
    days, rows, summary = period.days, period.rows, period.summary
    assert summary["period_spend"] == pytest.approx(days["spend"].sum(), rel=1e-12)
    assert summary["period_spend"] == pytest.approx(rows["period_spend"].sum(), rel=1e-12)
    assert summary["period_spend"] == pytest.approx(path.sum(), rel=1e-12)
    assert summary["period_spend_current"] == pytest.approx(28 * current.sum(), rel=1e-12)
    assert summary["period_revenue"] == pytest.approx(days["revenue"].sum(), rel=1e-12)
    assert summary["period_revenue"] == pytest.approx(rows["period_revenue"].sum(), rel=1e-12)
    assert summary["period_revenue_current"] == pytest.approx(
        days["revenue_current"].sum(), rel=1e-12
    )
    assert summary["period_uplift"] == pytest.approx(days["uplift"].sum(), rel=1e-9)
    assert summary["period_profit_uplift"] == pytest.approx(days["profit_uplift"].sum(), rel=1e-9)
    assert summary["period_uplift"] > 0, "the plan's ramp must be worth something here"


def test_keeping_todays_spend_is_no_uplift_in_any_draw():
    curves, draws = world(factors=PLANTED)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    flat = np.repeat(current[:, None], 28, axis=1)
    period = price_period(curves, current, flat, WEDNESDAY, MARGIN, draws)
    for figure in ("uplift", "uplift_low", "uplift_high", "profit_uplift"):
        assert (period.days[figure] == 0).all(), figure
        assert period.summary[f"period_{figure}"] == 0, figure
    assert period.summary["period_revenue"] == period.summary["period_revenue_current"]
    assert period.summary["period_profit_uplift_low"] == 0
    assert period.summary["period_profit_uplift_high"] == 0


def test_without_weekday_factors_the_period_is_days_times_the_daily_plan():
    curves, draws = world()
    plan = build_plan(curves, settings=PlanSettings(), draws=draws)
    rows = plan.ad_sets
    recommended = rows["recommended_spend"].to_numpy()
    held = np.repeat(recommended[:, None], 28, axis=1)
    period = price_period(curves, rows["current_spend"], held, WEDNESDAY, MARGIN, draws)
    np.testing.assert_allclose(
        period.rows["period_revenue"], 28 * rows["expected_revenue_recommended"], rtol=1e-12
    )
    np.testing.assert_allclose(period.rows["period_spend"], 28 * recommended, rtol=1e-12)
    summary = plan.summary
    assert period.summary["period_revenue"] == pytest.approx(
        28 * summary["revenue_recommended"], rel=1e-12
    )
    assert period.summary["period_revenue_current"] == pytest.approx(
        28 * summary["revenue_current"], rel=1e-12
    )
    # the draws price the period as the daily plan prices a day
    assert period.summary["period_uplift"] == pytest.approx(28 * summary["uplift"], rel=1e-9)
    assert period.summary["period_uplift_low"] == pytest.approx(
        28 * summary["uplift_low"], rel=1e-9
    )
    assert period.summary["period_uplift_high"] == pytest.approx(
        28 * summary["uplift_high"], rel=1e-9
    )


def test_each_day_is_priced_at_its_own_weekday_and_the_demand_is_held():
    """The curves arrive priced for the plan date (its weekday × the demand level): day d is
    priced as a plan made for day d would price it, so a Saturday at 0.78 of the average day
    earns 0.78 / 0.96 of the Wednesday's revenue at the same spend, and the demand level is
    counted once, not once per day."""
    stored, draws = world(factors=PLANTED, demand=1.2)
    curves, _ = priced(stored, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    raised = np.repeat(1.3 * current[:, None], 7, axis=1)
    period = price_period(curves, current, raised, WEDNESDAY, MARGIN)
    ratios = period.days["revenue"] / period.days["revenue"].iloc[0]
    expected = PLANTED[[(2 + d) % 7 for d in range(7)]] / PLANTED[2]
    np.testing.assert_allclose(ratios, expected, rtol=1e-12)
    for offset, day in enumerate(period.days["date"]):
        that_day, _ = priced_for_day(stored, day)
        own = hill_revenue(
            1.3 * current, that_day["vmax"], that_day["half_saturation"], that_day["shape"]
        ).sum()
        assert period.days["revenue"].iloc[offset] == pytest.approx(own, rel=1e-12), day
    assert (period.days["weekday"] == "saturday").sum() == 1


def test_a_ramp_priced_change_by_change_matches_every_day_priced_in_full():
    """The draws are priced only on the days an ad set's spend changes: the same figures as
    pricing every ad set on every day under every draw."""
    stored, draws = world(seed=4, n=30, factors=PLANTED, demand=0.9)
    curves, draws = priced(stored, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    target = current * np.random.default_rng(4).uniform(0.4, 2.2, len(current))
    target[:5] = current[:5]  # some ad sets hold
    path = ramp(current, target, 14)
    period = price_period(curves, current, path, WEDNESDAY, MARGIN, draws)

    multiplier = PLANTED[[(2 + d) % 7 for d in range(14)]] / PLANTED[2]
    v, h, k = (draws[c][:, None, :] for c in ("vmax", "half_saturation", "shape"))
    every_day = hill_revenue(path[:, :, None], v, h, k) * multiplier[None, :, None]
    today = hill_revenue(current[:, None], draws["vmax"], draws["half_saturation"], draws["shape"])
    uplift_draws = every_day.sum(axis=0) - today.sum(axis=0)[None, :] * multiplier[:, None]
    fitted = period.days["revenue"] - period.days["revenue_current"]
    for d in range(14):
        expected = claim(float(fitted.iloc[d]), uplift_draws[d])
        day = period.days.iloc[d]
        assert (day["uplift"], day["uplift_low"], day["uplift_high"]) == pytest.approx(
            (expected.uplift, expected.low, expected.high), rel=1e-9
        )
    total = claim(float(fitted.sum()), uplift_draws.sum(axis=0))
    summary = period.summary
    assert (
        summary["period_uplift"],
        summary["period_uplift_low"],
        summary["period_uplift_high"],
    ) == pytest.approx((total.uplift, total.low, total.high), rel=1e-9)
    per_ad_set = every_day.sum(axis=1)
    spread_low = np.median(per_ad_set, axis=1) - np.percentile(per_ad_set, 5, axis=1)
    np.testing.assert_allclose(
        period.rows["period_revenue"] - period.rows["period_revenue_low"], spread_low, rtol=1e-9
    )


def test_ranges_hold_their_figures_and_widen_with_the_period():
    curves, draws = world(factors=PLANTED)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    widths = []
    for days in (7, 28):
        period = price_period(
            curves, current, planned_ramp(curves, draws, days), WEDNESDAY, MARGIN, draws
        )
        summary, rows, daily = period.summary, period.rows, period.days
        assert summary["period_uplift_low"] <= summary["period_uplift"]
        assert summary["period_uplift"] <= summary["period_uplift_high"]
        assert (daily["uplift_low"] <= daily["uplift"]).all()
        assert (daily["uplift"] <= daily["uplift_high"]).all()
        assert (rows["period_revenue_low"] <= rows["period_revenue"] + 1e-9).all()
        assert (rows["period_revenue"] <= rows["period_revenue_high"] + 1e-9).all()
        assert summary["period_profit_uplift_low"] <= summary["period_profit_uplift"]
        assert summary["period_profit_uplift"] <= summary["period_profit_uplift_high"]
        widths.append(summary["period_uplift_high"] - summary["period_uplift_low"])
    assert widths[0] > 0
    assert widths[1] > 3 * widths[0]


def test_profit_is_margin_times_revenue_less_spend():
    curves, draws = world(factors=PLANTED)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    path = planned_ramp(curves, draws, 14)
    period = price_period(curves, current, path, WEDNESDAY, 0.35, draws)
    rows, days, summary = period.rows, period.days, period.summary
    np.testing.assert_allclose(
        rows["period_profit"], 0.35 * rows["period_revenue"] - rows["period_spend"], rtol=1e-12
    )
    np.testing.assert_allclose(
        days["profit_uplift"],
        0.35 * days["uplift"] - (days["spend"] - days["spend_current"]),
        rtol=1e-12,
    )
    extra = summary["period_spend"] - summary["period_spend_current"]
    assert extra != 0
    for suffix in ("", "_low", "_high"):
        assert summary[f"period_profit_uplift{suffix}"] == pytest.approx(
            0.35 * summary[f"period_uplift{suffix}"] - extra, rel=1e-12
        )


def test_an_ad_set_without_a_curve_keeps_its_spend_and_adds_nothing():
    curves, draws = world(factors=PLANTED)
    curves.loc[3, ["vmax", "half_saturation", "shape"]] = np.nan
    draws = {name: matrix.copy() for name, matrix in draws.items()}
    for matrix in draws.values():
        matrix[3] = np.nan
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    doubled = np.repeat(2 * current[:, None], 7, axis=1)
    period = price_period(curves, current, doubled, WEDNESDAY, MARGIN, draws)
    row = period.rows.iloc[3]
    assert row["period_spend"] == pytest.approx(7 * current[3])
    assert np.isnan(row["period_revenue"]) and np.isnan(row["period_revenue_low"])
    others = np.arange(len(current)) != 3
    assert period.summary["period_spend"] == pytest.approx(
        7 * (2 * current[others].sum() + current[3])
    )
    alone = price_period(
        curves[others].reset_index(drop=True),
        current[others],
        doubled[others],
        WEDNESDAY,
        MARGIN,
        {name: matrix[others] for name, matrix in draws.items()},
    )
    for figure in ("period_revenue", "period_uplift", "period_uplift_low", "period_uplift_high"):
        assert period.summary[figure] == pytest.approx(alone.summary[figure], rel=1e-12), figure


def test_without_draws_the_period_has_no_ranges():
    curves, draws = world(factors=PLANTED)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    path = planned_ramp(curves, draws, 7)
    for none in (None, {name: np.empty((len(curves), 0)) for name in draws}):
        period = price_period(curves, current, path, WEDNESDAY, MARGIN, none)
        summary = period.summary
        fitted = summary["period_revenue"] - summary["period_revenue_current"]
        assert summary["period_uplift"] == pytest.approx(fitted, rel=1e-12)
        assert np.isnan(summary["period_uplift_low"]) and np.isnan(summary["period_uplift_high"])
        assert period.days["uplift_low"].isna().all()
        assert period.rows["period_revenue_low"].isna().all()


def test_a_path_of_the_wrong_shape_is_refused():
    curves, draws = world()
    current = curves["current_spend"].to_numpy()
    with pytest.raises(ValueError, match="spend path"):
        price_period(curves, current, current, WEDNESDAY, MARGIN, draws)
    with pytest.raises(ValueError, match="spend path"):
        price_period(curves, current, np.ones((len(current) - 1, 7)), WEDNESDAY, MARGIN)


def test_a_month_of_two_thousand_ad_sets_is_priced_quickly():
    """Generous bound (the brief's budget is 50 ms; measured ~30-45 ms on a shared machine)."""
    curves, draws = world(seed=2, n=2000, factors=PLANTED)
    curves, draws = priced(curves, draws, WEDNESDAY)
    current = curves["current_spend"].to_numpy()
    path = planned_ramp(curves, draws, 28)
    price_period(curves, current, path, WEDNESDAY, MARGIN, draws)
    started = time.perf_counter()
    period = price_period(curves, current, path, WEDNESDAY, MARGIN, draws)
    assert time.perf_counter() - started < 0.5
    assert np.isfinite(period.summary["period_uplift_low"])
