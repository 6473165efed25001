"""Delivery measured from the dated pacing rows, and curves identified from budget moves only
(planning.delivery, its use in planning.curves and planning.optimizer)."""

import numpy as np
import pandas as pd
import pytest

from marketing_ml_tests.support.planning_cases import NO_LIMITS
from planning import PlanSettings, build_plan, fit_response_curves
from planning.curves import hill_revenue
from planning.delivery import bought_spend, budget_buying, budget_cv, measure_delivery
from planning.optimizer import POOLED_MOVE

DAY_ONE = pd.Timestamp("2024-01-01")


def pacing_rows(planned: np.ndarray, actual: np.ndarray, ad_set_id: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": DAY_ONE + pd.to_timedelta(np.arange(len(planned)), unit="D"),
            "ad_set_id": ad_set_id,
            "planned_spend": planned,
            "actual_spend": actual,
        }
    )


def delivery_noise(rng, days: int, spread: float = 0.12) -> np.ndarray:
    """A day's utilization: AR(1) around 0.95 (persistence 0.75), as platforms deliver."""
    swing, out = 0.0, np.empty(days)
    for day in range(days):
        swing = 0.75 * swing + spread * np.sqrt(1 - 0.75**2) * rng.standard_normal()
        out[day] = 0.95 + swing
    return out


def budget_daily(seed: int, moved: int, flat: int, days: int = 180) -> pd.DataFrame:
    """Daily rows with planned budgets: `moved` ad sets whose budget steps every three weeks or
    so, and `flat` ad sets whose budget never moves (2% daily jitter) while delivery noise moves
    their spend by ~12% (spend CV above the old 10% gate)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(moved + flat):
        base = rng.uniform(500, 3000)
        level, planned = 1.0, np.empty(days)
        for day in range(days):
            if i < moved and rng.random() < 1 / 21:
                level = np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
            planned[day] = base * level * (1 + 0.02 * rng.standard_normal())
        spend = planned * delivery_noise(rng, days)
        half = base * rng.uniform(0.8, 2.5)
        shape = rng.uniform(0.6, 1.0)
        vmax = rng.uniform(3, 6) * base / hill_revenue(base, 1.0, half, shape)
        revenue = hill_revenue(spend, vmax, half, shape) * np.exp(0.2 * rng.standard_normal(days))
        frame = pacing_rows(planned, spend, f"{'AS' if i < moved else 'FLAT'}_{i:03d}")
        frames.append(
            frame.assign(
                spend=spend, revenue=revenue, lookalike_source="group_a" if i % 2 else "group_b"
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_budget_cv_reads_budget_moves_not_daily_jitter():
    rng = np.random.default_rng(1)
    flat = 1000 * (1 + 0.02 * rng.standard_normal((1, 182)))
    stepped = flat.copy()
    stepped[0, 120:] *= 1.2
    known = np.ones_like(flat, dtype=bool)
    assert budget_cv(flat, known)[0] < 0.015
    assert budget_cv(stepped, known)[0] > 0.05
    assert np.isnan(budget_cv(flat, np.zeros_like(known))[0])


def test_delivery_noise_alone_never_identifies_a_curve():
    """Flat budgets whose spend swings ~12% with delivery pass the spend CV gate (10%) that
    stood alone before: they got confident curves of their own from noise. Now only the ad sets
    whose planned budget moved get one; without planned budgets the spend gate stands in."""
    daily = budget_daily(2, moved=10, flat=4)
    curves = fit_response_curves(daily).curves.set_index("ad_set_id")
    flat = curves.index.str.startswith("FLAT_")
    assert (curves.loc[flat, "spend_cv"] >= 0.10).all()
    assert (curves.loc[flat, "budget_cv"] < 0.02).all()
    assert (curves.loc[flat, "fit"] == "pooled").all()
    assert (curves.loc[~flat, "fit"] == "own").all()
    assert (curves.loc[~flat, "budget_cv"] >= 0.05).all()
    unbudgeted = fit_response_curves(daily.drop(columns=["planned_spend"])).curves
    assert (unbudgeted["fit"] == "own").all()
    assert unbudgeted["budget_cv"].isna().all()


def curve_rows(current, marginal_scale, **extra) -> pd.DataFrame:
    """Linear-ish curves (shape 1, half-saturation far out) whose marginal ROAS at current spend
    is about `marginal_scale`: the plan moves budget from low to high."""
    current = np.asarray(current, dtype=float)
    n = len(current)
    half = 50 * current
    vmax = np.asarray(marginal_scale, dtype=float) * half
    frame = pd.DataFrame(
        {
            "ad_set_id": [f"AS_{i:03d}" for i in range(n)],
            "ad_set_name": [f"Ad set {i}" for i in range(n)],
            "fit": extra.pop("fit", "own"),
            "vmax": vmax,
            "half_saturation": half,
            "shape": 1.0,
            "current_spend": current,
            "daily_budget": np.nan,
            "max_spend": np.nan,
        }
    )
    for name, values in extra.items():
        frame[name] = values
    return frame


def test_a_pooled_curve_moves_at_most_ten_percent_and_says_why():
    curves = curve_rows(
        [1000.0] * 4,
        [8.0, 8.0, 1.0, 1.0],
        fit=["pooled", "own", "pooled", "own"],
        budget_cv=[0.01, 0.2, 0.01, 0.2],
    )
    plan = build_plan(curves, settings=PlanSettings(**NO_LIMITS)).ad_sets.set_index("ad_set_id")
    moved = (plan["recommended_spend"] / plan["current_spend"] - 1).abs()
    assert moved[["AS_000", "AS_002"]].max() <= POOLED_MOVE + 1e-9
    assert plan.loc["AS_000", "role"] == "recipient" and plan.loc["AS_002", "role"] == "donor"
    assert moved[["AS_001", "AS_003"]].min() >= 0.45
    for ad_set_id in ("AS_000", "AS_002"):
        reason = plan.loc[ad_set_id, "reason"]
        assert "own curve not known: its budget barely moved (weekly means vary 1%)" in reason


def capped_pacing(seed: int, cap: float, days: int = 28, plateau: float = 0.0) -> pd.DataFrame:
    """One ad set whose budget rises from £800 to £1,400 halfway, delivered at ~95% up to a
    cap of `cap` (hard, or soft: a plateau with `plateau` day-to-day noise); one that follows its
    budget (noisy utilization, the same budget move)."""
    rng = np.random.default_rng(seed)
    planned = np.where(np.arange(days) < days // 2, 800.0, 1400.0)
    planned = planned * (1 + 0.02 * rng.standard_normal(days))
    ceiling = cap * (1 + plateau * rng.standard_normal(days))
    capped = np.minimum(planned * delivery_noise(rng, days, 0.05), ceiling)
    follows = planned * delivery_noise(rng, days)
    return pd.concat(
        [pacing_rows(planned, capped, "AS_000"), pacing_rows(planned, follows, "AS_001")],
        ignore_index=True,
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_hard_delivery_cap_is_found_and_a_noisy_follower_is_not_capped(seed):
    delivery = measure_delivery(capped_pacing(seed, cap=900.0)).set_index("ad_set_id")
    assert delivery.loc["AS_000", "delivery_cap"] == pytest.approx(900.0)
    assert delivery.loc["AS_000", "capped_days"] >= 10
    assert np.isnan(delivery.loc["AS_001", "delivery_cap"])
    assert delivery.loc["AS_001", "utilization"] == pytest.approx(0.95, abs=0.08)
    assert delivery.loc["AS_000", "planned_budget"] > 1300


def test_a_soft_cap_whose_plateau_is_noisy_is_found_too():
    """Spend that plateaus near £900 with 5% noise: with the single highest day as its top, too
    few days sit near it (found on 3 of these 10 seeds); with its third highest, on all."""
    for seed in range(10):
        delivery = measure_delivery(capped_pacing(seed, 900.0, plateau=0.05))
        capped = delivery.set_index("ad_set_id").loc["AS_000"]
        assert capped["delivery_cap"] == pytest.approx(900.0, rel=0.1), seed
        assert capped["capped_days"] >= 3


def test_a_cap_seen_sixty_days_ago_is_still_known():
    """A budget that ran into a £900 cap for three weeks, then went back below it for 60 days:
    28 days of pacing rows no longer ask for more than the cap delivers, the curve window does,
    and the cap's evidence is dated."""
    rng = np.random.default_rng(3)
    planned = np.concatenate([np.full(40, 800.0), np.full(20, 1400.0), np.full(60, 800.0)])
    planned = planned * (1 + 0.02 * rng.standard_normal(len(planned)))
    spend = np.minimum(planned * delivery_noise(rng, len(planned), 0.05), 900.0)
    delivery = measure_delivery(pacing_rows(planned, spend, "AS_000")).iloc[0]
    assert delivery["delivery_cap"] == pytest.approx(900.0)
    assert delivery["capped_days"] >= 10
    assert delivery["cap_age_days"] == pytest.approx(60.0, abs=3)
    assert delivery["utilization"] == pytest.approx(0.95, abs=0.05)
    assert delivery["delivery_days"] == 28


def test_a_cap_lifted_since_is_not_kept():
    """The same cap, then the platform let the ad set spend £1,300 for the last 30 days: its
    top is where it spends now, and the old plateau is no longer a cap."""
    rng = np.random.default_rng(4)
    planned = np.concatenate([np.full(40, 800.0), np.full(50, 1400.0)])
    planned = planned * (1 + 0.02 * rng.standard_normal(len(planned)))
    ceiling = np.where(np.arange(len(planned)) < 60, 900.0, np.inf)
    spend = np.minimum(planned * delivery_noise(rng, len(planned), 0.05), ceiling)
    delivery = measure_delivery(pacing_rows(planned, spend, "AS_000")).iloc[0]
    assert np.isnan(delivery["delivery_cap"])


def test_an_ad_set_never_seen_above_its_top_is_not_planned_far_above_it_and_says_why():
    """Its curve says +50%, but it never spent more than £1,100 in a day: beyond that neither
    its curve nor its delivery is known (a cap its budget never ran into is invisible)."""
    row = delivered_plan(risk=0.1, measured=True, max_spend=1100.0).loc["AS_000"]
    assert row["role"] == "recipient"
    assert row["recommended_spend"] == pytest.approx(1210.0)
    assert row["recommended_daily_budget"] * row["utilization"] == pytest.approx(1210.0)
    assert "never seen spending above £1,100 a day" in row["reason"]
    assert "at most +10% above it" in row["reason"]


def soft_capped_pacing(seed: int, ceiling: float, days: int = 180) -> pd.DataFrame:
    """One ad set whose budget moves every three weeks or so between £500 and £2,500 and whose
    spend is ceiling · tanh(0.95 · budget / ceiling) with 4% delivery noise; one that follows the
    same kind of budget in proportion with the same noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for ad_set_id, cap in (("SOFT", ceiling), ("FOLLOWS", np.inf)):
        level, planned = 1000.0, np.empty(days)
        for day in range(days):
            if rng.random() < 1 / 21:
                level = rng.uniform(500.0, 2500.0)
            planned[day] = level
        asked = 0.95 * planned
        bent = asked if np.isinf(cap) else cap * np.tanh(asked / cap)
        spend = bent * (1 + 0.04 * rng.standard_normal(days))
        frames.append(pacing_rows(planned, spend, ad_set_id))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("seed", range(3))
def test_a_soft_caps_spend_against_budget_is_recovered(seed):
    delivery = measure_delivery(soft_capped_pacing(seed, 1500.0)).set_index("ad_set_id")
    soft = delivery.loc["SOFT"]
    assert soft["soft_cap"] == pytest.approx(1500.0, rel=0.15)
    assert soft["utilization"] == pytest.approx(0.95, abs=0.05)
    bought = bought_spend(2000.0, soft["utilization"], soft["soft_cap"])
    assert bought == pytest.approx(1500.0 * np.tanh(0.95 * 2000.0 / 1500.0), rel=0.05)
    assert budget_buying(bought, soft["utilization"], soft["soft_cap"]) == pytest.approx(2000.0)
    assert np.isnan(delivery.loc["FOLLOWS", "soft_cap"])


def test_a_soft_capped_ad_set_is_planned_below_its_ceiling_on_a_budget_that_buys_it():
    """Its curve says +50%; its spend flattens toward £1,200: the plan stops at 90% of that and
    asks for the budget the tanh needs, not spend ÷ utilization."""
    curves = curve_rows([1000.0, 1000.0, 1000.0], [8.0, 2.0, 1.0])
    curves["max_spend"] = 1400.0
    curves["utilization"] = 0.95
    curves["soft_cap"] = [1200.0, np.nan, np.nan]
    row = build_plan(curves, settings=PlanSettings(**NO_LIMITS)).ad_sets.set_index("ad_set_id")
    row = row.loc["AS_000"]
    assert row["recommended_spend"] == pytest.approx(1080.0)
    budget = row["recommended_daily_budget"]
    assert budget == pytest.approx(1200.0 * np.arctanh(0.9) / 0.95)
    assert bought_spend(budget, 0.95, 1200.0) == pytest.approx(1080.0)
    assert "its spend flattens toward about £1,200 a day" in row["reason"]


def test_a_thin_history_borrows_the_populations_utilization():
    """Two days at 50% against five ad sets' 28 days at 90%: weighted 2 : 7 toward the
    population's (pooled) utilization; a full history keeps nearly its own."""
    rows = [pacing_rows(np.full(28, 1000.0), np.full(28, 900.0), f"AS_{i:03d}") for i in range(5)]
    thin = pacing_rows(np.full(2, 1000.0), np.full(2, 500.0), "THIN")
    thin["date"] = DAY_ONE + pd.to_timedelta([26, 27], unit="D")
    delivery = measure_delivery(pd.concat([*rows, thin], ignore_index=True)).set_index("ad_set_id")
    pooled = (5 * 28 * 900 + 2 * 500) / (5 * 28 * 1000 + 2 * 1000)
    assert delivery.loc["THIN", "utilization"] == pytest.approx((2 * 0.5 + 7 * pooled) / 9)
    assert delivery.loc["AS_000", "utilization"] == pytest.approx((28 * 0.9 + 7 * pooled) / 35)
    assert delivery.loc["THIN", "delivery_days"] == 2
    assert np.isnan(delivery.loc["THIN", "delivery_cap"])


def delivered_plan(
    risk: float, measured: bool, cap: float = np.nan, max_spend: float = 1100.0
) -> pd.DataFrame:
    curves = curve_rows([1000.0, 1000.0, 1000.0], [8.0, 2.0, 1.0])
    curves["max_spend"] = max_spend
    curves["planned_budget"] = 1070.0
    curves["utilization"] = 0.93 if measured else np.nan
    curves["delivery_cap"] = [cap, np.nan, np.nan]
    curves["capped_days"] = [4 if np.isfinite(cap) else 0, 0, 0]
    capacity = pd.DataFrame({"ad_set_id": curves["ad_set_id"], "under_pacing_risk": risk})
    # The delivery bounds in one step: the day-to-day limits are planning/limits.py's tests.
    return build_plan(curves, capacity, PlanSettings(**NO_LIMITS)).ad_sets.set_index("ad_set_id")


def test_a_capped_ad_set_is_never_given_budget_above_its_cap():
    plan = delivered_plan(risk=0.1, measured=True, cap=1200.0)
    row = plan.loc["AS_000"]
    assert row["recommended_spend"] == pytest.approx(1200.0)
    assert row["delivery_cap"] == 1200.0 and row["capped_days"] == 4
    assert "its spend stopped following its budget at about £1,200 a day (4 days" in row["reason"]


def test_an_at_risk_ad_set_whose_spend_follows_its_budget_can_be_a_recipient():
    """The pacing model's risk informs; it vetoes only where the pacing rows measured nothing
    (then the old stand-ins: the most spent in a day, no increase at risk >= 50%)."""
    plan = delivered_plan(risk=0.9, measured=True, max_spend=1400.0)
    row = plan.loc["AS_000"]
    assert row["role"] == "recipient"
    assert row["recommended_spend"] == pytest.approx(1500.0)
    assert "90% risk of under-pacing tomorrow" in row["reason"]
    vetoed = delivered_plan(risk=0.9, measured=False).loc["AS_000"]
    assert vetoed["upper_bound"] == pytest.approx(1000.0)
    assert "under-pacing risk 90%" in vetoed["capacity_reason"]
    unmeasured = delivered_plan(risk=0.1, measured=False).loc["AS_000"]
    assert unmeasured["upper_bound"] == pytest.approx(1100.0)
    assert np.isnan(unmeasured["recommended_daily_budget"])


def test_the_recommended_daily_budget_buys_the_recommended_spend():
    plan = delivered_plan(risk=0.1, measured=True, max_spend=1400.0)
    np.testing.assert_allclose(
        plan["recommended_daily_budget"] * plan["utilization"], plan["recommended_spend"]
    )
    budget = plan.loc["AS_000", "recommended_daily_budget"]
    assert budget == pytest.approx(1500.0 / 0.93)
    assert (
        f"Set its daily budget to £{budget:,.0f} (from £1,070) on the plan date: it spends about "
        "93% of its budget." in plan.loc["AS_000", "reason"]
    )
    assert "Set its daily budget to" in plan.loc["AS_002", "reason"]
