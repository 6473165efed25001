"""Marketing performance dashboard: `streamlit run app/dashboard.py` (or `make app`).

A thin UI: numbers come from app.queries (SQL pushed down to the serving file, cached per file
version), sentences from app.narrative, actions from app.next_steps, the budget plan from
app.budget_plan (re-planned with `planning`), the naive comparison from app.whatif.
"""

import gc
import json
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, evidence, narrative, next_steps, queries, whatif
from app.budget_plan import (
    CURVES_CANNOT_SEE,
    ROLE_LABELS,
    SCENARIO_LABELS,
    Curves,
    PublishedPlan,
    Replan,
    below_recent_text,
    curve_points,
    default_curves,
    headline_text,
    load_curves,
    naive_value,
    plan_csv,
    plan_table,
    replan,
    unplaced_text,
    weekday_text,
)
from app.freshness import freshness_notes
from app.html_report import DEFAULT_DAYS, build_report, footer_text
from app.overview import (
    KPI_TILES,
    OVER_PACING,
    RANK_BY,
    ROAS_BAND,
    ROAS_TARGET,
    UNDER_PACING,
    Filters,
    Overview,
    Ranking,
    kpi_tiles,
    load_overview,
    rank,
)
from app.text import markdown_code, markdown_text
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
from serving_contract import (
    AUDIENCE_SEGMENTS,
    CONVERSION_MODEL,
    DAILY_METRICS,
    DATA_QUALITY,
    PACING_RISK_MODEL,
    QUARANTINE,
    RESPONSE_CURVE_BACKTEST,
    RESPONSE_CURVES,
    ROW_ACCOUNTING,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
)

NOT_AVAILABLE = "Not available yet: run `make run` to build it."
PLOTLY_CONFIG = {"displaylogo": False}


@st.cache_data(show_spinner=False, max_entries=512)
def load(name: str, path: str, stamp: tuple[int, int], *arguments):
    """A query's result, cached per serving-file version: `stamp` changes with every publish."""
    return getattr(queries, name)(Path(path), *arguments)


@dataclass(frozen=True)
class Serving:
    """What every run needs from one serving-file version before its filters: the tables, the
    ad sets (id, latest name), the first and last day, and the plan the last run published (the
    one plan the Overview's headline, the Forecasts' actions, Next steps and the What-if's
    starting point all quote). No ad sets, days or plan without the daily metrics."""

    tables: frozenset[str]
    ad_sets: pd.DataFrame | None = None
    bounds: tuple[date, date] | None = None
    plan: PublishedPlan | None = None


@st.cache_resource(show_spinner=False, max_entries=4)
def serving_file(path: str, stamp: tuple[int, int]) -> Serving:
    """Read on one connection once per serving-file version (`stamp`) and shared as is, not
    copied per rerun (nothing changes it)."""
    with queries.connected_fetcher(Path(path)) as fetch:
        available = fetch("tables")
        if DAILY_METRICS not in available:
            return Serving(available)
        return Serving(
            available,
            fetch("ad_sets"),
            fetch("date_bounds"),
            PublishedPlan.from_tables(fetch("published_plan")),
        )


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs={Filters: repr})
def cached_overview(path: str, stamp: tuple[int, int], filters: Filters, ad_sets: int) -> Overview:
    """The Overview's queries for one filter state on one connection (opening one costs ~15 ms),
    cached under the filters' repr: Streamlit's own hashing takes ~10 ms over 2,000 ad set ids."""
    with queries.connected_fetcher(Path(path)) as fetch:
        return load_overview(fetch, filters, with_plan=False, ad_sets_in_file=ad_sets)


def overview_for(
    path: Path, stamp: tuple[int, int], filters: Filters, serving: Serving
) -> Overview:
    """The Overview for `filters`, its queries cached without the ROAS target and band (no
    query reads them: changing them re-words the page without querying again)."""
    queried = replace(filters, roas_target=ROAS_TARGET, roas_band=ROAS_BAND)
    overview = cached_overview(str(path), stamp, queried, len(serving.ad_sets))
    return replace(overview, filters=filters, plan=serving.plan)


@st.cache_resource(show_spinner=False)
def freeze_startup_objects() -> None:
    """Once per process, after the imports: move every object alive now (modules, classes,
    functions of pandas, plotly, DuckDB) out of the garbage collector's reach. Streamlit runs a
    full collection after every script run; it took 50-70 ms here, most of it walking these."""
    gc.freeze()


def published_plan(path: str, stamp: tuple[int, int]) -> PublishedPlan | None:
    """The plan the last run published (`Serving.plan`): one shared object per file version."""
    return serving_file(path, stamp).plan


@st.cache_data(show_spinner=False, max_entries=8)
def all_forecasts(
    path: str,
    stamp: tuple[int, int],
    available: frozenset[str],
    _ad_sets: pd.DataFrame,
    _published: PublishedPlan | None,
) -> pd.DataFrame | None:
    """Every ad set's latest scores, name and suggested action, most urgent first; built once
    per publish, so a filter change only picks rows. None without scored tables. `_ad_sets`
    (not hashed) is the sidebar's list and `_published` the published plan, both fixed by
    `stamp` like everything else here. The action comes from the ad set's row of that plan and
    its forecasts (`narrative.forecast_action`), so it tells the plan's story."""
    with queries.connected_fetcher(Path(path)) as fetch:
        frames = [fetch("latest_scores", table) for table in queries.SCORES if table in available]
    if not frames:
        return None
    names = _ad_sets.set_index("ad_set_id")["ad_set_name"]
    forecasts = frames[0]
    for frame in frames[1:]:
        forecasts = forecasts.merge(frame, on=["ad_set_id", "date"], how="outer")
    for column in ("under_pacing_risk", "roas_on_target_prob", "roas_target"):
        if column not in forecasts:
            forecasts[column] = None
    forecasts["ad_set_name"] = forecasts["ad_set_id"].map(names)
    plan_rows = _published.rows_by_id() if _published is not None else {}
    forecasts["action"] = [
        narrative.forecast_action(plan_rows.get(ad_set_id), risk, probability)
        + narrative.shift_note(plan_rows.get(ad_set_id))
        for ad_set_id, risk, probability in zip(
            forecasts["ad_set_id"],
            forecasts["under_pacing_risk"],
            forecasts["roas_on_target_prob"],
            strict=True,
        )
    ]
    roles = {ad_set_id: row["role"] for ad_set_id, row in plan_rows.items()}
    forecasts["plan_role"] = forecasts["ad_set_id"].map(roles).map(ROLE_LABELS)
    return forecasts.sort_values(
        ["under_pacing_risk", "roas_on_target_prob"], ascending=[False, True], na_position="last"
    )


@st.cache_resource(show_spinner=False)
def lm_requests() -> next_steps.Requests:
    """LM Studio's answers for the whole process: one question per serving file and filter
    state, asked in a background thread (futures and small results, never a connection)."""
    return next_steps.Requests()


# How long a render waits for LM Studio before showing the rule-based actions: enough for
# "offline" (a refused connection answers at once), never a model's answer. (Comments, not
# docstrings: Streamlit prints a bare string literal on the page.)
LM_GRACE_SECONDS = 0.25
# While a question is pending, the Next steps panel reruns on its own this often.
LM_POLL_SECONDS = 2.0


def not_built_page(path: Path) -> None:
    st.title("The lakehouse has not been built yet")
    st.markdown(
        f"This dashboard reads **{markdown_code(path)}**, which the `publish` step writes at the "
        "end of a successful pipeline run. Build it from the repository root with:"
    )
    st.code("make run", language="bash")
    st.caption(
        "Point MARKETING_ML_SERVING_DB at another file to read a different build. "
        "This page refreshes by itself once the file exists: just reload."
    )
    footer()


def footer(steps: next_steps.NextSteps | None = None) -> None:
    """The page's last element, in a keyed container (`.st-key-page_end`): a browser probe that
    sees it, with no script running, has the whole page. It names LM Studio only when LM Studio
    wrote the Next steps on the page (`steps`)."""
    st.divider()
    with st.container(key="page_end"):
        st.caption(footer_text(steps is not None and steps.from_lm))


def default_range(first: date, last: date) -> tuple[date, date]:
    return max(first, last - timedelta(days=DEFAULT_DAYS - 1)), last


# The ROAS chart's rows: ad sets, or portfolio groups of them (app.queries.GROUPINGS), as the
# noun its title and sentences use. (Comments, not docstrings: Streamlit prints a bare string
# literal on the page.)
GROUPINGS = {
    "ad_set": "ad set",
    "audience": "audience",
    "lookalike_source": "lookalike source",
    "age_band": "age band",
}
RANK_SIZES = (5, 10, 20)
# The Overview's ROAS view: by ad set, the 10 highest and 10 lowest ROAS, the rest pooled.
VIEW_DEFAULTS = {"group_by": "ad_set", "rank_by": "roas", "rank_size": 10}


def groupings(available: frozenset[str]) -> list[str]:
    """The group-bys this serving file can answer (audience needs its audience segments)."""
    return [key for key in GROUPINGS if key != "audience" or AUDIENCE_SEGMENTS in available]


def init_state(ad_set_ids: list[str], first: date, last: date, groups: list[str]) -> None:
    """Defaults on first load (no ad set chosen: every ad set); drop values a new publish made
    invalid (a removed ad set, dates outside the data, a grouping it cannot answer) so a widget
    never fails on stale state."""
    state = st.session_state
    if state.get("ad_sets"):
        known = set(ad_set_ids)
        state["ad_sets"] = [ad_set for ad_set in state["ad_sets"] if ad_set in known]
    else:
        state["ad_sets"] = []
    chosen = state.get("date_range")
    if not chosen or any(not first <= day <= last for day in chosen):
        state["date_range"] = default_range(first, last)
    state.setdefault("roas_target", ROAS_TARGET)
    state.setdefault("roas_band", ROAS_BAND)
    state.setdefault("pacing_bands", (UNDER_PACING, OVER_PACING))
    for key, value in VIEW_DEFAULTS.items():
        state.setdefault(key, value)
    if state["group_by"] not in groups:
        state["group_by"] = VIEW_DEFAULTS["group_by"]


def select_all() -> None:
    """Every ad set: an empty choice, which the queries read as no ad-set condition at all."""
    st.session_state["ad_sets"] = []


def reset_filters(first: date, last: date) -> None:
    st.session_state["ad_sets"] = []
    st.session_state["date_range"] = default_range(first, last)
    st.session_state["roas_target"] = ROAS_TARGET
    st.session_state["roas_band"] = ROAS_BAND
    st.session_state["pacing_bands"] = (UNDER_PACING, OVER_PACING)
    st.session_state.update(VIEW_DEFAULTS)


def sidebar_filters(ad_sets: pd.DataFrame, first: date, last: date) -> Filters:
    ids = list(ad_sets["ad_set_id"])
    labels = {
        ad_set: name if name == ad_set else f"{name} ({ad_set})"
        for ad_set, name in zip(ad_sets["ad_set_id"], ad_sets["ad_set_name"], strict=True)
    }
    sidebar = st.sidebar
    sidebar.header("Filters")
    chosen = sidebar.multiselect(
        "Ad sets",
        ids,
        key="ad_sets",
        format_func=lambda ad_set: labels.get(ad_set, ad_set),
        placeholder=f"All {len(ids):,} ad sets: type to choose",
        select_all=False,  # Enter adds the first match, never thousands of chips at once
        persist_state="session",
        help="Nothing chosen means every ad set. Type part of a name or an id to choose some.",
    )
    sidebar.caption(
        f"Showing {narrative.plural(len(chosen), 'chosen ad set')} of {len(ids):,}."
        if chosen
        else f"Showing all {narrative.plural(len(ids), 'ad set')}."
    )
    left, right = sidebar.columns(2)
    left.button("Select all", key="select_all", on_click=select_all, width="stretch")
    right.button(
        "Reset",
        key="reset_filters",
        on_click=reset_filters,
        args=(first, last),
        width="stretch",
    )
    sidebar.date_input(
        "Date range",
        key="date_range",
        min_value=first,
        max_value=last,
        format="DD/MM/YYYY",
        persist_state="session",
    )
    sidebar.header("Targets")
    sidebar.number_input(
        "ROAS target (×)",
        min_value=0.1,
        max_value=50.0,
        step=0.1,
        format="%.2f",
        key="roas_target",
        persist_state="session",
    )
    sidebar.number_input(
        "Band around the target (±×)",
        min_value=0.0,
        max_value=10.0,
        step=0.1,
        format="%.2f",
        key="roas_band",
        persist_state="session",
    )
    sidebar.slider(
        "Pacing bands (budget utilization)",
        min_value=0.5,
        max_value=1.5,
        step=0.01,
        key="pacing_bands",
        persist_state="session",
        help="Under-pacing below the lower bound, over-pacing above the upper one.",
    )
    return current_filters(first, last)


def current_filters(first: date, last: date) -> Filters:
    """The filter state, read from session state (also when presenter mode hides the widgets)."""
    state = st.session_state
    chosen = tuple(state["date_range"])
    start, end = (chosen[0], chosen[-1]) if chosen else default_range(first, last)
    under, over = state["pacing_bands"]
    return Filters(
        ad_set_ids=tuple(state["ad_sets"]) or None,
        start=start,
        end=end,
        roas_target=float(state["roas_target"]),
        roas_band=float(state["roas_band"]),
        under=float(under),
        over=float(over),
    )


def kpi_deltas(overview: Overview) -> list[str | None]:
    """Each tile's change on the previous period, None when there is none or it rounds to zero
    (st.metric then shows no arrow rather than "↓ -0.0%")."""
    return [
        narrative.percent_change(
            narrative.change(overview.kpis.get(name), overview.previous.get(name))
        )
        for _, name, _, _ in KPI_TILES
    ]


def kpi_row(overview: Overview) -> None:
    tiles = kpi_tiles(overview)
    formatters = [formatter for _, _, formatter, _ in KPI_TILES]
    for column, tile, delta, formatter in zip(
        st.columns(len(tiles)), tiles, kpi_deltas(overview), formatters, strict=True
    ):
        previous = tile["previous"]
        column.metric(
            tile["label"],
            tile["value"],
            delta,
            delta_color=tile["delta_color"],
            border=True,
            help=f"Previous {overview.days} days: {formatter(previous)}"
            if previous
            else "No data in the previous period of equal length.",
        )


def so_what(text: str) -> None:
    """A sentence computed from the data: it quotes ad-set names, so it is shown as text."""
    st.info(markdown_text(text), icon=":material/lightbulb:")


@dataclass(frozen=True)
class RoasView:
    """The ROAS chart's rows for the Overview's group-by and ranking: ad sets or groups, the
    column that names them, the ranking and its "so what"."""

    noun: str
    name: str
    ranking: Ranking
    so_what: str


def roas_view(overview: Overview, fetch, grouping: str, by: str, size: int) -> RoasView:
    """Ad sets come with the Overview; groups are summed in DuckDB (`roas_by_group`)."""
    noun = GROUPINGS[grouping]
    if grouping == "ad_set":
        ranking = rank(overview.by_ad_set, size, by, "ad_set_id")
        return RoasView(noun, "ad_set_name", ranking, overview.roas_so_what)
    filters = overview.filters
    frame = fetch("roas_by_group", grouping, filters.ad_set_ids, filters.start, filters.end)
    frame = frame.assign(group_name=frame["group_name"].fillna("(not set)"))
    return RoasView(
        noun,
        "group_name",
        rank(frame, size, by, "group_name"),
        narrative.group_so_what(frame, noun, filters.roas_target),
    )


def roas_view_controls(groups: list[str]) -> None:
    """Group-by, ranking and how many rows at each end: kept for the session (presenter mode
    shows the chart as chosen here)."""
    left, middle, right = st.columns([4, 2, 2])
    left.segmented_control(
        "Group by",
        groups,
        format_func=lambda key: GROUPINGS[key].capitalize(),
        required=True,
        key="group_by",
        persist_state="session",
    )
    middle.segmented_control(
        "Rank by",
        list(RANK_BY),
        format_func=lambda by: RANK_BY[by][:1].upper() + RANK_BY[by][1:],
        required=True,
        key="rank_by",
        persist_state="session",
    )
    right.segmented_control(
        "Top and bottom",
        RANK_SIZES,
        required=True,
        key="rank_size",
        persist_state="session",
        help="How many rows to show at each end; the rest are pooled into one.",
    )


def spend_revenue_chart(overview: Overview) -> None:
    st.plotly_chart(charts.spend_revenue(overview.daily), config=PLOTLY_CONFIG)
    so_what(overview.spend_revenue_so_what)


def roas_chart(overview: Overview, fetch) -> RoasView:
    """The ROAS chart as the session's group-by and ranking ask, and its "so what"."""
    filters, state = overview.filters, st.session_state
    view = roas_view(overview, fetch, state["group_by"], state["rank_by"], int(state["rank_size"]))
    st.plotly_chart(
        charts.roas_ranking(
            view.ranking, filters.roas_target, filters.roas_band, view.noun, view.name
        ),
        config=PLOTLY_CONFIG,
    )
    so_what(view.so_what)
    return view


def pacing_chart(overview: Overview) -> None:
    st.plotly_chart(
        charts.pacing_mix(overview.pacing, overview.filters.under, overview.filters.over),
        config=PLOTLY_CONFIG,
    )
    so_what(overview.pacing_so_what)


AD_SET_COLUMNS = {
    "ad_set_name": st.column_config.TextColumn("Ad set"),
    "roas": st.column_config.NumberColumn("ROAS", format="%.2f×"),
    "spend": st.column_config.NumberColumn("Spend", format="£%,.0f"),
    "revenue": st.column_config.NumberColumn("Revenue", format="£%,.0f"),
}


def ranking_columns(view: RoasView) -> dict:
    if view.name == "ad_set_name":
        return AD_SET_COLUMNS
    return {
        "group_name": st.column_config.TextColumn(view.noun.capitalize()),
        "ad_sets": st.column_config.NumberColumn("Ad sets", format="%,d"),
        **{key: column for key, column in AD_SET_COLUMNS.items() if key != "ad_set_name"},
    }


def ranking_tables(view: RoasView) -> None:
    """The chart's rows with their spend and revenue, and the pooled rest in one sentence."""
    ranking, columns = view.ranking, ranking_columns(view)
    by = RANK_BY[ranking.by]
    if ranking.bottom.empty:
        st.markdown(f"**{narrative.plural(len(ranking.top), view.noun).capitalize()} by {by}**")
        st.dataframe(ranking.top[list(columns)], column_config=columns, hide_index=True)
    else:
        left, right = st.columns(2)
        left.markdown(f"**Top {len(ranking.top)} by {by}**")
        left.dataframe(ranking.top[list(columns)], column_config=columns, hide_index=True)
        right.markdown(f"**Bottom {len(ranking.bottom)} by {by}**")
        right.dataframe(
            ranking.bottom.iloc[::-1][list(columns)], column_config=columns, hide_index=True
        )
    if others := narrative.others_text(ranking.others, view.noun):
        st.caption(others)


@st.fragment
def roas_section(overview: Overview, fetch, groups: list[str]) -> None:
    """A fragment: a group-by, ranking or size change reruns this section alone (its query, or
    none for ad sets), not the Overview's queries and charts around it."""
    roas_view_controls(groups)
    ranking_tables(roas_chart(overview, fetch))


def overview_tab(overview: Overview, fetch, groups: list[str]) -> None:
    kpi_row(overview)
    spend_revenue_chart(overview)
    roas_section(overview, fetch, groups)
    pacing_chart(overview)


# Each scored table's caption names the model that wrote it: older models say so. (A comment:
# Streamlit prints a bare string literal on the page.)
SCORE_LABELS = {
    SCORED_ADSETS: "Under-pacing risk",
    SCORED_CONVERSIONS: "ROAS on target",
}


# The model behind each scored table, and the score column it writes.
SCORING_MODELS = {
    SCORED_ADSETS: (PACING_RISK_MODEL, "under_pacing_risk"),
    SCORED_CONVERSIONS: (CONVERSION_MODEL, "roas_on_target_prob"),
}


def untrained_models(fetch, available: frozenset[str]) -> dict[str, str]:
    """Scored table → its model's status, for models too young to train ("not trained: …") and
    for labels nearly all one class ("uninformative: …", every ad set scored with the base rate:
    a column of one figure would read as a forecast per ad set, "100% risk")."""
    statuses = {}
    for table, (model_table, _) in SCORING_MODELS.items():
        status = (
            fetch("model_card", model_table).get("status") if model_table in available else None
        )
        if isinstance(status, str) and status.startswith(("not trained", "uninformative")):
            statuses[table] = status
    return statuses


def untrained_message(table: str, status: str) -> str:
    """Why a scored table's column is hidden, in words."""
    if status.startswith("uninformative: "):
        return (
            f"{SCORE_LABELS[table]}: no forecast per ad set. "
            f"{status.removeprefix('uninformative: ')}."
        )
    return (
        f"{SCORE_LABELS[table]} model {status}. Its forecasts appear after the weekly retrain "
        "once there is that much history."
    )


def forecasts_tab(
    every_forecast: pd.DataFrame | None, fetch, available: frozenset[str], filters: Filters
) -> None:
    if every_forecast is None:
        st.warning(f"Forecasts: {NOT_AVAILABLE}")
        return
    untrained = untrained_models(fetch, available)
    for table, status in untrained.items():
        st.info(markdown_text(untrained_message(table, status)), icon=":material/hourglass_empty:")
    scored = [table for table in SCORE_LABELS if table in available and table not in untrained]
    if not scored:
        return
    hidden = [SCORING_MODELS[table][1] for table in untrained]
    forecasts = (
        every_forecast
        if filters.ad_set_ids is None
        else every_forecast[every_forecast["ad_set_id"].isin(filters.ad_set_ids)]
    ).assign(**dict.fromkeys(hidden, float("nan")))
    model_target = (
        forecasts["roas_target"].dropna() if SCORED_CONVERSIONS in scored else pd.Series()
    )
    target = float(model_target.iloc[0]) if len(model_target) else None
    so_what(narrative.forecast_so_what(forecasts, target))
    if "plan_role" in forecasts and forecasts["plan_role"].notna().any():
        st.caption(
            "Suggested actions follow tomorrow's published budget plan (What-if tab) and these "
            "forecasts: an ad set likely to under-pace is told to check delivery, never to get "
            "more budget."
        )
    for table in scored:
        if provenance := fetch("score_provenance", table):
            st.caption(
                f"{SCORE_LABELS[table]}: model "
                f"{markdown_text(evidence.version_text(provenance['model_version']))}, "
                f"trained on data through {pd.Timestamp(provenance['trained_through']):%d %b %Y}; scores for "
                f"{pd.Timestamp(provenance['scored_date']):%d %b %Y}."
            )
    if target is not None and abs(target - filters.roas_target) > 1e-9:
        st.caption(
            f"The conversion model was trained for a {narrative.ratio(target)} target; the "
            f"sidebar target ({narrative.ratio(filters.roas_target)}) does not change its scores."
        )
    shown = forecasts[
        ["ad_set_name", "plan_role", "under_pacing_risk", "roas_on_target_prob", "action"]
    ]
    st.dataframe(
        shown.assign(  # whole percents: calibrated steps do not carry two decimals of meaning
            under_pacing_risk=(100 * shown["under_pacing_risk"]).round(),
            roas_on_target_prob=(100 * shown["roas_on_target_prob"]).round(),
        ).drop(columns=hidden),
        hide_index=True,
        width="stretch",
        column_config={
            "ad_set_name": st.column_config.TextColumn("Ad set"),
            "plan_role": st.column_config.TextColumn("Budget plan"),
            # red for bad news: a high risk of under-pacing is bad, a high chance of reaching
            # the ROAS target is good (green)
            "under_pacing_risk": st.column_config.ProgressColumn(
                "Risk tomorrow",
                help="The chance the ad set under-paces tomorrow (spends well under its budget).",
                format="%d%%",
                min_value=0,
                max_value=100,
                color="auto-inverse",
            ),
            "roas_on_target_prob": st.column_config.ProgressColumn(
                "On target, 7 days",
                help="The chance the ad set's ROAS over the next 7 days reaches the target.",
                format="%d%%",
                min_value=0,
                max_value=100,
                color="auto",
            ),
            "action": st.column_config.TextColumn("Suggested action", width="large"),
        },
    )


# Streamlit's printf formats for the kinds of figure in app.narrative.FORMATS.
NUMBER_FORMATS = {
    "money": "£%,.0f",
    "ratio": "%.2f×",
    "count": "%,d",
    "number": "%,.3f",
    "percent": "percent",
}


def people_columns(columns: dict[str, tuple[str, str]]) -> dict:
    """A st.dataframe column_config from (header, kind) per column: headers in words, numbers
    with thousands separators, £ and × (the numbers stay numbers, so columns still sort)."""
    config = {}
    for name, (header, kind) in columns.items():
        if kind in NUMBER_FORMATS:
            config[name] = st.column_config.NumberColumn(header, format=NUMBER_FORMATS[kind])
        elif kind == "yes/no":
            config[name] = st.column_config.CheckboxColumn(header)
        else:
            config[name] = st.column_config.TextColumn(header)
    return config


def people_table(container, frame: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> None:
    container.dataframe(
        frame[[name for name in columns if name in frame]],
        hide_index=True,
        column_config=people_columns(columns),
    )


def quality_tab(fetch, available: frozenset[str]) -> None:
    if DATA_QUALITY not in available:
        st.warning(f"Data quality report: {NOT_AVAILABLE}")
        return
    rules = fetch("quality_rules")
    quarantine = (
        fetch("quarantine_counts")
        if QUARANTINE in available
        else (pd.DataFrame(columns=["reason", "source_file", "rows"]))
    )
    accounting = (
        fetch("row_accounting")
        if ROW_ACCOUNTING in available
        else (pd.DataFrame(columns=["source_file", "balanced"]))
    )
    so_what(narrative.quality_so_what(rules, quarantine, accounting))
    st.subheader("Rules")
    people_table(st, rules, evidence.RULE_COLUMNS)
    left, right = st.columns(2)
    left.subheader("Quarantined rows by reason and file")
    people_table(left, quarantine, evidence.QUARANTINE_COLUMNS)
    right.subheader("Row accounting per file")
    people_table(right, accounting, evidence.ACCOUNTING_COLUMNS)


def drift_verdict(container, card: dict) -> None:
    """The drift verdict beside the scores: a sentence, what is left out and why, the features
    with the highest PSI."""
    drift = evidence.drift(card)
    container.markdown("**Feature drift**")
    (container.success if drift["passed"] else container.warning)(
        markdown_text(drift["verdict"]),
        icon=":material/check_circle:" if drift["passed"] else ":material/warning:",
    )
    container.caption(markdown_text(drift["note"]))
    container.caption(markdown_text(evidence.PSI_TEXT.format(limit=evidence.DRIFT_LIMIT)))
    if len(drift["table"]):
        people_table(container, drift["table"].head(5), evidence.DRIFT_COLUMNS)


def curves_section(fetch, available: frozenset[str]) -> None:
    """How well the response curves the budget plan rests on predicted weeks they had not seen."""
    st.subheader("Response curves (the budget plan's)")
    if RESPONSE_CURVE_BACKTEST not in available:
        st.warning(NOT_AVAILABLE)
        return
    found = evidence.curve_backtest(fetch("response_curve_backtest"))
    so_what(found["verdict"])
    st.caption(markdown_text(CURVES_CANNOT_SEE))
    if len(found["folds"]):
        st.markdown("**Walk-forward backtest of the curves**")
        st.dataframe(found["folds"], hide_index=True)
        st.markdown(
            "**Latest period per ad set: expected vs actual revenue (biggest misses first)**"
        )
        people_table(st, found["latest"], evidence.CURVE_BACKTEST_COLUMNS)


def models_tab(fetch, available: frozenset[str]) -> None:
    curves_section(fetch, available)
    st.divider()
    for table, title in evidence.MODEL_TABLES.items():
        st.subheader(title)
        if table not in available:
            st.warning(NOT_AVAILABLE)
            continue
        card = fetch("model_card", table)
        st.markdown(
            f"{markdown_text(card.get('predicts') or '')}  \n"
            f"{markdown_text(evidence.model_intro(card))}"
        )
        so_what(narrative.model_so_what(card))
        if str(card.get("status") or "").startswith("uninformative"):
            label = (card.get("metrics") or {}).get("label") or {}
            share, rows = label.get("min_minority_share", 0.02), label.get("min_minority_rows", 50)
            st.caption(
                f"A label nearly all one class (the rarer outcome under {share:.0%} of days, or "
                f"fewer than {rows} days) leaves a model nothing to learn: no model is fitted, "
                "and every ad set gets the base rate."
            )
            st.divider()
            continue
        left, middle, right = st.columns([2, 3, 3])
        left.markdown("**Windows**")
        left.dataframe(evidence.windows(card), hide_index=True)
        middle.markdown("**Validation scores beside the baselines**")
        middle.dataframe(evidence.scores_table(evidence.validation(card)), hide_index=True)
        heuristic = (card.get("metrics") or {}).get("heuristic") or "n/a"
        middle.caption(markdown_text(evidence.GLOSSARY.format(heuristic=heuristic)))
        drift_verdict(right, card)
        left, right = st.columns(2)
        if card.get("reliability"):
            left.plotly_chart(charts.reliability(card["reliability"]), config=PLOTLY_CONFIG)
        if card.get("importances"):
            right.plotly_chart(charts.importances(card["importances"]), config=PLOTLY_CONFIG)
        st.markdown("**Walk-forward backtest**")
        st.dataframe(evidence.backtest_table(card), hide_index=True)
        if len(evidence.drift(card)["table"]) > 5:
            with st.expander("Every feature's drift (PSI, training vs latest 28 days)"):
                people_table(st, evidence.drift(card)["table"], evidence.DRIFT_COLUMNS)
        st.divider()


@st.cache_resource(show_spinner=False, max_entries=4)
def served_curves(path: str, stamp: tuple[int, int]) -> Curves | None:
    """The response curves, their bootstrap draws as matrices and the published plan's capacity
    and settings, read once per serving-file version. Plain data, no connection: a resource, so
    the 2,000 × 200 × 3 draws are not copied on every rerun as st.cache_data would."""
    with queries.connected_fetcher(Path(path)) as fetch:
        if RESPONSE_CURVES not in fetch("tables"):
            return None
        frame, draws = fetch("response_curve_draws")
    return load_curves(frame, published_plan(path, stamp), draws)


@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs={PlanSettings: repr})
def replanned(
    path: str, stamp: tuple[int, int], settings: PlanSettings
) -> tuple[Replan, pd.DataFrame]:
    """The What-if's plan for `settings` and its table, kept for the last few settings: a rerun
    that changes something else (a filter, the naive rule's sliders) does not re-plan."""
    result = replan(served_curves(path, stamp), settings)
    table = plan_table(result.ad_sets)
    return result, table.assign(budget_change=table["budget_change"].map(narrative.signed_pounds))


@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs={PlanSettings: repr})
def curves_figure(
    path: str, stamp: tuple[int, int], settings: PlanSettings, chosen: tuple[str, ...]
):
    """The response-curves chart for a plan and a choice of ad sets (kept: a rerun that changes
    something else redraws nothing)."""
    result, _ = replanned(path, stamp, settings)
    return charts.response_curves(curve_points(served_curves(path, stamp), result.ad_sets, chosen))


@st.cache_resource(show_spinner=False, max_entries=32, hash_funcs={Filters: repr})
def naive_valued(
    path: str, stamp: tuple[int, int], filters: Filters, share: float, _naive: pd.DataFrame
):
    """The naive rule's reallocation for the filters and share (`_naive`, fixed by them),
    valued with the served curves."""
    curves = served_curves(path, stamp)
    return naive_value(curves, _naive) if curves is not None else None


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
    so_what(summary["headline"])
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


def next_steps_answer(
    facts: str, settings: next_steps.LMSettings, wait: float = 0.0
) -> next_steps.NextSteps:
    """The model's answer for these facts on this serving file, or the labelled rule-based
    actions while it is on its way (the question is asked once, in the background)."""
    key = next_steps.request_key(queries.file_stamp(queries.serving_path()), facts, settings)
    decoded = json.loads(facts)
    answer = lm_requests().answer(key, decoded, settings, wait=wait)
    return answer or next_steps.pending(decoded, settings)


def show_next_steps(result: next_steps.NextSteps, settings: next_steps.LMSettings) -> None:
    status = next_steps.status_line(result, settings)
    st.subheader("Next steps")
    show = {"success": st.success, "info": st.info}.get(status.kind, st.warning)
    show(status.label)
    for bullet in result.bullets:  # the model's words and ad-set names: shown as text
        marker = "" if bullet.source == "lm" else " *(rule-based)*"
        st.markdown(f"- {markdown_text(bullet.text)}{marker}")
    st.caption(markdown_text(status.caption))


@st.fragment(run_every=LM_POLL_SECONDS)
def pending_next_steps(facts: str, settings: next_steps.LMSettings) -> None:
    """Next steps while LM Studio thinks: this panel alone reruns every LM_POLL_SECONDS; once the
    answer is there, the whole page reruns, which shows it without this polling fragment."""
    result = next_steps_answer(facts, settings)
    if result.status != "pending":
        st.rerun(scope="app")
    show_next_steps(result, settings)


def next_steps_panel(container, overview: Overview) -> next_steps.NextSteps:
    settings = next_steps.LMSettings.from_env()
    facts = next_steps.facts_json(next_steps.build_facts(overview))
    result = next_steps_answer(facts, settings, wait=LM_GRACE_SECONDS)
    with container:
        if result.status == "pending":
            pending_next_steps(facts, settings)
        else:
            show_next_steps(result, settings)
    return result


NARROW = 768
# The page's own CSS. Metric tiles wrap their label, value and delta instead of cutting them
# with "…" ("£589k–£6…"), and their value shrinks with the window. Below NARROW px Streamlit
# collapses the sidebar: Next steps then show in the main column under the headline and their
# sidebar copy is hidden (the other way round above it).
PAGE_STYLE = f"""<style>
[data-testid="stMetric"] .stMarkdownEllipsis {{
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere; }}
[data-testid="stMetricValue"] {{ font-size: clamp(1.5rem, 2.2vw, 2.25rem); }}
@media (max-width: {NARROW}px) {{ .st-key-next_steps_wide {{ display: none; }} }}
@media (min-width: {NARROW + 1}px) {{ .st-key-next_steps_narrow {{ display: none; }} }}
</style>"""


def page_style() -> None:
    st.html(PAGE_STYLE)


def presenter_view(overview: Overview, fetch) -> next_steps.NextSteps:
    """Headline numbers and the key charts with their "so what": nothing to click, no tables."""
    st.markdown(
        "<style>[data-testid='stToolbar'], [data-testid='stHeader'] {display: none;}</style>",
        unsafe_allow_html=True,
    )
    title(overview)
    kpi_row(overview)
    spend_revenue_chart(overview)
    roas_chart(overview, fetch)
    pacing_chart(overview)
    return next_steps_panel(st.container(), overview)


def plan_headline(overview: Overview) -> None:
    """The answer before anything else: the published plan's headline, right under the title
    (in a keyed container, `.st-key-plan_headline`, so a browser test can find it)."""
    with st.container(key="plan_headline"):
        if overview.plan is None or not overview.plan.headline:
            st.caption(f"Budget plan: {NOT_AVAILABLE}")
            return
        st.success(markdown_text(headline_text(overview.plan)), icon=":material/currency_exchange:")


def freshness_panel(overview: Overview) -> None:
    """When the data ends and how old the models are, under the plan's headline (so on the
    Overview, the presenter view and the What-if); a warning when the data is old."""
    summary = None if overview.plan is None else overview.plan.summary
    line, warning = freshness_notes(summary, date.today())
    with st.container(key="freshness"):
        if warning:
            st.warning(markdown_text(warning), icon=":material/history:")
        if line:
            st.caption(markdown_text(line))


def title(overview: Overview):
    """The title, the plan's headline, then the place of Next steps on a phone (a keyed
    container, `.st-key-next_steps_narrow`: the sidebar, where a wider screen shows them, is
    collapsed on a phone; PAGE_STYLE shows one of the two), the data's freshness and the
    period on screen. Returns the phone's place."""
    filters = overview.filters
    st.title("Marketing performance")
    plan_headline(overview)
    narrow_steps = st.container(key="next_steps_narrow")
    freshness_panel(overview)
    st.markdown(
        f"**{filters.start:%d %b %Y} – {filters.end:%d %b %Y}** · "
        f"{overview.scope} · ROAS target "
        f"{narrative.ratio(filters.roas_target)}  \n{markdown_text(overview.headline)}"
    )
    return narrow_steps


def main() -> None:
    st.set_page_config(page_title="Marketing performance", page_icon=":bar_chart:", layout="wide")
    path = queries.serving_path()
    stamp = queries.file_stamp(path)

    def fetch(name: str, *arguments):
        return load(name, str(path), stamp, *arguments)

    freeze_startup_objects()
    page_style()
    serving = serving_file(str(path), stamp) if stamp else Serving(frozenset())
    available, ad_sets, published = serving.tables, serving.ad_sets, serving.plan
    if ad_sets is None or serving.bounds is None:
        not_built_page(path)
        return
    first, last = serving.bounds
    groups = groupings(available)
    init_state(list(ad_sets["ad_set_id"]), first, last, groups)
    presenter = st.sidebar.toggle("Presenter mode", key="presenter", persist_state="session")
    if presenter:
        filters = current_filters(first, last)
    else:
        filters = sidebar_filters(ad_sets, first, last)
    overview = overview_for(path, stamp, filters, serving)
    steps = None
    if presenter:
        steps = presenter_view(overview, fetch)
    else:
        narrow_steps = title(overview)
        wide_steps = st.sidebar.container(key="next_steps_wide")
        bodies = {
            "Overview": lambda: overview_tab(overview, fetch, groups),
            "Forecasts": lambda: forecasts_tab(
                all_forecasts(str(path), stamp, available, ad_sets, published),
                fetch,
                available,
                filters,
            ),
            "Data quality": lambda: quality_tab(fetch, available),
            "Models": lambda: models_tab(fetch, available),
            "What-if": lambda: whatif_tab(overview, str(path), stamp),
        }
        # Tabs that track which one is open: only the open tab's body runs (switching reruns
        # the page, from the caches), so a first render pays for the Overview alone.
        tabs = st.tabs(list(bodies), key="tab", on_change="rerun")
        for tab, body in zip(tabs, bodies.values(), strict=True):
            if tab.open is not False:
                with tab:
                    body()
        st.sidebar.divider()
        st.sidebar.download_button(
            "Download the report (HTML)",
            lambda: build_report(path),
            file_name="marketing_report.html",
            mime="text/html",
            key="download_report",
            icon=":material/description:",
            width="stretch",
        )
        steps = next_steps_panel(narrow_steps, overview)
        next_steps_panel(wide_steps, overview)
    footer(steps)


main()
