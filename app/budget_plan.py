"""The budget plan in the dashboard: the plan the last run published (the one story every view
tells: the Overview's headline, the Forecasts' actions, Next steps and the facts sent to LM
Studio, the report) and the What-if's re-plans of it from the served response curves.

Pure functions over frames (the dashboard caches what they read): `planning` does the
optimisation, this module only prepares its inputs and words its outputs.
"""

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from app import narrative, plan_headline
from app.text import csv_text
from planning import (
    SCENARIOS,
    STATE_COLUMNS,
    PlanSettings,
    build_plan,
    hill_marginal,
    hill_revenue,
    on_current_state,
)
from planning.calendar import day_name, demand_for, factor_for_day, priced_for_day
from planning.claims import claim, rows_interval_around
from planning.curves import interval_around
from planning.optimizer import profit_uplift_of, with_period
from planning.period import price_period

RISK_ALERT = 0.5
"""Under-pacing risk at or above this: told to check delivery (the optimizer's own limit,
planning.settings.RISK_LIMIT). It vetoes an increase only where the pacing rows did not measure
delivery; a funded ad set at risk says so in its reason."""
SCENARIO_LABELS = {
    "same_budget": "Most revenue for the same budget",
    "target_roas": "Spend while marginal ROAS ≥ target",
    "same_revenue": "Same revenue for less",
}
assert set(SCENARIO_LABELS) == set(SCENARIOS)
ROLE_LABELS = {
    "donor": "gives budget",
    "recipient": "receives budget",
    "unchanged": "unchanged",
    "capped": "capped",
    "held": "held back by the limits",
    "locked": "fixed",
}


# ------------------------------------------------------------------------ the published plan
LIMIT_SETTINGS = (
    "margin",
    "max_daily_change",
    "min_move",
    "min_move_share",
    "max_moves",
    "period_days",
)
"""Stored by plans since the buyer's limits; an older plan's summary lacks them (defaults)."""


def settings_from(summary: dict) -> PlanSettings:
    """The settings the published plan was made with (its summary's `settings` JSON)."""
    try:
        stored = json.loads(summary.get("settings") or "{}")
    except (TypeError, ValueError):
        stored = {}
    try:
        return PlanSettings(
            scenario=stored.get("scenario") or summary.get("scenario") or "same_budget",
            target_marginal_roas=stored.get("target_marginal_roas"),
            lower_factor=float(stored.get("lower_factor", 0.5)),
            upper_factor=float(stored.get("upper_factor", 1.5)),
            locked=tuple(stored.get("locked") or ()),
            total=stored.get("fixed_total"),
            budget_caps=tuple(
                sorted(
                    (str(k), float(v)) for k, v in (stored.get("daily_budget_caps") or {}).items()
                )
            ),
            **{name: stored[name] for name in LIMIT_SETTINGS if stored.get(name) is not None},
        )
    except (ValueError, TypeError, AttributeError):
        return PlanSettings()


@dataclass(frozen=True)
class PublishedPlan:
    """gold.budget_plan_summary's row and gold.budget_plan's rows, as the last run wrote them."""

    summary: dict
    ad_sets: pd.DataFrame

    @classmethod
    def from_tables(cls, found: tuple[dict, pd.DataFrame] | None) -> "PublishedPlan | None":
        return None if found is None else cls(*found)

    @property
    def headline(self) -> str:
        """Rendered from the stored figures (the pipeline stores numbers, not the sentence); ""
        for a serving file published before one of them was stored (shown as not available
        until the next run publishes the plan again)."""
        return self.memo("headline", self._headline)

    def _headline(self) -> str:
        stored = set(self.summary).issuperset(plan_headline.HEADLINE_FIGURES) and set(
            self.ad_sets.columns
        ).issuperset(plan_headline.HEADLINE_COLUMNS)
        return plan_headline.headline(self.ad_sets, self.summary) if stored else ""

    @property
    def test_proposal(self) -> str:
        """The lift test worth running next, in one sentence ("" when none is worth it or the
        plan was published before tests were proposed)."""
        proposal = self.summary.get("test_proposal")
        return "" if proposal is None or pd.isna(proposal) else str(proposal)

    @property
    def plan_date(self) -> date | None:
        day = self.summary.get("plan_date")
        return None if day is None or pd.isna(day) else pd.Timestamp(day).date()

    @property
    def settings(self) -> PlanSettings:
        return settings_from(self.summary)

    @property
    def state(self) -> pd.DataFrame:
        """Each ad set's current spend and caps as the plan was made on them (the curves are
        fitted weekly, so their own spend figures can be days older). A plan published before
        delivery was measured has no utilization (the What-if then applies that plan's rules)
        and its `delivery_cap` is the most spent in a day."""
        state = self.ad_sets.reindex(columns=list(STATE_COLUMNS))
        if "max_spend" not in self.ad_sets:
            state["max_spend"], state["delivery_cap"] = state["delivery_cap"], np.nan
        return state

    def role(self, role: str) -> pd.DataFrame:
        """Donors (largest cut first) or recipients (largest increase first)."""
        rows = self.ad_sets[self.ad_sets["role"] == role]
        return rows.sort_values(["change", "ad_set_id"], ascending=[role == "donor", True])

    @property
    def at_risk(self) -> pd.DataFrame:
        """Ad sets the pacing model gives a high risk of under-pacing tomorrow that the plan does
        not give budget to, riskiest first. A recipient at risk is funded because its spend has
        followed its budget (its reason says the risk): it is not one to check first."""
        risk = pd.to_numeric(self.ad_sets["under_pacing_risk"], errors="coerce")
        funded = self.ad_sets["role"] == "recipient"
        return self.ad_sets[(risk >= RISK_ALERT) & ~funded].sort_values(
            ["under_pacing_risk", "ad_set_id"], ascending=[False, True]
        )

    def rows_by_id(self) -> dict[str, dict]:
        return self.memo(
            "rows_by_id", lambda: {row["ad_set_id"]: row for row in self.ad_sets.to_dict("records")}
        )

    def memo(self, key: str, compute):
        """`compute()` once per published plan (the dashboard shares one object per serving
        file): its facts and rows are asked for on every rerun."""
        cache = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]


def headline_text(plan: PublishedPlan) -> str:
    """The headline as the Overview, presenter view and report open with it (plain text: escape
    it for the sink)."""
    day = plan.plan_date
    when = f"Budget plan for {day:%a %d %b}" if day else "Budget plan"
    return f"{when}: {plan.headline}"


# ----------------------------------------------------------------------- curves for re-plans
@dataclass(frozen=True)
class Curves:
    """What the What-if re-plans from, read once per serving-file version: the curves (without
    their list columns), their bootstrap draws as matrices (ad sets × draws), the capacity the
    published plan used (under_pacing_risk by ad set) and its settings; and, computed once, each
    draw's revenue at today's spend (what every re-plan compares with)."""

    frame: pd.DataFrame
    draws: dict[str, np.ndarray]
    capacity: pd.DataFrame
    settings: PlanSettings = field(default_factory=PlanSettings)
    plan_date: date | None = None
    usable: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """Ad sets with a curve whose every draw gives a revenue at today's spend (as build_plan)."""
    drawn_now: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """Revenue at today's spend under each draw (ad sets × draws; rows not `usable`: NaN)."""

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def current(self) -> np.ndarray:
        return self.frame["current_spend"].astype(float).fillna(0.0).to_numpy()

    @property
    def without_draws(self) -> dict[str, np.ndarray]:
        """Draws of width zero: build_plan then skips its own bootstrap (done here, once)."""
        return {name: np.empty((len(self), 0)) for name in DRAW_COLUMNS}


DRAW_COLUMNS = ("vmax", "half_saturation", "shape")


def draw_matrix(values: pd.Series) -> np.ndarray:
    """A list column as a matrix, NaN where an ad set has no draws."""
    width = max((len(v) for v in values if v is not None and len(v)), default=0)
    matrix = np.full((len(values), width), np.nan)
    for i, row in enumerate(values):
        if row is not None and len(row):
            matrix[i, : len(row)] = np.asarray(row, dtype=float)
    return matrix


def load_curves(
    curves: pd.DataFrame, published: PublishedPlan | None, draws: dict | None = None
) -> Curves:
    """`curves`: rows of gold.response_curves in ad_set_id order, with their draws_* list
    columns, or without them and `draws` (matrices in the same order)."""
    frame = curves.reset_index(drop=True)
    if draws is None:
        draws = {name: draw_matrix(frame[f"draws_{name}"]) for name in DRAW_COLUMNS}
    frame = frame.drop(
        columns=[f"draws_{name}" for name in DRAW_COLUMNS if f"draws_{name}" in frame]
    )
    if published is not None:
        frame, position = on_current_state(published.state, frame)
        draws = {name: rows_at(matrix, position) for name, matrix in draws.items()}
        capacity = published.ad_sets[["ad_set_id", "under_pacing_risk"]].copy()
        settings, plan_date = published.settings, published.plan_date
        frame, factor = priced_for_day(frame, plan_date)
        draws = {**draws, "vmax": draws["vmax"] * factor}
    else:
        capacity = pd.DataFrame({"ad_set_id": [], "under_pacing_risk": []})
        settings, plan_date = PlanSettings(), None
    current = frame["current_spend"].astype(float).fillna(0.0).to_numpy()
    has_curve = np.ones(len(frame), dtype=bool)
    for name in DRAW_COLUMNS:
        has_curve &= np.isfinite(frame[name].astype(float).to_numpy())
    v, h, k = (draws[name] for name in DRAW_COLUMNS)
    if v.size:
        with np.errstate(invalid="ignore", divide="ignore"):
            drawn_now = hill_revenue(current[:, None], v, h, k)
        usable = has_curve & np.isfinite(drawn_now).all(axis=1)
    else:
        drawn_now, usable = np.zeros((len(frame), 0)), np.zeros(len(frame), dtype=bool)
    return Curves(frame, draws, capacity, settings, plan_date, usable, drawn_now)


def rows_at(matrix: np.ndarray, position: np.ndarray) -> np.ndarray:
    """The matrix's rows at `position` (NaN rows where it is -1)."""
    picked = matrix[np.maximum(position, 0)] if len(matrix) else np.full((len(position), 0), np.nan)
    picked[position < 0] = np.nan
    return picked


@dataclass(frozen=True)
class Replan:
    ad_sets: pd.DataFrame
    summary: dict
    revenue_low: float
    revenue_high: float
    """90% bootstrap interval of tomorrow's total expected revenue at the recommended spend."""
    days: pd.DataFrame | None = None
    """The period day by day (planning.period.DAY_COLUMNS)."""

    @property
    def headline(self) -> str:
        return plan_headline.headline(self.ad_sets, self.summary)

    @property
    def roas(self) -> float | None:
        spend = self.summary["total_recommended"]
        return self.summary["revenue_recommended"] / spend if spend else None

    @property
    def roas_low(self) -> float | None:
        spend = self.summary["total_recommended"]
        return self.revenue_low / spend if spend else None

    @property
    def roas_high(self) -> float | None:
        spend = self.summary["total_recommended"]
        return self.revenue_high / spend if spend else None


def replan(curves: Curves, settings: PlanSettings) -> Replan:
    """The plan for `settings` from the served curves (what the What-if shows).

    build_plan runs without draws; its bootstrap is done here on the ad sets whose spend
    changes only (the others' uplift is zero in every draw, their revenue at today's spend is
    computed once per serving file), which gives build_plan's uplift range and headline at a
    third of the cost. Also a 90% interval of tomorrow's total expected revenue (ad sets without
    draws count at their point estimate in every draw) and, per ad set that moves, of its
    expected revenue at the recommended spend. Refuses (PlanSettingsError, as a run would) locks
    and caps naming ad sets that are not in the plan; `settings` refused other values when made."""
    settings.check_ad_sets(curves.frame["ad_set_id"], "being re-planned")
    plan = build_plan(
        curves.frame,
        curves.capacity,
        settings,
        draws=curves.without_draws,
        plan_date=curves.plan_date,
        price_the_period=False,
    )
    ad_sets, summary = plan.ad_sets, dict(plan.summary)
    summary["priced_for_day"] = day_name(curves.plan_date)
    summary["weekday_factor"] = factor_for_day(curves.frame, curves.plan_date)
    summary["demand_level"] = demand_for(curves.frame)
    usable = curves.usable
    period = price_period(
        curves.frame,
        curves.current,
        plan.spend_path,
        curves.plan_date,
        settings.margin,
        curves.draws if usable.any() else None,
    )
    summary.update(period.summary)
    ad_sets = with_period(ad_sets, period)
    if not usable.any():
        point = summary["revenue_recommended"]
        return Replan(ad_sets, summary, point, point, period.days)
    recommended = ad_sets["recommended_spend"].to_numpy()
    moved = usable & (recommended != curves.current)
    v, h, k = (curves.draws[name][moved] for name in DRAW_COLUMNS)
    with np.errstate(invalid="ignore", divide="ignore"):
        drawn_new = hill_revenue(recommended[moved, None], v, h, k)
    uplift = (drawn_new - curves.drawn_now[moved]).sum(axis=0)
    without_draws = np.nansum(
        (ad_sets["expected_revenue_recommended"] - ad_sets["expected_revenue_current"]).to_numpy()[
            ~usable
        ]
    )
    claimed = claim(summary["uplift_as_fitted"], uplift + without_draws)
    summary.update(uplift=claimed.uplift, uplift_low=claimed.low, uplift_high=claimed.high)
    summary.update(profit_uplift_of(summary))
    point = ad_sets["expected_revenue_recommended"].to_numpy()
    drawn_rows = np.full((len(ad_sets), uplift.size), np.nan)
    drawn_rows[moved] = drawn_new
    still = usable & ~moved
    drawn_rows[still] = curves.drawn_now[still]
    low_column, high_column = rows_interval_around(np.where(usable, point, np.nan), drawn_rows)
    ad_sets = ad_sets.assign(
        expected_revenue_recommended_low=low_column,
        expected_revenue_recommended_high=high_column,
    )
    totals = curves.drawn_now[usable].sum(axis=0) + uplift
    rest = float(np.nansum(point[~usable]))
    low, high = interval_around(float(np.nansum(point[usable])), totals)
    return Replan(ad_sets, summary, float(low) + rest, float(high) + rest, period.days)


# ---------------------------------------------------------------- the naive rule, comparably
@dataclass(frozen=True)
class NaiveValue:
    uplift: float
    low: float
    high: float
    moved: float
    """Daily spend the naive rule moves (pounds a day, on tomorrow's current spend)."""
    valued: int
    """Ad sets it moves that have a curve (the others cannot be valued and are left out)."""
    unvalued: int
    recipients: tuple[str, ...]
    donors: tuple[str, ...]
    per_day: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per ad set, a day: `ad_set_id`, `group`, `spend` (tomorrow's current spend), `new_spend`,
    `spend_change`, `revenue_change` (on the fitted curves; NaN without a curve)."""


def naive_value(curves: Curves, naive_plan: pd.DataFrame) -> NaiveValue | None:
    """The naive quartile rule (app.whatif.reallocate, on the period on screen) applied to
    tomorrow's current spend (each ad set's spend scaled as the rule scales its period spend)
    and valued with the same fitted curves as the plan, with the same bootstrap draws."""
    ids = curves.frame["ad_set_id"]
    rows = pd.Index(ids).get_indexer(naive_plan["ad_set_id"])
    known = rows >= 0
    if not known.any():
        return None
    naive = naive_plan[known]
    rows = rows[known]
    period = naive["spend"].to_numpy(dtype=float)
    scale = np.where(period > 0, naive["new_spend"].to_numpy(dtype=float) / period, 1.0)
    current = curves.current[rows]
    new = current * scale
    moved = np.abs(new - current) > 0.005
    v, h, k = (curves.frame[c].astype(float).to_numpy()[rows] for c in DRAW_COLUMNS)
    has = np.isfinite(v) & np.isfinite(h) & np.isfinite(k)
    valued = moved & has
    gain = np.zeros(len(rows))
    gain[valued] = hill_revenue(new[valued], v[valued], h[valued], k[valued]) - hill_revenue(
        current[valued], v[valued], h[valued], k[valued]
    )
    low = high = float(gain.sum())
    drawn = valued & curves.usable[rows]
    if drawn.any():
        at = rows[drawn]
        dv, dh, dk = (curves.draws[name][at] for name in DRAW_COLUMNS)
        with np.errstate(invalid="ignore", divide="ignore"):
            after = hill_revenue(new[drawn, None], dv, dh, dk)
        uplift = (after - curves.drawn_now[at]).sum(axis=0) + gain[valued & ~drawn].sum()
        low, high = interval_around(float(gain.sum()), uplift)
    groups = naive["group"].to_numpy()
    naive_ids = naive["ad_set_id"].to_numpy()
    return NaiveValue(
        uplift=float(gain.sum()),
        low=float(low),
        high=float(high),
        moved=float(np.clip(new - current, 0, None).sum()),
        valued=int(valued.sum()),
        unvalued=int((moved & ~has).sum()),
        recipients=tuple(naive_ids[groups == "receives budget"]),
        donors=tuple(naive_ids[groups == "gives budget"]),
        per_day=pd.DataFrame(
            {
                "ad_set_id": naive_ids,
                "group": groups,
                "spend": current,
                "new_spend": new,
                "spend_change": new - current,
                "revenue_change": np.where(has, gain, np.nan),
            }
        ),
    )


# ------------------------------------------------------------------------- shown and exported
TABLE_COLUMNS = (
    "ad_set_id",
    "ad_set_name",
    "role",
    "current_daily_budget",
    "new_daily_budget",
    "budget_change",
    "budget_change_share",
    "ramp_days",
    "target_daily_budget",
    "campaign_name",
    "budget_level",
    "current_spend",
    "recommended_spend",
    "change",
    "expected_revenue_recommended",
    "expected_revenue_recommended_low",
    "expected_revenue_recommended_high",
    "recent_revenue",
    "recent_spend",
    "expected_profit_recommended",
    "period_revenue",
    "period_profit",
    "marginal_roas_current",
    "marginal_roas_recommended",
    "move_rank",
    "utilization",
    "delivery_cap",
    "lower_bound",
    "upper_bound",
    "under_pacing_risk",
    "fit",
    "reason",
)
EXPORT_COLUMNS = {
    "plan_date": "plan_date",
    "scenario": "scenario",
    "budget_level": "budget_level",
    "campaign_id": "campaign_id",
    "campaign_name": "campaign_name",
    "ad_set_id": "ad_set_id",
    "ad_set_name": "ad_set_name",
    "current_daily_budget": "current_daily_budget",
    "new_daily_budget": "new_daily_budget",
    "budget_change": "budget_change",
    "budget_change_share": "budget_change_share",
    "ramp_days": "ramp_days",
    "target_daily_budget": "target_daily_budget",
    "recommended_spend": "expected_spend",
    "expected_revenue_recommended": "expected_revenue",
    "expected_revenue_recommended_low": "expected_revenue_low",
    "expected_revenue_recommended_high": "expected_revenue_high",
    "expected_profit_recommended": "expected_profit",
    "expected_profit_recommended_low": "expected_profit_low",
    "expected_profit_recommended_high": "expected_profit_high",
    "period_days": "period_days",
    "period_spend": "period_spend",
    "period_revenue": "period_revenue",
    "period_profit": "period_profit",
    "role": "role",
    "reason": "reason",
}
"""Plan column → the bulk-edit file's column: one row per budget to set, on the plan date."""
SUMMED = (
    "recommended_spend",
    "expected_revenue_recommended",
    "expected_profit_recommended",
    "period_spend",
    "period_revenue",
    "period_profit",
)
"""A campaign budget's row adds up its ad sets' expectations (their ranges are not additive:
left empty)."""


CURVES_CANNOT_SEE = (
    "Expected revenue comes from each ad set's response curve: revenue a day against spend, "
    "fitted on the last 180 days with one carry-over, weekday and demand pattern shared by all ad "
    "sets. The curves cannot see an ad set's own carry-over or season, competitors and auction "
    "prices, creative or audience changes, or anything new since they were fitted: actual "
    "revenue over the last 28 days stands beside each expectation, and the Models tab shows how "
    "well the curves predicted past weeks."
)
"""Said wherever the plan is shown (What-if, Models tab, report), not only in the README."""


def plan_table(plan: pd.DataFrame) -> pd.DataFrame:
    """The per-ad-set plan, biggest moves first (then capped, unchanged, fixed)."""
    order = {"donor": 0, "recipient": 0, "held": 1, "capped": 1, "unchanged": 2, "locked": 3}
    table = plan[[c for c in TABLE_COLUMNS if c in plan]].copy()
    table["_order"] = table["role"].map(order).fillna(4)
    table["_size"] = -table["change"].abs()
    table = table.sort_values(["_order", "_size", "ad_set_id"]).drop(columns=["_order", "_size"])
    table["role"] = table["role"].map(ROLE_LABELS).fillna(table["role"])
    return table.reset_index(drop=True)


def plan_csv(plan: pd.DataFrame, settings: PlanSettings, plan_date: date | None) -> str:
    """The plan as a bulk-edit file: one row per budget to set (an ad set's, or a campaign's for
    ad sets under a campaign budget), today's and the new daily budget on `plan_date`, the ramp
    and the expectations; money to pence, text neutralised for spreadsheets."""
    rows = plan.assign(
        plan_date=plan_date.isoformat() if plan_date else None,
        scenario=settings.scenario,
        period_days=settings.period_days,
    ).reindex(columns=list(EXPORT_COLUMNS))
    rows["budget_level"] = rows["budget_level"].fillna("ad_set")
    campaign = (rows["budget_level"] == "campaign") & rows["campaign_id"].notna()
    if campaign.any():
        members = rows[campaign]
        firsts = members.groupby("campaign_id", sort=True).first()
        sums = members.groupby("campaign_id", sort=True)[list(SUMMED)].sum(min_count=1)
        counts = members.groupby("campaign_id", sort=True).size()
        budgets = firsts.assign(**sums).assign(
            ad_set_id=None,
            ad_set_name=[f"{count} ad sets (campaign budget)" for count in counts],
            expected_revenue_recommended_low=np.nan,
            expected_revenue_recommended_high=np.nan,
            expected_profit_recommended_low=np.nan,
            expected_profit_recommended_high=np.nan,
        )
        rows = pd.concat([rows[~campaign], budgets.reset_index()[list(EXPORT_COLUMNS)]])
    order = rows["budget_change"].abs().fillna(0)
    rows = rows.assign(_size=-order).sort_values(["_size", "campaign_id", "ad_set_id"])
    rows = rows.drop(columns="_size").rename(columns=EXPORT_COLUMNS).reset_index(drop=True)
    money = rows.columns.intersection(
        [
            "current_daily_budget",
            "new_daily_budget",
            "budget_change",
            "target_daily_budget",
            "expected_spend",
            "expected_revenue",
            "expected_revenue_low",
            "expected_revenue_high",
            "expected_profit",
            "expected_profit_low",
            "expected_profit_high",
            "period_spend",
            "period_revenue",
            "period_profit",
        ]
    )
    rows[money] = rows[money].astype(float).round(2)
    rows["budget_change_share"] = rows["budget_change_share"].astype(float).round(4)
    rows["role"] = rows["role"].map(ROLE_LABELS).fillna(rows["role"])
    return csv_text(rows)


def curve_points(curves: Curves, plan: pd.DataFrame, ad_set_ids: list[str], points: int = 60):
    """Per ad set to draw: its curve on a spend grid, the 90% band of its bootstrap draws
    (their spread placed around the curve, so the band holds the line), and its current and
    recommended points."""
    frame = curves.frame.reset_index(drop=True)
    index = pd.Index(frame["ad_set_id"])
    by_id = plan.set_index("ad_set_id")
    drawn = []
    for ad_set_id in ad_set_ids:
        if ad_set_id not in index or ad_set_id not in by_id.index:
            continue
        i = index.get_loc(ad_set_id)
        row = frame.iloc[i]
        v, h, k = (float(row[c]) for c in DRAW_COLUMNS)
        if not all(np.isfinite([v, h, k])):
            continue
        planned = by_id.loc[ad_set_id]
        top = max(
            float(planned["upper_bound"]),
            float(planned["recommended_spend"]),
            float(row.get("max_spend") or 0.0),
            1.0,
        )
        grid = np.linspace(0.0, 1.25 * top, points)
        revenue = hill_revenue(grid, v, h, k)
        band = None
        dv, dh, dk = (curves.draws[name][i] for name in DRAW_COLUMNS)
        if dv.size and np.isfinite(dv).all():
            with np.errstate(invalid="ignore", divide="ignore"):
                sampled = hill_revenue(grid[:, None], dv[None, :], dh[None, :], dk[None, :])
            band = rows_interval_around(revenue, sampled)
        current, recommended = float(planned["current_spend"]), float(planned["recommended_spend"])
        drawn.append(
            {
                "ad_set_id": ad_set_id,
                "name": str(planned["ad_set_name"]),
                "grid": grid,
                "revenue": revenue,
                "band": band,
                "current": (current, float(hill_revenue(current, v, h, k))),
                "recommended": (recommended, float(hill_revenue(recommended, v, h, k))),
                "marginal": (
                    float(hill_marginal(current, v, h, k)),
                    float(hill_marginal(recommended, v, h, k)),
                ),
            }
        )
    return drawn


def default_curves(plan: pd.DataFrame, count: int = 3) -> list[str]:
    """The ad sets whose curves the What-if draws first: the biggest cut and the biggest
    increases."""
    donors = plan[plan["role"] == "donor"].sort_values("change")
    recipients = plan[plan["role"] == "recipient"].sort_values("change", ascending=False)
    chosen = [*donors["ad_set_id"].head(1), *recipients["ad_set_id"].head(count - 1)]
    if not chosen:
        chosen = list(plan.sort_values("current_spend", ascending=False)["ad_set_id"].head(1))
    return chosen


def below_recent_text(plan: pd.DataFrame) -> str | None:
    """The recipients whose expected revenue after their increase is below what they actually
    earned a day over the last 28 days: their curve may be behind a change it has not seen."""
    if "recent_revenue" not in plan:
        return None
    recipients = plan[plan["role"] == "recipient"]
    below = recipients[
        recipients["expected_revenue_recommended"] < recipients["recent_revenue"].astype(float)
    ].sort_values(["change", "ad_set_id"], ascending=[False, True])
    if below.empty:
        return None
    listed = ", ".join(str(name) for name in below["ad_set_name"].head(3))
    more = f" and {len(below) - 3} more" if len(below) > 3 else ""
    return (
        f"{narrative.plural(len(below), 'ad set')} that the plan gives more budget "
        f"({listed}{more}) {'is' if len(below) == 1 else 'are'} expected to earn less a day after "
        "the increase than they actually earned a day over the last 28 days: check what changed "
        "before moving budget there."
    )


def weekday_text(summary: dict) -> str:
    """The weekday and the season tomorrow is priced at, where they differ from the average day
    ("" where they do not)."""
    day, factor = summary.get("priced_for_day"), summary.get("weekday_factor")
    demand = summary.get("demand_level")
    said = ""
    if day and factor is not None and abs(factor - 1.0) >= 0.005:
        said += (
            f" Priced as a {day.capitalize()}: revenue per pound on {day.capitalize()}s is "
            f"{factor:.2f}× the average day's."
        )
    if demand is not None and abs(demand - 1.0) >= 0.005:
        said += (
            f" Demand shared by every ad set over the last two weeks: {demand:.2f}× the curves' "
            "average, and tomorrow is priced at it."
        )
    return said


def unplaced_text(summary: dict) -> str | None:
    """Budget the bounds could not take, spend they forced, revenue they could not reach."""
    parts = []
    if summary.get("unplaced_budget", 0) > 0.005:
        parts.append(
            f"{narrative.money(summary['unplaced_budget'])} a day cannot be placed under the "
            "bounds (every ad set that could take more is at its upper bound)"
        )
    if summary.get("forced_spend", 0) > 0.005:
        parts.append(
            f"the lower bounds force {narrative.money(summary['forced_spend'])} a day above the "
            "total asked for"
        )
    if summary.get("revenue_shortfall", 0) > 0.005:
        parts.append(
            f"{narrative.money(summary['revenue_shortfall'])} a day of today's expected revenue "
            "cannot be reached under the bounds"
        )
    if not parts:
        return None
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
