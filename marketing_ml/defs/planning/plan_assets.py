"""The budget plan: response curves per ad set, tomorrow's plan for a scenario, and its checks.

Thin assets over `planning` (pure functions the dashboard imports too): they read gold, call it,
and store what the dashboard and the report read. The plan's checks read what was stored.
"""

import json
from datetime import timedelta

import dagster as dg
import numpy as np
import pandas as pd

from marketing_ml.contract import EXPERIMENTS
from marketing_ml.defs.automation.conditions import ON_NEW_DATA, ON_WEEKLY_REFIT
from marketing_ml.ml.store import UNINFORMATIVE
from marketing_ml.resources import LakehouseResource
from marketing_ml.storage import Table
from marketing_ml.table_keys import (
    BUDGET_PLAN,
    BUDGET_PLAN_SUMMARY,
    DAILY_ADSET_METRICS,
    RESPONSE_CURVE_BACKTEST,
    RESPONSE_CURVES,
    SCORED_ADSETS,
    silver_key,
)
from planning import (
    PLAN_COLUMNS,
    PlanSettings,
    PlanSettingsError,
    build_plan,
    fit_response_curves,
    on_current_state,
)
from planning.backtest import CUTOFFS_BEFORE_END, HORIZON_DAYS, backtest_curves, fold_summaries
from planning.calendar import (
    WEEKDAY_COLUMNS,
    WEEKDAYS,
    day_name,
    demand_for,
    factor_for_day,
    priced_for_day,
)
from planning.curves import BOOTSTRAP_DRAWS, CURRENT_DAYS, WINDOW_DAYS
from planning.delivery import CAP_DAYS, DELIVERY_COLUMNS, bought_spend, measure_delivery
from planning.experiments import (
    LIFT_TEST_COLUMNS,
    NO_PROPOSAL,
    calibrate_curves,
    propose_budget_test,
    revenue_noise_sd,
)
from planning.optimizer import NEW_FIT, PENNY, RECENT_DAYS

ERROR = dg.AssetCheckSeverity.ERROR


def curve_window_sql(daily: str, window_days: int = WINDOW_DAYS) -> str:
    return f"""
WITH window_days AS (
    SELECT max(date) - INTERVAL {int(window_days) - 1} DAY AS first_day FROM {daily}
)
SELECT
    date, ad_set_id, ad_set_name, lookalike_source, target_age, daily_budget, planned_spend, spend,
    revenue
FROM {daily}
WHERE date >= (SELECT first_day FROM window_days)
ORDER BY ad_set_id, date"""


def current_state_sql(daily: str, window_days: int = WINDOW_DAYS) -> str:
    """Each ad set's figures the plan starts from, as the curve fit reads them (planning.curves):
    current spend = the mean over its days with spend in the last 7 days of the window, the most
    it spent in a day of the window, its latest daily budget, and what it actually spent and
    earned a day over the last 28 days (beside the plan's expectations); the plan is for the
    next day. Its campaign and where its budget lives (the audience file's, carried by gold):
    campaign_id and campaign_name NULL when unknown, budget_level `ad_set` unless the file says
    `campaign`."""
    return f"""
WITH spent AS (
    SELECT
        date, ad_set_id, ad_set_name, daily_budget, campaign_id, campaign_name, budget_level,
        spend, coalesce(revenue, 0) AS revenue
    FROM {daily}
    WHERE spend IS NOT NULL
),
last_day AS (
    SELECT max(date) AS day FROM spent
)
SELECT
    ad_set_id,
    arg_max(ad_set_name, date) AS ad_set_name,
    coalesce(avg(spend) FILTER (WHERE date > day - INTERVAL {CURRENT_DAYS} DAY), 0) AS current_spend,
    arg_max(daily_budget, date) AS daily_budget,
    arg_max(campaign_id, date) AS campaign_id,
    arg_max(campaign_name, date) AS campaign_name,
    coalesce(arg_max(budget_level, date), 'ad_set') AS budget_level,
    max(spend) AS max_spend,
    avg(spend) FILTER (WHERE date > day - INTERVAL {RECENT_DAYS} DAY) AS recent_spend,
    avg(revenue) FILTER (WHERE date > day - INTERVAL {RECENT_DAYS} DAY) AS recent_revenue,
    any_value(day) + INTERVAL 1 DAY AS plan_date
FROM spent, last_day
WHERE date > day - INTERVAL {int(window_days)} DAY
GROUP BY ad_set_id
ORDER BY ad_set_id"""


def delivery_window_sql(daily: str, days: int = CAP_DAYS) -> str:
    """The dated pacing rows delivery is measured on (planning.delivery): planned and actual
    spend per ad set and day over the last `days` days (the curve window: utilization is read on
    the last DELIVERY_DAYS of them, a delivery cap on all)."""
    return f"""
WITH last_day AS (
    SELECT max(date) AS day FROM {daily} WHERE planned_spend IS NOT NULL
)
SELECT date, ad_set_id, planned_spend, actual_spend
FROM {daily}, last_day
WHERE planned_spend IS NOT NULL AND date > day - INTERVAL {int(days)} DAY
ORDER BY ad_set_id, date"""


def lift_tests_sql(experiments: str, daily: str) -> str:
    """Each lift test with its length and base spend: the ad set's mean daily spend over the
    test's days less the change (the spend it would have had without it); NULL when no day of
    the test is in gold (the test is then left out)."""
    return f"""
WITH spend_during AS (
    SELECT e.experiment_id, avg(d.spend) AS mean_spend
    FROM {experiments} AS e
    JOIN {daily} AS d
      ON d.ad_set_id = e.ad_set_id AND d.date BETWEEN e.start_date AND e.end_date
    WHERE d.spend IS NOT NULL
    GROUP BY e.experiment_id
)
SELECT
    e.experiment_id,
    e.ad_set_id,
    date_diff('day', e.start_date, e.end_date) + 1 AS days,
    s.mean_spend - e.budget_change AS base_spend,
    e.budget_change,
    e.incremental_revenue,
    e.incremental_revenue_low,
    e.incremental_revenue_high
FROM {experiments} AS e
LEFT JOIN spend_during AS s USING (experiment_id)
ORDER BY e.experiment_id"""


class ResponseCurvesConfig(dg.Config):
    window_days: int = WINDOW_DAYS
    """Trailing days each curve is fitted on (see planning.curves.WINDOW_DAYS for why 180)."""


@dg.asset(
    key=RESPONSE_CURVES,
    ins={
        "daily": dg.AssetIn(key=DAILY_ADSET_METRICS),
        "experiments": dg.AssetIn(key=silver_key(EXPERIMENTS)),
    },
    group_name="gold",
    automation_condition=ON_WEEKLY_REFIT,
    kinds={"duckdb", "scipy"},
    description="One saturating response curve per ad set: daily booking revenue = vmax × "
    "spend^shape / (half_saturation^shape + spend^shape), fitted by bounded least squares on the "
    f"last {WINDOW_DAYS} days (run config window_days); pooled from its audience group when its "
    "planned budget moved too little to identify its own (budget_cv, weekly means, < 5%; the "
    "spend's variation where no planned budget is known: fit = 'pooled'), none when nothing "
    "could identify one (fit = 'none'); fitted on the days since a lasting step in its revenue "
    "per pound (fit = 'shifted', shifted_on, level_shift = after / before); revenue answers to "
    "ad-stocked spend (carryover), and varies by weekday (weekday_factor_*). R² on the "
    "window, marginal ROAS at current spend (mean of the last 7 days) with a 90% bootstrap "
    f"interval (days resampled, {BOOTSTRAP_DRAWS} draws, kept in draws_* to redraw the band). "
    "Curves an experiments.csv lift test covers are calibrated to it (calibrated_by names the "
    "tests); revenue_noise_sd is the daily revenue's spread around the curve.",
)
def response_curves(
    config: ResponseCurvesConfig,
    daily: Table,
    experiments: Table,
    lakehouse: LakehouseResource,
) -> dg.Output[pd.DataFrame]:
    if config.window_days < 7:
        raise dg.Failure(f"window_days {config.window_days}: a curve needs at least 7 days")
    window = lakehouse.frame(curve_window_sql(str(daily), config.window_days))
    fitted = fit_response_curves(window, window_days=config.window_days)
    lift_tests = lakehouse.frame(lift_tests_sql(str(experiments), str(daily)))
    fits = calibrate_curves(fitted, lift_tests[list(LIFT_TEST_COLUMNS)])
    curves = fits.curves.copy()
    curves["revenue_noise_sd"] = revenue_noise_sd(window, fits.curves)
    for name, matrix in fits.draws.items():
        curves[f"draws_{name}"] = [
            None if np.isnan(row).all() else [round(float(v), 6) for v in row] for row in matrix
        ]
    curves["days"] = curves["days"].astype("int64")
    counts = curves["fit"].value_counts().to_dict()
    return dg.Output(
        curves,
        metadata={
            "ad_sets": len(curves),
            "own_fits": int(counts.get("own", 0)),
            "pooled_fits": int(counts.get("pooled", 0)),
            "shifted_fits": int(counts.get("shifted", 0)),
            "without_curve": int(counts.get("none", 0)),
            "weekday_factors": {
                day: float(curves[column].iloc[0]) if len(curves) else 1.0
                for day, column in zip(WEEKDAYS, WEEKDAY_COLUMNS, strict=True)
            },
            "carryover": float(curves["carryover"].iloc[0]) if len(curves) else 0.0,
            "demand_level": demand_for(curves),
            "lift_tests": len(lift_tests),
            "calibrated_by_lift_tests": int(curves["calibrated_by"].notna().sum()),
            "median_r_squared": float(curves["r_squared"].median())
            if curves["r_squared"].notna().any()
            else None,
        },
    )


@dg.asset(
    key=RESPONSE_CURVE_BACKTEST,
    ins={"daily": dg.AssetIn(key=DAILY_ADSET_METRICS)},
    group_name="gold",
    automation_condition=ON_WEEKLY_REFIT,
    kinds={"duckdb", "scipy"},
    description="Walk-forward backtest of the response curves: curves fitted through a cutoff "
    f"({', '.join(str(d) for d in CUTOFFS_BEFORE_END)} days before the last day) predict each ad "
    f"set's revenue over the next {HORIZON_DAYS} days at the spend that happened; one row per "
    "fold and ad set with the actual revenue, the expected one and its 90% range (the curve's "
    "bootstrap widened by how far four-week sums strayed from it before the cutoff). Refitted "
    "with the curves (weekly retrain, full refresh).",
)
def response_curve_backtest(
    config: ResponseCurvesConfig, daily: Table, lakehouse: LakehouseResource
) -> dg.Output[pd.DataFrame]:
    reach = config.window_days + max(CUTOFFS_BEFORE_END)
    history = lakehouse.frame(curve_window_sql(str(daily), reach))
    backtest = backtest_curves(history, window_days=config.window_days)
    folds = fold_summaries(backtest)
    return dg.Output(
        backtest,
        metadata={
            "folds": len(folds),
            **{
                f"fold_{fold.cutoff}": dg.MetadataValue.json(
                    {
                        "ad_sets": fold.ad_sets,
                        "total_revenue_error": round(fold.total_error, 4),
                        "ad_set_error": round(fold.ad_set_error, 4),
                        "coverage_of_90_percent_ranges": round(fold.coverage, 4),
                    }
                )
                for fold in folds
            },
        },
    )


CONFIG_PATH = "ops.gold__budget_plan.config"
"""Where the plan's run config sits: refusals name each field by this path."""


class BudgetPlanConfig(dg.Config):
    """Checked by `settings()` (planning.settings, the What-if's checks too) before anything is
    read or written; ad set ids once the ad sets being planned are known."""

    scenario: str = "same_budget"
    """same_budget (most revenue for the same total), target_roas (the most spend whose marginal
    ROAS stays at or above target_marginal_roas), same_revenue (today's revenue for less)."""
    target_marginal_roas: float | None = None
    """target_roas: the marginal ROAS the last pound must return, 0.1 to 50 (unset: break-even)."""
    lower_factor: float = 0.5
    """Lower bound, × current spend: 0 to 1."""
    upper_factor: float = 1.5
    """Upper bound, × current spend: 1 to 3."""
    locked_ad_sets: list[str] = []
    """ad_set_ids that keep today's spend; each must be among the ad sets planned."""
    fixed_total: float | None = None
    """same_budget: plan this total (£ a day, at least 1) instead of the current one."""
    daily_budget_caps: dict[str, float] = {}
    """ad_set_id → the most it may spend a day (an account or platform limit on its budget):
    £0 or more, each id among the ad sets planned."""
    margin: float = 0.40
    """Contribution margin, profit per £ of revenue before ad spend: 0.01 to 1. Profit stands
    beside revenue everywhere the plan is; break-even marginal ROAS = 1 / margin."""
    max_daily_change: float = 0.20
    """The most a daily budget changes from one day to the next, 0.01 to 1: a bigger move is a
    ramp over the following days (a sharp change restarts Meta's learning phase)."""
    min_move: float = 50.0
    """A budget change below this (£ a day) is not made."""
    min_move_share: float = 0.05
    """A budget change below this share of today's budget is not made: 0 to 1."""
    max_moves: int | None = None
    """At most this many budgets change, the most valuable first (unset: the fewest moves that
    keep 90% of the uplift)."""
    period_days: int = 7
    """The plan's period: the next 1 to 91 days, priced day by day (ramps and weekdays)."""

    def settings(self) -> PlanSettings:
        try:
            return PlanSettings(
                scenario=self.scenario,
                target_marginal_roas=self.target_marginal_roas,
                lower_factor=self.lower_factor,
                upper_factor=self.upper_factor,
                locked=tuple(sorted(self.locked_ad_sets)),
                total=self.fixed_total,
                budget_caps=tuple(sorted(self.daily_budget_caps.items())),
                margin=self.margin,
                max_daily_change=self.max_daily_change,
                min_move=self.min_move,
                min_move_share=self.min_move_share,
                max_moves=self.max_moves,
                period_days=self.period_days,
            )
        except PlanSettingsError as error:
            raise refused(error) from None


def refused(error: PlanSettingsError) -> dg.Failure:
    """The run config's problems, each naming its field by its run-config path."""
    return dg.Failure(
        description=f"{error.lines(prefix=CONFIG_PATH + '.')}\n"
        "The plan was not made: gold.budget_plan and gold.budget_plan_summary are unchanged.",
        metadata={"refused_fields": sorted(set(error.fields))},
        allow_retries=False,
    )


@dg.multi_asset(
    name="gold__budget_plan",
    outs={
        "budget_plan": dg.AssetOut(
            key=BUDGET_PLAN,
            group_name="gold",
            automation_condition=ON_NEW_DATA,
            kinds={"duckdb"},
            description="Tomorrow's budget per ad set for the run's scenario: current and "
            "recommended spend and the daily budget that buys it (÷ its utilization over the "
            "last 28 days), bounds (0.5×–1.5× current by default, at most ±10% for a pooled "
            "curve, within a measured delivery cap and any daily budget cap in the run config), "
            "expected revenue and marginal ROAS at both with 90% bootstrap intervals, role and "
            "the reason in words.",
        ),
        "budget_plan_summary": dg.AssetOut(
            key=BUDGET_PLAN_SUMMARY,
            group_name="gold",
            automation_condition=ON_NEW_DATA,
            kinds={"duckdb"},
            description="The plan in one row: scenario, totals, unplaced budget, expected "
            "revenue uplift with its 90% interval, the equalised marginal ROAS, moves and ramps: "
            "numbers only (the app words the headline from them).",
        ),
    },
    ins={
        "curves": dg.AssetIn(key=RESPONSE_CURVES),
        "scored": dg.AssetIn(key=SCORED_ADSETS),
        "daily": dg.AssetIn(key=DAILY_ADSET_METRICS),
    },
)
def budget_plan(
    config: BudgetPlanConfig,
    curves: pd.DataFrame,
    scored: pd.DataFrame,
    daily: Table,
    lakehouse: LakehouseResource,
):
    """Made every day on the day's spend; the curves it prices spend with are refitted weekly
    (weekly_retrain, full_refresh): a refit is most of the plan's cost, and a week of days moves a
    180-day fit little."""
    settings = config.settings()
    risk = latest_risk(scored)
    window_days = curve_window_days(curves)
    state = with_delivery(
        lakehouse.frame(current_state_sql(str(daily), window_days)),
        measure_delivery(
            lakehouse.frame(delivery_window_sql(str(daily), window_days)), cap_days=window_days
        ),
    )
    try:
        settings.check_ad_sets(
            state["ad_set_id"],
            f"with spend in the last {window_days} days of {daily}",
        )
    except PlanSettingsError as error:
        raise refused(error) from None
    frame, _ = on_current_state(state, curves)
    plan_date = pd.Timestamp(state["plan_date"].max()).date() if len(state) else None
    frame, _ = priced_for_day(frame, plan_date)
    plan = build_plan(frame, risk, settings, plan_date=plan_date)
    curves_end = pd.to_datetime(curves["window_end"]).max() if len(curves) else pd.NaT
    table = plan.ad_sets[list(PLAN_COLUMNS)].copy()
    table.insert(0, "plan_date", pd.Series([plan_date] * len(table), dtype="object"))
    table.insert(1, "scenario", settings.scenario)
    # Text that can be NULL in every row (no campaign columns in the audience file, nothing
    # capped) keeps a text type: an untyped all-NULL column has no type on Spark.
    text = ["capacity_reason", "campaign_id", "campaign_name", "budget_level", "held_by"]
    table[text] = table[text].astype("string")
    table["reason"] = with_lift_tests(table, curves)
    proposal = (
        propose_budget_test(table, curves) if "revenue_noise_sd" in curves else dict(NO_PROPOSAL)
    )
    summary = {
        "plan_date": plan_date,
        **plan.summary,
        **proposal,
        "settings": json.dumps(
            {
                "scenario": settings.scenario,
                "target_marginal_roas": settings.target_marginal_roas,
                "lower_factor": settings.lower_factor,
                "upper_factor": settings.upper_factor,
                "locked": list(settings.locked),
                "fixed_total": settings.total,
                "daily_budget_caps": dict(settings.budget_caps),
                "margin": settings.margin,
                "max_daily_change": settings.max_daily_change,
                "min_move": settings.min_move,
                "min_move_share": settings.min_move_share,
                "max_moves": settings.max_moves,
                "period_days": settings.period_days,
            }
        ),
        "curves_fitted_through": curves_end.date() if pd.notna(curves_end) else None,
        "priced_for_day": day_name(plan_date),
        "weekday_factor": factor_for_day(curves, plan_date),
        "demand_level": demand_for(curves),
        "risk_date": risk.attrs.get("date"),
        "risk_model_status": risk.attrs.get("status"),
        "data_end": plan_date - timedelta(days=1) if plan_date else None,
        "models_trained_through": pd.to_datetime(scored["trained_through"]).min(),
    }
    yield dg.Output(
        table,
        output_name="budget_plan",
        metadata={
            "scenario": settings.scenario,
            "moves": plan.summary["moves"],
            "move_target": plan.summary["move_target"],
            "uplift": plan.summary["uplift"],
            "unplaced_budget": plan.summary["unplaced_budget"],
            "new_ad_sets_without_curve": int((frame["fit"] == NEW_FIT).sum()),
        },
    )
    yield dg.Output(
        pd.DataFrame([summary]).astype({**PROPOSAL_TYPES, **FRESHNESS_TYPES}),
        output_name="budget_plan_summary",
    )


PROPOSAL_TYPES = {
    "test_ad_set_id": "string",
    "test_budget_change": "float64",
    "test_days": "Int64",
    "test_marginal_roas_half_width": "float64",
    "test_uplift_at_stake": "float64",
    "test_proposal": "string",
}
"""The proposed lift test's fields keep their types when there is none (NULLs)."""
FRESHNESS_TYPES = {
    "data_end": "date32[pyarrow]",
    "models_trained_through": "date32[pyarrow]",
    "period_start": "date32[pyarrow]",
    "period_end": "date32[pyarrow]",
}
"""The last day of data, the last day the pacing-risk model the plan reads learnt from (NULL
while it is not trained) and the plan's period: DATE columns even when NULL."""


def with_lift_tests(table: pd.DataFrame, curves: pd.DataFrame) -> pd.Series:
    """Each ad set's reason, saying which lift tests its curve is calibrated by (curves stored
    before lift tests were read have no `calibrated_by`: the daily plan prices with last week's)."""
    if "calibrated_by" not in curves:
        return table["reason"]
    tests = table["ad_set_id"].map(curves.set_index("ad_set_id")["calibrated_by"])
    return table["reason"].where(
        tests.isna(), table["reason"] + "; its curve is calibrated by lift test " + tests
    )


def with_delivery(state: pd.DataFrame, delivery: pd.DataFrame) -> pd.DataFrame:
    """Each ad set's current state with its measured delivery (NaN where no planned budget is
    known: the plan then falls back on its delivery history and pacing risk)."""
    return state.merge(
        delivery[list(DELIVERY_COLUMNS)].astype({"ad_set_id": state["ad_set_id"].dtype}),
        on="ad_set_id",
        how="left",
        validate="1:1",
    )


def curve_window_days(curves: pd.DataFrame) -> int:
    """The days the curves were fitted on: the plan's delivery history covers the same span."""
    if curves.empty:
        return WINDOW_DAYS
    start, end = (
        pd.to_datetime(curves["window_start"]).min(),
        pd.to_datetime(curves["window_end"]).max(),
    )
    return int((end - start).days) + 1


def latest_risk(scored: pd.DataFrame) -> pd.DataFrame:
    """under_pacing_risk per ad set on the latest scored date; NaN (unknown) while the pacing model
    is not trained or its label is uninformative (every ad set scored with the base rate). The
    date and the model's status ride along in attrs."""
    if scored.empty:
        frame = pd.DataFrame({"ad_set_id": [], "under_pacing_risk": []})
        frame.attrs.update(date=None, status="no scores")
        return frame
    dates = pd.to_datetime(scored["date"])
    latest = scored[dates == dates.max()]
    statuses = latest.get("model_status", pd.Series("", index=latest.index)).astype(str)
    risk = pd.to_numeric(latest["under_pacing_risk"]).astype(float)
    frame = pd.DataFrame(
        {
            "ad_set_id": latest["ad_set_id"].astype(str),
            # A base rate says nothing about one ad set: at 0.5 or more it would veto every
            # increase where delivery is not measured.
            "under_pacing_risk": risk.where(~statuses.str.startswith(UNINFORMATIVE)),
        }
    )
    statuses = sorted(set(latest.get("model_status", pd.Series(dtype=str)).dropna().astype(str)))
    frame.attrs.update(date=dates.max().date(), status=", ".join(statuses) or None)
    return frame


# ---------------------------------------------------------------------------------- the checks
def _plan_rows(lakehouse: LakehouseResource) -> tuple[pd.DataFrame, dict]:
    plan = lakehouse.frame("SELECT * FROM gold.budget_plan ORDER BY ad_set_id")
    summary = lakehouse.frame("SELECT * FROM gold.budget_plan_summary")
    if len(summary) != 1:
        raise dg.Failure(f"gold.budget_plan_summary holds {len(summary)} rows, expected one")
    return plan, summary.iloc[0].to_dict()


def within_bounds(plan: pd.DataFrame, summary: dict) -> dg.AssetCheckResult:
    below = plan["recommended_spend"] < plan["lower_bound"] - PENNY
    above = plan["recommended_spend"] > plan["upper_bound"] + PENNY
    inverted = plan["lower_bound"] > plan["upper_bound"] + PENNY
    moved_lock = plan["locked"].astype(bool) & (
        (plan["recommended_spend"] - plan["current_spend"]).abs() > PENNY
    )
    broken = plan[below | above | inverted | moved_lock]
    return dg.AssetCheckResult(
        check_name="budget_plan_within_bounds",
        passed=broken.empty,
        severity=ERROR,
        metadata={
            "ad_sets": len(plan),
            "below_lower_bound": int(below.sum()),
            "above_upper_bound": int(above.sum()),
            "lower_above_upper": int(inverted.sum()),
            "locked_but_moved": int(moved_lock.sum()),
            "examples": sorted(broken["ad_set_id"].head(5).tolist()),
        },
    )


def conserves_budget(plan: pd.DataFrame, summary: dict) -> dg.AssetCheckResult:
    if summary["scenario"] != "same_budget":
        return dg.AssetCheckResult(
            check_name="budget_plan_conserves_budget",
            passed=True,
            severity=ERROR,
            metadata={"scenario": summary["scenario"], "applies": False},
        )
    recommended = float(plan["recommended_spend"].sum())
    goal = float(summary["total_goal"])
    forced = float(summary["forced_spend"])
    gap = recommended + float(summary["unplaced_budget"]) - forced - goal
    return dg.AssetCheckResult(
        check_name="budget_plan_conserves_budget",
        passed=abs(gap) <= PENNY,
        severity=ERROR,
        metadata={
            "total_asked": goal,
            "total_recommended": recommended,
            "unplaced_budget": float(summary["unplaced_budget"]),
            "forced_by_lower_bounds": forced,
            "gap": gap,
        },
    )


def reports_unplaced_budget(plan: pd.DataFrame, summary: dict) -> dg.AssetCheckResult:
    unplaced = float(summary["unplaced_budget"])
    room = float(plan["upper_bound"].sum())
    if summary["scenario"] == "same_budget":
        excess = max(float(summary["total_goal"]) - room, 0.0)
        passed = unplaced >= 0 and abs(unplaced - excess) <= PENNY
    else:
        excess = 0.0
        passed = unplaced == 0
    return dg.AssetCheckResult(
        check_name="budget_plan_reports_unplaced_budget",
        passed=passed,
        severity=ERROR,
        metadata={
            "scenario": summary["scenario"],
            "unplaced_budget": unplaced,
            "sum_of_upper_bounds": room,
            "total_beyond_upper_bounds": excess,
        },
    )


def within_delivery(plan: pd.DataFrame, summary: dict) -> dg.AssetCheckResult:
    cap = pd.to_numeric(plan["delivery_cap"], errors="coerce")
    above_cap = (
        cap.notna()
        & (plan["recommended_spend"] > plan["current_spend"] + PENNY)
        & (plan["recommended_spend"] > cap + PENNY)
    )
    bought = pd.Series(
        bought_spend(
            pd.to_numeric(plan["recommended_daily_budget"], errors="coerce"),
            pd.to_numeric(plan["utilization"], errors="coerce"),
            pd.to_numeric(plan.get("soft_cap", np.nan), errors="coerce"),
        ),
        index=plan.index,
    )
    unbought = bought.notna() & ((bought - plan["recommended_spend"]).abs() > PENNY)
    broken = plan[above_cap | unbought]
    return dg.AssetCheckResult(
        check_name="budget_plan_within_delivery",
        passed=broken.empty,
        severity=ERROR,
        metadata={
            "measured_caps": int(cap.notna().sum()),
            "increased_above_measured_cap": int(above_cap.sum()),
            "daily_budget_not_buying_spend": int(unbought.sum()),
            "examples": sorted(broken["ad_set_id"].head(5).tolist()),
        },
    )


PLAN_CHECK_SPECS = {
    within_bounds: "Every recommended spend lies within its ad set's bounds (to the penny), "
    "lower bound <= upper bound, and a locked ad set keeps its current spend.",
    conserves_budget: "Scenario same_budget conserves the budget: total recommended + unplaced "
    "budget = the total asked for (the current total unless fixed), to the penny.",
    reports_unplaced_budget: "Budget the bounds cannot take is reported: unplaced budget is never "
    "negative, and (same_budget) it is non-zero exactly when the total exceeds the sum of upper "
    "bounds, and equals the difference; other scenarios place no total, so it is zero.",
    within_delivery: "No increase goes above a measured delivery cap (where the ad set's spend "
    "stopped following its budget), and the recommended daily budget buys the recommended spend "
    "under the ad set's delivery (× utilization, or C · tanh(utilization × budget / C) under a "
    "soft cap C), to the penny.",
}


@dg.multi_asset_check(
    name="budget_plan_checks",
    specs=[
        dg.AssetCheckSpec(
            f"budget_plan_{check.__name__}", asset=BUDGET_PLAN, blocking=True, description=text
        )
        for check, text in PLAN_CHECK_SPECS.items()
    ],
    description="The plan's blocking checks, one step reading the stored plan once.",
)
def budget_plan_checks(lakehouse: LakehouseResource):
    plan, summary = _plan_rows(lakehouse)
    for check in PLAN_CHECK_SPECS:
        yield check(plan, summary)


PLAN_ASSETS = [response_curves, response_curve_backtest, budget_plan]
PLAN_CHECKS = [budget_plan_checks]
