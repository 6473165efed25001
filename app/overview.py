"""The Overview's numbers for one filter state: shared by the dashboard, presenter mode and the
HTML report, so all three always show the same figures and the same "so what"."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from app import narrative
from app.budget_plan import PublishedPlan
from app.queries import previous_period

ROAS_TARGET = 4.0
ROAS_BAND = 0.5
UNDER_PACING = 0.90
OVER_PACING = 1.10


@dataclass(frozen=True)
class Filters:
    ad_set_ids: tuple[str, ...] | None
    """The chosen ad sets, or None for every ad set (the queries then list no ids at all)."""
    start: date
    end: date
    roas_target: float = ROAS_TARGET
    roas_band: float = ROAS_BAND
    """Half-width of the band drawn around the target: "near target" rather than a hard line."""
    under: float = UNDER_PACING
    over: float = OVER_PACING


Fetch = Callable[..., object]
"""fetch(query_name, *arguments): a function of app.queries, run against the serving file
(cached in the dashboard, direct in the report)."""


@dataclass(frozen=True)
class Overview:
    filters: Filters
    kpis: dict
    previous: dict
    daily: pd.DataFrame
    by_ad_set: pd.DataFrame
    pacing: pd.DataFrame
    pacing_cost: pd.DataFrame
    ad_set_count: int = 0
    """How many ad sets the filters cover: the chosen ones, or every ad set in the file."""
    plan: PublishedPlan | None = None
    """Tomorrow's budget plan as the last run published it (every ad set, whatever the filters):
    the one plan every view quotes. None when the serving file has none."""

    @property
    def days(self) -> int:
        return (self.filters.end - self.filters.start).days + 1

    @property
    def scope(self) -> str:
        """The ad sets covered, in words: "all 2,000 ad sets" or "3 ad sets"."""
        counted = narrative.plural(self.ad_set_count, "ad set")
        return f"all {counted}" if self.filters.ad_set_ids is None else counted

    @property
    def headline(self) -> str:
        return narrative.headline(self.kpis, self.previous, self.days)

    @property
    def spend_revenue_so_what(self) -> str:
        return narrative.spend_revenue_so_what(self.daily)

    @property
    def roas_so_what(self) -> str:
        return narrative.roas_so_what(self.by_ad_set, self.filters.roas_target)

    @property
    def pacing_so_what(self) -> str:
        return narrative.pacing_so_what(
            self.pacing, self.pacing_cost, self.filters.under, self.filters.over
        )


def load_overview(
    fetch: Fetch, filters: Filters, with_plan: bool = True, ad_sets_in_file: int | None = None
) -> Overview:
    """The Overview's figures; the published plan too unless `with_plan` is False (the dashboard
    reads it once per serving file and attaches it); how many ad sets the file holds is counted
    unless `ad_sets_in_file` says."""
    scope = (filters.ad_set_ids, filters.start, filters.end)
    chosen = filters.ad_set_ids
    if chosen is None and ad_sets_in_file is None:
        ad_sets_in_file = fetch("ad_set_count")
    return Overview(
        filters=filters,
        kpis=fetch("kpis", *scope),
        previous=fetch("kpis", filters.ad_set_ids, *previous_period(filters.start, filters.end)),
        daily=fetch("daily_spend_revenue", *scope),
        by_ad_set=fetch("roas_by_ad_set", *scope),
        pacing=fetch("pacing_by_day", *scope, filters.under, filters.over),
        pacing_cost=fetch("under_pacing_cost", *scope, filters.under),
        ad_set_count=ad_sets_in_file if chosen is None else len(chosen),
        plan=PublishedPlan.from_tables(fetch("published_plan")) if with_plan else None,
    )


KPI_TILES = (
    ("Spend", "spend", narrative.money, "off"),
    ("Revenue", "revenue", narrative.money, "normal"),
    ("Bookings", "bookings", narrative.count, "normal"),
    ("ROAS", "roas", narrative.ratio, "normal"),
    ("CPA", "cpa", narrative.money, "inverse"),
)
"""label, KPI, formatter, delta colour (a rising CPA is bad news, rising spend is neither)."""


def kpi_tiles(overview: Overview) -> list[dict]:
    """Label, value and previous-period delta for each tile, formatted for display."""
    tiles = []
    for label, name, formatter, colour in KPI_TILES:
        value = overview.kpis.get(name)
        delta = narrative.change(value, overview.previous.get(name))
        tiles.append(
            {
                "label": label,
                "value": formatter(value) if value is not None else "n/a",
                "delta": None if delta is None else f"{delta * 100:+.1f}%",
                "delta_color": colour,
                "previous": overview.previous.get(name),
            }
        )
    return tiles


@dataclass(frozen=True)
class Ranking:
    """The best and the worst rows of a per-ad-set (or per-group) frame by one measure, and the
    rest summed: a chart or a table of 2,000 rows helps nobody. Top, bottom and others together
    hold every row exactly once, so their sums are the frame's."""

    top: pd.DataFrame
    bottom: pd.DataFrame
    others: dict
    """rows, spend, revenue, bookings and the ROAS of those sums (None without spend)."""
    rows: int
    by: str

    @property
    def shown(self) -> int:
        return len(self.top) + len(self.bottom)


RANK_BY = {"roas": "ROAS", "spend": "spend"}
"""What the ranking orders by, and its name in sentences."""


def rank(frame: pd.DataFrame, size: int, by: str = "roas", tie: str = "ad_set_id") -> Ranking:
    """The `size` highest and `size` lowest rows by `by` among those that spent (ties broken by
    `tie`), and every other row summed, rows without spend included. With 2 × `size` rows or
    fewer that spent, all of them are "top" and none "bottom"."""
    spent = frame[frame["spend"] > 0].sort_values([by, tie], ascending=[False, True])
    if len(spent) <= 2 * size:
        top, bottom = spent, spent.iloc[0:0]
    else:
        top, bottom = spent.head(size), spent.tail(size)
    others = frame.drop(index=[*top.index, *bottom.index])
    spend = float(others["spend"].sum())
    revenue = float(others["revenue"].sum())
    return Ranking(
        top=top,
        bottom=bottom,
        others={
            "rows": len(others),
            "spend": spend,
            "revenue": revenue,
            "bookings": float(others["bookings"].sum()),
            "roas": revenue / spend if spend else None,
        },
        rows=len(frame),
        by=by,
    )
