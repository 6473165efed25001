"""The What-if tab: the plan's settings, the plan view with its tiles and period table, and
the naive rule beside it."""

import time

import streamlit as st

from app import narrative, whatif
from app.budget_plan import (
    CURVES_CANNOT_SEE,
    SCENARIO_LABELS,
    Curves,
    Replan,
    below_recent_text,
    default_curves,
    plan_csv,
    unplaced_text,
    weekday_text,
)
from app.cache import curves_figure, naive_valued, published_plan, replanned, served_curves
from app.overview import Overview
from app.tabs.shared import NOT_AVAILABLE, PLOTLY_CONFIG, so_what
from app.text import markdown_text
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


def plan_settings(curves: Curves) -> PlanSettings:
    """The What-if's scenario, bounds, locks and total; they start at the published plan's."""
    published = curves.settings
    ids = list(curves.frame["ad_set_id"])
    names = dict(zip(curves.frame["ad_set_id"], curves.frame["ad_set_name"], strict=True))
    scenario = st.radio(
        "Scenario",
        list(SCENARIO_LABELS),
        index=list(SCENARIO_LABELS).index(published.scenario),
        format_func=SCENARIO_LABELS.get,
        horizontal=True,
        key="plan_scenario",
    )
    margin, target, lower, upper, total = st.columns(5)
    margin_value = margin.number_input(
        "Margin (%)",
        min_value=100 * MARGIN_RANGE[0],
        max_value=100 * MARGIN_RANGE[1],
        value=round(100 * published.margin, 1),
        step=1.0,
        format="%.0f",
        key="plan_margin",
        help="Profit per £ of revenue before ad spend. Break-even marginal ROAS = 1 / margin: "
        "a pound returning less than that loses money.",
    )
    break_even = 100 / margin_value
    target_value = target.number_input(
        "Target marginal ROAS (×)",
        min_value=TARGET_ROAS_RANGE[0],
        max_value=TARGET_ROAS_RANGE[1],
        value=published.target_marginal_roas,
        step=0.1,
        format="%.2f",
        placeholder=f"{break_even:.2f}×",
        key="plan_target",
        disabled=scenario != "target_roas",
        help="Spend while the last pound still returns at least this. Empty: break-even "
        "(1 / margin), where the last pound's profit is zero.",
    )
    lower_value = lower.slider(
        "Lower bound (× current spend)",
        *LOWER_FACTOR_RANGE,
        float(published.lower_factor),
        0.05,
        key="plan_lower",
    )
    upper_value = upper.slider(
        "Upper bound (× current spend)",
        *UPPER_FACTOR_RANGE,
        float(published.upper_factor),
        0.05,
        key="plan_upper",
        help="Also capped by each ad set's delivery history (the most it spent in a day), its "
        "under-pacing risk (50% or more: no increase) and any daily budget cap the plan was "
        "run with.",
    )
    current_total = float(curves.frame["current_spend"].fillna(0).sum())
    total_value = total.number_input(
        "Fixed total (£ a day)",
        min_value=MIN_TOTAL,
        value=None if published.total is None else float(published.total),
        step=100.0,
        format="%.0f",
        placeholder=narrative.money(current_total),
        key="plan_total",
        disabled=scenario != "same_budget",
        help="Same-budget scenario: plan this total instead of today's (empty: today's total).",
    )
    step, least, least_share, moves, period = st.columns(5)
    step_value = step.number_input(
        "Most change a day (%)",
        min_value=100 * MAX_DAILY_CHANGE_RANGE[0],
        max_value=100 * MAX_DAILY_CHANGE_RANGE[1],
        value=round(100 * published.max_daily_change, 1),
        step=5.0,
        format="%.0f",
        key="plan_step",
        help="A daily budget moves at most this much from one day to the next (a sharp change "
        "puts a Meta ad set back into its learning phase): a bigger move is a ramp over days.",
    )
    least_value = least.number_input(
        "Least move (£/day)",
        min_value=0.0,
        value=float(published.min_move),
        step=10.0,
        format="%.0f",
        key="plan_least",
        help="A budget change smaller than this is not made.",
    )
    least_share_value = least_share.number_input(
        "Least move (%)",
        min_value=0.0,
        max_value=100.0,
        value=round(100 * published.min_move_share, 1),
        step=1.0,
        format="%.0f",
        key="plan_least_share",
        help="A budget change smaller than this share of today's budget is not made.",
    )
    moves_value = moves.number_input(
        "At most N moves",
        min_value=1,
        value=published.max_moves,
        step=1,
        placeholder="automatic",
        key="plan_moves",
        help="The most valuable moves first. Empty: the fewest moves that keep 90% of the uplift.",
    )
    period_value = period.number_input(
        "Period (days)",
        min_value=PERIOD_DAYS_RANGE[0],
        max_value=PERIOD_DAYS_RANGE[1],
        value=int(published.period_days),
        step=7,
        key="plan_period",
        help="The plan's totals cover this many days from the plan date, each day priced as "
        "its weekday, with the ramps.",
    )
    locked = st.multiselect(
        "Locked ad sets (keep today's spend)",
        ids,
        default=[ad_set for ad_set in published.locked if ad_set in names],
        format_func=lambda ad_set: names.get(ad_set, ad_set),
        placeholder="Type to search ad sets to lock",
        key="plan_locked",
    )
    return PlanSettings(
        scenario=scenario,
        target_marginal_roas=None if target_value is None else float(target_value),
        margin=margin_value / 100,
        max_daily_change=step_value / 100,
        min_move=float(least_value),
        min_move_share=least_share_value / 100,
        max_moves=None if moves_value is None else int(moves_value),
        period_days=int(period_value),
        lower_factor=float(lower_value),
        upper_factor=float(upper_value),
        locked=tuple(sorted(locked)),
        total=float(total_value) if scenario == "same_budget" and total_value is not None else None,
        budget_caps=published.budget_caps,
    )


PLAN_TABLE_COLUMNS = {
    "ad_set_id": None,
    "ad_set_name": st.column_config.TextColumn("Ad set"),
    "campaign_name": st.column_config.TextColumn("Campaign"),
    "budget_level": st.column_config.TextColumn(
        "Budget of",
        help="ad_set: the ad set has its own daily budget; campaign: its campaign's budget is "
        "shared by its ad sets (the plan sets the campaign's, for the sum of their curves).",
    ),
    "role": st.column_config.TextColumn("Plan"),
    "current_daily_budget": st.column_config.NumberColumn("Budget today", format="£%,.0f"),
    "new_daily_budget": st.column_config.NumberColumn(
        "New budget", format="£%,.0f", help="The daily budget to set on the plan date."
    ),
    "budget_change": st.column_config.TextColumn("Change"),
    "budget_change_share": st.column_config.NumberColumn("Change %", format="percent"),
    "ramp_days": st.column_config.NumberColumn(
        "Ramp (days)",
        help="Days until the budget reaches its target, moving at most the limit a day.",
    ),
    "target_daily_budget": st.column_config.NumberColumn("Target budget", format="£%,.0f"),
    "current_spend": st.column_config.NumberColumn("Spend today", format="£%,.0f"),
    "recommended_spend": st.column_config.NumberColumn("Expected spend", format="£%,.0f"),
    "change": None,
    "expected_revenue_recommended": st.column_config.NumberColumn(
        "Expected revenue", format="£%,.0f"
    ),
    "expected_revenue_recommended_low": st.column_config.NumberColumn("low", format="£%,.0f"),
    "expected_revenue_recommended_high": st.column_config.NumberColumn("high", format="£%,.0f"),
    "expected_profit_recommended": st.column_config.NumberColumn(
        "Expected profit", format="£%,.0f", help="Margin × expected revenue − spend, a day."
    ),
    "period_revenue": st.column_config.NumberColumn(
        "Revenue, period", format="£%,.0f", help="Expected over the plan's period."
    ),
    "period_profit": st.column_config.NumberColumn("Profit, period", format="£%,.0f"),
    "move_rank": st.column_config.NumberColumn(
        "Move rank", help="1 = the move worth most (expected profit a day)."
    ),
    "recent_revenue": st.column_config.NumberColumn(
        "Revenue/day, 28d", format="£%,.0f", help="Actual revenue a day over the last 28 days."
    ),
    "recent_spend": st.column_config.NumberColumn(
        "Spend/day, 28d", format="£%,.0f", help="Actual spend a day over the last 28 days."
    ),
    "marginal_roas_current": st.column_config.NumberColumn("Marginal ROAS now", format="%.2f×"),
    "marginal_roas_recommended": st.column_config.NumberColumn(
        "Marginal ROAS after", format="%.2f×"
    ),
    "utilization": st.column_config.NumberColumn(
        "Spends of budget",
        format="percent",
        help="Its spend ÷ its daily budget over the last 28 days: the new budget buys the "
        "expected spend at this rate.",
    ),
    "delivery_cap": st.column_config.NumberColumn("Delivery cap", format="£%,.0f"),
    "lower_bound": st.column_config.NumberColumn("Least spend", format="£%,.0f"),
    "upper_bound": st.column_config.NumberColumn("Most spend", format="£%,.0f"),
    "under_pacing_risk": st.column_config.NumberColumn("Under-pacing risk", format="percent"),
    "fit": st.column_config.TextColumn(
        "Curve",
        help="own: fitted on its own days; shifted: its revenue per pound stepped to a new "
        "level, so its curve is fitted on the days since (the reason says when and by how "
        "much); pooled: its spend barely moved, so its curve's shape comes from its audience "
        "group; none or new: no curve, its spend is kept.",
    ),
    "reason": st.column_config.TextColumn("Why", width="large"),
}


def plan_tiles(result: Replan, without: int) -> None:
    """Expected revenue and profit tomorrow, revenue's 90% interval, and the spend with its
    change: arrows and colours follow the sign and what it means (a cut is good news only when
    the scenario is to save: "Same revenue for less"); ranges carry no arrow."""
    summary = result.summary
    scope = (
        f" Ad sets without a curve ({without}) are left out of expected revenue." if without else ""
    )
    tiles = st.columns(4)
    uplift, uplift_color = narrative.money_delta(summary["uplift"])
    tiles[0].metric(
        "Expected revenue tomorrow",
        narrative.money(summary["revenue_recommended"]),
        None if uplift is None else f"{uplift} a day",
        delta_color=uplift_color,
        border=True,
        help=f"Today's spend is expected to return {narrative.money(summary['revenue_current'])}."
        " The uplift is the plan priced on the curves' bootstrap draws, not on the fitted curves "
        "that chose it (those would flatter it)." + weekday_text(summary) + scope,
    )
    tiles[1].metric(
        "Range (90%)",
        f"{narrative.money(result.revenue_low)}–{narrative.money(result.revenue_high)}",
        f"uplift {narrative.signed_money(summary['uplift_low'])} to "
        f"{narrative.signed_money(summary['uplift_high'])}",
        delta_color="off",
        delta_arrow="off",
        border=True,
    )
    profit, profit_color = narrative.money_delta(summary.get("profit_uplift"))
    tiles[2].metric(
        "Expected profit tomorrow",
        narrative.money(summary.get("profit_recommended")),
        None if profit is None else f"{profit} a day",
        delta_color=profit_color,
        border=True,
        help=f"Margin {narrative.percent(summary.get('margin'))} × expected revenue − spend: a "
        "pound is worth spending while it returns at least the break-even marginal ROAS of "
        f"{narrative.ratio(summary.get('break_even_roas'))}. Profit uplift range "
        f"{narrative.signed_money(summary.get('profit_uplift_low'))} to "
        f"{narrative.signed_money(summary.get('profit_uplift_high'))} a day. ROAS after the "
        f"plan {narrative.ratio(result.roas)} (range {narrative.ratio(result.roas_low)}–"
        f"{narrative.ratio(result.roas_high)}).",
    )
    saving = summary.get("scenario") == "same_revenue"
    spend_change, spend_color = narrative.money_delta(
        summary["total_recommended"] - summary["total_current"], False if saving else None
    )
    tiles[3].metric(
        "Spend, recommended",
        narrative.money(summary["total_recommended"]),
        None if spend_change is None else f"{spend_change} a day",
        delta_color=spend_color,
        border=True,
        help=f"Today's spend: {narrative.money(summary['total_current'])} a day. Every ad set "
        "that is not at a bound is brought to a marginal ROAS of "
        f"{narrative.ratio(summary['marginal_roas'])}.",
    )


PERIOD_COLUMNS = {
    "date": st.column_config.DateColumn("Day", format="ddd D MMM"),
    "weekday": None,
    "spend_current": st.column_config.NumberColumn("Spend, as today", format="£%,.0f"),
    "spend": st.column_config.NumberColumn("Spend, planned", format="£%,.0f"),
    "revenue_current": st.column_config.NumberColumn("Revenue, as today", format="£%,.0f"),
    "revenue": st.column_config.NumberColumn("Revenue, planned", format="£%,.0f"),
    "uplift": st.column_config.NumberColumn("Uplift", format="£%,.0f"),
    "uplift_low": st.column_config.NumberColumn("low", format="£%,.0f"),
    "uplift_high": st.column_config.NumberColumn("high", format="£%,.0f"),
    "profit_uplift": st.column_config.NumberColumn("Profit uplift", format="£%,.0f"),
}


def period_table(result: Replan) -> None:
    """The plan's period day by day: the ramps' days spend differently, and each day is priced
    as its weekday."""
    days = result.days
    if days is None or len(days) <= 1:
        return
    with st.expander(f"The next {len(days)} days, day by day"):
        st.dataframe(days, hide_index=True, column_config=PERIOD_COLUMNS)
        st.caption(
            "Uplift is expected revenue against keeping today's budgets, with its 90% range; "
            "the period's range in the headline is the range of the total, narrower than the "
            "days' ranges added up. Demand is held at its latest level over the period."
        )


def plan_view(curves: Curves, path: str, stamp: tuple[int, int]) -> Replan | None:
    """The plan for the settings above it: re-planned from the served curves on every change;
    settings a run would refuse are refused with its message (None: no plan)."""
    try:
        settings = plan_settings(curves)
        result, table = replanned(path, stamp, settings)
    except PlanSettingsError as error:
        lines = (markdown_text(str(problem)) for problem in error.problems)
        st.error("\n\n".join(lines), icon=":material/block:")
        return None
    summary = result.summary
    so_what(result.headline)
    if settings == curves.settings:
        st.caption(
            "These are the published plan's settings: the Overview, Forecasts and Next steps "
            "quote this plan."
        )
    else:
        st.caption(
            "Exploring other settings: the Overview, Forecasts and Next steps still quote the "
            "published plan until a run publishes one with these settings."
        )
    if note := unplaced_text(summary):
        st.warning(markdown_text(note), icon=":material/block:")
    without = int(summary.get("ad_sets_without_curve") or 0)
    if without >= len(result.ad_sets):
        st.info(
            "No ad set has a response curve yet (spend has barely varied): the plan keeps every "
            "budget, and expected revenue needs a curve.",
            icon=":material/hourglass_empty:",
        )
    else:
        plan_tiles(result, without)
    period_table(result)
    published = published_plan(path, stamp)
    if published is not None and published.test_proposal:
        st.info(markdown_text(published.test_proposal), icon=":material/science:")
    st.dataframe(
        table,
        hide_index=True,
        column_config=PLAN_TABLE_COLUMNS,
    )
    if note := below_recent_text(result.ad_sets):
        st.warning(markdown_text(note), icon=":material/history:")
    st.caption(markdown_text(CURVES_CANNOT_SEE))
    names = dict(zip(result.ad_sets["ad_set_id"], result.ad_sets["ad_set_name"], strict=True))
    chosen = st.multiselect(
        "Response curves of",
        list(names),
        default=default_curves(result.ad_sets),
        format_func=lambda ad_set: names.get(ad_set, ad_set),
        placeholder="Type to search ad sets",
        key="plan_curves",
        max_selections=6,
    )
    if chosen:
        st.plotly_chart(curves_figure(path, stamp, settings, tuple(chosen)), config=PLOTLY_CONFIG)
    st.download_button(
        "Download this plan (CSV)",
        lambda: plan_csv(result.ad_sets, settings, curves.plan_date),
        file_name="budget_plan.csv",
        mime="text/csv",
        key="plan_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    return result


NAIVE_COLUMNS = {
    "ad_set_id": None,
    "ad_set_name": st.column_config.TextColumn("Ad set"),
    "group": st.column_config.TextColumn("Naive rule"),
    "roas": st.column_config.NumberColumn("ROAS", format="%.2f×", help="Over the period shown."),
    "spend": st.column_config.NumberColumn("Spend/day", format="£%,.0f", help="Today, a day."),
    "new_spend": st.column_config.NumberColumn("New/day", format="£%,.0f"),
    "spend_change": st.column_config.TextColumn("Change/day"),
    "revenue_change": st.column_config.TextColumn(
        "Revenue/day", help="Expected change in revenue a day, on the plan's curves."
    ),
}


def naive_view(overview: Overview, path: str, stamp, planned: Replan | None) -> None:
    """The old linear quartile rule, labelled naive: who gives and who receives comes from the
    period on screen; it is valued once, a day, on the plan's curves and draws."""
    st.subheader("Naive rule, for comparison")
    st.caption(
        "Moves a share of the lowest-ROAS quarter's spend to the highest-ROAS quarter (by ROAS "
        "in the selected period), as if every pound returned its ad set's average ROAS: no "
        "diminishing returns, no bounds, no delivery capacity. Valued here a day, on the same "
        "curves as the plan."
    )
    share = st.slider(
        "Share of bottom-quartile budget to move",
        0.0,
        0.5,
        0.2,
        0.05,
        key="whatif_share",
        format="percent",
    )
    naive = whatif.reallocate(overview.by_ad_set, share, (1.0, 1.0))
    valued = naive_valued(path, stamp, overview.filters, share, naive.plan)
    if valued is None or not valued.valued:
        st.info(
            "The naive rule cannot be valued: none of the ad sets it moves has a response curve.",
            icon=":material/hourglass_empty:",
        )
        return
    plan_uplift = planned.summary["uplift"] if planned is not None else None
    so_what(
        narrative.naive_so_what(
            valued.moved,
            len(valued.donors),
            len(valued.recipients),
            valued.uplift,
            valued.low,
            valued.high,
            plan_uplift,
        )
    )
    compare = st.columns(2)
    if planned is not None:
        summary = planned.summary
        compare[0].metric(
            "Plan: expected uplift",
            f"{narrative.signed_money(summary['uplift'])} a day",
            f"range {narrative.signed_money(summary['uplift_low'])} to "
            f"{narrative.signed_money(summary['uplift_high'])}",
            delta_color="off",
            delta_arrow="off",
            border=True,
        )
    compare[1].metric(
        "Naive rule: expected uplift (same curves)",
        f"{narrative.signed_money(valued.uplift)} a day",
        f"range {narrative.signed_money(valued.low)} to {narrative.signed_money(valued.high)}",
        delta_color="off",
        delta_arrow="off",
        border=True,
        help=f"Tomorrow's spend moved as the naive rule moves the period's "
        f"({narrative.money(valued.moved)} a day), valued with the plan's curves"
        + (
            f"; {narrative.plural(valued.unvalued, 'ad set')} without a curve left out"
            if valued.unvalued
            else ""
        )
        + ".",
    )
    names = naive.plan.set_index("ad_set_id")
    table = valued.per_day.assign(
        ad_set_name=valued.per_day["ad_set_id"].map(names["ad_set_name"]),
        roas=valued.per_day["ad_set_id"].map(names["roas"]),
    )
    table = table.sort_values("roas", ascending=False)
    st.dataframe(  # a signed change reads +£5,417 / −£5,417 (a printf format gives £+5,417)
        table.assign(
            spend_change=table["spend_change"].map(narrative.signed_pounds),
            revenue_change=table["revenue_change"].map(narrative.signed_pounds),
        )[list(NAIVE_COLUMNS)],
        hide_index=True,
        column_config=NAIVE_COLUMNS,
    )
    st.download_button(
        "Download the naive reallocation (CSV)",
        lambda: whatif.plan_csv(table[list(NAIVE_COLUMNS)]),
        file_name="naive_reallocation.csv",
        mime="text/csv",
        key="whatif_csv",
        on_click="ignore",
        icon=":material/download:",
    )


@st.fragment
def whatif_tab(overview: Overview, path: str, stamp: tuple[int, int]) -> None:
    """A fragment: a scenario, bound or slider change reruns only this tab (a re-plan of every ad
    set from the cached curves), not the queries and charts around it. How long the tab took is
    kept in session state (`whatif_seconds`) for the benchmark and its test."""
    started = time.perf_counter()
    curves = served_curves(path, stamp)
    planned = None
    if curves is None or not len(curves):
        st.warning(f"Budget plan: {NOT_AVAILABLE}")
    else:
        day = curves.plan_date
        st.subheader(f"Budget plan from {day:%a %d %b %Y}" if day else "Budget plan")
        planned = plan_view(curves, path, stamp)
        st.divider()
    naive_view(overview, path, stamp, planned)
    st.session_state["whatif_seconds"] = time.perf_counter() - started
