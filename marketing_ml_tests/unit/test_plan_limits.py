"""The limits a buyer uses (planning/limits.py through build_plan): no budget moves more than
max_daily_change a day on any day of a ramp, no move below the minimum, at most N moves (the
automatic N keeping 90% of the uplift), profit as margin × revenue − spend, and reasons and
headline that say what the limits did."""

import numpy as np
import pytest

from app.plan_headline import headline
from marketing_ml_tests.support.planning_cases import NO_LIMITS, curves_frame, random_case
from planning import SCENARIOS, PlanSettings, build_plan
from planning.delivery import budget_buying
from planning.settings import KEEP_SHARE

TOLERANCE = 1e-7


def delivered_case(seed: int, n: int):
    """Random curves; a third of the ad sets with measured delivery (utilization below 1), some
    of those under a soft cap, and today's daily budget known for all."""
    vmax, half, shape, current = random_case(seed, n, concave=True)
    rng = np.random.default_rng(seed + 100)
    curves = curves_frame(vmax, half, shape, current, daily_budget=current * 1.1)
    measured = rng.random(n) < 1 / 3
    utilization = np.where(measured, rng.uniform(0.8, 1.0, n), np.nan)
    soft = measured & (rng.random(n) < 0.5)
    curves["utilization"] = utilization
    curves["soft_cap"] = np.where(soft, current * rng.uniform(1.8, 3.0, n), np.nan)
    # Today's budget a little off what the delivery model reads for today's spend, as in life.
    curves["planned_budget"] = np.where(measured, 1.02 * current / utilization, np.nan)
    return curves


def daily_budgets(plan) -> np.ndarray:
    """Today's daily budget, then the budget buying each day's spend (ad sets × 1 + days): what
    the day-to-day limit applies to. Through the delivery where it is measured, else in
    proportion to today's budget."""
    rows = plan.ad_sets
    today = rows["current_daily_budget"].to_numpy(float)
    utilization = rows["utilization"].to_numpy(float)[:, None]
    soft_cap = rows["soft_cap"].to_numpy(float)[:, None]
    measured = np.isfinite(utilization)
    path = plan.spend_path
    bought = budget_buying(path, np.where(measured, utilization, 1.0), soft_cap)
    proportional = today[:, None] * path / rows["current_spend"].to_numpy(float)[:, None]
    return np.column_stack([today, np.where(measured, bought, proportional)])


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", range(4))
def test_a_plan_never_breaks_its_limits_on_any_day_of_its_ramp(scenario, seed):
    change = (0.2, 0.1, 0.35, 0.05)[seed]
    settings = PlanSettings(scenario, max_daily_change=change, period_days=91)
    plan = build_plan(delivered_case(seed, 40), settings=settings)
    rows = plan.ad_sets
    current = rows["current_spend"].to_numpy()
    path = np.column_stack([current, plan.spend_path])
    moving = (rows["ramp_days"] > 0).to_numpy()
    budgets = daily_budgets(plan)[moving]
    ratio = budgets[:, 1:] / budgets[:, :-1]
    assert (ratio <= 1 + change + TOLERANCE).all() and (ratio >= 1 - change - TOLERANCE).all()
    unmoved = path[~moving]
    np.testing.assert_array_equal(unmoved, np.repeat(current[~moving, None], path.shape[1], 1))
    assert (path >= rows["lower_bound"].to_numpy()[:, None] - TOLERANCE).all()
    assert (path <= rows["upper_bound"].to_numpy()[:, None] + TOLERANCE).all()
    assert plan.summary["ramp_days"] > 1, "the case needs a ramp to test one"
    np.testing.assert_allclose(plan.spend_path[:, 0], rows["recommended_spend"])
    np.testing.assert_allclose(plan.spend_path[:, -1], rows["target_spend"])
    if scenario == "same_budget":
        np.testing.assert_allclose(path.sum(axis=0), current.sum(), rtol=1e-9)
    moved = np.abs(np.diff(path, axis=1)) > 0.005
    last_move = np.where(moved.any(axis=1), moved.shape[1] - np.argmax(moved[:, ::-1], axis=1), 0)
    np.testing.assert_array_equal(rows["ramp_days"], last_move)
    assert plan.summary["ramp_days"] == rows["ramp_days"].max()


def test_the_new_daily_budget_is_within_the_days_limit_of_todays():
    plan = build_plan(delivered_case(7, 40), settings=PlanSettings(max_daily_change=0.15))
    rows = plan.ad_sets
    share = rows["budget_change_share"]
    assert (share.abs() <= 0.15 + TOLERANCE).all()
    np.testing.assert_allclose(
        rows["budget_change"], rows["new_daily_budget"] - rows["current_daily_budget"]
    )
    kept = rows[rows["role"].isin(["recipient", "donor"])]
    assert (kept["budget_change"].abs() > 0).all()
    still = rows[~rows["role"].isin(["recipient", "donor"])]
    np.testing.assert_allclose(still["new_daily_budget"], still["current_daily_budget"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_move_below_the_minimum_is_made(scenario):
    settings = PlanSettings(scenario, min_move=150.0, min_move_share=0.08, max_moves=40)
    rows = build_plan(delivered_case(3, 40), settings=settings).ad_sets
    moved = rows[rows["role"].isin(["recipient", "donor"])]
    change = moved["target_daily_budget"] - moved["current_daily_budget"]
    assert len(moved) > 0
    assert (change.abs() >= 150.0 - TOLERANCE).all()
    assert ((change / moved["current_daily_budget"]).abs() >= 0.08 - TOLERANCE).all()
    held = rows[rows["held_by"] == "min_move"]
    assert len(held) > 0, "some unlimited moves are small enough to be held"
    assert (held["target_spend"] == held["current_spend"]).all()
    assert (held["role"] == "held").all()
    for reason in held["reason"]:
        assert "below the minimum move (£150 and 8% of its budget a day)" in reason


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_at_most_max_moves_are_made_and_the_rest_are_held_saying_so(scenario):
    settings = PlanSettings(scenario, max_moves=5)
    plan = build_plan(delivered_case(4, 40), settings=settings)
    rows = plan.ad_sets
    moved = rows[rows["role"].isin(["recipient", "donor"])]
    assert 0 < len(moved) <= 5 and plan.summary["moves"] == len(moved)
    assert plan.summary["max_moves"] == 5
    assert (moved["move_rank"] <= 5).all(), "the kept moves are the most valuable"
    held = rows[rows["held_by"] == "max_moves"]
    assert len(held) > 0
    assert (held["move_rank"] > 5).all()
    assert (held["move_value"] <= moved["move_value"].min() + TOLERANCE).all()
    row = held.iloc[0]
    assert f"ranks {int(row.move_rank)} and the plan makes only its 5 most valuable moves" in (
        row.reason
    )
    assert "the plan without limits would" in row.reason
    assert "5 moves worth" in headline(plan.ad_sets, plan.summary)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", range(3))
def test_the_automatic_count_is_the_fewest_moves_keeping_ninety_percent(scenario, seed):
    curves = delivered_case(seed, 60)
    plan = build_plan(curves, settings=PlanSettings(scenario))
    summary = plan.summary
    assert summary["uplift_kept_share"] >= KEEP_SHARE
    count = summary["max_moves"]
    assert 0 < summary["moves"] <= count < 60
    held = plan.ad_sets[plan.ad_sets["held_by"] == "max_moves"]
    assert len(held) > 0
    assert held["reason"].str.contains(f"the plan makes only its {count} most valuable").all()
    fewer = build_plan(curves, settings=PlanSettings(scenario, max_moves=count - 1)).summary
    assert fewer["uplift_kept_share"] < KEEP_SHARE
    unlimited = build_plan(curves, settings=PlanSettings(scenario, **NO_LIMITS)).summary
    assert unlimited["uplift_kept_share"] == pytest.approx(1.0)
    assert summary["uplift_unlimited"] == pytest.approx(unlimited["uplift_unlimited"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_profit_is_margin_times_revenue_less_spend_with_ranges_around_it(scenario):
    vmax, half, shape, current = random_case(8, 30, concave=True)
    rng = np.random.default_rng(8)
    draws = {
        "vmax": vmax[:, None] * np.exp(0.05 * rng.standard_normal((30, 100))),
        "half_saturation": np.repeat(half[:, None], 100, axis=1),
        "shape": np.repeat(shape[:, None], 100, axis=1),
    }
    settings = PlanSettings(scenario, margin=0.3)
    plan = build_plan(curves_frame(vmax, half, shape, current), settings=settings, draws=draws)
    rows, summary = plan.ad_sets, plan.summary
    np.testing.assert_allclose(
        rows["expected_profit_recommended"],
        0.3 * rows["expected_revenue_recommended"] - rows["recommended_spend"],
    )
    np.testing.assert_allclose(
        rows["expected_profit_current"],
        0.3 * rows["expected_revenue_current"] - rows["current_spend"],
    )
    assert (rows["expected_profit_recommended_low"] <= rows["expected_profit_recommended"]).all()
    assert (rows["expected_profit_recommended_high"] >= rows["expected_profit_recommended"]).all()
    assert summary["profit_recommended"] == pytest.approx(
        0.3 * summary["revenue_recommended"] - summary["total_recommended"]
    )
    # The claimed uplift is the draws' mean (planning.claims): profit's claim is priced alike.
    assert summary["profit_uplift"] == pytest.approx(
        0.3 * summary["uplift"] - (summary["total_recommended"] - summary["total_current"])
    )
    assert summary["profit_uplift_low"] <= summary["profit_uplift"] <= summary["profit_uplift_high"]
    assert summary["break_even_roas"] == pytest.approx(1 / 0.3)


def test_the_target_scenario_prices_at_break_even_by_default():
    vmax, half, shape, current = random_case(2, 20, concave=True)
    settings = PlanSettings("target_roas", margin=0.5, **NO_LIMITS)
    plan = build_plan(curves_frame(vmax, half, shape, current), settings=settings)
    assert plan.summary["target_marginal_roas"] == pytest.approx(2.0)
    free = plan.ad_sets[
        (plan.ad_sets["recommended_spend"] > plan.ad_sets["lower_bound"] + 0.01)
        & (plan.ad_sets["recommended_spend"] < plan.ad_sets["upper_bound"] - 0.01)
    ]
    assert len(free) > 0
    np.testing.assert_allclose(free["marginal_roas_recommended"], 2.0, rtol=1e-6)


def test_a_ramp_is_said_as_the_steps_a_buyer_takes():
    plan = build_plan(delivered_case(0, 40), settings=PlanSettings(max_daily_change=0.2))
    rows = plan.ad_sets
    ramped = rows[(rows["ramp_days"] > 1) & (rows["role"] == "recipient")]
    assert len(ramped) > 0
    row = ramped.iloc[0]
    assert (
        f"Raise it by up to 20% a day for {int(row.ramp_days)} days, to a daily budget of "
        f"£{row.target_daily_budget:,.0f}"
    ) in row.reason
    longest = plan.summary["ramp_days"]
    assert f"the longest ramp takes {longest} days at up to 20% a day" in headline(
        plan.ad_sets, plan.summary
    )


def test_an_ad_set_below_the_level_on_average_that_gets_budget_says_why():
    """Average and marginal ROAS disagree: the reason says the next pound is what counts."""
    vmax, half, shape, current = random_case(5, 8, concave=True)
    curves = curves_frame(vmax, half, shape, current)
    curves["recent_spend"] = current
    curves["recent_revenue"] = current * 0.5  # an average ROAS of 0.5× for every ad set
    curves.loc[0, "recent_revenue"] = current[0] * 50.0
    rows = build_plan(curves, settings=PlanSettings(**NO_LIMITS)).ad_sets
    recipients = rows[rows["role"] == "recipient"]
    assert len(recipients) > 0
    for reason in recipients["reason"]:
        assert "Its average ROAS is 0.5×" in reason and "yet it gets budget" in reason
        assert "more than the others' next pound" in reason
    if rows.loc[0, "role"] == "donor":
        assert "yet it gives budget" in rows.loc[0, "reason"]


@pytest.mark.parametrize(
    ("settings", "verb"),
    [
        (PlanSettings("same_budget"), "Move "),
        (PlanSettings("target_roas", target_marginal_roas=5.0), "Cut "),
        (PlanSettings("target_roas", target_marginal_roas=0.5), "Add "),
        (PlanSettings("same_revenue"), "Cut "),
    ],
)
def test_the_headline_is_worded_for_what_the_plan_does(settings, verb):
    plan = build_plan(delivered_case(1, 40), settings=settings)
    text, summary = headline(plan.ad_sets, plan.summary), plan.summary
    assert text.startswith(verb)
    kept = f"{summary['moves']} moves worth {summary['uplift_kept_share']:.0%} of the uplift"
    assert kept in text
    assert " profit" in text and " expected revenue a day" in text
    assert "£" in text and not any(f"£{d}," in text for d in range(1, 10)), (
        "money in prose, not full figures"
    )
    net = summary["total_target"] - summary["total_current"]
    if verb == "Cut ":
        assert net < 0
    if verb == "Add ":
        assert net > 0


def test_an_ad_set_cut_to_nothing_is_paused_at_once_not_ramped_for_weeks():
    """±20% a day never reaches zero: a cut to nothing is a pause, which has no learning phase
    to protect, so it is made on the plan date."""
    vmax, half, shape, current = random_case(6, 10, concave=True)
    shape[0], vmax[0] = 1.0, 0.5 * half[0]  # even its first pound returns 0.5×, below 2.5×
    settings = PlanSettings("target_roas", lower_factor=0.0, period_days=14, max_moves=10)
    plan = build_plan(curves_frame(vmax, half, shape, current), settings=settings)
    row = plan.ad_sets.iloc[0]
    assert row["target_spend"] == 0 and row["recommended_spend"] == 0
    assert row["ramp_days"] == 1
    assert plan.summary["ramp_days"] < 14


def test_a_plan_whose_every_move_is_below_the_minimum_says_so():
    vmax, half, shape, current = random_case(11, 6, concave=True)
    curves = curves_frame(vmax, half, shape, current)
    plan = build_plan(curves, None, PlanSettings(min_move=10 * float(current.max())))
    held = int((plan.ad_sets["role"] == "held").sum())
    assert held > 0 and plan.summary["moves"] == 0
    assert headline(plan.ad_sets, plan.summary).startswith(
        f"Keep the current budgets: the {held} moves the plan found are below the minimum move"
    )


def test_a_plan_without_any_curve_says_so_rather_than_that_no_move_pays():
    vmax, half, shape, current = random_case(3, 4, concave=True)
    curves = curves_frame(vmax, half, shape, current).assign(vmax=np.nan)
    plan = build_plan(curves, None, PlanSettings())
    assert headline(plan.ad_sets, plan.summary) == (
        "Keep the current budgets: no ad set has a response curve yet (their spend has barely "
        "varied), so no move can be priced."
    )
