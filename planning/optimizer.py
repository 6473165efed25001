"""The budget plan: equal marginal ROAS under per-ad-set bounds (water-filling), three scenarios.

For concave curves, spending where every ad set's marginal ROAS is the same value λ (or sits at a
bound) is exactly optimal (the KKT conditions of a separable concave problem). λ is found by
bisection; for each λ every ad set's spend is found at once (a safeguarded Newton solve in log
spend, vectorised in numpy). An S-shaped curve (shape > 1) is planned on its concave envelope
over its bounds (the tangent from its lower bound): exact for the envelope, and at most the ad sets
whose envelope slope equals λ sit on its straight part.

Bounds per ad set: [lower_factor, upper_factor] × current spend, and an increase never goes above
a daily budget cap set for it (`PlanSettings.budget_caps`: an account or platform limit). Delivery
(planning.delivery), where the pacing rows measured it: an increase never goes above a measured
delivery cap (where its spend stopped following its budget) nor more than `BEYOND_SEEN` above the
most it spent in a day of the curve window (beyond that its curve and delivery are unknown); the
pacing model's under-pacing risk informs (the reason says it when an at-risk ad set is funded) but does not veto. Where no planned
budget is known, the old stand-ins: at most the most it spent in one day of the window, and no
increase at under_pacing_risk >= 0.5. An ad set whose curve is pooled (its budget never moved
enough to identify its own) moves at most `POOLED_MOVE` either way. Today's daily budget is not a
cap: it is what the plan changes, and the plan recommends the daily budget that buys its spend
(recommended spend ÷ utilization). Caps limit increases only: an ad set already above a cap keeps
current spend as its upper bound, so today's allocation is always feasible. A locked ad set, or
one without a curve, keeps its spend.

The allocation under these bounds is the plan without limits; planning.limits then keeps the few
moves that matter and ramps them within the day-to-day change a learning phase allows, and the
plan's rows are its first day (`recommended_spend`, `new_daily_budget`) and its end
(`target_spend`, `target_daily_budget`, `ramp_days`; every day in `Plan.spend_path`).
"""

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from planning.campaigns import (
    BudgetUnits,
    ad_set_spend,
    budget_units,
    unit_bounds,
    unit_curves,
)
from planning.claims import claim, rows_interval_around
from planning.curves import INTERVAL, hill_marginal, hill_revenue
from planning.delivery import CAP_ASK, CAP_BAND, SOFT_CAP_REACH, budget_buying
from planning.limits import Limits, Units, limited_plan
from planning.money import prose_money
from planning.period import ROW_COLUMNS, PeriodPlan, price_period
from planning.settings import SCENARIOS, PlanSettings

PENNY = 0.005
BISECTION_STEPS = 80
LAMBDA_TOLERANCE = 1e-11
"""Bisection stops once λ is known to this (in log): the last two allocations are then
interpolated to meet the goal exactly, and the limits re-allocate a dozen times per plan."""
NEWTON_STEPS = 40
POOLED_MOVE = 0.10
"""An ad set without a curve of its own (fit = pooled) moves at most this share either way: its
curve is its group's, not its own, so the plan only nudges it."""
BEYOND_SEEN = 0.10
"""An ad set whose delivery was measured goes at most this share above the most it spent in a
day of the curve window: a curve beyond its data is extrapolation, and a hidden delivery cap at
that level (a budget that never asked for more) could not have been seen. In the calibration study
(3 seeds) 5%, 10% and 25% give 64%, 67% and 67% of the true best with hidden caps and claims of
1.12×, 1.14× and 1.18× the truth on the baseline (72%, 71% and 73% of its best): 10% trims the
claim at little cost."""


# ------------------------------------------------------------------------------ the allocation
@dataclass(frozen=True)
class Allocation:
    spend: np.ndarray
    marginal_value: float
    """λ: the marginal ROAS the plan equalises at (the target in target_roas)."""
    unplaced: float = 0.0
    """Budget (same_budget) the upper bounds cannot take."""
    forced: float = 0.0
    """Spend the lower bounds force above the total asked for."""
    revenue_shortfall: float = 0.0
    """same_revenue: expected revenue the upper bounds cannot reach."""


def envelope(vmax, half, shape, lower, upper):
    """The knee of each curve's concave envelope on [lower, upper] and the envelope's slope from
    lower to it. Concave over the range: knee = lower, slope = marginal at lower."""
    knee = lower.copy()
    inflection = half * np.power(np.clip((shape - 1) / (shape + 1), 0, None), 1 / shape)
    convex = (lower < inflection) & (upper > lower)
    if convex.any():
        v, h, k, lo = vmax[convex], half[convex], shape[convex], lower[convex]
        hi = upper[convex]
        base = hill_revenue(lo, v, h, k)

        def gap(t):  # > 0 left of the tangent point
            return hill_marginal(t, v, h, k) * (t - lo) - (hill_revenue(t, v, h, k) - base)

        left, right = np.maximum(inflection[convex], lo), np.maximum(hi, lo)
        chord = gap(right) >= 0
        for _ in range(60):
            middle = (left + right) / 2
            positive = gap(middle) > 0
            left = np.where(positive, middle, left)
            right = np.where(positive, right, middle)
        knee[convex] = np.where(chord, hi, (left + right) / 2)
    slope = hill_marginal(np.maximum(lower, 1e-12), vmax, half, shape)
    stretched = knee > lower
    slope[stretched] = (
        hill_revenue(knee[stretched], vmax[stretched], half[stretched], shape[stretched])
        - hill_revenue(lower[stretched], vmax[stretched], half[stretched], shape[stretched])
    ) / (knee[stretched] - lower[stretched])
    return knee, slope


class Planner:
    """The curves and bounds of one plan, with the envelope precomputed: `spend_at(λ)` is then
    a few vectorised Newton steps."""

    def __init__(self, vmax, half, shape, lower, upper):
        self.vmax, self.half, self.shape = (np.asarray(a, dtype=float) for a in (vmax, half, shape))
        self.lower, self.upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        self.free = self.upper > self.lower + 1e-9
        self.knee, self.slope = envelope(self.vmax, self.half, self.shape, self.lower, self.upper)
        self.top = hill_marginal(np.maximum(self.upper, 1e-12), self.vmax, self.half, self.shape)
        with np.errstate(divide="ignore"):  # a zero curve (fixed ad set) has log scale -inf
            self.log_scale = np.log(self.vmax * self.shape) + self.shape * np.log(self.half)

    def revenue(self, spend):
        return hill_revenue(spend, self.vmax, self.half, self.shape)

    def spend_at(self, marginal_value: float) -> np.ndarray:
        """Each ad set's spend where its (envelope) marginal ROAS equals `marginal_value`,
        clipped to its bounds."""
        spend = np.where(marginal_value >= self.slope, self.lower, self.upper)
        inside = self.free & (marginal_value < self.slope) & (marginal_value > self.top)
        if inside.any():
            k = self.shape[inside]
            log_half_k = k * np.log(self.half[inside])
            scale = self.log_scale[inside]
            target = np.log(marginal_value)
            left = np.log(np.maximum(self.knee[inside], 1e-12))
            right = np.log(self.upper[inside])
            t = left
            for _ in range(NEWTON_STEPS):
                log_m = scale + (k - 1) * t - 2 * np.logaddexp(log_half_k, k * t)
                q = np.exp(k * t - np.logaddexp(log_half_k, k * t))
                slope = (k - 1) - 2 * k * q
                new_t = np.clip(t - (log_m - target) / np.minimum(slope, -1e-12), left, right)
                done = np.max(np.abs(new_t - t)) < 1e-13
                t = new_t
                if done:
                    break
            spend[inside] = np.exp(t)
        return np.where(self.free, spend, self.lower)

    def _bracket(self):
        free = self.free
        high = float(np.max(self.slope[free])) * 1.000001
        low = float(np.min(self.top[free])) * 0.999999
        return np.log(max(low, 1e-12)), np.log(max(high, 1e-12))

    def solve(self, measure, goal: float) -> tuple[np.ndarray, float]:
        """The allocation whose `measure` (non-increasing in λ: spend or revenue) equals `goal`,
        between λ's bracket ends; interpolated between the last two allocations so the goal is
        met to float precision (on an envelope's straight part, any point is as good)."""
        log_low, log_high = self._bracket()
        low_spend, high_spend = self.spend_at(np.exp(log_low)), self.spend_at(np.exp(log_high))
        for _ in range(BISECTION_STEPS):
            if log_high - log_low < LAMBDA_TOLERANCE:
                break
            middle = (log_low + log_high) / 2
            spend = self.spend_at(np.exp(middle))
            if measure(spend) >= goal:
                log_low, low_spend = middle, spend
            else:
                log_high, high_spend = middle, spend
        above, below = measure(low_spend), measure(high_spend)
        share = 0.0 if above == below else (goal - below) / (above - below)
        return high_spend + share * (low_spend - high_spend), float(np.exp(log_high))


def allocate(
    vmax,
    half,
    shape,
    lower,
    upper,
    scenario: str,
    total: float | None = None,
    target: float | None = None,
    revenue_goal: float | None = None,
) -> Allocation:
    """The optimal spend per ad set for a scenario (arrays in one order; lower == upper fixes an
    ad set). same_budget needs `total`, target_roas `target`, same_revenue `revenue_goal`."""
    planner = Planner(vmax, half, shape, lower, upper)
    lower, upper = planner.lower, planner.upper
    if not planner.free.any():
        fixed = lower.copy()
        if scenario == "same_budget":
            return Allocation(
                fixed, float("nan"), max(total - fixed.sum(), 0.0), max(fixed.sum() - total, 0.0)
            )
        value = target if scenario == "target_roas" else float("nan")
        shortfall = (
            max(revenue_goal - planner.revenue(fixed).sum(), 0.0)
            if scenario == "same_revenue"
            else 0.0
        )
        return Allocation(fixed, value, revenue_shortfall=shortfall)
    if scenario == "target_roas":
        return Allocation(planner.spend_at(target), float(target))
    if scenario == "same_budget":
        if total >= upper.sum():
            return Allocation(upper.copy(), float("nan"), unplaced=total - upper.sum())
        if total <= lower.sum():
            return Allocation(lower.copy(), float("nan"), forced=lower.sum() - total)
        spend, value = planner.solve(np.sum, total)
        spend = np.clip(spend, lower, upper)
        return Allocation(spend, value)
    if scenario == "same_revenue":

        def revenue(spend):
            return float(planner.revenue(spend).sum())

        if revenue(upper) <= revenue_goal:
            return Allocation(
                upper.copy(), float("nan"), revenue_shortfall=revenue_goal - revenue(upper)
            )
        if revenue(lower) >= revenue_goal:
            return Allocation(lower.copy(), float("nan"))
        spend, value = planner.solve(revenue, revenue_goal)
        return Allocation(np.clip(spend, lower, upper), value)
    raise ValueError(f"scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")


# ---------------------------------------------------------------------------------- the bounds
def plan_bounds(
    current,
    budget_cap,
    delivery_cap,
    risk,
    locked,
    has_curve,
    settings: PlanSettings,
    measured=None,
    capped_days=None,
    pooled=None,
    max_spend=None,
    cap_age_days=None,
    window_days=None,
    soft_cap=None,
) -> tuple[np.ndarray, np.ndarray, list]:
    """Lower and upper bound per ad set, and why the upper one is below upper_factor × current.

    `measured` marks ad sets whose delivery the pacing rows measured: their `delivery_cap` is a
    measured cap (NaN: none seen; `capped_days` its evidence, `cap_age_days` how long ago it last
    held spend back), their risk does not veto, and an increase goes at most BEYOND_SEEN above
    `max_spend`, the most they spent in a day of the `window_days`, and beyond SOFT_CAP_REACH of
    a fitted `soft_cap` (NaN: spend follows budget in proportion). For the others
    `delivery_cap` is the most they spent in a day and a risk at the limit vetoes an increase.
    `pooled` ad sets move at most POOLED_MOVE either way."""
    current = np.asarray(current, dtype=float)
    n = len(current)
    measured = np.zeros(n, dtype=bool) if measured is None else np.asarray(measured, dtype=bool)
    capped_days = np.zeros(n) if capped_days is None else np.asarray(capped_days, dtype=float)
    pooled = np.zeros(n, dtype=bool) if pooled is None else np.asarray(pooled, dtype=bool)
    max_spend = np.full(n, np.nan) if max_spend is None else np.asarray(max_spend, dtype=float)
    cap_age = np.full(n, np.nan) if cap_age_days is None else np.asarray(cap_age_days, float)
    soft_cap = np.full(n, np.nan) if soft_cap is None else np.asarray(soft_cap, float)
    upper = settings.upper_factor * current
    reasons: list = [None] * n
    for i in range(n):
        candidates = [(upper[i], None)]
        if pooled[i]:
            candidates.append(
                ((1 + POOLED_MOVE) * current[i], f"own curve not known: at most +{POOLED_MOVE:.0%}")
            )
        if np.isfinite(budget_cap[i]):
            candidates.append((budget_cap[i], f"daily budget cap £{budget_cap[i]:,.0f}"))
        if np.isfinite(delivery_cap[i]):
            candidates.append(
                (
                    delivery_cap[i],
                    delivery_text(
                        delivery_cap[i], measured[i], capped_days[i], cap_age[i], window_days
                    ),
                )
            )
        if measured[i] and np.isfinite(soft_cap[i]):
            candidates.append(
                (
                    SOFT_CAP_REACH * soft_cap[i],
                    f"its spend flattens toward about £{soft_cap[i]:,.0f} a day as its budget "
                    f"grows (fitted on its budget moves): at most {SOFT_CAP_REACH:.0%} of that",
                )
            )
        if measured[i] and np.isfinite(max_spend[i]) and max_spend[i] > 0:
            candidates.append(
                (
                    (1 + BEYOND_SEEN) * max_spend[i],
                    f"never seen spending above £{max_spend[i]:,.0f} a day"
                    f"{f' in the last {window_days} days' if window_days else ''}: its curve and "
                    f"delivery beyond that are not known, so at most +{BEYOND_SEEN:.0%} above it",
                )
            )
        if not measured[i] and np.isfinite(risk[i]) and risk[i] >= settings.risk_limit:
            candidates.append(
                (current[i], f"under-pacing risk {risk[i]:.0%} ≥ {settings.risk_limit:.0%}")
            )
        value, reason = min(candidates, key=lambda item: item[0])
        if value < current[i]:
            # Caps limit increases: an ad set already spending above a cap is not a recipient,
            # but the plan does not force a cut on it either (today's spend stays a feasible
            # plan, so "keep everything" is always on the table).
            value = current[i]
            reason = f"{reason} is below its current spend" if reason else None
        upper[i] = value
        if value < settings.upper_factor * current[i] - PENNY:
            reasons[i] = reason
    lower = np.minimum(settings.lower_factor * current, upper)
    lower = np.where(pooled, np.maximum(lower, (1 - POOLED_MOVE) * current), lower)
    fixed = np.asarray(locked, dtype=bool) | ~np.asarray(has_curve, dtype=bool) | (current <= 0)
    lower = np.where(fixed, current, lower)
    upper = np.where(fixed, current, upper)
    return lower, upper, reasons


def delivery_text(
    cap: float, measured: bool, days: float, age: float = np.nan, window_days=None
) -> str:
    """Why an increase stops at `cap`: a measured delivery cap (its evidence dated), or
    (delivery not measured) the most the ad set spent in a day."""
    if not measured:
        return f"delivery history: at most £{cap:,.0f} in a day in the window"
    window = f" in the last {window_days}" if window_days else ""
    latest = f", the latest {age:.0f} days ago" if np.isfinite(age) else ""
    return (
        f"its spend stopped following its budget at about £{cap:,.0f} a day ({days:.0f} days"
        f"{window} within {CAP_BAND:.0%} of it while its budget asked for {CAP_ASK:.0%}+ more"
        f"{latest})"
    )


# --------------------------------------------------------------------------- the plan's inputs
STATE_COLUMNS = (
    "ad_set_id",
    "ad_set_name",
    "current_spend",
    "daily_budget",
    "max_spend",
    "planned_budget",
    "utilization",
    "delivery_cap",
    "capped_days",
    "cap_age_days",
    "soft_cap",
    "recent_spend",
    "recent_revenue",
    "campaign_id",
    "campaign_name",
    "budget_level",
)
"""What a plan needs of each ad set's recent days (gold.daily_adset_metrics and its delivery,
planning.delivery.measure_delivery; or the published plan in the dashboard): the curves are
refitted weekly, the plan is made daily on today's spend and delivery. The recent actuals
(spend and revenue a day over the last RECENT_DAYS) stand beside the plan's expectations, so
a reader sees where a curve promises more than the ad set earned."""
RECENT_DAYS = 28
NEW_FIT = "new"
"""`fit` of an ad set that began spending after the curves were last fitted."""


def on_current_state(state: pd.DataFrame, curves: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per ad set of `state` (STATE_COLUMNS, the ad sets to plan) with its curve from
    `curves` (rows of gold.response_curves, draws_* list columns included when present), and the
    position of each row's curve in `curves` (-1 for an ad set the curves do not know: fit =
    NEW_FIT, no curve, so the plan keeps its spend). The curves' own spend figures and marginal
    ROAS are as of their fit: the state's replace them."""
    fitted = curves.drop(
        columns=[c for c in curves.columns if c in STATE_COLUMNS[1:] or c.startswith("marginal_")]
    ).reset_index(drop=True)
    position = pd.Index(fitted["ad_set_id"]).get_indexer(state["ad_set_id"])
    frame = state[list(STATE_COLUMNS)].merge(fitted, on="ad_set_id", how="left", validate="1:1")
    for column in frame.columns:
        if column.startswith("draws_"):
            frame[column] = frame[column].where(position >= 0, None)
    if "fit" in frame:
        frame["fit"] = frame["fit"].where(position >= 0, NEW_FIT)
    return frame, position


# ------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    ad_sets: pd.DataFrame
    """One row per ad set: see PLAN_COLUMNS."""
    summary: dict = field(default_factory=dict)
    """Plan-level figures: totals, unplaced budget, uplift and its interval, moves and ramps,
    numbers only (app.plan_headline words them)."""
    spend_path: np.ndarray | None = None
    """Ad sets × period_days: each day's expected spend (day 1 = recommended_spend; days past a
    ramp hold its target)."""
    days: pd.DataFrame | None = None
    """The period day by day (planning.period.DAY_COLUMNS)."""


def money(value: float) -> str:
    return f"£{abs(value):,.0f}"


def signed_money(value: float) -> str:
    return f"{'-' if value < 0 else '+'}£{abs(value):,.0f}"


def probability_text(value: float) -> str:
    """A calibrated probability in words: never "100%" or "0%" for one strictly between (a
    model's 0.998 is "over 99%", not a certainty)."""
    if 0.995 <= value < 1:
        return "over 99%"
    if 0 < value < 0.005:
        return "under 1%"
    return f"{value:.0%}"


def curve_window(curves: pd.DataFrame) -> int | None:
    """The days the curves were fitted on (None where the rows do not say)."""
    if curves.empty or not {"window_start", "window_end"} <= set(curves.columns):
        return None
    start = pd.to_datetime(curves["window_start"]).min()
    end = pd.to_datetime(curves["window_end"]).max()
    return int((end - start).days) + 1 if pd.notna(start) and pd.notna(end) else None


def _draw_matrix(curves: pd.DataFrame, column: str, draws: dict | None) -> np.ndarray | None:
    if draws is not None:
        return np.asarray(draws[column], dtype=float)
    name = f"draws_{column}"
    if name not in curves:
        return None
    width = max((len(v) for v in curves[name] if v is not None and len(v)), default=0)
    matrix = np.full((len(curves), width), np.nan)
    for i, values in enumerate(curves[name]):
        if values is not None and len(values):
            matrix[i, : len(values)] = np.asarray(values, dtype=float)
    return matrix


def build_plan(
    curves: pd.DataFrame,
    capacity: pd.DataFrame | None = None,
    settings: PlanSettings | None = None,
    draws: dict | None = None,
    plan_date: date | None = None,
    price_the_period: bool = True,
) -> Plan:
    """The plan for `settings` from fitted curves (rows of gold.response_curves; bootstrap draws
    from its `draws_*` list columns or from `draws`, arrays in the curves' order) and per ad set
    capacity (ad_set_id, under_pacing_risk; NaN = unknown), from `plan_date` (the period's
    first day, priced at its weekday; None: every day the average day; `price_the_period`
    False: the caller prices it, as the What-if does on its own draws). Ad sets in `curves`
    order."""
    settings = settings or PlanSettings()
    frame = curves.reset_index(drop=True).copy()
    n = len(frame)
    if capacity is not None and "under_pacing_risk" in capacity:
        risk_by_id = capacity.drop_duplicates("ad_set_id").set_index("ad_set_id")[
            "under_pacing_risk"
        ]
        risk = frame["ad_set_id"].map(risk_by_id).astype(float).to_numpy()
    else:
        risk = np.full(n, np.nan)
    current = frame["current_spend"].astype(float).fillna(0.0).to_numpy()
    vmax, half, shape = (
        frame[c].astype(float).to_numpy() for c in ("vmax", "half_saturation", "shape")
    )
    has_curve = np.isfinite(vmax) & np.isfinite(half) & np.isfinite(shape)
    locked = frame["ad_set_id"].isin(set(settings.locked)).to_numpy()

    def column(name: str) -> np.ndarray:
        values = frame.get(name, pd.Series(np.nan, index=frame.index))
        return pd.to_numeric(values, errors="coerce").astype(float).to_numpy()

    daily_budget, max_spend = column("daily_budget"), column("max_spend")
    utilization, measured_cap = column("utilization"), column("delivery_cap")
    capped_days = np.nan_to_num(column("capped_days"))
    window_days = curve_window(frame)
    measured = np.isfinite(utilization) & (utilization > 0)
    pooled = (frame.get("fit", pd.Series("own", index=frame.index)) == "pooled").to_numpy()
    budget_cap = frame["ad_set_id"].map(dict(settings.budget_caps)).astype(float)
    lower, upper, capacity_reasons = plan_bounds(
        current,
        budget_cap.to_numpy(),
        np.where(measured, measured_cap, max_spend),
        risk,
        locked,
        has_curve,
        settings,
        measured=measured,
        capped_days=capped_days,
        pooled=pooled,
        max_spend=max_spend,
        cap_age_days=column("cap_age_days"),
        window_days=window_days,
        soft_cap=np.where(measured, column("soft_cap"), np.nan),
    )
    # An ad set without a curve is fixed at its spend (lower == upper) with a zero curve, so it
    # adds nothing to the revenue the optimizer weighs.
    v = np.where(has_curve, vmax, 0.0)
    h = np.where(has_curve, half, 1.0)
    k = np.where(has_curve, shape, 1.0)
    revenue_now = np.where(has_curve, hill_revenue(current, v, h, k), np.nan)
    total_current = float(current.sum())
    goal_total = settings.total if settings.total is not None else total_current
    fixed = locked | ~has_curve | (current <= 0)
    planned_budget = column("planned_budget")
    budget_today = np.where(
        np.isfinite(planned_budget) & (planned_budget > 0), planned_budget, daily_budget
    )
    groups = budget_units(
        frame["ad_set_id"],
        text_column(frame, "campaign_id"),
        text_column(frame, "budget_level"),
        current,
        ad_set_name=frame.get("ad_set_name"),
        campaign_name=text_column(frame, "campaign_name"),
        has_curve=has_curve,
    )
    units = units_of(
        groups,
        Units(
            current=current,
            vmax=v,
            half=h,
            shape=k,
            lower=lower,
            upper=upper,
            budget=budget_today,
            utilization=np.where(measured, utilization, np.nan),
            soft_cap=np.where(measured, column("soft_cap"), np.nan),
            fixed=fixed,
        ),
        has_curve,
    )
    limited = limited_plan(
        units, scenario_allocator(units, settings, goal_total), limits_of(settings)
    )
    # A campaign's spend goes to its ad sets at today's split; ad sets without a curve have
    # lower == upper == current, so they are already fixed.
    unit_path = limited.path[:, : settings.period_days]
    if unit_path.shape[1] < settings.period_days:
        held_target = np.repeat(
            limited.target[:, None], settings.period_days - unit_path.shape[1], 1
        )
        unit_path = np.column_stack([unit_path, held_target])
    spend_path = np.column_stack([ad_set_spend(groups, day) for day in unit_path.T])
    spend_path = np.where(has_curve[:, None], spend_path, current[:, None])
    recommended = np.where(has_curve, ad_set_spend(groups, limited.path[:, 0]), current)
    target_spend = np.where(has_curve, ad_set_spend(groups, limited.target), current)
    of_unit = groups.unit_of
    held_by = limited.held[of_unit]
    revenue_new = np.where(has_curve, hill_revenue(recommended, v, h, k), np.nan)
    marginal_now = np.where(has_curve & (current > 0), hill_marginal(current, v, h, k), np.nan)
    marginal_new = np.where(
        has_curve & (recommended > 0), hill_marginal(recommended, v, h, k), np.nan
    )

    draw_v, draw_h, draw_k = (
        _draw_matrix(frame, c, draws) for c in ("vmax", "half_saturation", "shape")
    )
    nan_pair = (np.full(n, np.nan), np.full(n, np.nan))
    revenue_now_ci = revenue_new_ci = marginal_new_ci = nan_pair
    as_fitted = float(np.nansum(revenue_new) - np.nansum(revenue_now))
    claimed = claim(as_fitted, np.zeros(0))
    if draw_v is not None and draw_v.size:
        with np.errstate(invalid="ignore", divide="ignore"):
            drawn_now = hill_revenue(current[:, None], draw_v, draw_h, draw_k)
            drawn_new = hill_revenue(recommended[:, None], draw_v, draw_h, draw_k)
            drawn_marginal = hill_marginal(
                np.maximum(recommended, 1e-12)[:, None], draw_v, draw_h, draw_k
            )
        usable = has_curve & np.isfinite(drawn_now).all(axis=1)
        if usable.any():
            revenue_now_ci = _rows_around(revenue_now, drawn_now, usable)
            revenue_new_ci = _rows_around(revenue_new, drawn_new, usable)
            marginal_new_ci = _rows_around(marginal_new, drawn_marginal, usable & (recommended > 0))
            without_draws = np.nansum((revenue_new - revenue_now)[has_curve & ~usable])
            claimed = claim(
                as_fitted,
                (drawn_new[usable] - drawn_now[usable]).sum(axis=0) + without_draws,
            )

    change = recommended - current
    value = settings.target if settings.scenario == "target_roas" else limited.marginal_value
    role = np.full(n, "unchanged", dtype=object)
    role[target_spend - current > PENNY] = "recipient"
    role[target_spend - current < -PENNY] = "donor"
    role[held_by != ""] = "held"
    capped = (
        (role == "unchanged")
        & np.array([r is not None for r in capacity_reasons])
        & (np.nan_to_num(marginal_now) > (value if np.isfinite(value) else np.inf))
    )
    role[capped] = "capped"
    role[fixed] = "locked"
    new_budget = daily_budget_for(units, limited.path[:, 0])[of_unit]
    target_budget = daily_budget_for(units, limited.target)[of_unit]
    budget_today = daily_budget_for(units, units.current)[of_unit]
    revenue_target = np.where(has_curve, hill_revenue(target_spend, v, h, k), np.nan)
    unlimited_spend = np.where(has_curve, ad_set_spend(groups, limited.unlimited), current)
    moving = ((limited.move_rank > 0) | (limited.held != ""))[of_unit]
    move_value, move_rank = limited.move_value[of_unit], limited.move_rank[of_unit]

    plan = pd.DataFrame(
        {
            "ad_set_id": frame["ad_set_id"].astype(str),
            "ad_set_name": frame.get("ad_set_name", frame["ad_set_id"]).astype(str),
            "campaign_id": pd.Series(text_column(frame, "campaign_id"), dtype=object),
            "campaign_name": pd.Series(text_column(frame, "campaign_name"), dtype=object),
            "budget_level": groups.unit_levels[of_unit],
            "fit": frame.get("fit", pd.Series("own", index=frame.index)),
            "current_spend": current,
            "recommended_spend": recommended,
            "change": change,
            "lower_bound": lower,
            "upper_bound": upper,
            "locked": locked,
            "capacity_reason": pd.Series(capacity_reasons, dtype=object),
            "under_pacing_risk": risk,
            "daily_budget": daily_budget,
            "max_spend": max_spend,
            "planned_budget": column("planned_budget"),
            "utilization": np.where(measured, utilization, np.nan),
            "current_daily_budget": budget_today,
            "new_daily_budget": new_budget,
            "budget_change": new_budget - budget_today,
            "budget_change_share": new_budget / budget_today - 1,
            "target_spend": target_spend,
            "target_daily_budget": target_budget,
            "ramp_days": limited.ramp_days[of_unit],
            "unlimited_spend": unlimited_spend,
            "move_value": np.where(moving, move_value, np.nan),
            "move_rank": np.where(move_rank > 0, move_rank, np.nan),
            "held_by": held_by,
            "recommended_daily_budget": np.where(
                measured,
                budget_buying(
                    recommended, np.where(measured, utilization, 1.0), column("soft_cap")
                ),
                np.nan,
            ),
            "delivery_cap": np.where(measured, measured_cap, np.nan),
            "capped_days": np.where(measured, capped_days, np.nan),
            "cap_age_days": np.where(measured, column("cap_age_days"), np.nan),
            "soft_cap": np.where(measured, column("soft_cap"), np.nan),
            "budget_cv": column("budget_cv"),
            "recent_spend": column("recent_spend"),
            "recent_revenue": column("recent_revenue"),
            "expected_revenue_current": revenue_now,
            "expected_revenue_current_low": revenue_now_ci[0],
            "expected_revenue_current_high": revenue_now_ci[1],
            "expected_revenue_recommended": revenue_new,
            "expected_revenue_recommended_low": revenue_new_ci[0],
            "expected_revenue_recommended_high": revenue_new_ci[1],
            "expected_profit_current": settings.margin * revenue_now - current,
            # Spend is set, not drawn: profit's range is margin × revenue's − spend.
            "expected_profit_current_low": settings.margin * revenue_now_ci[0] - current,
            "expected_profit_current_high": settings.margin * revenue_now_ci[1] - current,
            "expected_profit_recommended": settings.margin * revenue_new - recommended,
            "expected_profit_recommended_low": settings.margin * revenue_new_ci[0] - recommended,
            "expected_profit_recommended_high": settings.margin * revenue_new_ci[1] - recommended,
            "marginal_roas_current": marginal_now,
            "marginal_roas_recommended": marginal_new,
            "marginal_roas_recommended_low": marginal_new_ci[0],
            "marginal_roas_recommended_high": marginal_new_ci[1],
            "role": role,
        }
    )
    plan["reason"] = [
        reason_text(row, settings, value, has, shift, limited.max_moves)
        for row, has, shift in zip(plan.itertuples(), has_curve, shift_clauses(frame), strict=True)
    ]
    plan["reason"] = plan["reason"] + campaign_clauses(plan, groups)
    summary = {
        "scenario": settings.scenario,
        "total_current": total_current,
        "total_recommended": float(recommended.sum()),
        "total_goal": float(goal_total) if settings.scenario == "same_budget" else None,
        "unplaced_budget": limited.unplaced,
        "forced_spend": limited.forced,
        "revenue_shortfall": limited.revenue_shortfall,
        "revenue_current": float(np.nansum(revenue_now)),
        "revenue_recommended": float(np.nansum(revenue_new)),
        "uplift": claimed.uplift,
        "uplift_low": claimed.low,
        "uplift_high": claimed.high,
        "uplift_as_fitted": claimed.as_fitted,
        "interval": INTERVAL,
        "marginal_roas": float(value) if np.isfinite(value) else None,
        "target_marginal_roas": settings.target,
        "lower_factor": settings.lower_factor,
        "upper_factor": settings.upper_factor,
        "locked_ad_sets": len(settings.locked),
        "ad_sets": n,
        "ad_sets_without_curve": int((~has_curve).sum()),
        "donors": int((role == "donor").sum()),
        "recipients": int((role == "recipient").sum()),
        "moved": float(change[change > 0].sum()),
        "cut": float(-change[change < 0].sum()),
        "margin": settings.margin,
        "break_even_roas": settings.break_even_roas,
        "max_daily_change": settings.max_daily_change,
        "min_move": settings.min_move,
        "min_move_share": settings.min_move_share,
        "max_moves": limited.max_moves,
        "moves": int(limited.kept.sum()),
        "held": int((role == "held").sum()),
        "uplift_kept_share": limited.kept_share,
        "uplift_unlimited": limited.value_unlimited,
        "ramp_days": int(limited.ramp_days.max(initial=0)),
        "total_target": float(target_spend.sum()),
        "revenue_target": float(np.nansum(revenue_target)),
        "uplift_target": float(np.nansum(revenue_target) - np.nansum(revenue_now)),
        "profit_current": float(settings.margin * np.nansum(revenue_now) - total_current),
        "profit_recommended": float(settings.margin * np.nansum(revenue_new) - recommended.sum()),
        "profit_uplift_target": float(
            settings.margin * (np.nansum(revenue_target) - np.nansum(revenue_now))
            - (target_spend.sum() - total_current)
        ),
        "period_days": settings.period_days,
    }
    summary.update(profit_uplift_of(summary))
    _, summary["move_target"], summary["move_first_day"] = move_amounts(plan, summary)
    drawn = (
        {"vmax": draw_v, "half_saturation": draw_h, "shape": draw_k}
        if draw_v is not None and draw_v.size
        else None
    )
    days = None
    if price_the_period:
        period = price_period(frame, current, spend_path, plan_date, settings.margin, drawn)
        plan, days = with_period(plan, period), period.days
        summary.update(period.summary)
    return Plan(plan, summary, spend_path, days)


def with_period(plan: pd.DataFrame, period: PeriodPlan) -> pd.DataFrame:
    """The plan's rows with each ad set's period totals (`planning.period.ROW_COLUMNS`)."""
    columns = [column for column in ROW_COLUMNS if column != "ad_set_id"]
    return plan.drop(columns=columns, errors="ignore").assign(
        **{column: period.rows[column].to_numpy() for column in columns}
    )


def campaign_clauses(plan: pd.DataFrame, groups: BudgetUnits) -> pd.Series:
    """For an ad set under a campaign budget, that the plan sets its campaign's budget (the
    platform splits it), in one sentence ("" for the others)."""
    members = np.bincount(groups.unit_of, weights=~groups.fixed, minlength=groups.count)
    in_campaign = groups.is_campaign[groups.unit_of] & (plan["role"] != "locked").to_numpy()
    clauses = np.full(len(plan), "", dtype=object)
    new_budget = plan["new_daily_budget"].to_numpy(dtype=float)
    change = plan["budget_change"].to_numpy(dtype=float)
    for position in np.flatnonzero(in_campaign):
        unit = groups.unit_of[position]
        budget = (
            f": set the campaign's daily budget to {prose_money(new_budget[position])}"
            if np.isfinite(new_budget[position]) and abs(change[position]) > PENNY
            else ""
        )
        clauses[position] = (
            f" Its budget is its campaign's ({groups.unit_names[unit]}, "
            f"{int(members[unit])} ad sets), planned as one on the sum of their curves at today's "
            f"split{budget}."
        )
    return pd.Series(clauses, index=plan.index, dtype=object)


def text_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A text column as objects (None where missing or blank; all None when absent)."""
    if name not in frame:
        return np.full(len(frame), None, dtype=object)
    values = frame[name].astype(object).where(frame[name].notna(), None)
    return np.array([v if isinstance(v, str) and v.strip() else None for v in values], object)


CAMPAIGN_FITS: OrderedDict[bytes, tuple[np.ndarray, ...]] = OrderedDict()
"""The last few campaign curve fits by their inputs: a fit is ~3 ms per campaign (0.5 s at 2,000
ad sets), and the What-if re-plans the same curves and spend on every change of a setting."""
CAMPAIGN_FITS_KEPT = 8


def campaign_curves(groups: BudgetUnits, vmax, half, shape) -> tuple[np.ndarray, ...]:
    """planning.campaigns.unit_curves, fitted once per set of curves and split."""
    key = hashlib.sha256(
        b"".join(
            np.ascontiguousarray(array, dtype=float).tobytes()
            for array in (groups.unit_of, groups.shares, groups.current, vmax, half, shape)
        )
        + "\x1f".join(map(str, groups.unit_ids)).encode()
    ).digest()
    if key in CAMPAIGN_FITS:
        CAMPAIGN_FITS.move_to_end(key)
    else:
        CAMPAIGN_FITS[key] = tuple(unit_curves(groups, vmax, half, shape)[:3])
        while len(CAMPAIGN_FITS) > CAMPAIGN_FITS_KEPT:
            CAMPAIGN_FITS.popitem(last=False)
    return tuple(array.copy() for array in CAMPAIGN_FITS[key])


def units_of(groups: BudgetUnits, ad_sets: Units, has_curve: np.ndarray) -> Units:
    """The budget units the plan moves: each ad set on its own budget as it is, and each
    campaign budget as one (planning.campaigns: the sum of its ad sets' curves at today's split,
    bounded by its first ad set to reach its own bound, its budget the sum of theirs). A
    campaign is fixed when one of its ad sets is (locked: the platform splits one budget, so
    one ad set cannot keep its spend while the others move)."""
    if not groups.is_campaign.any():
        return ad_sets
    vmax, half, shape = campaign_curves(
        groups,
        np.where(has_curve, ad_sets.vmax, np.nan),
        np.where(has_curve, ad_sets.half, np.nan),
        np.where(has_curve, ad_sets.shape, np.nan),
    )
    curved = np.isfinite(vmax)
    lower, upper = unit_bounds(groups, ad_sets.lower, ad_sets.upper)
    current = groups.unit_current
    counted = ~groups.fixed
    budget = np.bincount(
        groups.unit_of,
        weights=np.where(counted, np.nan_to_num(ad_sets.budget), 0.0),
        minlength=groups.count,
    )
    unknown = np.bincount(
        groups.unit_of, weights=counted & ~(ad_sets.budget > 0), minlength=groups.count
    )
    first = np.zeros(groups.count, dtype=int)
    first[groups.unit_of[::-1]] = np.arange(len(groups.unit_of))[::-1]
    campaign = groups.is_campaign
    locked = np.bincount(groups.unit_of, weights=ad_sets.fixed & counted, minlength=groups.count)
    fixed = np.where(campaign, (locked > 0) | ~curved | (current <= 0), ad_sets.fixed[first])
    upper = np.where(fixed, current, np.maximum(upper, current))
    lower = np.where(fixed, current, np.minimum(lower, upper))
    return Units(
        current=current,
        vmax=np.where(curved, vmax, 0.0),
        half=np.where(curved, half, 1.0),
        shape=np.where(curved, shape, 1.0),
        lower=lower,
        upper=upper,
        budget=np.where(campaign, np.where(unknown > 0, np.nan, budget), ad_sets.budget[first]),
        utilization=np.where(campaign, np.nan, ad_sets.utilization[first]),
        soft_cap=np.where(campaign, np.nan, ad_sets.soft_cap[first]),
        fixed=fixed,
    )


def profit_uplift_of(summary: dict) -> dict:
    """Profit's uplift and range a day from the revenue claim's (`uplift`, `uplift_low/high`):
    spend is what the plan sets, not drawn, so profit's claim is margin × revenue's − Δspend.
    Whoever re-prices the revenue claim (the What-if's replan) updates profit with this."""
    spend = summary["total_recommended"] - summary["total_current"]
    return {
        f"profit_{name}": summary["margin"] * summary[name] - spend
        for name in ("uplift", "uplift_low", "uplift_high")
    }


def limits_of(settings: PlanSettings) -> Limits:
    return Limits(
        settings.max_daily_change, settings.min_move, settings.min_move_share, settings.max_moves
    )


def scenario_allocator(units: Units, settings: PlanSettings, goal_total: float):
    """`allocate` for the scenario over a subset of units; the others keep today's spend, which
    comes off a fixed total (same_budget) and a revenue goal (same_revenue, today's revenue)."""
    revenue_today = units.revenue(units.current)
    goal_revenue = float(revenue_today.sum())

    def allocate_for(free: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Allocation:
        return allocate(
            units.vmax[free],
            units.half[free],
            units.shape[free],
            lower,
            upper,
            settings.scenario,
            total=goal_total - float(units.current[~free].sum()),
            target=settings.target,
            revenue_goal=goal_revenue - float(revenue_today[~free].sum()),
        )

    return allocate_for


def daily_budget_for(units: Units, spend: np.ndarray) -> np.ndarray:
    """The daily budget that buys `spend` (today's where spend is today's); NaN where neither
    today's budget nor the delivery is known."""
    known = (np.isfinite(units.budget) & (units.budget > 0)) | units.measured
    moved = np.abs(spend - units.current) > PENNY
    return np.where(known, np.where(moved, units.budget_of(spend), units.today), np.nan)


def _rows_around(point: np.ndarray, draws: np.ndarray, rows: np.ndarray):
    """Each row's 90% range placed around its own point (rows outside `rows`: NaN)."""
    return rows_interval_around(np.where(rows, point, np.nan), draws)


def shift_clauses(curves: pd.DataFrame) -> list[str]:
    """Per ad set, the level shift its curve was fitted after, in words ("" where none)."""
    if "shifted_on" not in curves:
        return [""] * len(curves)
    days = curves.get("days", pd.Series(np.nan, index=curves.index))
    clauses = []
    for on, ratio, count in zip(curves["shifted_on"], curves["level_shift"], days, strict=True):
        if on is None or pd.isna(on) or not np.isfinite(ratio):
            clauses.append("")
            continue
        since = f"; curve fitted on the {int(count)} days since" if np.isfinite(count) else ""
        clauses.append(
            f" (its revenue per pound moved {ratio - 1:+.0%} around "
            f"{pd.Timestamp(on):%d %b %Y}{since})"
        )
    return clauses


def reason_text(
    row, settings: PlanSettings, value: float, has_curve: bool, shift: str = "", moves: int = 0
) -> str:
    """Why this ad set moves (or not), in words built from its numbers; `shift` the clause of
    `shift_clauses` for its level shift, `moves` the count limit the plan applied."""
    spend = row.current_spend
    if row.role == "locked":
        if row.locked:
            return f"Locked by you: keeps {money(spend)}/day."
        if spend <= 0:
            return "No spend in the last 7 days: nothing to plan."
        if row.fit == NEW_FIT:
            return (
                f"New since the response curves were last fitted (the weekly retrain fits its "
                f"curve): keeps {money(spend)}/day."
            )
        return (
            f"No response curve (its spend barely varied and no audience group could be pooled): "
            f"keeps {money(spend)}/day."
        )
    level = (
        f"the {settings.target:.1f}× target"
        if settings.scenario == "target_roas"
        else f"the {value:.1f}× the plan equalises at"
        if np.isfinite(value)
        else "the other ad sets"
    )
    marginal = f"Marginal ROAS {row.marginal_roas_current:.1f}× at {money(spend)}/day{shift}"
    pooled = pooled_text(row) if row.fit == "pooled" else ""
    measured = np.isfinite(row.utilization)
    if not np.isfinite(row.under_pacing_risk):
        risk = " Pacing risk unknown (no trained model)" + (
            "." if measured else ": capacity from its delivery history only."
        )
    elif measured and row.under_pacing_risk >= settings.risk_limit and row.role == "recipient":
        risk = (
            f" The pacing model gives it a {probability_text(row.under_pacing_risk)} risk of under-pacing "
            "tomorrow, but its spend has followed its budget: watch its delivery."
        )
    else:
        risk = ""
    if row.role == "held":
        return f"{marginal}{pooled}. {held_text(row, settings, moves)} Keeps {money(spend)}/day."
    steps = f"{budget_text(row)}{ramp_text(row, settings)}{average_text(row, settings, value)}"
    if row.role == "donor":
        bound = " (its lower bound)" if row.target_spend <= row.lower_bound + PENNY else ""
        return (
            f"{marginal}{pooled}, below {level}: move {money(row.current_spend - row.target_spend)} "
            f"to better ad sets, to {money(row.target_spend)}/day{bound}.{steps}"
        )
    if row.role == "recipient":
        limit = ""
        if row.target_spend >= row.upper_bound - PENNY:
            limit = f" (its upper bound{': ' + row.capacity_reason if row.capacity_reason else ''})"
        return (
            f"{marginal}{pooled}, above {level}: add {money(row.target_spend - row.current_spend)}, "
            f"to {money(row.target_spend)}/day{limit}.{steps}{risk}"
        )
    if row.role == "capped":
        return (
            f"{marginal}{pooled}, above {level}, but {row.capacity_reason}: keeps "
            f"{money(spend)}/day."
        )
    return f"{marginal}{pooled}, at {level}: keeps {money(spend)}/day.{risk}"


def held_text(row, settings: PlanSettings, moves: int) -> str:
    """Which limit holds a move back, and the move it would have been."""
    move = row.unlimited_spend - row.current_spend
    would = (
        f"the plan without limits would {'add' if move > 0 else 'cut'} {money(move)} "
        f"({move / row.current_spend:+.0%}), to {money(row.unlimited_spend)}/day"
    )
    if row.held_by == "max_moves":
        return (
            f"Held back: {would}, worth {money(row.move_value)} a day, but it ranks "
            f"{int(row.move_rank)} and the plan makes only its {moves} most "
            "valuable moves."
        )
    return (
        f"Held back: {would}, below the minimum move ({money(settings.min_move)} and "
        f"{settings.min_move_share:.0%} of its budget a day)."
    )


def ramp_text(row, settings: PlanSettings) -> str:
    """A move bigger than a day's limit, as the ramp a buyer carries out."""
    if row.ramp_days <= 1:
        return ""
    verb = "Raise" if row.target_spend > row.current_spend else "Cut"
    budget = row.target_daily_budget if np.isfinite(row.target_daily_budget) else np.nan
    to = (
        f"a daily budget of {money(budget)}"
        if np.isfinite(budget)
        else (f"{money(row.target_spend)}/day of spend")
    )
    return (
        f" {verb} it by up to {settings.max_daily_change:.0%} a day for {int(row.ramp_days)} days, "
        f"to {to} (a bigger step puts it back into its learning phase)."
    )


def average_text(row, settings: PlanSettings, value: float) -> str:
    """Why an ad set whose average ROAS is below the level receives budget, or one above it
    gives budget: the plan prices its next pound (marginal), not the ones it already spends."""
    level = settings.target if settings.scenario == "target_roas" else value
    if not (np.isfinite(level) and np.isfinite(row.recent_spend) and row.recent_spend > 0):
        return ""
    average = row.recent_revenue / row.recent_spend
    if not np.isfinite(average):
        return ""
    if row.role == "recipient" and average < level:
        return (
            f" Its average ROAS is {average:.1f}×, below {level:.1f}×, yet it gets budget: its "
            f"next pound returns {row.marginal_roas_current:.1f}×, more than the others' next "
            f"pound (average ROAS counts the pounds it already spends; the plan weighs the next)."
        )
    if row.role == "donor" and average > level:
        return (
            f" Its average ROAS is {average:.1f}×, above {level:.1f}×, yet it gives budget: its "
            f"next pound returns only {row.marginal_roas_current:.1f}×, less than the others' "
            f"next pound (average ROAS counts the pounds it already spends; the plan weighs the "
            f"next)."
        )
    return ""


def pooled_text(row) -> str:
    """Why a pooled ad set only moves a little."""
    moved = (
        f"its budget barely moved (weekly means vary {row.budget_cv:.0%})"
        if np.isfinite(row.budget_cv)
        else "its spend barely moved"
    )
    return (
        f" (own curve not known: {moved}; its curve is pooled from its audience group, so it "
        f"moves at most {POOLED_MOVE:.0%})"
    )


def budget_text(row) -> str:
    """The daily budget to set on the plan date, and how the delivery reads it."""
    if not np.isfinite(row.new_daily_budget):
        return ""
    since = (
        f" (from {money(row.current_daily_budget)})"
        if np.isfinite(row.current_daily_budget)
        else ""
    )
    text = f" Set its daily budget to {money(row.new_daily_budget)}{since} on the plan date"
    if np.isfinite(getattr(row, "soft_cap", np.nan)):
        return (
            f"{text}: its spend flattens toward about {money(row.soft_cap)} a day, so that budget "
            f"buys about {money(row.recommended_spend)}."
        )
    if np.isfinite(row.utilization):
        return f"{text}: it spends about {row.utilization:.0%} of its budget."
    return f"{text}: its spend follows its budget in proportion."


def move_amounts(plan: pd.DataFrame, summary: dict) -> tuple[str, float, float]:
    """What the plan does (Move, Cut or Add), the pounds a day it moves once ramped, and on the
    plan date: the headline (app.plan_headline) and Next steps quote the same two figures."""
    net = summary["total_target"] - summary["total_current"]
    first_net = summary["total_recommended"] - summary["total_current"]
    if summary["scenario"] == "same_budget" or abs(net) <= PENNY:
        donors = plan["role"] == "donor"
        cut = plan.loc[donors, "current_spend"].sum() - plan.loc[donors, "target_spend"].sum()
        return "Move", float(cut), float(summary["cut"])
    if net < 0:
        return "Cut", float(-net), float(-first_net)
    return "Add", float(net), float(first_net)


PLAN_COLUMNS = (
    "ad_set_id",
    "ad_set_name",
    "campaign_id",
    "campaign_name",
    "budget_level",
    "fit",
    "current_spend",
    "recommended_spend",
    "change",
    "lower_bound",
    "upper_bound",
    "locked",
    "capacity_reason",
    "under_pacing_risk",
    "daily_budget",
    "max_spend",
    "planned_budget",
    "utilization",
    "recommended_daily_budget",
    "current_daily_budget",
    "new_daily_budget",
    "budget_change",
    "budget_change_share",
    "target_spend",
    "target_daily_budget",
    "ramp_days",
    "unlimited_spend",
    "move_value",
    "move_rank",
    "held_by",
    "delivery_cap",
    "capped_days",
    "cap_age_days",
    "soft_cap",
    "budget_cv",
    "recent_spend",
    "recent_revenue",
    "expected_revenue_current",
    "expected_revenue_current_low",
    "expected_revenue_current_high",
    "expected_revenue_recommended",
    "expected_revenue_recommended_low",
    "expected_revenue_recommended_high",
    "expected_profit_current",
    "expected_profit_current_low",
    "expected_profit_current_high",
    "expected_profit_recommended",
    "expected_profit_recommended_low",
    "expected_profit_recommended_high",
    "period_spend",
    "period_revenue",
    "period_revenue_low",
    "period_revenue_high",
    "period_profit",
    "marginal_roas_current",
    "marginal_roas_recommended",
    "marginal_roas_recommended_low",
    "marginal_roas_recommended_high",
    "role",
    "reason",
)
