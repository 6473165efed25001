"""The "so what" under each chart: sentences computed from the numbers on screen, never canned.

Pure functions over small frames, so each sentence is unit-tested against the figures it quotes.
"""

import pandas as pd

from planning.money import prose_money
from planning.optimizer import probability_text


def money(value: float | None) -> str:
    """£ the way a marketer reads a slide, the one money style of every sentence (the plan's
    headline too: planning.money): £5.42, £950, £12.7k, £1.87m. Tables show full figures."""
    if value is None or pd.isna(value):
        return "n/a"
    return ("-" if value < 0 else "") + prose_money(value)


def pounds(value: float | None) -> str:
    """£ in full, for a table's cell: £12,745 (pence below £100)."""
    if value is None or pd.isna(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}£{value:,.0f}" if value >= 100 else f"{sign}£{value:,.2f}"


def ratio(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.2f}×"


def percent(value: float | None, digits: int = 0) -> str:
    """`value` is a share (0.25 → 25%)."""
    return "n/a" if value is None or pd.isna(value) else f"{value * 100:.{digits}f}%"


def chance(value: float | None) -> str:
    """A model's probability as a share, never "100%" for one below 1 (planning's wording)."""
    return "n/a" if value is None or pd.isna(value) else probability_text(float(value))


def count(value: int) -> str:
    return f"{int(value):,}"


MINUS = "\u2212"
"""The minus sign of a signed figure in text: `−£5,417` (a hyphen is too short to read)."""


def _signed(value: float | None, shown) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    text = shown(abs(value))
    if text in ("£0", "£0.00"):
        return "£0"
    return ("+" if value > 0 else MINUS) + text


def signed_money(value: float | None) -> str:
    """A change in pounds in a sentence, its sign before the £: `+£5.42k`, `−£950`, never
    `£+5.42k`; `£0` when it rounds to nothing."""
    return _signed(value, money)


def signed_pounds(value: float | None) -> str:
    """A change in pounds in a table's cell, in full: `+£5,417`, `−£5,417`; `£0` when it rounds
    to nothing."""
    return _signed(value, pounds)


def money_delta(value: float | None, rise_is_good: bool | None = True) -> tuple[str | None, str]:
    """A money change as st.metric's (delta, delta_color): the arrow from its sign (an ASCII
    "-", which st.metric reads as a fall), the colour from what that sign means here (a spend
    cut is good news when the plan saves: `rise_is_good=False`; None: grey). No delta, so no
    arrow and no "+£0.00" in green, when it rounds to £0."""
    shown = signed_money(value)
    if shown in ("n/a", "£0"):
        return None, "off"
    color = "off" if rise_is_good is None else "normal" if rise_is_good else "inverse"
    return shown.replace(MINUS, "-"), color


def percent_change(change_: float | None, digits: int = 1) -> str | None:
    """A relative change (0.052 → `+5.2%`, −0.052 → `-5.2%`) for a metric's delta; None when
    there is nothing to compare with or it rounds to zero at `digits` (no "↓ -0.0%"). The sign
    is ASCII: st.metric reads a leading "-" as a fall."""
    if change_ is None or pd.isna(change_):
        return None
    text = f"{abs(change_) * 100:.{digits}f}"
    if float(text) == 0:
        return None
    return ("+" if change_ > 0 else "-") + text + "%"


FORMATS = {
    "money": lambda value: pounds(value),
    "signed_money": lambda value: signed_pounds(value),
    "ratio": lambda value: ratio(value),
    "percent": lambda value: percent(value),
    "count": lambda value: "n/a" if value is None or pd.isna(value) else count(value),
    "number": lambda value: "n/a" if value is None or pd.isna(value) else f"{value:,.3f}",
    "yes/no": lambda value: "n/a" if value is None or pd.isna(value) else "yes" if value else "no",
    "text": lambda value: (
        "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
    ),
}
"""Every kind of figure a table shows, formatted one way for the dashboard, the presenter view
and the report alike: money in full (£12,745), as tables show it; sentences use `money`."""


def for_people(frame: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """`frame`'s `columns` (name → (header, kind of figure)) as text for people: headers in
    words, £ and × and thousands separators as the dashboard shows them."""
    return pd.DataFrame(
        {
            header: [FORMATS[kind](value) for value in frame[name]]
            for name, (header, kind) in columns.items()
            if name in frame
        }
    )


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change from `previous`; None when there is nothing to compare with."""
    if current is None or previous is None or pd.isna(current) or pd.isna(previous):
        return None
    if previous == 0:
        return None
    return (current - previous) / abs(previous)


def plural(number: int, word: str) -> str:
    return f"{count(number)} {word}{'' if number == 1 else 's'}"


def headline(kpis: dict, previous: dict, days: int) -> str:
    """One sentence with the period's result and how it moved against the period before."""
    if not kpis.get("spend"):
        return "No spend in the selected period and ad sets."
    text = (
        f"{money(kpis['revenue'])} revenue on {money(kpis['spend'])} spend over "
        f"{plural(days, 'day')}: ROAS {ratio(kpis['roas'])}"
    )
    roas_change = change(kpis.get("roas"), previous.get("roas"))
    if roas_change is None:
        return text + " (no earlier period of equal length to compare with)."
    if percent_change(roas_change) is None:
        return text + f", level with the previous {days} days ({ratio(previous['roas'])})."
    direction = "up" if roas_change >= 0 else "down"
    return (
        text + f", {direction} {percent(abs(roas_change), 1)} on the previous {days} days "
        f"({ratio(previous['roas'])})."
    )


def spend_revenue_so_what(daily: pd.DataFrame) -> str:
    """How the 7-day ROAS moved across the period, and the best and weakest days."""
    days = daily.dropna(subset=["spend"])
    days = days[days["spend"] > 0]
    if days.empty:
        return "No spend in the selected period."
    first, last = days.iloc[0], days.iloc[-1]
    start_roas = first["revenue_7d"] / first["spend_7d"] if first["spend_7d"] else None
    end_roas = last["revenue_7d"] / last["spend_7d"] if last["spend_7d"] else None
    best = days.loc[days["roas"].idxmax()]
    worst = days.loc[days["roas"].idxmin()]
    trend = change(end_roas, start_roas)
    movement = (
        "held steady"
        if trend is None or abs(trend) < 0.005
        else f"{'rose' if trend > 0 else 'fell'} {percent(abs(trend), 1)}"
    )
    return (
        f"7-day ROAS {movement}, from {ratio(start_roas)} to {ratio(end_roas)}. "
        f"Best day {best['date']:%d %b} at {ratio(best['roas'])} "
        f"({money(best['revenue'])} revenue); weakest {worst['date']:%d %b} at "
        f"{ratio(worst['roas'])}."
    )


def below_target(by_ad_set: pd.DataFrame, target: float) -> pd.DataFrame:
    """Ad sets with spend whose ROAS is under the target, worst first, with the revenue gap."""
    spent = by_ad_set[by_ad_set["spend"] > 0]
    below = spent[spent["roas"].fillna(0) < target].copy()
    below["gap"] = target - below["roas"].fillna(0)
    below["revenue_gap"] = target * below["spend"] - below["revenue"]
    return below.sort_values(["roas", "ad_set_id"]).reset_index(drop=True)


def roas_so_what(by_ad_set: pd.DataFrame, target: float) -> str:
    """Which ad sets miss the target, by how much, and what reaching it would have been worth."""
    spent = by_ad_set[by_ad_set["spend"] > 0]
    if spent.empty:
        return "No ad set spent in the selected period."
    below = below_target(by_ad_set, target)
    if below.empty:
        lowest = spent.sort_values("roas").iloc[0]
        return (
            f"All {plural(len(spent), 'ad set')} meet the {ratio(target)} target; the lowest, "
            f"{lowest['ad_set_name']}, is at {ratio(lowest['roas'])}."
        )
    worst = below.iloc[0]
    share = below["spend"].sum() / spent["spend"].sum()
    return (
        f"{count(len(below))} of {plural(len(spent), 'ad set')} are below the {ratio(target)} "
        f"target, holding {percent(share)} of spend ({money(below['spend'].sum())}). Furthest "
        f"below: {worst['ad_set_name']} at {ratio(worst['roas'])} ({ratio(worst['gap'])} short). "
        f"At target they would have returned {money(below['revenue_gap'].sum())} more revenue."
    )


def pacing_so_what(pacing: pd.DataFrame, cost: pd.DataFrame, under: float, over: float) -> str:
    """How many ad-set days under-paced, the budget they left unspent and the revenue it cost."""
    total = int(pacing[["under", "on_pace", "over"]].sum().sum()) if len(pacing) else 0
    if total == 0:
        return "No pacing data for the selected period."
    under_days = int(pacing["under"].sum())
    over_days = int(pacing["over"].sum())
    text = (
        f"{count(under_days)} of {count(total)} ad-set days ({percent(under_days / total)}) ran "
        f"below {under:.2f} utilization and {count(over_days)} above {over:.2f}."
    )
    if under_days == 0:
        return text
    unspent = float(cost["unspent"].sum())
    missed = float(cost["revenue_missed"].sum())
    worst = cost.iloc[0]
    return text + (
        f" Under-pacing left {money(unspent)} of planned budget unspent, worth about "
        f"{money(missed)} revenue at those ad sets' ROAS; most from {worst['ad_set_name']} "
        f"({plural(int(worst['under_days']), 'day')}, {money(worst['revenue_missed'])})."
    )


RISK_ALERT = 0.5
"""Under-pacing risk at or above this is worth a look before tomorrow's delivery."""
LIKELY = 0.5


def _known(value) -> bool:
    return value is not None and not pd.isna(value)


def forecast_action(plan: dict | None, risk: float | None, probability: float | None) -> str:
    """What to do with an ad set tomorrow, from its row of the published budget plan and its
    forecasts, so it never contradicts the plan: a donor is told how much to move away (and, if
    it is likely to under-pace, that too, not to raise bids); a recipient how much to add (and
    its risk, when the plan funds an at-risk ad set whose spend has followed its budget); any
    other ad set likely to under-pace (risk >= 50%) to check delivery. Without a
    plan row, the forecasts alone (no budget advice beyond "candidate")."""
    at_risk = _known(risk) and risk >= RISK_ALERT
    unlikely = _known(probability) and probability < 0.3
    likely = _known(probability) and probability >= 0.7
    if plan is None:
        if at_risk:
            return "Check delivery: raise bids or widen the audience before tomorrow"
        if unlikely:
            return "Review creative and bids: unlikely to reach the target"
        if likely:
            return "Candidate for more budget: likely to beat the target"
        return "Keep as is and monitor"
    role = plan.get("role")
    spend = money(plan.get("current_spend"))
    marginal = plan.get("marginal_roas_current")
    margin = f"marginal ROAS {ratio(marginal)}" if _known(marginal) else "no marginal ROAS"
    if role == "donor":
        text = (
            f"Move {money(-plan['change'])} a day away, to {money(plan['recommended_spend'])} "
            f"({margin}: its next pound earns less than elsewhere)"
        )
        if at_risk:
            text += (
                f"; it is also likely to under-pace ({chance(risk)} risk): check delivery "
                "on what it keeps"
            )
        elif unlikely:
            text += "; unlikely to reach the target: review creative"
        return text
    if role == "recipient":
        text = (
            f"Add {money(plan['change'])} a day, to {money(plan['recommended_spend'])} "
            f"({margin}: its next pound earns more than elsewhere)"
        )
        if at_risk:  # funded because its spend has followed its budget (planning.delivery)
            text += (
                f"; {chance(risk)} risk of under-pacing tomorrow, but its spend has followed "
                "its budget: watch its delivery"
            )
        elif likely:
            text += "; likely to beat the target"
        return text
    if at_risk:
        return (
            f"Check delivery: {chance(risk)} risk of under-pacing tomorrow; raise bids or widen "
            f"the audience before it gets more budget (keeps {spend} a day)"
        )
    if role == "capped":
        reason = plan.get("capacity_reason")
        why = f", but {reason}" if isinstance(reason, str) and reason else ""
        return f"Keep {spend} a day: its next pound would earn more{why}"
    if role == "locked":
        text = f"Keep {spend} a day (fixed in the plan)"
    else:
        text = f"Keep {spend} a day ({margin}, level with the plan)"
    if unlikely:
        return text + "; review creative and bids: unlikely to reach the target"
    if likely:
        return text + "; likely to beat the target"
    return text + " and monitor"


def shift_note(plan: dict | None) -> str:
    """The clause a forecast action ends with when the ad set's curve was fitted after a step in
    its revenue per pound ("" otherwise; the plan's reason says when and by how much)."""
    if plan is None or plan.get("fit") != "shifted":
        return ""
    return (
        "; its revenue per pound stepped to a new level, so its curve is fitted on the days since"
    )


def forecast_so_what(forecasts: pd.DataFrame, target: float | None) -> str:
    if forecasts.empty:
        return "No forecasts for the selected ad sets."
    parts = [f"For {forecasts['date'].max():%d %b %Y}"]
    risk = forecasts["under_pacing_risk"].dropna()
    if len(risk):
        at_risk = forecasts[forecasts["under_pacing_risk"] >= RISK_ALERT]
        riskiest = forecasts.loc[risk.idxmax()]
        parts.append(
            f"{count(len(at_risk))} of {plural(len(risk), 'ad set')} have a "
            f"{percent(RISK_ALERT)}+ risk of under-pacing tomorrow (highest: "
            f"{riskiest['ad_set_name']}, {chance(riskiest['under_pacing_risk'])})"
        )
    probability = forecasts["roas_on_target_prob"].dropna()
    if len(probability):
        likely = int((probability >= LIKELY).sum())
        target_text = ratio(target) if target is not None else "the target"
        parts.append(
            f"{count(likely)} of {count(len(probability))} are more likely than not to reach "
            f"{target_text} ROAS over the next 7 days"
        )
    return parts[0] + ": " + "; ".join(parts[1:]) + "."


def quality_so_what(rules: pd.DataFrame, quarantine: pd.DataFrame, accounting: pd.DataFrame) -> str:
    passed = int((rules["status"] == "pass").sum())
    text = f"{passed} of {plural(len(rules), 'rule')} pass."
    quarantined = int(quarantine["rows"].sum()) if len(quarantine) else 0
    if quarantined:
        reasons = quarantine.groupby("reason")["rows"].sum().sort_values(ascending=False)
        listed = ", ".join(f"{count(rows)} {reason}" for reason, rows in reasons.items())
        text += f" {plural(quarantined, 'row')} held back in quarantine ({listed})."
    warnings = rules[rules["status"] == "warn"]
    if len(warnings):
        text += (
            f" {plural(len(warnings), 'warning')}: "
            + ", ".join(f"{row.rule} ({count(row.rows_affected)})" for row in warnings.itertuples())
            + "."
        )
    unbalanced = accounting[~accounting["balanced"]] if len(accounting) else accounting
    text += (
        " Every file's rows are accounted for."
        if len(unbalanced) == 0
        else f" Rows unaccounted for in: {', '.join(unbalanced['source_file'])}."
    )
    return text


RANKED = {
    "label_under_pacing_next": "ad sets that under-pace tomorrow above those that do not",
    "label_roas_on_target_next7d": "ad sets that reach the ROAS target over the next 7 days "
    "above those that do not",
}
"""What a model's AUC counts, per label, in words: the share of (positive, negative) pairs it
orders right."""


def _day(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%d %b %Y}"


def skill_verdict(validation: dict) -> str:
    """The model against the base rate and the simple rule, in a marketer's words."""
    model, base = validation.get("model") or {}, validation.get("base_rate") or {}
    rule = validation.get("heuristic") or {}
    if base.get("brier") is None or (model.get("brier") or 1) >= base["brier"]:
        return "No better than the base rate: treat its scores as indicative only"
    if validation.get("skill_over_heuristic"):
        return "Better than the simple rule"
    if (rule.get("auc") or 0) < model["auc"]:
        return "A little ahead of the simple rule, but not clearly"
    return "Not better than the simple rule: the rule alone does as well"


def model_so_what(card: dict) -> str:
    """The skill verdict in words: how often the model ranks ad sets right beside the simple rule
    and the logistic regression, how far off its probabilities are, on which days; or, for a
    model that was not fitted, why."""
    status = card.get("status") or ""
    if status.startswith("uninformative: "):
        return f"No model: {status.removeprefix('uninformative: ')}."
    validation = (card.get("metrics") or {}).get("validation") or {}
    model = validation.get("model") or {}
    if validation.get("status", "ok") != "ok" or model.get("auc") is None:
        return f"Not scored on validation: {validation.get('status', 'no validation metrics')}."
    rule = (validation.get("heuristic") or {}).get("auc")
    logistic = (validation.get("logistic") or {}).get("auc")
    baselines = [f"simple rule: {percent(rule)}"] if rule is not None else []
    if logistic is not None:
        baselines.append(f"logistic regression: {percent(logistic)}")
    ranked = RANKED.get(card.get("label"), "positives above negatives")
    ece = validation.get("ece")
    calibration = (
        ""
        if ece is None
        else f"; its probabilities are {100 * ece:.1f} points from the observed rates on average"
    )
    refit = (
        f"; the served model was then refit on data through {_day(card.get('refit_end'))}"
        if card.get("refit_end") is not None
        else ""
    )
    compared = f" ({', '.join(baselines)})" if baselines else ""
    return (
        f"{skill_verdict(validation)}: ranks {ranked} {percent(model['auc'])} of the time"
        f"{compared}{calibration}. On "
        f"{count(validation.get('rows', 0))} validation rows ({_day(card.get('validation_start'))}"
        f" to {_day(card.get('validation_end'))}), trained on data through "
        f"{_day(card.get('training_end'))}{refit}."
    )


def top_and_bottom(by_ad_set: pd.DataFrame, size: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The best and worst ad sets by ROAS among those that spent."""
    spent = by_ad_set[by_ad_set["spend"] > 0].sort_values(["roas", "ad_set_id"], ascending=False)
    return spent.head(size), spent.tail(size).iloc[::-1]


def others_text(others: dict, noun: str) -> str | None:
    """The rows a ranking leaves out, summed: "1,980 other ad sets: spend £1.2m, revenue £4.9m,
    ROAS 4.08×." None when it leaves none out."""
    rows = others["rows"]
    if not rows:
        return None
    word = noun if rows == 1 else f"{noun}s"
    if not others["spend"]:
        return f"{count(rows)} other {word} without spend (revenue {money(others['revenue'])})."
    return (
        f"{count(rows)} other {word}: spend {money(others['spend'])}, revenue "
        f"{money(others['revenue'])}, ROAS {ratio(others['roas'])}."
    )


def group_so_what(groups: pd.DataFrame, noun: str, target: float) -> str:
    """The best and weakest groups by ROAS, their shares of spend, and how many miss the target
    (names are data: the caller shows the sentence as text)."""
    spent = groups[groups["spend"] > 0].sort_values(["roas", "group_name"], ascending=[False, True])
    if spent.empty:
        return "No ad set spent in the selected period."
    total = spent["spend"].sum()
    best, worst = spent.iloc[0], spent.iloc[-1]

    def named(row) -> str:
        name = "(not set)" if pd.isna(row["group_name"]) else row["group_name"]
        return (
            f"{name} at {ratio(row['roas'])} ({percent(row['spend'] / total)} of spend, "
            f"{plural(int(row['ad_sets']), 'ad set')})"
        )

    below = spent[spent["roas"] < target]
    text = f"Best {noun}: {named(best)}"
    if len(spent) > 1:
        text += f"; weakest: {named(worst)}"
    return text + (
        f". {count(len(below))} of {plural(len(spent), noun)} are below the {ratio(target)} "
        f"target, holding {percent(below['spend'].sum() / total)} of spend."
    )


def naive_so_what(
    moved: float,
    donors: int,
    recipients: int,
    uplift: float,
    low: float,
    high: float,
    plan_uplift: float | None,
) -> str:
    """The naive rule's one valuation, a day, on the plan's curves, beside the plan's uplift."""
    if moved <= 0 or not recipients:
        return "Nothing to move: the selection needs at least two ad sets with spend."
    text = (
        f"The naive rule moves {money(moved)} a day from the "
        f"{plural(donors, 'lowest-ROAS ad set')} to the {plural(recipients, 'highest-ROAS ad set')}"
        f": {signed_money(uplift)} expected revenue a day on the plan's curves (90% range "
        f"{signed_money(low)} to {signed_money(high)})"
    )
    if plan_uplift is None:
        return text + "."
    return text + f", against {signed_money(plan_uplift)} a day for the plan."
