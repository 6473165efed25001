"""The facts Next steps are grounded in: the figures on screen and the budget plan's
moves, as the JSON the model is sent (`facts_json`)."""

import json
import math

from app.narrative import (
    below_target,
    change,
    top_and_bottom,
)

PLAN_NAMED = 5
"""Donors, recipients and ad sets to check that the facts name (largest first)."""
ALL_ROLES = "all_roles"
"""The budget plan's facts key listing every donor, recipient, capped ad set and ad set at risk,
by name and by id: the facts name only the PLAN_NAMED largest moves, and a bullet giving budget
to the sixth donor contradicts the plan as much as one giving it to the first. The guard reads
it; the model is not sent it (`prompt_facts`)."""


def _round(value, digits: int = 2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _ad_set(row, *fields_: str) -> dict:
    facts = {"ad_set": str(row["ad_set_name"])}
    for name in fields_:
        facts[name] = _round(row[name])
    return facts


def _plan_ad_set(row: dict) -> dict:
    facts = {
        "ad_set": str(row["ad_set_name"]),
        "change": _round(row["change"]),
        "current_spend": _round(row["current_spend"]),
        "recommended_spend": _round(row["recommended_spend"]),
        "marginal_roas": _round(row["marginal_roas_current"]),
    }
    for name in ("current_daily_budget", "new_daily_budget", "target_daily_budget", "ramp_days"):
        if (value := _round(row.get(name))) is not None:
            facts[name] = value
    risk = _round(row.get("under_pacing_risk"))
    if risk is not None:
        facts["under_pacing_risk"] = risk
    return facts


PLAN_LIMIT_FACTS = (
    "margin",
    "break_even_roas",
    "profit_uplift",
    "profit_uplift_low",
    "profit_uplift_high",
    "moves",
    "ramp_days",
    "max_daily_change",
    "uplift_target",
    "profit_uplift_target",
    "period_days",
    "period_spend",
    "period_uplift",
    "period_uplift_low",
    "period_uplift_high",
    "period_profit_uplift",
    "move_target",
    "move_first_day",
)
"""The plan's limits, profit and period figures its headline quotes (a day unless `period_`;
`move_target` once ramped, `move_first_day` on the plan date)."""


def plan_facts(plan) -> dict | None:
    """The published budget plan's headline figures: who gives, who receives, how much, the
    expected uplift and its range, and the ad sets whose delivery needs checking first (every
    ad set, whatever the filters: the budget is planned across all of them)."""
    if plan is None:
        return None
    return plan.memo("facts", lambda: _plan_facts(plan))


def _plan_facts(plan) -> dict:
    summary = plan.summary
    donors, recipients, at_risk = plan.role("donor"), plan.role("recipient"), plan.at_risk
    day = plan.plan_date
    return {
        "plan_date": day.isoformat() if day else None,
        "scenario": str(summary.get("scenario")),
        "ad_sets_planned": int(len(plan.ad_sets)),
        "ad_sets_without_curve": int(summary.get("ad_sets_without_curve") or 0),
        "held_moves": int(summary.get("held") or 0),
        "min_move": _round(summary.get("min_move")),
        "moved_per_day": _round(summary.get("cut") or summary.get("moved")),
        "uplift_per_day": _round(summary.get("uplift")),
        "uplift_low": _round(summary.get("uplift_low")),
        "uplift_high": _round(summary.get("uplift_high")),
        "interval_percent": _round((summary.get("interval") or 0.9) * 100, 0),
        "revenue_current_per_day": _round(summary.get("revenue_current")),
        "revenue_recommended_per_day": _round(summary.get("revenue_recommended")),
        "spend_current_per_day": _round(summary.get("total_current")),
        "spend_recommended_per_day": _round(summary.get("total_recommended")),
        "marginal_roas": _round(summary.get("marginal_roas")),
        "unplaced_budget": _round(summary.get("unplaced_budget")),
        **{name: _round(summary.get(name)) for name in PLAN_LIMIT_FACTS},
        "uplift_kept_percent": _round(100 * (summary.get("uplift_kept_share") or 0), 0),
        "donor_count": int(len(donors)),
        "recipient_count": int(len(recipients)),
        "donors": [_plan_ad_set(row) for row in donors.head(PLAN_NAMED).to_dict("records")],
        "recipients": [_plan_ad_set(row) for row in recipients.head(PLAN_NAMED).to_dict("records")],
        "check_delivery": [
            {**_plan_ad_set(row), "role": str(row["role"])}
            for row in at_risk.head(PLAN_NAMED).to_dict("records")
        ],
        ALL_ROLES: {
            "donor": _names_and_ids(donors),
            "recipient": _names_and_ids(recipients),
            "capped": _names_and_ids(plan.role("capped")),
            "at_risk": _names_and_ids(at_risk),
        },
    }


def _names_and_ids(rows) -> list[str]:
    """Every ad set of `rows` as a bullet may name it: by name or by id."""
    return sorted(set(map(str, rows["ad_set_name"])) | set(map(str, rows["ad_set_id"])))


def prompt_facts(facts: dict) -> dict:
    """The facts as the model sees them: without the plan's every-ad-set role lists (kept for
    the contradiction guard; at 2,000 ad sets they would be most of the prompt). A bullet's
    figures are checked against these, never against the lists' lengths."""
    plan = facts.get("budget_plan")
    if not isinstance(plan, dict) or ALL_ROLES not in plan:
        return facts
    return {**facts, "budget_plan": {k: v for k, v in plan.items() if k != ALL_ROLES}}


def build_facts(overview) -> dict:
    """The figures on screen for the current filters, as plain JSON-ready data, and the
    published budget plan's (`budget_plan`, when the serving file has one)."""
    kpis, previous, filters = overview.kpis, overview.previous, overview.filters
    spent = overview.by_ad_set[overview.by_ad_set["spend"] > 0]
    below = below_target(overview.by_ad_set, filters.roas_target)
    top, bottom = top_and_bottom(overview.by_ad_set, 3)
    under_days = int(overview.pacing["under"].sum()) if len(overview.pacing) else 0
    all_days = (
        int(overview.pacing[["under", "on_pace", "over"]].sum().sum())
        if len(overview.pacing)
        else 0
    )
    worst_pacing = overview.pacing_cost[overview.pacing_cost["under_days"] > 0].head(3)
    facts = {
        "period": {
            "start": filters.start.isoformat(),
            "end": filters.end.isoformat(),
            "days": overview.days,
        },
        "roas_target": _round(filters.roas_target),
        "pacing_bands": {"under_below": _round(filters.under), "over_above": _round(filters.over)},
        "totals": {
            name: _round(kpis.get(name)) for name in ("spend", "revenue", "bookings", "roas", "cpa")
        },
        "previous_period": {
            name: _round(previous.get(name)) for name in ("spend", "revenue", "roas", "cpa")
        },
        "change_percent": {
            name: _round((change(kpis.get(name), previous.get(name)) or 0) * 100, 1)
            if change(kpis.get(name), previous.get(name)) is not None
            else None
            for name in ("spend", "revenue", "roas", "cpa")
        },
        "ad_sets": int(len(spent)),
        "ad_sets_below_target": int(len(below)),
        "revenue_gap_to_target": _round(below["revenue_gap"].sum()) if len(below) else 0.0,
        "lowest_roas": [_ad_set(row, "roas", "spend", "revenue") for _, row in bottom.iterrows()],
        "highest_roas": [_ad_set(row, "roas", "spend", "revenue") for _, row in top.iterrows()],
        "under_pacing": {
            "ad_set_days": under_days,
            "of_ad_set_days": all_days,
            "share_percent": _round(under_days * 100 / all_days, 1) if all_days else 0.0,
            "unspent_budget": _round(overview.pacing_cost["unspent"].sum()),
            "revenue_missed": _round(overview.pacing_cost["revenue_missed"].sum()),
            "worst": [
                _ad_set(row, "under_days", "unspent", "revenue_missed")
                for _, row in worst_pacing.iterrows()
            ],
        },
    }
    budget = plan_facts(getattr(overview, "plan", None))
    if budget is not None:
        facts["budget_plan"] = budget
    return facts


def facts_json(facts: dict) -> str:
    """Canonical JSON: the cache key for the LM call (the model sees `prompt_facts` of it)."""
    return json.dumps(facts, sort_keys=True, ensure_ascii=False)
