"""The Overview tab: KPI tiles, spend and revenue, the ROAS ranking and pacing."""

from dataclasses import dataclass

import streamlit as st

from app import narrative
from app.cache import chart
from app.overview import (
    KPI_TILES,
    RANK_BY,
    Overview,
    Ranking,
    kpi_tiles,
    rank,
)
from app.session_state import GROUPINGS, RANK_SIZES
from app.tabs.shared import PLOTLY_CONFIG, so_what


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
    st.plotly_chart(chart("spend_revenue", overview.daily), config=PLOTLY_CONFIG)
    so_what(overview.spend_revenue_so_what)


def roas_chart(overview: Overview, fetch) -> RoasView:
    """The ROAS chart as the session's group-by and ranking ask, and its "so what"."""
    filters, state = overview.filters, st.session_state
    view = roas_view(overview, fetch, state["group_by"], state["rank_by"], int(state["rank_size"]))
    st.plotly_chart(
        chart(
            "roas_ranking",
            view.ranking,
            filters.roas_target,
            filters.roas_band,
            view.noun,
            view.name,
        ),
        config=PLOTLY_CONFIG,
    )
    so_what(view.so_what)
    return view


def pacing_chart(overview: Overview) -> None:
    st.plotly_chart(
        chart("pacing_mix", overview.pacing, overview.filters.under, overview.filters.over),
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
