"""The rule-based actions: what Next steps say from the facts alone (offline, or in place
of a bullet that failed grounding), the plan's move first; and the guard that a bullet does
not reverse the plan."""

from app.narrative import (
    MINUS,
    chance,
    money,
    percent_change,
    ratio,
    signed_money,
)
from app.next_steps.facts import ALL_ROLES
from app.next_steps.grounding import MAX_BULLET_CHARS
from app.plan_guard import reverses_plan


def _named(items: list[dict], count: int, most: int = 3) -> str:
    """`A, B and C`, or `A, B, C and 4 more` when the plan has more than it names."""
    listed = [str(item["ad_set"]) for item in items[:most]]
    more = max(count, len(items)) - len(listed)
    if more > 0:
        return f"{', '.join(listed)} and {more} more"
    return listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"


def _plan(facts: dict) -> dict | None:
    """The budget plan's facts when they are complete enough to act on."""
    plan = facts.get("budget_plan")
    needed = ("donors", "recipients", "check_delivery", "uplift_per_day", "moved_per_day")
    if isinstance(plan, dict) and all(key in plan for key in needed):
        return plan
    return None


def no_move_reason(plan: dict) -> str:
    """Why a plan moves nothing, as its headline says it: no curve to price a move with, every
    move below the minimum, or no move that would earn more."""
    planned, held = plan.get("ad_sets_planned") or 0, plan.get("held_moves") or 0
    if planned and plan.get("ad_sets_without_curve") == planned:
        return "no ad set has a response curve yet, so the budget plan cannot price a move."
    if held and plan.get("min_move") is not None:
        return (
            f"the {held} move{'s' if held != 1 else ''} the budget plan found "
            f"{'are' if held != 1 else 'is'} below its minimum move of "
            f"{money(plan['min_move'])} a day."
        )
    return "the budget plan finds no move within its limits that is expected to earn more."


def plan_move_action(plan: dict) -> str:
    """The plan's headline as an action: who gives, who receives (the largest moves, as many as
    fit in one bullet, then "and N more"), what it is expected to buy."""
    donors, recipients = plan["donors"], plan["recipients"]
    uplift = signed_money(plan["uplift_per_day"])
    low, high = plan.get("uplift_low"), plan.get("uplift_high")
    spread = (
        f" ({plan.get('interval_percent', 90):.0f}% range {signed_money(low)} to "
        f"{signed_money(high)})"
        if low is not None and high is not None
        else ""
    )
    moved = money(plan["moved_per_day"] or 0)
    if not donors and not recipients:
        return (
            f"Keep today's {money(plan.get('spend_current_per_day') or 0)} a day where it is: "
            + (no_move_reason(plan))
        )
    text = ""
    for most in (3, 2, 1):
        source = _named(donors, plan.get("donor_count", len(donors)), most) if donors else ""
        target = (
            _named(recipients, plan.get("recipient_count", len(recipients)), most)
            if recipients
            else ""
        )
        if donors and recipients:
            text = f"Move {moved} a day from {source} to {target}: {uplift} expected revenue a day"
        elif donors:
            text = f"Cut {moved} a day from {source}: {uplift} expected revenue a day"
        else:
            added = money(sum(item["change"] or 0 for item in recipients))
            text = f"Add {added} a day of budget to {target}: {uplift} expected revenue a day"
        text += f"{spread}{ramp_clause(plan)}."
        if len(text) <= MAX_BULLET_CHARS:
            break
    return text


def ramp_clause(plan: dict) -> str:
    """A ramped plan's first day, as its headline says it ("" when every move is made at once):
    the move above is the plan date's."""
    days, target = plan.get("ramp_days") or 0, plan.get("move_target")
    if days <= 1 or target is None:
        return ""
    return f"; that is tomorrow's step of {money(target)} a day moved over up to {days:.0f} days"


def plan_delivery_action(plan: dict, facts: dict) -> str | None:
    """Delivery first, in the plan's words: the riskiest ad set to under-pace tomorrow (a donor
    is told both facts), else the worst past pacing that the plan does not give budget to."""
    if plan["check_delivery"]:
        item = plan["check_delivery"][0]
        risk = chance(item.get("under_pacing_risk"))
        if item.get("role") == "donor":
            return (
                f"Check delivery on {item['ad_set']}: {risk} risk of under-pacing tomorrow; "
                f"the budget plan also takes {money(-(item['change'] or 0))} a day from it "
                f"(marginal ROAS {ratio(item['marginal_roas'])})."
            )
        return (
            f"Check delivery on {item['ad_set']} before it gets more budget: {risk} risk of "
            f"under-pacing tomorrow, so the budget plan keeps it at "
            f"{money(item['recommended_spend'])} a day."
        )
    recipients = {item["ad_set"] for item in plan["recipients"]}
    for worst in facts["under_pacing"]["worst"]:
        if worst["ad_set"] not in recipients:
            return (
                f"Fix delivery on {worst['ad_set']}: {int(worst['under_days'])} under-paced "
                f"days left {money(worst['unspent'])} of budget unspent, about "
                f"{money(worst['revenue_missed'])} of revenue at its ROAS."
            )
    return None


def contradicts_plan(text: str, facts: dict) -> bool:
    """A bullet that tells another story than the plan: more budget for any ad set the plan
    cuts, caps or finds at risk of under-pacing, less for any it gives budget to (each named by
    name or id, among every ad set of the plan, not only those the facts name), or "ignore the
    plan" (`app.plan_guard`)."""
    plan = _plan(facts)
    if plan is None:
        return False
    roles = plan.get(ALL_ROLES) or {}

    def named(*keys: str) -> set[str]:
        return {item["ad_set"] for key in keys for item in plan[key]}

    no_more = named("donors", "check_delivery").union(
        *(roles.get(role, ()) for role in ("donor", "capped", "at_risk"))
    )
    no_less = named("recipients") | set(roles.get("recipient", ()))
    return reverses_plan(text, no_more, no_less)


def rule_based_actions(facts: dict) -> list[str]:
    """Actions computed from the facts alone, most valuable first; always at least three, each
    quoting figures from the facts so it passes the same grounding test as the model's. With a
    budget plan in the facts, budget moves and delivery come from the plan (and the forecasts
    behind it), so they never contradict the What-if, the Forecasts or the Overview."""
    totals, previous = facts["totals"], facts["previous_period"]
    target = facts["roas_target"]
    actions = []
    lowest, highest = facts["lowest_roas"], facts["highest_roas"]
    plan = _plan(facts)
    if plan is not None:
        actions.append(plan_move_action(plan))
        if delivery := plan_delivery_action(plan, facts):
            actions.append(delivery)
    elif facts["ad_sets_below_target"] and lowest and highest:
        low, high = lowest[0], highest[0]
        actions.append(
            f"Shift budget from {low['ad_set']} (ROAS {ratio(low['roas'])} on "
            f"{money(low['spend'])} spend) to {high['ad_set']} ({ratio(high['roas'])}): "
            f"{facts['ad_sets_below_target']} ad sets sit below the {ratio(target)} target."
        )
    pacing = facts["under_pacing"]
    if plan is None and pacing["worst"]:
        worst = pacing["worst"][0]
        actions.append(
            f"Fix delivery on {worst['ad_set']}: {int(worst['under_days'])} under-paced days "
            f"left {money(worst['unspent'])} of budget unspent, about "
            f"{money(worst['revenue_missed'])} of revenue at its ROAS."
        )
    roas_change = facts["change_percent"]["roas"]
    if roas_change is not None and previous["roas"]:
        shown = percent_change(roas_change / 100)
        if shown is None:
            actions.append(
                f"Keep the current mix: ROAS held at {ratio(totals['roas'])}, level with the "
                "previous period."
            )
        elif roas_change < 0:
            actions.append(
                f"Review bids and creative: ROAS fell to {ratio(totals['roas'])} from "
                f"{ratio(previous['roas'])} ({shown.replace('-', MINUS)}) against the previous "
                "period."
            )
        else:
            actions.append(
                f"Keep the current mix: ROAS rose to {ratio(totals['roas'])} from "
                f"{ratio(previous['roas'])} ({shown}) against the previous period."
            )
    if highest and plan is None:
        high = highest[0]
        actions.append(
            f"Test a higher daily budget on {high['ad_set']}: ROAS {ratio(high['roas'])} on "
            f"{money(high['spend'])} spend."
        )
    if facts["ad_sets_below_target"]:
        actions.append(
            f"Bring the {facts['ad_sets_below_target']} ad sets below {ratio(target)} to "
            f"target: worth {money(facts['revenue_gap_to_target'])} more revenue."
        )
    if totals["cpa"] is not None:
        actions.append(
            f"Track CPA of {money(totals['cpa'])} per booking across "
            f"{int(totals['bookings'] or 0)} bookings against your margin per booking."
        )
    if plan is not None:
        actions.append(
            f"Hold total spend at the plan's {money(plan['spend_recommended_per_day'] or 0)} a "
            f"day until the next refresh: {plan['ad_sets_planned']} ad sets planned."
        )
    else:
        actions.append(
            f"Hold total spend near {money(totals['spend'] or 0)} until the next refresh: "
            f"{facts['ad_sets']} ad sets in the selection."
        )
    return actions
