"""The planning package on its own: curve fits, bounds, and the optimizer against brute force."""

import itertools
import time

import numpy as np
import pandas as pd
import pytest

from app.plan_headline import headline
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support.planning_cases import (
    NO_LIMITS,
    curves_frame,
    drifting_daily,
    random_case,
    synthetic_daily,
)
from planning import PlanSettings, allocate, build_plan, fit_response_curves, plan_bounds
from planning.calendar import WEEKDAY_COLUMNS, priced_for_day
from planning.curves import hill_marginal, hill_revenue

GRID = 121


def brute_force(vmax, half, shape, lower, upper, scenario, total=None, target=None, goal=None):
    """Best allocation on a grid of every ad set's range (the last ad set takes the remainder
    when the total is fixed, so the budget is met exactly)."""
    n = len(vmax)
    grids = [np.linspace(lower[i], upper[i], GRID) for i in range(n)]
    best, best_value = None, -np.inf
    if scenario == "target_roas":
        # maximise revenue - target × spend: separable, one ad set at a time
        spend = []
        for i in range(n):
            g = np.linspace(lower[i], upper[i], 20001)
            spend.append(g[np.argmax(hill_revenue(g, vmax[i], half[i], shape[i]) - target * g)])
        return np.array(spend)
    for combo in itertools.product(*grids[:-1]):
        head = np.array(combo)
        if scenario == "same_budget":
            last = total - head.sum()
            if not lower[-1] - 1e-9 <= last <= upper[-1] + 1e-9:
                continue
            spend = np.append(head, last)
            value = hill_revenue(spend, vmax, half, shape).sum()
        else:  # same_revenue: least spend reaching goal; last ad set solves its revenue
            need = goal - hill_revenue(head, vmax[:-1], half[:-1], shape[:-1]).sum()
            g = np.linspace(lower[-1], upper[-1], 4001)
            reach = hill_revenue(g, vmax[-1], half[-1], shape[-1]) >= need
            if not reach.any():
                continue
            spend = np.append(head, g[np.argmax(reach)])
            value = -spend.sum()
        if value > best_value:
            best, best_value = spend, value
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3])
def test_same_budget_matches_brute_force(seed, n):
    vmax, half, shape, current = random_case(seed, n, concave=True)
    lower, upper = 0.5 * current, 1.5 * current
    plan = allocate(vmax, half, shape, lower, upper, "same_budget", total=current.sum())
    grid = brute_force(vmax, half, shape, lower, upper, "same_budget", total=current.sum())
    ours = hill_revenue(plan.spend, vmax, half, shape).sum()
    theirs = hill_revenue(grid, vmax, half, shape).sum()
    assert abs(plan.spend.sum() - current.sum()) < 0.005
    assert ours >= theirs - 1e-6 * theirs
    assert np.all(plan.spend >= lower - 1e-9) and np.all(plan.spend <= upper + 1e-9)
    free = (plan.spend > lower + 1) & (plan.spend < upper - 1)
    marginals = hill_marginal(plan.spend[free], vmax[free], half[free], shape[free])
    assert np.allclose(marginals, plan.marginal_value, rtol=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_same_budget_on_s_shaped_curves_is_as_good_as_brute_force(seed):
    vmax, half, shape, current = random_case(100 + seed, 3, concave=False)
    lower, upper = 0.5 * current, 1.5 * current
    plan = allocate(vmax, half, shape, lower, upper, "same_budget", total=current.sum())
    grid = brute_force(vmax, half, shape, lower, upper, "same_budget", total=current.sum())
    ours = hill_revenue(plan.spend, vmax, half, shape).sum()
    theirs = hill_revenue(grid, vmax, half, shape).sum()
    assert abs(plan.spend.sum() - current.sum()) < 0.005
    # exact on the concave envelope; the real curve may lose a little on one ad set's straight part
    assert ours >= theirs * 0.995


@pytest.mark.parametrize("seed", range(6))
def test_target_roas_matches_brute_force(seed):
    vmax, half, shape, current = random_case(200 + seed, 4, concave=True)
    lower, upper = 0.5 * current, 1.5 * current
    plan = allocate(vmax, half, shape, lower, upper, "target_roas", target=2.5)
    grid = brute_force(vmax, half, shape, lower, upper, "target_roas", target=2.5)
    assert np.allclose(plan.spend, grid, atol=(upper - lower).max() / 20000 * 2)
    assert plan.unplaced == 0


@pytest.mark.parametrize("seed", range(5))
def test_same_revenue_matches_brute_force(seed):
    vmax, half, shape, current = random_case(300 + seed, 3, concave=True)
    lower, upper = 0.5 * current, 1.5 * current
    goal = hill_revenue(current, vmax, half, shape).sum()
    plan = allocate(vmax, half, shape, lower, upper, "same_revenue", revenue_goal=goal)
    grid = brute_force(vmax, half, shape, lower, upper, "same_revenue", goal=goal)
    assert hill_revenue(plan.spend, vmax, half, shape).sum() >= goal - 1e-6 * goal
    assert plan.spend.sum() <= grid.sum() + 1e-6 * grid.sum()
    assert plan.spend.sum() <= current.sum()


def test_budget_the_upper_bounds_cannot_take_is_reported():
    vmax, half, shape, current = random_case(7, 3, concave=True)
    lower, upper = 0.5 * current, current * np.array([1.0, 1.1, 1.0])
    total = current.sum() + 1000
    plan = allocate(vmax, half, shape, lower, upper, "same_budget", total=total)
    assert np.allclose(plan.spend, upper)
    assert plan.unplaced == pytest.approx(total - upper.sum())
    within = allocate(vmax, half, shape, lower, upper, "same_budget", total=current.sum())
    assert within.unplaced == 0


def test_locked_risky_capped_and_budget_capped_ad_sets_keep_their_bounds():
    vmax, half, shape, current = random_case(11, 6, concave=True)
    max_spend = np.array([np.nan, np.nan, current[2] * 1.2, np.nan, np.nan, np.nan])
    curves = curves_frame(vmax, half, shape, current, daily_budget=current, max_spend=max_spend)
    capacity = pd.DataFrame(
        {"ad_set_id": curves["ad_set_id"], "under_pacing_risk": [0.1, 0.2, 0.3, 0.9, np.nan, 0.0]}
    )
    settings = PlanSettings(
        locked=("AS_000",), budget_caps=(("AS_001", current[1] * 1.1),), **NO_LIMITS
    )
    plan = build_plan(curves, capacity, settings).ad_sets.set_index("ad_set_id")
    assert plan.loc["AS_000", "recommended_spend"] == pytest.approx(current[0])
    assert plan.loc["AS_000", "role"] == "locked"
    assert plan.loc["AS_001", "upper_bound"] == pytest.approx(current[1] * 1.1)
    assert "daily budget cap" in plan.loc["AS_001", "capacity_reason"]
    assert plan.loc["AS_002", "upper_bound"] == pytest.approx(current[2] * 1.2)
    assert plan.loc["AS_003", "upper_bound"] == pytest.approx(current[3])
    assert "under-pacing risk 90%" in plan.loc["AS_003", "capacity_reason"]
    assert (
        "Pacing risk unknown" in plan.loc["AS_004", "reason"]
        or plan.loc["AS_004", "role"] == "donor"
    )
    assert (plan["recommended_spend"] >= plan["lower_bound"] - 0.005).all()
    assert (plan["recommended_spend"] <= plan["upper_bound"] + 0.005).all()


def test_an_unknown_risk_is_not_a_block():
    lower, upper, reasons = plan_bounds(
        np.array([100.0, 100.0]),
        np.array([np.nan, np.nan]),
        np.array([np.nan, np.nan]),
        np.array([np.nan, 0.7]),
        np.array([False, False]),
        np.array([True, True]),
        PlanSettings(),
    )
    assert upper[0] == pytest.approx(150.0) and reasons[0] is None
    assert upper[1] == pytest.approx(100.0) and "70%" in reasons[1]


def test_same_budget_plan_conserves_the_total_and_names_donors_and_recipients():
    vmax, half, shape, current = random_case(5, 8, concave=True)
    plan = build_plan(curves_frame(vmax, half, shape, current))
    summary = plan.summary
    assert summary["total_recommended"] + summary["unplaced_budget"] == pytest.approx(
        summary["total_current"], abs=0.005
    )
    assert summary["uplift"] > 0
    donors = plan.ad_sets[plan.ad_sets["role"] == "donor"]
    text = headline(plan.ad_sets, summary)
    assert text.startswith("Move £")
    assert str(donors.sort_values("change")["ad_set_name"].iloc[0]) in text
    donor_reason = donors["reason"].iloc[0]
    assert "below the" in donor_reason and "move £" in donor_reason


def test_an_ad_set_without_a_curve_keeps_its_spend():
    vmax, half, shape, current = random_case(9, 3, concave=True)
    vmax[1] = np.nan
    plan = build_plan(curves_frame(vmax, half, shape, current)).ad_sets
    assert plan.loc[1, "recommended_spend"] == pytest.approx(current[1])
    assert plan.loc[1, "role"] == "locked"
    assert "No response curve" in plan.loc[1, "reason"]


def test_a_plan_with_no_curve_at_all_places_the_whole_budget_where_it_was():
    vmax, half, shape, current = random_case(10, 3, concave=True)
    summary = build_plan(curves_frame(vmax * np.nan, half, shape, current)).summary
    assert summary["total_recommended"] == pytest.approx(current.sum())
    assert summary["unplaced_budget"] == 0 and summary["forced_spend"] == 0
    for scenario in ("target_roas", "same_revenue"):
        other = build_plan(
            curves_frame(vmax * np.nan, half, shape, current), settings=PlanSettings(scenario)
        ).summary
        assert other["total_recommended"] == pytest.approx(current.sum())
        assert other["revenue_shortfall"] == 0


def test_same_revenue_ignores_ad_sets_without_a_curve():
    vmax, half, shape, current = random_case(12, 4, concave=True)
    vmax[0] = np.nan
    plan = build_plan(
        curves_frame(vmax, half, shape, current), settings=PlanSettings("same_revenue")
    )
    assert plan.summary["revenue_recommended"] >= plan.summary["revenue_current"] - 0.01
    assert plan.summary["total_recommended"] < plan.summary["total_current"]
    assert plan.ad_sets.loc[0, "recommended_spend"] == pytest.approx(current[0])


def test_fitted_curves_find_the_planted_marginal_roas():
    daily, truth = synthetic_daily(3, 40, 120)
    fits = fit_response_curves(daily)
    curves = fits.curves
    assert (curves["fit"] == "own").all()
    true_marginal = hill_marginal(curves["current_spend"], *truth.to_numpy().T)
    error = np.abs(curves["marginal_roas"] / true_marginal - 1)
    assert np.median(error) < 0.15
    inside = (curves["marginal_roas_low"] <= true_marginal) & (
        true_marginal <= curves["marginal_roas_high"]
    )
    assert inside.mean() >= 0.6
    assert (curves["marginal_roas_low"] <= curves["marginal_roas_high"]).all()
    assert fits.draws["vmax"].shape == (40, 200)


def test_a_slow_drift_is_not_mistaken_for_the_curve_and_intervals_say_how_sure():
    """Observational data with a drifting conversion rate: the fit reads the drift as drift
    (whitened residuals) and shrinks each curve toward the population of curves, so marginal
    ROAS at current spend lands near the planted one, and the 90% bootstrap intervals (days
    and prior redrawn) cover it for most ad sets. The fit before the drift was modelled: median
    error 0.21, coverage 50% on this data (0.25 and 48%, 0.25 and 50% on seeds 11 and 13)."""
    daily, truth = drifting_daily(12, 60, 180)
    curves = fit_response_curves(daily).curves
    assert (curves["fit"] == "own").all()
    true_marginal = hill_marginal(curves["current_spend"], *truth.to_numpy().T)
    error = np.abs(np.log(curves["marginal_roas"] / true_marginal))
    assert np.median(error) < 0.2
    inside = (curves["marginal_roas_low"] <= true_marginal) & (
        true_marginal <= curves["marginal_roas_high"]
    )
    assert inside.mean() >= 0.65


def test_ninety_percent_intervals_hold_the_planted_truth_about_ninety_percent_of_the_time():
    """Pooled over ad sets of five drifting worlds, the plan's 90% intervals at recommended
    spend hold the planted marginal ROAS and expected revenue 83-97% of the time: neither the
    narrow bootstrap's 79% and 81% (on these seeds before its spread was calibrated) nor a
    range so wide it says nothing (at DRAW_SPREAD 1.5: 94% and 95%)."""
    inside = {"marginal_roas_recommended": [], "expected_revenue_recommended": []}
    for seed in (21, 22, 23, 24, 25):
        daily, truth = drifting_daily(seed, 60, 180)
        fits = fit_response_curves(daily)
        rows = build_plan(fits.curves, draws=fits.draws).ad_sets
        spend = rows["recommended_spend"].to_numpy()
        planted = truth.to_numpy().T
        true_value = {
            "marginal_roas_recommended": hill_marginal(spend, *planted),
            "expected_revenue_recommended": hill_revenue(spend, *planted),
        }
        for figure, hits in inside.items():
            low, high = rows[f"{figure}_low"].to_numpy(), rows[f"{figure}_high"].to_numpy()
            hits.extend((low <= true_value[figure]) & (true_value[figure] <= high))
    for figure, hits in inside.items():
        assert 0.83 <= np.mean(hits) <= 0.97, (figure, np.mean(hits))


def test_ad_sets_whose_spend_barely_moved_are_pooled_and_say_so():
    varied, _ = synthetic_daily(4, 10, 100)
    flat, _ = synthetic_daily(5, 4, 100, varied=False)
    flat["ad_set_id"] = flat["ad_set_id"].str.replace("AS_", "FLAT_")
    curves = fit_response_curves(pd.concat([varied, flat])).curves.set_index("ad_set_id")
    assert (curves.loc[curves.index.str.startswith("FLAT_"), "fit"] == "pooled").all()
    assert (curves.loc[curves.index.str.startswith("AS_"), "fit"] == "own").all()
    assert curves.loc["FLAT_001", "pooled_from"] == "group_a"
    assert np.isfinite(curves.loc["FLAT_001", "vmax"])


def test_nothing_to_pool_gives_no_curve_rather_than_a_made_up_one():
    flat, _ = synthetic_daily(6, 3, 30, varied=False)
    curves = fit_response_curves(flat).curves
    assert (curves["fit"] == "none").all()
    assert curves["vmax"].isna().all()


def test_fits_are_deterministic():
    daily, _ = synthetic_daily(8, 6, 60)
    first, second = fit_response_curves(daily), fit_response_curves(daily)
    pd.testing.assert_frame_equal(first.curves, second.curves)
    assert np.array_equal(first.draws["shape"], second.draws["shape"], equal_nan=True)


def test_replanning_two_thousand_ad_sets_is_quick_enough_for_the_dashboard():
    """Generous bound (the bench measures it): a plan that took seconds would fail here."""
    rng = np.random.default_rng(1)
    n = 2000
    vmax, half, shape, current = random_case(1, n, concave=True)
    curves = curves_frame(vmax, half, shape, current)
    draws = {
        "vmax": vmax[:, None] * np.exp(0.05 * rng.standard_normal((n, 200))),
        "half_saturation": np.repeat(half[:, None], 200, axis=1),
        "shape": np.repeat(shape[:, None], 200, axis=1),
    }
    started = time.perf_counter()
    plan = build_plan(curves, None, PlanSettings(), draws=draws)
    assert time.perf_counter() - started < 3.0
    assert plan.summary["total_recommended"] == pytest.approx(current.sum(), abs=0.005)
    assert np.isfinite(plan.summary["uplift_low"])


def test_an_uplift_range_always_holds_its_own_point_estimate():
    """Draws under a redrawn prior can sit away from the fitted curves: the range keeps their
    spread but sits around the point estimate (a headline once read "+£495,812, range +£451,247
    to +£483,029")."""
    from planning.curves import interval, interval_around

    draws = np.random.default_rng(3).normal(460_000, 10_000, 200)
    low, high = interval_around(495_812.0, draws)
    plain_low, plain_high = interval(draws)
    assert plain_high < 495_812.0
    assert low < 495_812.0 < high
    assert high - low == pytest.approx(plain_high - plain_low)


def test_todays_daily_budget_is_what_the_plan_changes_not_a_cap():
    """Ad sets spend about all of their budget: capping increases at today's budget would leave
    only under-spenders (the ad sets least able to absorb more) as recipients."""
    vmax, half, shape, current = random_case(5, 8, concave=True)
    plan = build_plan(curves_frame(vmax, half, shape, current, daily_budget=current)).ad_sets
    np.testing.assert_allclose(plan["upper_bound"], 1.5 * current)
    recipients = plan[plan["role"] == "recipient"]
    assert len(recipients) > 0
    assert (recipients["recommended_spend"] > recipients["daily_budget"]).all()
    assert (recipients["new_daily_budget"] > recipients["current_daily_budget"]).all()
    for row in recipients.itertuples():
        assert f"Set its daily budget to £{row.new_daily_budget:,.0f} (from £" in row.reason


def curse_world(seed: int, n: int = 60, draws: int = 200):
    """Planted curves and an estimate of them that the optimizer's curse bites: each ad set's
    saturation point (log half_saturation / current spend) is drawn from a population (sd 0.8),
    seen with noise (sd 0.3) by the curves the plan is chosen on, and the bootstrap draws are
    that population's posterior given what was seen. → truth, curves frame, draws."""
    rng = np.random.default_rng(seed)
    current = rng.uniform(500, 2000, n)
    population_sd, noise_sd = 0.8, 0.3
    true_ratio = population_sd * rng.standard_normal(n)
    seen = true_ratio + noise_sd * rng.standard_normal(n)
    shrink = population_sd**2 / (population_sd**2 + noise_sd**2)
    drawn = shrink * seen[:, None] + np.sqrt(shrink) * noise_sd * rng.standard_normal((n, draws))

    def curves_at(ratio, spend):
        half = spend * np.exp(ratio)
        return 4.0 * spend / hill_revenue(spend, 1.0, half, 1.0), half

    truth = curves_at(true_ratio, current)
    fitted = curves_at(seen, current)
    draw_vmax, draw_half = curves_at(drawn, current[:, None])
    draws_of = {"vmax": draw_vmax, "half_saturation": draw_half, "shape": np.ones((n, draws))}
    return truth, curves_frame(*fitted, np.ones(n), current), draws_of


def test_the_claimed_uplift_is_not_inflated_by_choosing_on_the_curves_that_price_it():
    """The plan funds the ad sets whose estimated curves flatter them; priced on those same
    curves its uplift was 1.12-1.52x the truth here (1.27x in the median of these seeds, as on
    held-out data: +14% to +49%). Priced on the draws it holds: 0.90-1.16x, truth inside the
    range on every seed."""
    fitted_ratio, claimed_ratio, inside = [], [], []
    for seed in range(1, 6):
        (true_vmax, true_half), curves, draws = curse_world(seed)
        plan = build_plan(curves, draws=draws)
        current = plan.ad_sets["current_spend"].to_numpy()
        recommended = plan.ad_sets["recommended_spend"].to_numpy()
        true_uplift = (
            hill_revenue(recommended, true_vmax, true_half, 1.0)
            - hill_revenue(current, true_vmax, true_half, 1.0)
        ).sum()
        summary = plan.summary
        fitted_ratio.append(summary["uplift_as_fitted"] / true_uplift)
        claimed_ratio.append(summary["uplift"] / true_uplift)
        inside.append(summary["uplift_low"] <= true_uplift <= summary["uplift_high"])
        assert summary["uplift_low"] <= summary["uplift"] <= summary["uplift_high"]
    assert np.median(fitted_ratio) > 1.15, "the setup must show the curse"
    assert 0.85 <= np.median(claimed_ratio) <= 1.15, claimed_ratio
    assert sum(inside) >= 4, inside


def test_every_range_in_the_plan_holds_its_own_point_estimate():
    """Draws sit away from the fitted curves (prior redrawn, skew): each row's range is the
    draws' spread placed around the row's own figure, and the uplift's point is inside its range."""
    (true_vmax, true_half), curves, draws = curse_world(7)
    draws = {name: matrix * (0.8 if name == "vmax" else 1.0) for name, matrix in draws.items()}
    plan = build_plan(curves, draws=draws)
    rows = plan.ad_sets
    for figure in ("expected_revenue_current", "expected_revenue_recommended"):
        assert (rows[f"{figure}_low"] <= rows[figure] + 1e-9).all(), figure
        assert (rows[figure] <= rows[f"{figure}_high"] + 1e-9).all(), figure
    marginal = rows["marginal_roas_recommended"]
    assert (rows["marginal_roas_recommended_low"] <= marginal + 1e-9).all()
    assert (marginal <= rows["marginal_roas_recommended_high"] + 1e-9).all()
    summary = plan.summary
    assert summary["uplift_low"] <= summary["uplift"] <= summary["uplift_high"]


def stepped_daily(seed: int):
    """40 ad sets × 180 days of planted curves; AS_000-003 lose half their revenue per pound 60
    days before the end, AS_004-007 gain 70% 90 days before it. → data, truth, per ad set the
    factor it ends at, the two step dates."""
    daily, truth = synthetic_daily(seed, 40, 180)
    days = np.sort(daily["date"].unique())
    factor = np.ones(40)
    for first, change, since in ((0, 0.5, days[-60]), (4, 1.7, days[-90])):
        stepped = [f"AS_{i:03d}" for i in range(first, first + 4)]
        later = daily["ad_set_id"].isin(stepped) & (daily["date"] >= since)
        daily.loc[later, "revenue"] *= change
        factor[first : first + 4] = change
    return daily, truth, factor, (pd.Timestamp(days[-60]), pd.Timestamp(days[-90]))


def test_a_level_step_is_found_near_its_date_and_priced_at_the_new_level():
    """A curve fitted across a -50% step 60 days ago overstated marginal ROAS ×1.75-2.0: the
    step is found, and the curve fitted on the days since prices the new level (median ratio to
    the truth within 0.8-1.25), with a wider range from fewer days."""
    daily, truth, factor, (down_on, up_on) = stepped_daily(21)
    curves = fit_response_curves(daily).curves
    true_marginal = hill_marginal(curves["current_spend"], *truth.to_numpy().T) * factor
    ratio = (curves["marginal_roas"] / true_marginal).to_numpy()
    stepped, steady = curves.iloc[:8], curves.iloc[8:]
    found = stepped[stepped["fit"] == "shifted"]
    assert len(found) == 8
    planted = pd.Series(np.where(found.index < 4, down_on, up_on), index=found.index)
    off = pd.to_datetime(found["shifted_on"]) - pd.to_datetime(planted)
    assert (off.abs() <= pd.Timedelta(days=7)).all()
    assert np.allclose(found["level_shift"], factor[found.index], rtol=0.2)
    assert (found["days"] <= 91).all()
    assert 0.8 <= np.median(ratio[:8]) <= 1.25
    assert 0.8 <= np.median(ratio[4:8]) <= 1.25 and 0.8 <= np.median(ratio[:4]) <= 1.25
    width = (curves["marginal_roas_high"] - curves["marginal_roas_low"]) / curves["marginal_roas"]
    assert width.iloc[:8].median() > width.iloc[8:].median()
    assert steady["shifted_on"].isna().all() and (steady["fit"] == "own").all()
    reasons = build_plan(curves).ad_sets.set_index("ad_set_id")["reason"]
    first = found.iloc[0]
    assert (
        f"its revenue per pound moved {first['level_shift'] - 1:+.0%} around "
        f"{pd.Timestamp(first['shifted_on']):%d %b %Y}; curve fitted on the {first['days']} days"
    ) in reasons[first["ad_set_id"]]
    assert "revenue per pound moved" not in reasons[steady["ad_set_id"].iloc[0]]


@pytest.mark.parametrize("seed", [1, 2])
def test_level_shifts_are_rare_in_data_without_one(seed, tmp_path):
    """The sample generator's planted curves (drift, budget moves, dirt) have no step: at most
    one ad set of 30 is marked (measured: 1 of 150 ad sets over seeds 1-5, 2 of 90 at 120 days
    over seeds 4-6; a 4.5-SE threshold found none but missed 4 of 24 planted steps)."""
    write_sample_data(tmp_path, ad_sets=30, days=180, seed=seed)
    meta = pd.read_csv(tmp_path / "meta_campaign_performance.csv", encoding="utf-8-sig")
    meta["spend"] = pd.to_numeric(meta["spend"], errors="coerce")
    meta = meta[meta["spend"] >= 0].drop_duplicates(["date", "ad_set_id"])
    events = pd.read_csv(tmp_path / "conversion_events.csv", encoding="utf-8-sig")
    bookings = events[events["conversion_type"] == "booking_completed"]
    revenue = (
        bookings.drop_duplicates("conversion_id")
        .assign(revenue=lambda frame: pd.to_numeric(frame["value"], errors="coerce"))
        .groupby(["date", "ad_set_id"], as_index=False)["revenue"]
        .sum()
    )
    daily = meta[["date", "ad_set_id", "spend"]].merge(revenue, how="left")
    daily["date"] = pd.to_datetime(daily["date"], dayfirst=True)
    curves = fit_response_curves(daily).curves
    assert curves["shifted_on"].notna().sum() <= 1
    assert (curves["fit"] == "shifted").sum() <= 1


def test_weekday_factors_are_recovered_and_tomorrow_is_priced_as_its_weekday():
    """Revenue per pound 20% lower on Saturdays than the week's average: a curve fitted without
    the weekdays priced every day at the average (18-23% high on a slow day on held-out data)."""
    planted = np.array([1.15, 1.05, 1.0, 0.95, 0.9, 0.8, 1.15])
    planted /= planted.mean()
    daily, truth = synthetic_daily(31, 40, 180)
    daily["revenue"] *= planted[daily["date"].dt.dayofweek]
    curves = fit_response_curves(daily).curves
    factors = curves[list(WEEKDAY_COLUMNS)].to_numpy()
    assert (factors == factors[0]).all()
    np.testing.assert_allclose(factors[0], planted, atol=0.05)
    saturday = pd.Timestamp("2024-06-29")
    priced, factor = priced_for_day(curves, saturday)
    assert factor == pytest.approx(planted[5], abs=0.05)
    at_current = hill_revenue(
        curves["current_spend"], curves["vmax"], curves["half_saturation"], curves["shape"]
    )
    plan = build_plan(priced).ad_sets
    np.testing.assert_allclose(plan["expected_revenue_current"], at_current * factor, rtol=1e-9)
    planted_saturday = hill_revenue(curves["current_spend"], *truth.to_numpy().T) * planted[5]
    error = np.median(np.abs(np.log(plan["expected_revenue_current"] / planted_saturday)))
    assert error < 0.1


def carried_over_daily(seed: int, carryover: float, ad_sets: int = 40, days: int = 180):
    """Planted curves of ad-stocked spend (geometric, normalised): a day's revenue answers to
    its own spend and, by `carryover` a day, to the days before."""
    rng = np.random.default_rng(seed)
    budget = rng.uniform(300, 3000, ad_sets)
    shape = rng.uniform(0.6, 1.0, ad_sets)
    half = budget * rng.uniform(0.8, 2.5, ad_sets)
    vmax = rng.uniform(3, 6, ad_sets) * budget / hill_revenue(budget, 1.0, half, shape)
    level = np.exp(0.3 * rng.standard_normal((ad_sets, days // 14 + 1))).repeat(14, axis=1)
    spend = budget[:, None] * level[:, :days] * np.exp(0.1 * rng.standard_normal((ad_sets, days)))
    stock = spend.copy()
    for day in range(1, days):
        stock[:, day] = (1 - carryover) * spend[:, day] + carryover * stock[:, day - 1]
    noise = np.exp(0.2 * rng.standard_normal((ad_sets, days)) - 0.02)
    revenue = hill_revenue(stock, vmax[:, None], half[:, None], shape[:, None]) * noise
    daily = pd.DataFrame(
        {
            "date": np.tile(pd.date_range("2024-01-01", periods=days), ad_sets),
            "ad_set_id": np.repeat([f"AS_{i:03d}" for i in range(ad_sets)], days),
            "spend": spend.ravel(),
            "revenue": revenue.ravel(),
        }
    )
    return daily, pd.DataFrame({"vmax": vmax, "half_saturation": half, "shape": shape})


@pytest.mark.parametrize("planted", [0.0, 0.6])
def test_carry_over_is_recovered_and_not_invented(planted):
    """With a carry-over of 0.6 a curve of the day's own spend read marginal ROAS 0.81-0.85 of
    the truth (intervals covering 28-48%): the pooled carry-over is found, and the curve of
    ad-stocked spend prices a pound with the part it returns on later days."""
    daily, truth = carried_over_daily(2, planted)
    curves = fit_response_curves(daily).curves
    assert (curves["carryover"] == curves["carryover"].iloc[0]).all()
    assert abs(curves["carryover"].iloc[0] - planted) <= 0.15
    true_marginal = hill_marginal(curves["current_spend"], *truth.to_numpy().T)
    assert 0.9 <= np.median(curves["marginal_roas"] / true_marginal) <= 1.1


def demand_following_daily(seed: int, ad_sets: int = 60, days: int = 180):
    """A season shared by every ad set (revenue per pound ×0.74-1.35 over the year) and budgets
    that follow it: spend and demand rise and fall together."""
    rng = np.random.default_rng(seed)
    budget = rng.uniform(300, 3000, ad_sets)
    shape = rng.uniform(0.6, 1.0, ad_sets)
    half = budget * rng.uniform(0.8, 2.5, ad_sets)
    vmax = rng.uniform(3, 6, ad_sets) * budget / hill_revenue(budget, 1.0, half, shape)
    demand = np.exp(0.3 * np.sin(2 * np.pi * (np.arange(days) + rng.uniform(0, 365)) / 365))
    level = np.exp(0.15 * rng.standard_normal((ad_sets, days // 14 + 1))).repeat(14, axis=1)
    wobble = np.exp(0.1 * rng.standard_normal((ad_sets, days)))
    spend = budget[:, None] * level[:, :days] * demand * wobble
    noise = np.exp(0.2 * rng.standard_normal((ad_sets, days)) - 0.02)
    revenue = demand * hill_revenue(spend, vmax[:, None], half[:, None], shape[:, None]) * noise
    daily = pd.DataFrame(
        {
            "date": np.tile(pd.date_range("2024-01-01", periods=days), ad_sets),
            "ad_set_id": np.repeat([f"AS_{i:03d}" for i in range(ad_sets)], days),
            "spend": spend.ravel(),
            "revenue": revenue.ravel(),
        }
    )
    truth = pd.DataFrame({"vmax": vmax, "half_saturation": half, "shape": shape})
    return daily, truth, demand


def test_a_season_budgets_follow_is_not_read_as_a_steeper_curve():
    """Budgets that follow a shared season: a fit without the season read marginal ROAS ×1.7 of
    the truth (intervals covering 0-10%). The shared demand level is taken out, and tomorrow is
    priced at the latest one; spend that trends with the season is not read as a level shift
    (3 of these 60 ad sets were, before the step test had a slope on spend)."""
    daily, truth, demand = demand_following_daily(4)
    curves = fit_response_curves(daily).curves
    latest = demand[-14:].mean() / np.exp(np.log(demand).mean())
    assert curves["demand_level"].iloc[0] == pytest.approx(latest, abs=0.05)
    priced, factor = priced_for_day(curves, pd.Timestamp("2024-06-29"))
    assert factor == pytest.approx(curves["demand_level"].iloc[0])
    true_marginal = hill_marginal(curves["current_spend"], *truth.to_numpy().T) * demand[-1]
    plan = build_plan(priced).ad_sets
    assert 0.85 <= np.median(plan["marginal_roas_current"] / true_marginal) <= 1.15
    assert curves["shifted_on"].isna().all()
    flat, _ = synthetic_daily(3, 40, 180)
    assert (fit_response_curves(flat).curves["demand_level"] == 1.0).all()
