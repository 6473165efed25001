"""The budget plan's headline, written from the plan's figures: gold.budget_plan_summary's numbers
and gold.budget_plan's rows (roles, changes, names). The pipeline stores numbers only, so the
sentence can be reworded without a pipeline run; the dashboard, the What-if, the report and the
run summary all render it here, for a published plan and a re-plan alike.
"""

import numpy as np
import pandas as pd

from planning.money import prose_money, signed_prose_money
from planning.optimizer import PENNY, move_amounts, profit_uplift_of

HEADLINE_NUMBERS = (
    "ad_sets",
    "ad_sets_without_curve",
    "unplaced_budget",
    "min_move",
    "min_move_share",
    "moves",
    "uplift_kept_share",
    "ramp_days",
    "max_daily_change",
    "margin",
    "uplift",
    "uplift_low",
    "uplift_high",
    "uplift_target",
    "profit_uplift_target",
    "cut",
    "total_current",
    "total_recommended",
    "total_target",
    "period_days",
    "period_start",
    "period_end",
    "period_spend",
    "period_uplift",
    "period_uplift_low",
    "period_uplift_high",
    "period_profit_uplift",
)
HEADLINE_FIGURES = ("scenario", *HEADLINE_NUMBERS)
"""The summary's figures the headline reads, each a column of gold.budget_plan_summary: the
scenario, then numbers (and the period's two dates)."""
HEADLINE_COLUMNS = ("ad_set_id", "ad_set_name", "role", "change", "current_spend", "target_spend")
"""The plan rows' columns it reads (each a column of gold.budget_plan)."""


def headline(ad_sets: pd.DataFrame, summary: dict) -> str:
    """What the plan does (Cut, Move, Add), in how many moves worth what share of the uplift,
    revenue and profit beside it, and the longest ramp; money in prose. `summary` as built in
    memory or as a stored row reads it back (NULL as NaN, dates as timestamps)."""
    donors = ad_sets[ad_sets["role"] == "donor"].sort_values(["change", "ad_set_id"])
    recipients = ad_sets[ad_sets["role"] == "recipient"].sort_values(
        ["change", "ad_set_id"], ascending=[False, True]
    )
    rng = (
        f" (range {signed_prose_money(summary['uplift_low'])} to "
        f"{signed_prose_money(summary['uplift_high'])})"
        if np.isfinite(summary["uplift_low"])
        else ""
    )
    tail = ""
    if summary["unplaced_budget"] > PENNY:
        tail = f"; {prose_money(summary['unplaced_budget'])} cannot be placed under the bounds"
    if donors.empty and recipients.empty:
        if summary["ad_sets"] and summary["ad_sets_without_curve"] == summary["ad_sets"]:
            return (
                "Keep the current budgets: no ad set has a response curve yet (their spend has "
                "barely varied), so no move can be priced" + tail + "."
            )
        held = int((ad_sets["role"] == "held").sum())
        if held:
            return (
                f"Keep the current budgets: the {held} move{'s' if held != 1 else ''} the plan "
                f"found {'are' if held != 1 else 'is'} below the minimum move "
                f"({prose_money(summary['min_move'])} and {summary['min_move_share']:.0%} of a "
                f"budget a day; lower it in the run config or the What-if to see "
                f"{'them' if held != 1 else 'it'})" + tail + "."
            )
        return "Keep the current budgets: no move within the limits is expected to earn more" + (
            tail + "."
        )
    verb, amount, first = move_amounts(ad_sets, summary)
    source = f" from {names(donors)}" if not donors.empty and verb != "Add" else ""
    target = f" to {names(recipients)}" if not recipients.empty and verb != "Cut" else ""
    moves = summary["moves"]
    ramped = summary["ramp_days"] > 1
    text = (
        f"{verb} {prose_money(amount)} a day{source}{target} in {moves} "
        f"move{'s' if moves != 1 else ''} worth {summary['uplift_kept_share']:.0%} of the uplift"
    )
    if ramped:
        text += (
            f"; the longest ramp takes {summary['ramp_days']} days at up to "
            f"{summary['max_daily_change']:.0%} a day ({prose_money(first)} of it tomorrow)"
        )
    profit = signed_prose_money(profit_uplift_of(summary)["profit_uplift"])
    text += (
        f". {'Tomorrow' if ramped else 'Expected'}: "
        f"{signed_prose_money(summary['uplift'])} expected revenue a day{rng}, {profit} profit"
    )
    if summary["scenario"] != "same_budget":
        spent = signed_prose_money(summary["total_recommended"] - summary["total_current"])
        text += f", total spend {spent} a day"
    if ramped:
        text += (
            f"; once ramped: {signed_prose_money(summary['uplift_target'])} revenue and "
            f"{signed_prose_money(summary['profit_uplift_target'])} profit a day"
        )
    return text + tail + "." + period_text(summary)


def names(rows: pd.DataFrame, count: int = 2) -> str:
    """The first `count` ad sets by name, then "and N more"."""
    listed = [str(name) for name in rows["ad_set_name"].head(count)]
    more = len(rows) - len(listed)
    text = ", ".join(listed)
    return f"{text} and {more} more" if more > 0 else text


def period_text(summary: dict) -> str:
    """The period's totals in one sentence ("" for a one-day plan)."""
    days = summary.get("period_days") or 1
    if days <= 1 or not np.isfinite(summary.get("period_uplift", np.nan)):
        return ""
    start, end = summary.get("period_start"), summary.get("period_end")
    dates = f" ({start:%d %b}–{end:%d %b})" if start is not None and end is not None else ""
    rng = (
        f" (range {signed_prose_money(summary['period_uplift_low'])} to "
        f"{signed_prose_money(summary['period_uplift_high'])})"
        if np.isfinite(summary["period_uplift_low"])
        else ""
    )
    return (
        f" Over the next {days} days{dates}: {signed_prose_money(summary['period_uplift'])} "
        f"expected revenue{rng}, {signed_prose_money(summary['period_profit_uplift'])} profit, "
        f"on {prose_money(summary['period_spend'])} spend."
    )
