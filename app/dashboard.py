"""Marketing performance dashboard: `streamlit run app/dashboard.py` (or `make app`).

The entry point only: page setup, the filters, the tabs' wiring and the sidebar's report and
Next steps. Each tab is a module of app.tabs; session state and filters live in app.session_state, the
cached loaders in app.cache, the page around the tabs (title, headline, Next steps, footer) in
app.frame. Numbers come from app.queries, sentences from app.narrative, actions from
app.next_steps, the budget plan from app.budget_plan, the naive comparison from app.whatif.
"""

import streamlit as st

from app import queries
from app.cache import (
    Serving,
    all_forecasts,
    freeze_startup_objects,
    load,
    overview_for,
    serving_file,
)
from app.frame import footer, next_steps_panel, not_built_page, presenter_view, title
from app.html_report import build_report
from app.session_state import current_filters, groupings, init_state, sidebar_filters
from app.tabs.forecasts_tab import forecasts_tab
from app.tabs.models_tab import models_tab
from app.tabs.overview_tab import overview_tab
from app.tabs.quality_tab import quality_tab
from app.tabs.whatif_tab import whatif_tab

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
