"""The page around the tabs: the title, the plan's headline, freshness, the Next steps
panel, the presenter view, the footer and the page shown before the first build."""

import json
from datetime import date
from pathlib import Path

import streamlit as st

from app import narrative, next_steps, queries
from app.budget_plan import headline_text
from app.cache import lm_requests
from app.freshness import freshness_notes
from app.html_report import footer_text
from app.overview import Overview
from app.tabs.overview_tab import kpi_row, pacing_chart, roas_chart, spend_revenue_chart
from app.tabs.shared import NOT_AVAILABLE
from app.text import markdown_code, markdown_text

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
