"""LM Studio asked in the background: a slow local model never holds the page up, its answer shows
on a later rerun, and each serving file and filter state is asked once for the whole process.

Against a real loopback server that takes 2 s to answer (`ScriptedLMStudio`), under AppTest."""

import os
import shutil
import sys
import time

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import next_steps, queries
from app.html_report import default_filters
from app.overview import load_overview
from marketing_ml_tests.support.dashboard_harness import (
    ASKING,
    CLOSED_PORT_ENDPOINT,
    DASHBOARD,
    next_step_bullets,
    sidebar_text,
)
from marketing_ml_tests.support.lakehouse import Lakehouse
from marketing_ml_tests.support.lm_server import ScriptedLMStudio, reply_for

DELAY = 5.0
FIRST_RENDER_LIMIT = DELAY - 1.5
"""A render returns well before the model could have answered: it did not wait for it (the
generous margin keeps a loaded CI machine from failing it; the bench measures render times)."""


def grounded(facts: dict) -> str:
    return reply_for("grounded", facts)


@pytest.fixture
def slow_server():
    with ScriptedLMStudio(grounded, delay=DELAY) as server:
        yield server


@pytest.fixture
def serving(served_lakehouse, tmp_path, monkeypatch):
    """A copy of the served lakehouse of its own (a test replaces it), with the queries' caches
    warmed by a render against an LM Studio that is not running: what is timed below is the
    Next steps panel, not DuckDB's first queries."""
    path = tmp_path / "serving.duckdb"
    shutil.copy(served_lakehouse.serving, path)
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(path))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    monkeypatch.delenv("LM_TIMEOUT", raising=False)
    st.cache_data.clear()
    render()
    yield path
    st.cache_data.clear()


def render(app: AppTest | None = None) -> AppTest:
    app = app or AppTest.from_file(DASHBOARD, default_timeout=30)
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def timed(app: AppTest | None = None) -> tuple[AppTest, float]:
    started = time.monotonic()
    app = render(app)
    return app, time.monotonic() - started


def wait_for_answer(app: AppTest, within: float = 20.0) -> AppTest:
    deadline = time.monotonic() + within
    while ASKING in sidebar_text(app) and time.monotonic() < deadline:
        time.sleep(0.25)
        render(app)
    return app


def lm_bullets(app: AppTest) -> int:
    return sum(not bullet.endswith("*(rule-based)*") for bullet in next_step_bullets(app))


def test_a_slow_model_never_holds_the_page_up_and_its_answer_shows_on_a_later_rerun(
    serving, slow_server, monkeypatch
):
    monkeypatch.setenv("LM_ENDPOINT", slow_server.base_url)
    app, seconds = timed()
    assert seconds < FIRST_RENDER_LIMIT, f"first render took {seconds:.2f} s"
    text = sidebar_text(app)
    assert ASKING in text and "until the answer arrives" in text
    bullets = next_step_bullets(app)
    assert len(bullets) == 3 and all(bullet.endswith("*(rule-based)*") for bullet in bullets)

    wait_for_answer(app)
    assert "LM Studio: online" in sidebar_text(app)
    assert lm_bullets(app) == 3
    assert len(slow_server.chat_requests()) == 1


def test_the_same_facts_are_asked_once_and_a_new_filter_or_serving_file_once_more(
    serving, slow_server, monkeypatch
):
    monkeypatch.setenv("LM_ENDPOINT", slow_server.base_url)
    app = wait_for_answer(render())
    assert lm_bullets(app) == 3
    for _ in range(3):  # reruns, another tab and a widget there, a second browser session
        render(app)
    app.session_state["tab"] = "What-if"
    render(app)
    app.slider(key="whatif_share").set_value(0.4).run()
    other_session = wait_for_answer(render())
    assert lm_bullets(other_session) == 3
    assert len(slow_server.chat_requests()) == 1, "the same facts were sent twice"

    app.multiselect(key="ad_sets").set_value(["AS_001", "AS_003"]).run()
    assert ASKING in sidebar_text(app), "a new filter state is a new question"
    wait_for_answer(app)
    assert len(slow_server.chat_requests()) == 2
    assert lm_bullets(app) == 3

    replacement = serving.with_name("next.duckdb")
    shutil.copy(serving, replacement)
    with duckdb.connect(str(replacement)) as connection:
        connection.execute("UPDATE gold.daily_adset_metrics SET spend = spend * 1.01")
    os.replace(replacement, serving)
    app, seconds = timed(app)
    assert seconds < FIRST_RENDER_LIMIT + 1.0, f"render after a publish took {seconds:.2f} s"
    assert ASKING in sidebar_text(app), "a new serving file is a new question"
    wait_for_answer(app)
    assert len(slow_server.chat_requests()) == 3
    assert lm_bullets(app) == 3


def test_the_default_timeout_waits_for_a_model_that_takes_seconds(served_lakehouse):
    """A local model takes 10–30 s for three bullets: the default budget lets one attempt run
    that long (asked in the background, it holds nothing up), and a slow answer is not asked
    again."""
    settings = next_steps.LMSettings.from_env({})
    assert settings.timeout >= 60
    with ScriptedLMStudio(grounded, delay=3.5) as server:
        started = time.monotonic()
        result = next_steps.ask(
            facts_on_screen(served_lakehouse),
            next_steps.LMSettings.from_env({"LM_ENDPOINT": server.base_url}),
        )
        elapsed = time.monotonic() - started
        assert len(server.chat_requests()) == 1
    assert result.status == "online", (result.status, result.detail)
    assert elapsed >= 3.5


def facts_on_screen(served: Lakehouse) -> dict:
    """The facts the dashboard sends for its default filters on the served lakehouse."""
    serving = served.serving
    return next_steps.build_facts(load_overview(queries.fetcher(serving), default_filters(serving)))


# --- in a real browser -------------------------------------------------------------------------

RUNS_OBSERVER = """
window.__scriptRuns = 0;
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.getAttribute('data-test-script-state') === 'running') window.__scriptRuns++;
  }
}).observe(document.body, {subtree: true, attributes: true,
                           attributeFilter: ['data-test-script-state']});
true
"""


@pytest.fixture
def browser(tmp_path):
    from marketing_ml_tests.support.chromium import chromium_page

    yield from chromium_page(tmp_path)


def test_in_the_browser_the_answer_arrives_without_a_click_and_polling_stops(
    served_lakehouse, tmp_path, browser
):
    """`streamlit run` against a model that takes 2 s: the page shows the rule-based actions
    and "Asking LM Studio…", then the model's bullets on their own (the panel polls while the
    question is pending), and once they are there nothing reruns any more."""
    from marketing_ml_tests.support.chromium import evaluate, free_port, healthy, started, stop
    from marketing_ml_tests.support.chromium import wait_for as waited

    serving = served_lakehouse.serving
    with ScriptedLMStudio(grounded, delay=DELAY) as server:
        port = free_port()
        env = {
            **os.environ,
            "MARKETING_ML_SERVING_DB": str(serving),
            "LM_ENDPOINT": server.base_url,
        }
        for name in ("LM_MODEL", "LM_TIMEOUT"):
            env.pop(name, None)
        streamlit = started(
            [sys.executable, "-m", "streamlit", "run", DASHBOARD]
            + ["--server.headless", "true", "--server.address", "127.0.0.1"]
            + ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
            + ["--global.developmentMode", "false"],
            env,
            tmp_path / "streamlit.log",
        )
        try:
            url = f"http://127.0.0.1:{port}"
            waited(lambda: healthy(f"{url}/_stcore/health"), 60, "streamlit's health check")
            browser("Page.navigate", url=url)

            def text() -> str:
                return evaluate(browser, "document.body.innerText") or ""

            waited(lambda: ASKING in text(), 30, "the rule-based actions while LM Studio thinks")
            assert "(rule-based)" in text()
            evaluate(browser, RUNS_OBSERVER)
            waited(lambda: "LM Studio: online" in text(), 15, "the model's answer, unclicked")
            assert "(rule-based)" not in text()
            assert evaluate(browser, "window.__scriptRuns") >= 1, "the observer sees reruns"
            evaluate(browser, "window.__scriptRuns = 0")
            time.sleep(3 * 2.0 + 1)
            assert evaluate(browser, "window.__scriptRuns") == 0, "still polling after the answer"
            assert len(server.chat_requests()) == 1
        finally:
            stop(streamlit)
