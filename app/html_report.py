"""The presenter view as one self-contained HTML file: KPIs, charts with their "so what", the
data-quality summary and the model evidence. Plotly's JavaScript is embedded once, inline, so
the file opens offline for people who will not run anything."""

import argparse
import html
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from app import charts, evidence, narrative, queries
from app.budget_plan import (
    CURVES_CANNOT_SEE,
    ROLE_LABELS,
    SCENARIO_LABELS,
    below_recent_text,
    headline_text,
    plan_table,
    unplaced_text,
)
from app.freshness import freshness_html
from app.next_steps import build_facts, rule_based_actions
from app.overview import KPI_TILES, Filters, Overview, kpi_tiles, load_overview
from serving_contract import DATA_QUALITY, QUARANTINE, RESPONSE_CURVE_BACKTEST

DEFAULT_DAYS = 28
"""The default period: four full weeks, compared with the four weeks before."""
VERSION = "v1.0"


def footer_text(lm_studio_used: bool) -> str:
    """The page's last line, true to what made it: LM Studio is named only when it wrote the
    Next steps shown above (the report never calls it; the dashboard does when it answers)."""
    tools = "DuckDB + LM Studio" if lm_studio_used else "DuckDB"
    return f"Generated locally with {tools} | {VERSION}"


FOOTER = footer_text(lm_studio_used=False)
"""The report's footer: its Next steps are always rule-based."""

STYLE = """
body { font-family: "Source Sans Pro", Helvetica, Arial, sans-serif; color: #1F2933;
       max-width: 1100px; margin: 2rem auto; padding: 0 1.5rem; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #E4E7EB; }
.sub { color: #616E7C; margin-top: 0; }
.headline { font-size: 1.2rem; margin: 1rem 0; }
.plan { background: #EDF7EE; border-left: 4px solid #2E9E5B; padding: 0.6rem 0.9rem; }
.tiles { display: flex; gap: 1rem; flex-wrap: wrap; }
.tile { flex: 1; min-width: 150px; border: 1px solid #E4E7EB; border-radius: 8px;
        padding: 0.8rem 1rem; }
.tile .label { color: #616E7C; font-size: 0.9rem; } .tile .value { font-size: 1.7rem; }
.tile .delta { font-size: 0.9rem; color: #616E7C; }
.sowhat { background: #F5F7FA; border-left: 4px solid #4C78A8; padding: 0.6rem 0.9rem;
          margin: 0.4rem 0 1.4rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #E4E7EB; padding: 0.3rem 0.7rem; text-align: left; }
footer { margin-top: 3rem; color: #616E7C; font-size: 0.85rem; border-top: 1px solid #E4E7EB;
         padding-top: 0.8rem; }
body { overflow-wrap: anywhere; }
@media (max-width: 640px) {
  body { padding: 0 0.8rem; }
  table, thead, tbody, tr, th, td { display: block; }
  thead { position: absolute; left: -9999px; }
  tr { border: 1px solid #E4E7EB; border-radius: 8px; margin-bottom: 0.6rem; padding: 0.3rem 0; }
  td { border: none; padding: 0.15rem 0.7rem; }
  td::before { content: attr(data-label) ": "; color: #616E7C; }
  .tile { min-width: 120px; }
}
"""


def default_filters(source: queries.Source) -> Filters:
    """Every ad set over the latest four weeks in the data, with the default target and bands."""
    first, last = queries.date_bounds(source)
    start = max(first, last - timedelta(days=DEFAULT_DAYS - 1))
    return Filters(None, start, last)


class _Figures:
    """Embeds plotly.js with the first figure only: one copy of the library per file."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, figure: go.Figure) -> str:
        markup = figure.to_html(
            full_html=False, include_plotlyjs=self.first, config={"displaylogo": False}
        )
        self.first = False
        return markup


def _p(text: str, css: str = "") -> str:
    return f'<p class="{css}">{html.escape(text)}</p>'


def _cell(value) -> str:
    """A table cell's text: n/a for a missing value, floats to three decimals (the tables'
    money and ratios arrive as text from narrative.for_people), a midnight timestamp as its day."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "n/a"
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return f"{value:%Y-%m-%d}"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return str(value)


def _table(frame: pd.DataFrame) -> str:
    """A table whose cells carry their column's header (`data-label`), so that on a phone each
    row becomes a card of "header: value" lines (STYLE's media query) instead of a table wider
    than the screen. Headers and cells are escaped (names are data)."""
    headers = [html.escape(str(column)) for column in frame.columns]
    head = "".join(f"<th>{header}</th>" for header in headers)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{header}">{html.escape(_cell(value))}</td>'
            for header, value in zip(headers, row, strict=True)
        )
        + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


AD_SET_TABLE = {
    "ad_set_name": ("Ad set", "text"),
    "roas": ("ROAS", "ratio"),
    "spend": ("Spend", "money"),
    "revenue": ("Revenue", "money"),
}


def _delta(overview: Overview, name: str) -> str:
    """A tile's change on the previous period in words: `+5.2% vs previous period`, `unchanged
    on the previous period` when it rounds to zero, `no earlier period` when there is none."""
    change = narrative.change(overview.kpis.get(name), overview.previous.get(name))
    if change is None:
        return "no earlier period"
    shown = narrative.percent_change(change)
    if shown is None:
        return "unchanged on the previous period"
    return shown.replace("-", narrative.MINUS) + " vs previous period"


def _tiles(overview: Overview) -> str:
    cells = "".join(
        f'<div class="tile"><div class="label">{html.escape(tile["label"])}</div>'
        f'<div class="value">{html.escape(tile["value"])}</div>'
        f'<div class="delta">{html.escape(_delta(overview, name))}</div></div>'
        for tile, (_, name, _, _) in zip(kpi_tiles(overview), KPI_TILES, strict=True)
    )
    return f'<div class="tiles">{cells}</div>'


def build_report(path: Path, filters: Filters | None = None) -> str:
    """The whole report as one HTML string, its twenty-odd queries on one read-only connection
    (each connection costs about 15 ms)."""
    with queries.connect(path) as connection:
        return _report_html(connection, filters or default_filters(connection))


def _report_html(source: queries.Source, filters: Filters) -> str:
    overview = load_overview(queries.fetcher(source), filters)
    available = queries.tables(source)
    figure = _Figures()
    top, bottom = narrative.top_and_bottom(overview.by_ad_set)
    parts = [
        "<h1>Marketing performance</h1>",
        _p(
            f"{filters.start:%d %b %Y} – {filters.end:%d %b %Y} · "
            f"{overview.scope} · ROAS target "
            f"{narrative.ratio(filters.roas_target)}",
            "sub",
        ),
        *_plan_headline(overview),
        *freshness_html(None if overview.plan is None else overview.plan.summary, date.today()),
        _p(overview.headline, "headline"),
        _tiles(overview),
        "<h2>Spend and revenue</h2>",
        figure(charts.spend_revenue(overview.daily)),
        _p(overview.spend_revenue_so_what, "sowhat"),
        "<h2>ROAS by ad set</h2>",
        figure(charts.roas_by_ad_set(overview.by_ad_set, filters.roas_target, filters.roas_band)),
        _p(overview.roas_so_what, "sowhat"),
        "<h3>Top 5</h3>",
        _table(narrative.for_people(top, AD_SET_TABLE)),
        "<h3>Bottom 5</h3>",
        _table(narrative.for_people(bottom, AD_SET_TABLE)),
        "<h2>Pacing</h2>",
        figure(charts.pacing_mix(overview.pacing, filters.under, filters.over)),
        _p(overview.pacing_so_what, "sowhat"),
        *_plan_section(overview),
        "<h2>Next steps</h2>",
        _p(
            "Rule-based actions from the figures above (the report does not call LM Studio).", "sub"
        ),
        "<ul>"
        + "".join(
            f"<li>{html.escape(action)}</li>"
            for action in rule_based_actions(build_facts(overview))[:3]
        )
        + "</ul>",
        *_quality(source, available),
        *_models(source, available, figure),
        f"<footer>{FOOTER} · data as of {filters.end:%d %b %Y}</footer>",
    ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Marketing performance report</title>"
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


PLAN_TABLE = {
    "ad_set_name": ("Ad set", "text"),
    "campaign_name": ("Campaign", "text"),
    "role": ("Plan", "text"),
    "current_daily_budget": ("Budget today", "money"),
    "new_daily_budget": ("New budget", "money"),
    "budget_change": ("Change", "signed_money"),
    "ramp_days": ("Ramp (days)", "count"),
    "target_daily_budget": ("Target budget", "money"),
    "expected_revenue_recommended": ("Expected revenue", "money"),
    "expected_profit_recommended": ("Expected profit", "money"),
    "recent_revenue": ("Actual revenue/day", "money"),
    "marginal_roas_current": ("Marginal ROAS now", "ratio"),
    "marginal_roas_recommended": ("Marginal ROAS after", "ratio"),
    "reason": ("Why", "text"),
}
"""The report's plan table: the dashboard's What-if columns, formatted by app.narrative."""


def _plan_headline(overview: Overview) -> list[str]:
    """The plan's answer first, as on the dashboard."""
    if overview.plan is None or not overview.plan.headline:
        return []
    return [_p(headline_text(overview.plan), "headline plan")]


def period_sentence(summary: dict) -> str:
    """The plan's period totals (" " + a sentence; "" for a one-day plan or an older plan)."""
    days = summary.get("period_days")
    uplift = summary.get("period_uplift")
    if not days or days <= 1 or uplift is None or pd.isna(uplift):
        return ""
    return (
        f" Over the next {int(days)} days: {narrative.signed_money(uplift)} expected revenue "
        f"(90% range {narrative.signed_money(summary.get('period_uplift_low'))} to "
        f"{narrative.signed_money(summary.get('period_uplift_high'))}) and "
        f"{narrative.signed_money(summary.get('period_profit_uplift'))} profit on "
        f"{narrative.money(summary.get('period_spend'))} spend, ramps and weekdays included."
    )


def _plan_section(overview: Overview) -> list[str]:
    """The published plan's ad sets that move (donors and recipients, biggest first), then how
    many keep their budget and why."""
    plan = overview.plan
    if plan is None:
        return ["<h2>Budget plan</h2>", _p("Not available yet: run make run.")]
    summary = plan.summary
    table = plan_table(plan.ad_sets)
    moving = table[table["role"].isin([ROLE_LABELS["donor"], ROLE_LABELS["recipient"]])]
    kept = len(table) - len(moving)
    day = plan.plan_date
    parts = [
        f"<h2>Budget plan{f' from {day:%a %d %b %Y}' if day else ''}</h2>",
        _p(
            f"Scenario {SCENARIO_LABELS.get(summary.get('scenario'), summary.get('scenario'))}: "
            f"expected revenue {narrative.money(summary.get('revenue_recommended'))} a day "
            f"against {narrative.money(summary.get('revenue_current'))} at today's budgets "
            f"(uplift {narrative.signed_money(summary.get('uplift'))}, 90% range "
            f"{narrative.signed_money(summary.get('uplift_low'))} to "
            f"{narrative.signed_money(summary.get('uplift_high'))}; profit "
            f"{narrative.signed_money(summary.get('profit_uplift'))} at a "
            f"{narrative.percent(summary.get('margin'))} margin); every budget not at a bound "
            f"ends at a marginal ROAS of {narrative.ratio(summary.get('marginal_roas'))}."
            f"{period_sentence(summary)}",
            "sowhat",
        ),
    ]
    if note := unplaced_text(summary):
        parts.append(_p(note, "sowhat"))
    if len(moving):
        parts.append(_table(narrative.for_people(moving, PLAN_TABLE)))
    parts.append(
        _p(
            f"{narrative.plural(kept, 'other ad set')} keep today's budget (capped by delivery, "
            "fixed, or already at the plan's marginal ROAS).",
            "sub",
        )
    )
    if note := below_recent_text(plan.ad_sets):
        parts.append(_p(note, "sowhat"))
    parts.append(_p(CURVES_CANNOT_SEE, "sub"))
    return parts


def _quality(source: queries.Source, available: frozenset[str]) -> list[str]:
    if DATA_QUALITY not in available:
        return ["<h2>Data quality</h2>", _p("Not available yet: run make run.")]
    rules = queries.quality_rules(source)
    quarantine = (
        queries.quarantine_counts(source)
        if QUARANTINE in available
        else pd.DataFrame(columns=["reason", "source_file", "rows"])
    )
    accounting = queries.row_accounting(source)
    flagged = rules[rules["status"] != "pass"]
    flagged_columns = {
        name: evidence.RULE_COLUMNS[name] for name in ("rule", "action", "rows_affected", "status")
    }
    return [
        "<h2>Data quality</h2>",
        _p(narrative.quality_so_what(rules, quarantine, accounting), "sowhat"),
        _table(narrative.for_people(flagged, flagged_columns)) if len(flagged) else "",
        _table(narrative.for_people(accounting, evidence.ACCOUNTING_COLUMNS)),
    ]


def _models(source: queries.Source, available: frozenset[str], figure: _Figures) -> list[str]:
    parts = ["<h2>Model evidence</h2>", "<h3>Response curves (the budget plan's)</h3>"]
    if RESPONSE_CURVE_BACKTEST in available:
        found = evidence.curve_backtest(queries.response_curve_backtest(source))
        parts.append(_p(found["verdict"], "sowhat"))
        if len(found["folds"]):
            parts.append(_table(found["folds"]))
    else:
        parts.append(_p("Backtest of the response curves: not available yet: run make run."))
    for table, title in evidence.MODEL_TABLES.items():
        if table not in available:
            parts.append(_p(f"{title}: not available yet: run make run."))
            continue
        card = queries.model_card(source, table)
        parts += [
            f"<h3>{html.escape(title)}</h3>",
            _p(card.get("predicts") or ""),
            _table(evidence.windows(card)),
            _p(narrative.model_so_what(card), "sowhat"),
            _table(evidence.scores_table(evidence.validation(card))),
            _p(evidence.drift(card)["verdict"], "sowhat"),
            _p(evidence.drift(card)["note"], "sub"),
        ]
        if card.get("reliability"):
            parts.append(figure(charts.reliability(card["reliability"])))
    return parts


def write_report(serving: Path, target: Path) -> Path:
    """Write the report next to the serving file, atomically (a reader never sees half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(build_report(serving), encoding="utf-8")
    staging.replace(target)
    return target


def main(arguments: list[str] | None = None) -> None:
    """`python -m app.html_report SERVING TARGET`: how the pipeline's report asset runs it (in its
    own process, so the pipeline never imports the dashboard package)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("serving", type=Path, help="the serving file to read")
    parser.add_argument("target", type=Path, help="the HTML file to write")
    options = parser.parse_args(arguments)
    print(write_report(options.serving, options.target))


if __name__ == "__main__":
    main()
