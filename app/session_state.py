"""The dashboard's session state: defaults, the sidebar's filters and their select-all and
reset callbacks, and the Filters the queries read from it."""

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from app import narrative
from app.html_report import DEFAULT_DAYS
from app.overview import (
    OVER_PACING,
    ROAS_BAND,
    ROAS_TARGET,
    UNDER_PACING,
    Filters,
)
from serving_contract import AUDIENCE_SEGMENTS


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
