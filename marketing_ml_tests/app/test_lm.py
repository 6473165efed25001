"""LM Studio "Next steps" against a real OpenAI-compatible server on loopback."""

import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import next_steps, queries
from app.html_report import default_filters
from app.overview import load_overview
from app.text import unescape_markdown
from marketing_ml_tests.support.dashboard_harness import (
    ASKING,
    DASHBOARD,
    FOOTER,
    FOOTER_WITH_LM,
    next_step_bullets,
    sidebar_text,
)
from marketing_ml_tests.support.hostile_text import RAW_TAG, rendered, rendered_text
from marketing_ml_tests.support.lm_server import MODEL_ID, FakeLMStudio, facts_from

TIMEOUT = 1.5


@pytest.fixture(scope="module")
def served(served_lakehouse):
    return served_lakehouse


@pytest.fixture(scope="module")
def facts(served) -> dict:
    overview = load_overview(queries.fetcher(served.serving), default_filters(served.serving))
    return next_steps.build_facts(overview)


def settings_for(server: FakeLMStudio, endpoint: str | None = None) -> next_steps.LMSettings:
    return next_steps.LMSettings.from_env(
        {"LM_ENDPOINT": endpoint or server.base_url, "LM_TIMEOUT": str(TIMEOUT)}
    )


def sources(result: next_steps.NextSteps) -> list[str]:
    return [bullet.source for bullet in result.bullets]


def test_grounded_reply_is_shown_as_is_with_the_first_listed_model(facts):
    with FakeLMStudio("grounded") as server:
        result = next_steps.ask(facts, settings_for(server))
        sent = server.chat_requests()[0]
    assert (result.status, result.model, result.replaced) == ("online", MODEL_ID, 0)
    assert sources(result) == ["lm", "lm", "lm"]
    assert sent["model"] == MODEL_ID
    assert facts_from(sent) == next_steps.prompt_facts(facts), "the facts on screen, as JSON"


def test_full_chat_completions_endpoint_is_accepted(facts):
    with FakeLMStudio("grounded") as server:
        endpoint = server.base_url + "/chat/completions"
        result = next_steps.ask(facts, settings_for(server, endpoint))
        paths = [path for _, path, _ in server.requests]
    assert result.status == "online"
    assert paths == ["/v1/models", "/v1/chat/completions"]


def test_configured_model_skips_the_model_listing(facts):
    with FakeLMStudio("grounded") as server:
        settings = next_steps.LMSettings.from_env(
            {"LM_ENDPOINT": server.base_url, "LM_MODEL": "qwen2.5-7b-instruct"}
        )
        result = next_steps.ask(facts, settings)
        paths = [path for _, path, _ in server.requests]
    assert result.model == "qwen2.5-7b-instruct"
    assert paths == ["/v1/chat/completions"]


def test_bullets_with_invented_numbers_are_replaced_by_rule_based_ones(facts):
    with FakeLMStudio("invented") as server:
        result = next_steps.ask(facts, settings_for(server))
    assert result.status == "online"
    assert sources(result) == ["lm", "rules", "rules"]
    assert result.replaced == 2
    assert not any("73.19" in bullet.text or "987.65" in bullet.text for bullet in result.bullets)
    assert all(next_steps.is_grounded(bullet.text, facts) for bullet in result.bullets)


def test_injection_attempt_and_figureless_advice_are_replaced(facts):
    with FakeLMStudio("injection") as server:
        result = next_steps.ask(facts, settings_for(server))
    assert sources(result) == ["rules", "lm", "rules"]
    assert result.replaced == 2
    assert not any("Ignore previous" in bullet.text for bullet in result.bullets)


@pytest.mark.parametrize(
    ("mode", "status"),
    [("error", "error"), ("malformed", "unparseable"), ("not_json", "unparseable")],
)
def test_failing_replies_fall_back_to_three_rule_based_actions(facts, mode, status):
    with FakeLMStudio(mode) as server:
        result = next_steps.ask(facts, settings_for(server))
    assert result.status == status
    assert sources(result) == ["rules", "rules", "rules"]
    assert [bullet.text for bullet in result.bullets] == next_steps.rule_based_actions(facts)[:3]


def test_server_error_is_retried_once_not_more(facts):
    with FakeLMStudio("error") as server:
        next_steps.ask(facts, settings_for(server))
    assert len(server.chat_requests()) == 2


def test_stalled_server_is_abandoned_within_the_timeout(facts):
    with FakeLMStudio("stall") as server:
        started = time.monotonic()
        result = next_steps.ask(facts, settings_for(server))
        elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert sources(result) == ["rules", "rules", "rules"]
    assert elapsed < TIMEOUT + 0.5


def test_nothing_listening_means_offline_at_once(facts):
    settings = next_steps.LMSettings.from_env({"LM_ENDPOINT": "http://127.0.0.1:9/v1"})
    started = time.monotonic()
    result = next_steps.ask(facts, settings)
    assert result.status == "offline"
    assert sources(result) == ["rules", "rules", "rules"]
    assert time.monotonic() - started < settings.timeout


# --- in the dashboard --------------------------------------------------------------------------


@pytest.fixture
def dashboard(monkeypatch, served):
    """Start the dashboard against a FakeLMStudio in the given mode."""
    servers = []

    def start(mode: str) -> tuple[AppTest, FakeLMStudio]:
        server = FakeLMStudio(mode).__enter__()
        servers.append(server)
        monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(served.serving))
        monkeypatch.setenv("LM_ENDPOINT", server.base_url)
        monkeypatch.setenv("LM_TIMEOUT", str(TIMEOUT))
        monkeypatch.delenv("LM_MODEL", raising=False)
        st.cache_data.clear()
        app = AppTest.from_file(DASHBOARD, default_timeout=30)
        app.run()
        assert not app.exception, [exception.message for exception in app.exception]
        return answered(app), server

    yield start
    for server in servers:
        server.__exit__()
    st.cache_data.clear()


def answered(app: AppTest, within: float = 15.0) -> AppTest:
    """Rerun the page until LM Studio's answer (or its failure) has arrived: the question is
    asked in the background, and the first render shows the rule-based actions meanwhile."""
    deadline = time.monotonic() + within
    while ASKING in sidebar_text(app) and time.monotonic() < deadline:
        time.sleep(0.2)
        app.run()
        assert not app.exception, [exception.message for exception in app.exception]
    assert ASKING not in sidebar_text(app), "LM Studio's answer never arrived"
    return app


@pytest.mark.parametrize(
    ("mode", "label", "rule_based", "note"),
    [
        ("grounded", "LM Studio: online", 0, "AI summary generated locally"),
        ("invented", "LM Studio: online", 2, "2 of 3 bullets were not grounded"),
        ("injection", "LM Studio: online", 2, "2 of 3 bullets were not grounded"),
        ("error", "LM Studio: error", 3, "HTTP 500"),
        ("malformed", "LM Studio: unreadable reply", 3, "rule-based actions"),
        ("stall", "LM Studio: too slow", 3, "no answer within 1.5 s"),
    ],
)
def test_sidebar_shows_the_status_and_three_bullets_for_each_reply(
    dashboard, mode, label, rule_based, note
):
    app, server = dashboard(mode)
    text = sidebar_text(app)
    assert label in text and note in text
    bullets = next_step_bullets(app)
    assert len(bullets) == 3
    assert sum(bullet.endswith("*(rule-based)*") for bullet in bullets) == rule_based
    assert server.base_url in text
    # LM Studio is named in the footer only when it wrote at least one bullet shown
    footer = FOOTER_WITH_LM if rule_based < 3 else FOOTER
    assert footer in [caption.value for caption in app.caption]


@pytest.mark.parametrize(
    ("mode", "label", "note"),
    [
        ("bad_json", "LM Studio: unreadable reply", "reply was not valid JSON"),
        ("wrong_shape", "LM Studio: error", "no usable model id"),
        ("huge", "LM Studio: unreadable reply", "100,000 characters is too long"),
        ("long_bullets", "LM Studio: online", "3 of 3 bullets were not grounded"),
    ],
)
def test_any_unusable_reply_gives_labelled_rule_based_steps_and_the_page_renders(
    dashboard, mode, label, note
):
    """Not JSON, JSON of the wrong shape, 100 KB of text, bullets far longer than a sentence:
    the page still renders with Next steps (all rule-based, labelled so) and the footer."""
    app, server = dashboard(mode)
    assert not app.exception
    assert "Next steps" in [header.value for header in app.sidebar.subheader]
    text = sidebar_text(app)
    assert label in text and note in text
    bullets = next_step_bullets(app)
    assert len(bullets) == 3 and all(bullet.endswith("*(rule-based)*") for bullet in bullets)
    # the length a reader sees: Markdown escapes (one per underscore of an ad-set name) are not
    assert all(
        len(unescape_markdown(bullet)) <= next_steps.MAX_BULLET_CHARS + 20 for bullet in bullets
    ), bullets
    assert FOOTER in [caption.value for caption in app.caption]
    assert server.chat_requests() or mode == "wrong_shape"


def test_links_images_and_tags_are_stripped_from_lm_bullets_before_grounding(facts):
    """Grounded bullets that carry a Markdown image, a link, raw HTML and a bare URL: kept as
    the model's, without any of those (the link's text stays)."""
    with FakeLMStudio("markdown", link_base="http://lm-links.invalid") as server:
        result = next_steps.ask(facts, settings_for(server))
    assert sources(result) == ["lm", "lm", "lm"]
    for bullet in result.bullets:
        assert "lm-links" not in bullet.text and "](" not in bullet.text, bullet.text
        assert "<" not in bullet.text and ">" not in bullet.text, bullet.text
    assert "See the details" in result.bullets[1].text
    assert next_steps.is_grounded(result.bullets[1].text, facts)


def test_a_hostile_model_id_is_shown_as_text(monkeypatch, served):
    """The model listing is the server's text too: its id reaches the sidebar caption."""
    hostile = "qwen ![m](http://lm-links.invalid/m.png) <img src=http://lm-links.invalid/t.png>"
    with FakeLMStudio("grounded", model_id=hostile) as server:
        monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(served.serving))
        monkeypatch.setenv("LM_ENDPOINT", server.base_url)
        monkeypatch.setenv("LM_TIMEOUT", str(TIMEOUT))
        monkeypatch.delenv("LM_MODEL", raising=False)
        st.cache_data.clear()
        app = AppTest.from_file(DASHBOARD, default_timeout=30)
        app.run()
        answered(app)
        st.cache_data.clear()
    assert not app.exception
    captions = [caption.value for caption in app.sidebar.caption]
    shown = [caption for caption in captions if "AI summary generated locally" in caption]
    assert len(shown) == 1
    assert not RAW_TAG.search(rendered(shown[0])), rendered(shown[0])
    assert hostile in rendered_text(shown[0])


def test_one_lm_call_per_distinct_filter_state(dashboard):
    app, server = dashboard("grounded")
    app.run()
    app.session_state["tab"] = "What-if"  # another tab, then a widget that is no filter
    app.run()
    app.slider(key="whatif_share").set_value(0.4).run()
    assert len(server.chat_requests()) == 1, "reruns with the same filters call the LM again"
    app.multiselect(key="ad_sets").set_value(["AS_001", "AS_003"]).run()
    answered(app)
    assert len(server.chat_requests()) == 2
    assert facts_from(server.chat_requests()[-1])["ad_sets"] == 2
