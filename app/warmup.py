"""What the first visit of a fresh server used to wait for, done before the server answers
(app/serve.py): the page's imports (pandas, plotly, DuckDB, planning) and the caches every first
render reads (the serving file's tables, ad sets and plan; the Overview for the default filters).
Streamlit's caches are the process's, so the first visitor then renders from them like every
later one."""

import ast
import importlib
import importlib.util
from pathlib import Path

import streamlit as st

PAGE = Path(__file__).with_name("dashboard.py")


def page_modules(page: Path = PAGE) -> list[str]:
    """The modules the page imports (`from app import queries` names app.queries), read from its
    source: a module it starts importing is warmed without being listed twice."""
    modules = []
    for node in ast.parse(page.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
            if importlib.util.find_spec(node.module).submodule_search_locations is not None:
                names = (f"{node.module}.{alias.name}" for alias in node.names)
                modules.extend(name for name in names if importlib.util.find_spec(name))
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return modules


def warm_caches(page: Path = PAGE) -> None:
    """The page's imports, then the cached reads of its first render for the serving file as it
    is now (a later publish changes the file's stamp: its first visit fills the caches again),
    and once each what a process does slowly the first time: Streamlit's check, on the first
    element, of how it was started (a walk of the call stack), and Plotly's first figures (it
    imports its validators and narwhals' pandas support on first use). Nothing to read before
    the first build."""
    for module in page_modules(page):
        importlib.import_module(module)
    from app import queries
    from app.cache import chart, freeze_startup_objects, overview_for, serving_file
    from app.overview import Filters
    from app.session_state import VIEW_DEFAULTS, default_range
    from app.tabs.overview_tab import roas_view

    st.empty()  # outside a script run: draws nothing
    freeze_startup_objects()
    path = queries.serving_path()
    stamp = queries.file_stamp(path)
    if stamp is None:
        return
    serving = serving_file(str(path), stamp)
    if serving.ad_sets is None or serving.bounds is None:
        return
    filters = Filters(None, *default_range(*serving.bounds))
    overview = overview_for(path, stamp, filters, serving)
    chart("spend_revenue", overview.daily)
    view = roas_view(overview, None, *VIEW_DEFAULTS.values())  # by ad set: no query
    chart(
        "roas_ranking", view.ranking, filters.roas_target, filters.roas_band, view.noun, view.name
    )
    chart("pacing_mix", overview.pacing, filters.under, filters.over)
