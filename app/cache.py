"""The dashboard's cached loaders (st.cache_data / st.cache_resource), keyed by the serving
file's path and version (`stamp`): a module imported once per process, so each cached
function keeps one identity, and its cache, across every rerun."""

import gc
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, narrative, next_steps, queries
from app.budget_plan import (
    ROLE_LABELS,
    Curves,
    PublishedPlan,
    Replan,
    curve_points,
    load_curves,
    naive_value,
    plan_table,
    replan,
)
from app.overview import (
    ROAS_BAND,
    ROAS_TARGET,
    Filters,
    Overview,
    load_overview,
)
from planning import PlanSettings
from serving_contract import (
    DAILY_METRICS,
    RESPONSE_CURVES,
)


@st.cache_data(show_spinner=False, max_entries=512)
def load(name: str, path: str, stamp: tuple[int, int], *arguments):
    """A query's result, cached per serving-file version: `stamp` changes with every publish."""
    return getattr(queries, name)(Path(path), *arguments)


@st.cache_resource(show_spinner=False, max_entries=64)
def chart(name: str, *arguments):
    """A figure of app.charts, kept per its arguments (small frames, hashed by content) and shared
    by every session: building the Overview's three was more than half of a new session's script
    run. st.plotly_chart copies a figure before using it, so the shared one is never changed."""
    return getattr(charts, name)(*arguments)


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
