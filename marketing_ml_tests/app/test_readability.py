"""Figures written for people, in the dashboard (AppTest) and the HTML report: colours that mean
good or bad news the right way round, headers in words, thousands separators, £ and ×, a signed
change as +£5,417 / −£5,417, no "↓ -0.0%" for a change that rounds to nothing."""

import json
import re
import shutil
from html.parser import HTMLParser

import duckdb
import pandas as pd
import pytest
import streamlit as st
from streamlit.proto.Metric_pb2 import Metric as MetricProto
from streamlit.testing.v1 import AppTest

from app import narrative
from app.html_report import build_report
from app.text import unescape_markdown
from marketing_ml_tests.support.dashboard_harness import CLOSED_PORT_ENDPOINT, DASHBOARD

SNAKE = re.compile(r"[a-z0-9]_[a-z0-9]")
THOUSANDS = re.compile(r"\d,\d{3}\b")


@pytest.fixture
def serving(served_lakehouse, monkeypatch):
    path = served_lakehouse.serving
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(path))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    yield path
    st.cache_data.clear()


def render(tab: str | None = None) -> AppTest:
    """The dashboard's first run; with `tab`, with that tab open (only the open tab runs)."""
    app = AppTest.from_file(DASHBOARD, default_timeout=30)
    if tab is not None:
        app.session_state["tab"] = tab
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def column_config(frame) -> dict:
    return json.loads(frame.proto.columns or "{}")


def shown_tables(tab) -> list[tuple[pd.DataFrame, dict]]:
    return [(frame.value, column_config(frame)) for frame in tab.get("dataframe")]


def header(config: dict, name: str) -> str:
    return (config.get(name) or {}).get("label") or name


def test_forecast_bars_are_green_for_good_news_and_red_for_bad(serving):
    forecasts = render("Forecasts").tabs[1]
    [config] = [
        config for frame, config in shown_tables(forecasts) if "roas_on_target_prob" in frame
    ]
    assert config["roas_on_target_prob"]["type_config"]["color"] == "auto"
    assert config["under_pacing_risk"]["type_config"]["color"] == "auto-inverse"


def test_data_quality_headers_are_words_and_counts_have_thousands_separators(serving):
    quality = render("Data quality").tabs[2]
    tables = shown_tables(quality)
    assert len(tables) == 3
    for frame, config in tables:
        headers = [header(config, name) for name in frame.columns if config.get(name) != {}]
        assert not [text for text in headers if SNAKE.search(text)], headers
        for name in frame.columns:
            if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(
                frame[name]
            ):
                assert "," in config[name]["type_config"]["format"], (name, config[name])
    accounting = next(config for frame, config in tables if "file_records" in frame)
    assert header(accounting, "file_records") == "Records in the file"


def test_models_tab_shows_the_drift_verdict_beside_the_scores_not_in_an_expander(serving):
    models = render("Models").tabs[3]
    verdicts = [
        element.value
        for kind in ("success", "warning")
        for element in models.get(kind)
        if "feature drift" in element.value.lower() or "Feature drift" in element.value
    ]
    assert len(verdicts) == 2, verdicts  # one per model
    captions = [caption.value for caption in models.caption]
    assert sum("not a model feature" in caption for caption in captions) == 2
    for expander in models.get("expander"):
        assert not any("drift" in element.value.lower() for element in expander.get("success"))
        assert not any("drift" in element.value.lower() for element in expander.get("warning"))


def test_whatif_changes_are_signed_before_the_pound(serving):
    whatif = render("What-if").tabs[4]
    [plan] = [frame for frame, _ in shown_tables(whatif) if "spend_change" in frame]
    changes = [value for value in plan["spend_change"] if value != "£0"]
    assert changes, plan
    assert all(re.fullmatch(r"[+−]£[\d,.]+k?m?", value) for value in changes), changes
    assert any(value.startswith("+£") for value in changes)
    assert any(value.startswith("−£") for value in changes)


def test_signed_money_puts_the_sign_before_the_pound():
    assert narrative.signed_money(5417) == "+£5.42k"
    assert narrative.signed_money(-5417) == "−£5.42k"
    assert narrative.signed_pounds(-5417) == "−£5,417"
    assert narrative.signed_money(0.001) == "£0"
    assert narrative.signed_pounds(0.001) == "£0"
    assert narrative.percent_change(-0.0004) is None
    assert narrative.percent_change(0.052) == "+5.2%"


@pytest.mark.parametrize(
    ("value", "prose", "table"),
    [
        (950, "£950", "£950"),
        (12.5, "£12.50", "£12.50"),
        (999.6, "£1k", "£1,000"),
        (9_996, "£10k", "£9,996"),
        (12_745, "£12.7k", "£12,745"),
        (113_449, "£113k", "£113,449"),
        (999_600, "£1m", "£999,600"),
        (1_870_000, "£1.87m", "£1,870,000"),
        (52_300_000, "£52.3m", "£52,300,000"),
    ],
)
def test_money_has_three_significant_figures_in_prose_and_full_figures_in_tables(
    value, prose, table
):
    """One money style: a sentence never mixes "+£9,689 to +£15.4k"; a table keeps every pound."""
    assert narrative.money(value) == prose
    assert narrative.FORMATS["money"](value) == table
    assert narrative.signed_money(-value) == narrative.MINUS + prose


@pytest.mark.parametrize(
    ("change", "rise_is_good", "expected"),
    [
        (2_260.0, True, ("+£2.26k", "normal")),
        (-2_260.0, True, ("-£2.26k", "normal")),
        (-52_300.0, False, ("-£52.3k", "inverse")),
        (400.0, None, ("+£400", "off")),
        (0.001, True, (None, "off")),
        (float("nan"), True, (None, "off")),
    ],
)
def test_a_money_delta_has_its_arrow_from_the_sign_and_its_colour_from_the_meaning(
    change, rise_is_good, expected
):
    """st.metric draws a down arrow for a leading "-" (an ASCII one: a real minus reads as a
    rise), and a change that rounds to £0 gets no arrow at all, never "+£0.00" in green."""
    assert narrative.money_delta(change, rise_is_good) == expected


@pytest.fixture
def flat_serving(serving, tmp_path, monkeypatch):
    """The served lakehouse with every ad-set day alike, but for one cent more revenue on the
    last day: every KPI's change on the previous period rounds to 0.0%."""
    path = tmp_path / "serving.duckdb"
    shutil.copy(serving, path)
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "UPDATE gold.daily_adset_metrics SET spend = 100, revenue = 400, bookings = 2, "
            "roas = 4, cpa = 50"
        )
        connection.execute(
            "UPDATE gold.daily_adset_metrics SET revenue = 400.01 "
            "WHERE date = (SELECT max(date) FROM gold.daily_adset_metrics)"
        )
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(path))
    return path


def test_a_change_that_rounds_to_zero_shows_no_delta(flat_serving):
    app = render()
    tiles = {metric.label: metric for metric in app.metric}
    for label in ("Spend", "Revenue", "Bookings", "ROAS", "CPA"):
        assert not tiles[label].delta, (label, tiles[label].delta)
    report = build_report(flat_serving)
    assert "0.0%" not in report
    assert report.count("unchanged on the previous period") == 5


class Tables(HTMLParser):
    """Every <table> of an HTML page as a DataFrame of its cell texts (first row: headers)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def frames(self) -> list[pd.DataFrame]:
        return [pd.DataFrame(rows[1:], columns=rows[0]) for rows in self.tables if rows]


def test_report_tables_show_pounds_ratios_words_and_thousands(serving):
    report = build_report(serving)
    tables = Tables(report).frames()
    top = tables[0]
    assert list(top.columns) == ["Ad set", "ROAS", "Spend", "Revenue"]
    assert top["ROAS"].str.endswith("×").all()
    assert top["Spend"].str.startswith("£").all() and top["Revenue"].str.startswith("£").all()
    accounting = next(table for table in tables if "File" in table.columns)
    assert not [column for column in accounting.columns if SNAKE.search(str(column))]
    assert "Records in the file" in accounting.columns
    counts = accounting["Records in the file"].astype(str)
    assert any(THOUSANDS.search(value) for value in counts), counts.tolist()
    assert "£+" not in report and "£-" not in report


def whatif_metrics(app: AppTest) -> dict:
    return {metric.label: metric.proto for metric in app.tabs[4].metric}


@pytest.mark.parametrize("scenario", ["same_budget", "target_roas", "same_revenue"])
def test_every_whatif_arrow_agrees_with_the_sign_beside_it(serving, scenario):
    """An up arrow stood beside a negative uplift: a delta with a "-" points down, one with a
    "+" up, and a range or a note ("uplift −£11.6k to +£8.40k") has no arrow at all."""
    app = render("What-if")
    app.radio(key="plan_scenario").set_value(scenario).run()
    assert not app.exception
    metrics = whatif_metrics(app)
    assert len(metrics) >= 6, list(metrics)
    for label, proto in metrics.items():
        if not proto.delta:
            continue
        expected = {"-": MetricProto.DOWN, "+": MetricProto.UP}.get(
            proto.delta[0], MetricProto.NONE
        )
        assert proto.direction == expected, (label, proto.delta, proto.direction)
        assert not re.match(r"[+-]£0(\.00)?\b", proto.delta), (label, proto.delta)


def test_same_revenue_for_less_shows_the_saving_in_the_spend_tile_in_green(serving):
    """It showed "+£0.00" in green and no saving: the Spend tile now carries the cut, down and
    green (a saving is the point of the scenario), and equals the plan's totals."""
    app = render("What-if")
    app.radio(key="plan_scenario").set_value("same_revenue").run()
    spend = whatif_metrics(app)["Spend, recommended"]
    assert re.fullmatch(r"-£[\d.,]+[km]? a day", spend.delta), spend.delta
    assert spend.direction == MetricProto.DOWN and spend.color == MetricProto.GREEN
    app.radio(key="plan_scenario").set_value("target_roas").run()
    spend = whatif_metrics(app)["Spend, recommended"]
    assert not spend.delta or spend.color == MetricProto.GRAY, spend


def test_the_naive_rule_is_valued_once_a_day_on_the_plans_curves(serving):
    """The naive box mixed 28-day totals with per-day figures and valued the rule twice (an
    elasticity projection beside the curves): now one valuation, a day, and its table's spend is
    the plan's spend today for the same ad sets."""
    whatif = render("What-if").tabs[4]
    labels = [metric.label for metric in whatif.metric]
    assert "Naive rule: expected uplift (same curves)" in labels
    assert not {"Revenue after", "ROAS after", "Budget moved"} & set(labels), labels
    assert not [slider for slider in whatif.slider if slider.key == "whatif_elasticity"]
    tables = {tuple(frame.columns): frame for frame, _ in shown_tables(whatif)}
    [plan] = [frame for columns, frame in tables.items() if "current_spend" in columns]
    [naive] = [frame for columns, frame in tables.items() if "revenue_change" in columns]
    today = plan.set_index("ad_set_id")["current_spend"]
    assert naive["spend"].to_numpy() == pytest.approx(
        today.loc[naive["ad_set_id"]].to_numpy(), abs=0.01
    )
    uplift = next(m.value for m in whatif.metric if m.label.startswith("Naive rule"))
    [sentence] = [info.value for info in whatif.info if "naive rule moves" in info.value]
    assert uplift.removesuffix(" a day") in sentence and "a day" in sentence


def test_the_models_tab_explains_its_jargon_in_words(serving):
    """AUC, Brier, ECE and PSI each explained in a line; a model's label column in words, not
    `label_under_pacing_next`; its version hash shortened and said to be an id of the fit."""
    models = render("Models").tabs[3]
    text = "\n".join(
        unescape_markdown(str(element.value))
        for kind in ("markdown", "caption", "info", "success", "warning")
        for element in models.get(kind)
    )
    for term in (
        "AUC: how often the model ranks",
        "Brier: the mean squared gap",
        "ECE (expected calibration error)",
        "PSI (population stability index)",
        "Learns from whether the ad set under-paced the next day",
        "Learns from whether the ad set's ROAS over the next 7 days reached the ROAS target",
    ):
        assert term in text, term
    assert "label_" not in text
    with duckdb.connect(str(serving), read_only=True) as connection:
        versions = [
            connection.execute(f"SELECT model_version FROM {table}").fetchone()[0]
            for table in ("models.pacing_risk_model", "models.conversion_model")
        ]
    for version in versions:
        assert len(version) > 7 and version not in text
        assert f"version {version[:7]} (an id of this fit" in text


def test_the_reports_footer_does_not_name_lm_studio_which_it_never_calls(serving):
    footer = re.search(r"<footer>(.*?)</footer>", build_report(serving)).group(1)
    assert footer.startswith("Generated locally with DuckDB | v1.0")
    assert "LM Studio" not in footer


MAX_HEADER = 20
"""Characters a table header may have: the grid sizes a column to its cells and cuts a longer
header ("Expected r…"); a longer meaning goes in the column's help."""


@pytest.mark.parametrize("tab", ["Overview", "Forecasts", "What-if", "Models"])
def test_every_table_header_is_short_enough_to_be_read_whole(serving, tab):
    index = ["Overview", "Forecasts", "Data quality", "Models", "What-if"].index(tab)
    tables = shown_tables(render(tab).tabs[index])
    assert tables
    long = [
        header(config, name)
        for frame, config in tables
        for name in frame.columns
        if (config.get(name) or {}).get("hidden") is not True
        and len(header(config, name)) > MAX_HEADER
        and (config.get(name) or {}).get("width") != "large"
    ]
    assert not long, long
