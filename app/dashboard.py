"""Marketing performance dashboard: `streamlit run app/dashboard.py` (or `make app`).

A thin UI: numbers come from app.queries (SQL pushed down to the serving file, cached per file
version), sentences from app.narrative, actions from app.next_steps, the plan from app.whatif.
"""

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, evidence, narrative, next_steps, queries, whatif
from app.overview import (
    KPI_TILES,
    OVER_PACING,
    ROAS_BAND,
    ROAS_TARGET,
    UNDER_PACING,
    Filters,
    Overview,
    kpi_tiles,
    load_overview,
)
from app.report import DEFAULT_DAYS, FOOTER, build_report
from app.text import markdown_code, markdown_text

NOT_AVAILABLE = "Not available yet: run `make run` to build it."
PLOTLY_CONFIG = {"displaylogo": False}


@st.cache_data(show_spinner=False, max_entries=512)
def load(name: str, path: str, stamp: tuple[int, int], *arguments):
    """A query's result, cached per serving-file version: `stamp` changes with every publish."""
    return getattr(queries, name)(Path(path), *arguments)


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs={Filters: repr})
def cached_overview(path: str, stamp: tuple[int, int], filters: Filters) -> Overview:
    """The Overview's queries for one filter state on one connection (opening one costs ~15 ms),
    cached under the filters' repr: Streamlit's own hashing takes ~10 ms over 2,000 ad set ids."""
    with queries.connected_fetcher(Path(path)) as fetch:
        return load_overview(fetch, filters)


@st.cache_data(show_spinner=False, max_entries=8)
def all_forecasts(
    path: str, stamp: tuple[int, int], available: frozenset[str], _ad_sets: pd.DataFrame
) -> pd.DataFrame | None:
    """Every ad set's latest scores, name and suggested action, most urgent first; built once
    per publish, so a filter change only picks rows. None without scored tables. `_ad_sets`
    (not hashed) is the sidebar's list, fixed by `stamp` like everything else here."""
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
    forecasts["action"] = [
        narrative.forecast_action(risk, probability)
        for risk, probability in zip(
            forecasts["under_pacing_risk"], forecasts["roas_on_target_prob"], strict=True
        )
    ]
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


def footer() -> None:
    st.divider()
    st.caption(FOOTER)


def default_range(first: date, last: date) -> tuple[date, date]:
    return max(first, last - timedelta(days=DEFAULT_DAYS - 1)), last


def init_state(ad_set_ids: list[str], first: date, last: date) -> None:
    """Defaults on first load; drop values a new publish made invalid (a removed ad set, dates
    outside the data) so a widget never fails on stale state."""
    state = st.session_state
    if "ad_sets" not in state:
        state["ad_sets"] = list(ad_set_ids)
    state["ad_sets"] = [ad_set for ad_set in state["ad_sets"] if ad_set in ad_set_ids]
    chosen = state.get("date_range")
    if not chosen or any(not first <= day <= last for day in chosen):
        state["date_range"] = default_range(first, last)
    state.setdefault("roas_target", ROAS_TARGET)
    state.setdefault("roas_band", ROAS_BAND)
    state.setdefault("pacing_bands", (UNDER_PACING, OVER_PACING))


def select_all(ad_set_ids: list[str]) -> None:
    st.session_state["ad_sets"] = list(ad_set_ids)


def reset_filters(ad_set_ids: list[str], first: date, last: date) -> None:
    st.session_state["ad_sets"] = list(ad_set_ids)
    st.session_state["date_range"] = default_range(first, last)
    st.session_state["roas_target"] = ROAS_TARGET
    st.session_state["roas_band"] = ROAS_BAND
    st.session_state["pacing_bands"] = (UNDER_PACING, OVER_PACING)


def sidebar_filters(ad_sets: pd.DataFrame, first: date, last: date) -> Filters:
    ids = list(ad_sets["ad_set_id"])
    names = dict(zip(ad_sets["ad_set_id"], ad_sets["ad_set_name"], strict=True))
    sidebar = st.sidebar
    sidebar.header("Filters")
    sidebar.multiselect(
        "Ad sets",
        ids,
        key="ad_sets",
        format_func=lambda ad_set: names.get(ad_set, ad_set),
        placeholder="Choose ad sets",
        persist_state="session",
    )
    left, right = sidebar.columns(2)
    left.button("Select all", key="select_all", on_click=select_all, args=(ids,), width="stretch")
    right.button(
        "Reset",
        key="reset_filters",
        on_click=reset_filters,
        args=(ids, first, last),
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
        ad_set_ids=tuple(state["ad_sets"]),
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


def overview_charts(overview: Overview) -> None:
    filters = overview.filters
    st.plotly_chart(charts.spend_revenue(overview.daily), config=PLOTLY_CONFIG)
    so_what(overview.spend_revenue_so_what)
    st.plotly_chart(
        charts.roas_by_ad_set(overview.by_ad_set, filters.roas_target, filters.roas_band),
        config=PLOTLY_CONFIG,
    )
    so_what(overview.roas_so_what)


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


def overview_tab(overview: Overview) -> None:
    kpi_row(overview)
    overview_charts(overview)
    top, bottom = narrative.top_and_bottom(overview.by_ad_set)
    left, right = st.columns(2)
    left.markdown("**Top 5 by ROAS**")
    left.dataframe(top[list(AD_SET_COLUMNS)], column_config=AD_SET_COLUMNS, hide_index=True)
    right.markdown("**Bottom 5 by ROAS**")
    right.dataframe(bottom[list(AD_SET_COLUMNS)], column_config=AD_SET_COLUMNS, hide_index=True)
    pacing_chart(overview)


# Each scored table's caption names the model that wrote it: older models say so. (A comment:
# Streamlit prints a bare string literal on the page.)
SCORE_LABELS = {
    "gold.scored_adsets": "Under-pacing risk",
    "gold.scored_conversions": "ROAS on target",
}


# The model behind each scored table, and the score column it writes.
SCORING_MODELS = {
    "gold.scored_adsets": ("models.pacing_risk_model", "under_pacing_risk"),
    "gold.scored_conversions": ("models.conversion_model", "roas_on_target_prob"),
}


def untrained_models(fetch, available: frozenset[str]) -> dict[str, str]:
    """Scored table → its model's "not trained: …" status, for models too young to train."""
    statuses = {}
    for table, (model_table, _) in SCORING_MODELS.items():
        status = (
            fetch("model_card", model_table).get("status") if model_table in available else None
        )
        if isinstance(status, str) and status.startswith("not trained"):
            statuses[table] = status
    return statuses


def forecasts_tab(
    every_forecast: pd.DataFrame | None, fetch, available: frozenset[str], filters: Filters
) -> None:
    if every_forecast is None:
        st.warning(f"Forecasts: {NOT_AVAILABLE}")
        return
    untrained = untrained_models(fetch, available)
    for table, status in untrained.items():
        st.info(
            f"{SCORE_LABELS[table]} model {markdown_text(status)}. Its forecasts appear after the weekly "
            "retrain once there is that much history.",
            icon=":material/hourglass_empty:",
        )
    scored = [table for table in SCORE_LABELS if table in available and table not in untrained]
    if not scored:
        return
    forecasts = every_forecast[every_forecast["ad_set_id"].isin(filters.ad_set_ids)]
    model_target = (
        forecasts["roas_target"].dropna() if "gold.scored_conversions" in scored else pd.Series()
    )
    target = float(model_target.iloc[0]) if len(model_target) else None
    so_what(narrative.forecast_so_what(forecasts, target))
    for table in scored:
        if provenance := fetch("score_provenance", table):
            st.caption(
                f"{SCORE_LABELS[table]}: model {markdown_code(provenance['model_version'])}, "
                f"trained on data through {pd.Timestamp(provenance['trained_through']):%d %b %Y}; scores for "
                f"{pd.Timestamp(provenance['scored_date']):%d %b %Y}."
            )
    if target is not None and abs(target - filters.roas_target) > 1e-9:
        st.caption(
            f"The conversion model was trained for a {narrative.ratio(target)} target; the "
            f"sidebar target ({narrative.ratio(filters.roas_target)}) does not change its scores."
        )
    hidden = [SCORING_MODELS[table][1] for table in untrained]
    shown = forecasts[["ad_set_name", "under_pacing_risk", "roas_on_target_prob", "action"]]
    st.dataframe(
        shown.assign(  # whole percents: calibrated steps do not carry two decimals of meaning
            under_pacing_risk=(100 * shown["under_pacing_risk"]).round(),
            roas_on_target_prob=(100 * shown["roas_on_target_prob"]).round(),
        ).drop(columns=hidden),
        hide_index=True,
        width="stretch",
        column_config={
            "ad_set_name": st.column_config.TextColumn("Ad set"),
            # red for bad news: a high risk of under-pacing is bad, a high chance of reaching
            # the ROAS target is good (green)
            "under_pacing_risk": st.column_config.ProgressColumn(
                "Under-pacing risk, tomorrow",
                format="%d%%",
                min_value=0,
                max_value=100,
                color="auto-inverse",
            ),
            "roas_on_target_prob": st.column_config.ProgressColumn(
                "P(ROAS ≥ target), next 7 days",
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
    if "gold.data_quality_report" not in available:
        st.warning(f"Data quality report: {NOT_AVAILABLE}")
        return
    rules = fetch("quality_rules")
    quarantine = (
        fetch("quarantine_counts")
        if "silver.quarantine" in available
        else (pd.DataFrame(columns=["reason", "source_file", "rows"]))
    )
    accounting = (
        fetch("row_accounting")
        if "gold.row_accounting" in available
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
    if len(drift["table"]):
        people_table(container, drift["table"].head(5), evidence.DRIFT_COLUMNS)


def models_tab(fetch, available: frozenset[str]) -> None:
    for table, title in evidence.MODEL_TABLES.items():
        st.subheader(title)
        if table not in available:
            st.warning(NOT_AVAILABLE)
            continue
        card = fetch("model_card", table)
        st.markdown(
            f"{markdown_text(card.get('predicts') or '')}  \nVersion "
            f"{markdown_code(card.get('model_version'))} · label {markdown_code(card.get('label'))}"
            f" · {card.get('training_rows') or 0:,} training rows"
        )
        so_what(narrative.model_so_what(card))
        left, middle, right = st.columns([2, 3, 3])
        left.markdown("**Windows**")
        left.dataframe(evidence.windows(card), hide_index=True)
        middle.markdown("**Validation scores beside the baselines**")
        middle.dataframe(evidence.scores_table(evidence.validation(card)), hide_index=True)
        heuristic = (card.get("metrics") or {}).get("heuristic")
        if heuristic:
            middle.caption(
                f"Heuristic: {markdown_text(heuristic)}. Base rate: the training share of positives."
            )
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


@st.fragment
def whatif_tab(overview: Overview) -> None:
    """A fragment: its sliders rerun only this tab, not the queries and charts around it."""
    left, right = st.columns(2)
    share = left.slider(
        "Share of bottom-quartile budget to move",
        0.0,
        0.5,
        0.2,
        0.05,
        key="whatif_share",
        format="percent",
    )
    elasticity = right.slider(
        "Revenue elasticity to spend (range)",
        0.1,
        1.0,
        (0.5, 0.8),
        0.05,
        key="whatif_elasticity",
        help="1.0 keeps each ad set's ROAS as it is; lower values mean diminishing returns.",
    )
    plan = whatif.reallocate(overview.by_ad_set, share, elasticity)
    donors = int((plan.plan["group"] == "gives budget").sum())
    recipients = int((plan.plan["group"] == "receives budget").sum())
    so_what(
        narrative.whatif_so_what(
            plan.moved,
            share,
            donors,
            recipients,
            plan.revenue_before,
            plan.revenue_low,
            plan.revenue_high,
            plan.spend,
            elasticity,
        )
    )
    columns = st.columns(3)
    columns[0].metric("Budget moved", narrative.money(plan.moved), border=True)
    columns[1].metric(
        "Revenue after",
        f"{narrative.money(plan.revenue_low)}–{narrative.money(plan.revenue_high)}",
        f"now {narrative.money(plan.revenue_before)}",
        delta_color="off",
        border=True,
    )
    columns[2].metric(
        "ROAS after",
        f"{narrative.ratio(plan.roas_low)}–{narrative.ratio(plan.roas_high)}",
        f"now {narrative.ratio(plan.roas_before)}",
        delta_color="off",
        border=True,
    )
    st.plotly_chart(
        charts.whatif_revenue(plan.revenue_before, plan.revenue_low, plan.revenue_high),
        config=PLOTLY_CONFIG,
    )
    st.dataframe(  # a signed change reads +£5,417 / −£5,417 (a printf format gives £+5,417)
        plan.plan.assign(spend_change=plan.plan["spend_change"].map(narrative.signed_money)),
        hide_index=True,
        column_config={
            "ad_set_id": None,
            **AD_SET_COLUMNS,
            "group": st.column_config.TextColumn("Plan"),
            "new_spend": st.column_config.NumberColumn("New spend", format="£%,.0f"),
            "spend_change": st.column_config.TextColumn("Change"),
            "revenue_low": st.column_config.NumberColumn("Revenue, low", format="£%,.0f"),
            "revenue_high": st.column_config.NumberColumn("Revenue, high", format="£%,.0f"),
        },
    )
    st.download_button(
        "Download the plan (CSV)",
        lambda: whatif.plan_csv(plan),
        file_name="budget_reallocation.csv",
        mime="text/csv",
        key="whatif_csv",
        on_click="ignore",
        icon=":material/download:",
    )


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


def presenter_view(overview: Overview) -> None:
    """Headline numbers and the key charts with their "so what": nothing to click, no tables."""
    st.markdown(
        "<style>[data-testid='stToolbar'], [data-testid='stHeader'] {display: none;}</style>",
        unsafe_allow_html=True,
    )
    title(overview)
    kpi_row(overview)
    overview_charts(overview)
    pacing_chart(overview)
    next_steps_panel(st.container(), overview)


def title(overview: Overview) -> None:
    filters = overview.filters
    st.title("Marketing performance")
    st.markdown(
        f"**{filters.start:%d %b %Y} – {filters.end:%d %b %Y}** · "
        f"{narrative.plural(len(filters.ad_set_ids), 'ad set')} · ROAS target "
        f"{narrative.ratio(filters.roas_target)}  \n{markdown_text(overview.headline)}"
    )


def main() -> None:
    st.set_page_config(page_title="Marketing performance", page_icon=":bar_chart:", layout="wide")
    path = queries.serving_path()
    stamp = queries.file_stamp(path)

    def fetch(name: str, *arguments):
        return load(name, str(path), stamp, *arguments)

    available = fetch("tables") if stamp else frozenset()
    if queries.FACT not in available:
        not_built_page(path)
        return
    ad_sets = fetch("ad_sets")
    first, last = fetch("date_bounds")
    init_state(list(ad_sets["ad_set_id"]), first, last)
    presenter = st.sidebar.toggle("Presenter mode", key="presenter", persist_state="session")
    if presenter:
        filters = current_filters(first, last)
    else:
        filters = sidebar_filters(ad_sets, first, last)
    if not filters.ad_set_ids:
        st.warning("No ad set selected: choose some in the sidebar or press Select all.")
        footer()
        return
    steps_container = st.sidebar.container()
    overview = cached_overview(str(path), stamp, filters)
    if presenter:
        presenter_view(overview)
    else:
        title(overview)
        tabs = st.tabs(["Overview", "Forecasts", "Data quality", "Models", "What-if"])
        with tabs[0]:
            overview_tab(overview)
        with tabs[1]:
            every_forecast = all_forecasts(str(path), stamp, available, ad_sets)
            forecasts_tab(every_forecast, fetch, available, filters)
        with tabs[2]:
            quality_tab(fetch, available)
        with tabs[3]:
            models_tab(fetch, available)
        with tabs[4]:
            whatif_tab(overview)
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
        next_steps_panel(steps_container, overview)
    footer()


main()
