"""Ad-set names and other data text built to be hostile: Markdown images and links, raw HTML,
Streamlit directives, spreadsheet formulas. The dashboard (AppTest), the HTML report and the
what-if CSV must show them as text. The browser half is in test_hostile_text_browser.py."""

import csv
import html
import io
import json
import re
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import queries, whatif
from app.html_report import build_report, default_filters
from app.overview import load_overview
from app.text import csv_cell, markdown_text, unescape_markdown
from marketing_ml_tests.support.dashboard_harness import (
    CLOSED_PORT_ENDPOINT,
    DASHBOARD,
    FOOTER,
    TABS,
)
from marketing_ml_tests.support.hostile_text import (
    RAW_TAG,
    hostile_names,
    hostile_serving_file,
    rendered,
    rendered_text,
)

BASE = "http://127.0.0.1:9"
"""The URL the hostile names point at (nothing listens: AppTest fetches nothing anyway)."""
MARKDOWN_KINDS = (
    "title",
    "header",
    "subheader",
    "markdown",
    "caption",
    "info",
    "warning",
    "success",
    "error",
)


@pytest.fixture
def hostile_app(monkeypatch, served_lakehouse, tmp_path):
    served = served_lakehouse
    serving = tmp_path / "serving.duckdb"
    names = hostile_serving_file(served, serving, BASE)
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    yield serving, names
    st.cache_data.clear()


def markdown_elements(app: AppTest) -> list[str]:
    return [
        str(element.value)
        for root in (app.main, app.sidebar)
        for kind in MARKDOWN_KINDS
        for element in root.get(kind)
    ]


def assert_shown_as_text(app: AppTest) -> str:
    """No element renders an image, a link or a tag from the data (the app's own bold, italics
    and code are fine); the payload reads literally. Returns the visible text."""
    assert not app.exception, [exception.message for exception in app.exception]
    return assert_markdown_is_text(markdown_elements(app))


def assert_markdown_is_text(elements: list[str]) -> str:
    """`assert_shown_as_text` over elements gathered from several runs (every tab's)."""
    for markdown in elements:
        output = rendered(markdown)
        assert not RAW_TAG.search(output), f"{markdown!r} renders as {output!r}"
        tags = re.findall(r"<[^>]*>", output)
        assert not [tag for tag in tags if BASE in tag], f"{markdown!r} renders as {output!r}"
    visible = "\n".join(rendered_text(markdown) for markdown in elements)
    assert f"![p]({BASE}/img" in visible and f"<img src={BASE}/tag" in visible
    assert f"[click]({BASE}/link" in visible and f'<a href="{BASE}/a' in visible
    assert "<b>bold</b>" in visible
    return visible


def test_hostile_names_and_model_text_render_as_text_in_every_tab(hostile_app):
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    elements = []
    for tab in TABS:  # only the open tab's body runs: open each in turn
        app.session_state["tab"] = tab
        app.run()
        assert not app.exception, [exception.message for exception in app.exception]
        elements += markdown_elements(app)
    visible = assert_markdown_is_text(elements)
    assert FOOTER in visible
    assert f"![m]({BASE}/model.png)" in visible, "the model card's text is shown as text"


def hostile_groups(serving: Path, base: str) -> dict[str, str]:
    """Give every ad set's audience attributes (age band, lookalike source, interests) hostile
    text; returns grouping -> the hostile value of the first ad set."""
    names = hostile_names(base, 30)
    with duckdb.connect(str(serving)) as connection:
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT ad_set_id FROM silver.audience_segments ORDER BY ad_set_id"
            ).fetchall()
        ]
        for number, ad_set_id in enumerate(ids):
            age, lookalike, interests = names[number], names[number + 10], names[number + 20]
            connection.execute(
                "UPDATE gold.daily_adset_metrics SET target_age = ?, lookalike_source = ? "
                "WHERE ad_set_id = ?",
                [age, lookalike, ad_set_id],
            )
            connection.execute(
                "UPDATE silver.audience_segments SET target_interests = ? WHERE ad_set_id = ?",
                [interests, ad_set_id],
            )
    return {"age_band": names[0], "lookalike_source": names[10], "audience": names[20]}


@pytest.mark.parametrize("grouping", ["audience", "lookalike_source", "age_band"])
def test_hostile_group_names_render_as_text_in_the_group_views(hostile_app, grouping):
    """The portfolio groups' names are data too: escaped for Plotly in the chart, shown as text
    in the sentence under it, plain cells in the tables; in presenter mode as well."""
    serving, _ = hostile_app
    first = hostile_groups(serving, BASE)[grouping]
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    app.run()
    app.segmented_control(key="group_by").set_value(grouping).run()
    for presenter in (False, True):
        app.toggle(key="presenter").set_value(presenter).run()
        visible = assert_shown_as_text(app)
        figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
        [chart] = [f for f in figures if f["layout"]["title"]["text"].startswith("ROAS by ")]
        labels = chart["data"][0]["y"]
        assert html.escape(first, quote=False) in labels
        assert not [label for label in labels if "<" in label]
        assert not [label for label in chart["layout"]["yaxis"]["categoryarray"] if "<" in label]
        assert "Best " in visible and "<b>bold</b>" in visible
    app.toggle(key="presenter").set_value(False).run()
    [table] = [frame.value for frame in app.dataframe if "group_name" in frame.value]
    assert first in set(table["group_name"]), "table cells hold the text itself"


def test_hostile_names_render_as_text_in_presenter_mode(hostile_app):
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    app.run()
    app.toggle(key="presenter").set_value(True).run()
    visible = assert_shown_as_text(app)
    assert "Next steps" in visible and FOOTER in visible


def test_roas_chart_labels_are_escaped_for_plotly(hostile_app):
    """Plotly renders <a href>, <b> and <br> in category, tick and hover text: each name goes in
    with its tags as entities, which plotly shows as the characters."""
    serving, names = hostile_app
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    app.run()
    figures = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    roas = next(f for f in figures if f["layout"]["title"]["text"] == "ROAS by ad set")
    labels = roas["data"][0]["y"]
    assert sorted(labels) == sorted(html.escape(name, quote=False) for name in names.values())
    assert not [label for label in labels if "<" in label]


def test_report_shows_hostile_names_escaped(hostile_app):
    serving, names = hostile_app
    report = build_report(serving)
    assert f"<img src={BASE}" not in report and f'<a href="{BASE}' not in report
    assert "<b>bold</b>" not in report
    assert "&lt;img src=" in report and "&lt;a href=" in report
    # the charts' JSON (plotly writes < as \u003c there): labels carry entities, not tags
    assert "\\u003ca href" not in report and "\\u003cb\\u003e" not in report
    assert "\\u003cimg" not in report


def test_whatif_csv_neutralises_formulas_and_keeps_numbers(hostile_app):
    serving, names = hostile_app
    overview = load_overview(queries.fetcher(serving), default_filters(serving))
    plan = whatif.reallocate(overview.by_ad_set, 0.3, (0.5, 0.8))
    exported = whatif.plan_csv(plan.plan)
    rows = list(csv.DictReader(io.StringIO(exported)))
    by_id = {row["ad_set_id"]: row for row in rows}
    for ad_set_id, name in names.items():
        if ad_set_id not in by_id:
            continue
        cell = by_id[ad_set_id]["ad_set_name"]
        if name.startswith(("=", "+", "-", "@")):
            assert cell == "'" + name, cell
        else:
            assert cell == name, cell
    neutralised = [row for row in rows if row["ad_set_name"].startswith("'")]
    assert len(neutralised) == 4, [row["ad_set_name"] for row in rows]
    changes = [float(row["spend_change"]) for row in rows]
    assert min(changes) < 0, "donors' negative changes are written as numbers"
    frame = plan.plan.round(2)
    assert [row["spend_change"] for row in rows] == [
        str(value) for value in frame["spend_change"]
    ], "numeric columns, negative values included, are unchanged"


def test_csv_cell_rule_covers_tab_and_carriage_return_and_nothing_else():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(text) == "'" + text
    for value in ("Plain name", "1-1", "a=b", -1.5, 0, None, ""):
        assert csv_cell(value) == value


def test_markdown_text_reads_back_as_the_string():
    for name in hostile_names(BASE, 10):
        assert rendered_text(markdown_text(name)).strip() == name
        assert unescape_markdown(markdown_text(name)) == name
        assert not RAW_TAG.search(rendered(markdown_text(name)).replace("<p>", ""))
