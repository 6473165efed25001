"""The dashboard under Streamlit's AppTest, on a serving file built by materializing the graph."""

import base64
import json
import os
import shutil
import socket
import sys
import time
import tomllib
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
import streamlit as st
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.testing.v1 import AppTest
from websockets.sync.client import connect

from app.text import markdown_text, unescape_markdown
from marketing_ml.defs.serving.presenter_report import report_path
from marketing_ml_tests.support import REPOSITORY
from marketing_ml_tests.support.chromium import free_port, started, stop
from marketing_ml_tests.support.dashboard_harness import (
    CLOSED_PORT_ENDPOINT,
    DASHBOARD,
    FOOTER,
    KPI_LABELS,
    TABS,
)
from marketing_ml_tests.support.lakehouse import Lakehouse


@pytest.fixture(scope="module")
def served(served_lakehouse) -> Lakehouse:
    return served_lakehouse


@pytest.fixture
def app_env(monkeypatch, served: Lakehouse) -> Lakehouse:
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(served.serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    yield served
    st.cache_data.clear()


def run_app(app: AppTest | None = None, tab: str | None = None) -> AppTest:
    """Run the dashboard (again); with `tab`, with that tab open: only the open tab's body runs."""
    app = app or AppTest.from_file(DASHBOARD, default_timeout=30)
    if tab is not None:
        app.session_state["tab"] = tab
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def every_tab(app: AppTest | None = None) -> dict[str, AppTest]:
    """Each tab's run, Overview first: {label: the app as it stood with that tab open}. The
    element tree is the last run's, so each tab's elements are read before the next opens."""
    app = app or AppTest.from_file(DASHBOARD, default_timeout=30)
    return {label: snapshot(run_app(app, label)) for label in TABS}


class Snapshot:
    """One run's elements, kept after the app runs again (AppTest's tree is the last run's)."""

    def __init__(self, app: AppTest) -> None:
        self.charts = [chart.proto.spec for chart in app.get("plotly_chart")]
        self.info = [info.value for info in app.info]
        self.warning = [warning.value for warning in app.warning]
        self.caption = [caption.value for caption in app.caption]
        self.texts = texts(app)
        self.metrics = metric_values(app)
        self.opened = [tab.label for tab in app.tabs if tab.children]


def snapshot(app: AppTest) -> Snapshot:
    return Snapshot(app)


def metric_values(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def serving_kpis(serving: Path, ad_set_ids: list[str], start: date, end: date) -> dict[str, str]:
    """The KPIs straight from DuckDB, formatted as the tiles show them."""
    with duckdb.connect(str(serving), read_only=True) as connection:
        spend, revenue, bookings = connection.execute(
            "SELECT sum(spend), sum(revenue), sum(bookings) FROM gold.daily_adset_metrics "
            "WHERE ad_set_id IN (SELECT unnest(?)) AND date BETWEEN ? AND ?",
            [ad_set_ids, start, end],
        ).fetchone()

    def money(value: float) -> str:  # three significant figures above £1,000 (£12.7k, £1.87m)
        for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
            if value >= unit:
                scaled = value / unit
                return f"£{scaled:.{2 if scaled < 10 else 1 if scaled < 100 else 0}f}{suffix}"
        return f"£{value:,.0f}" if value >= 100 else f"£{value:,.2f}"

    return {
        "Spend": money(spend),
        "Revenue": money(revenue),
        "Bookings": f"{int(bookings):,}",
        "ROAS": f"{revenue / spend:.2f}×",
        "CPA": money(spend / bookings),
    }


def texts(app: AppTest) -> str:
    return "\n".join(
        str(element.value)
        for kind in ("markdown", "caption", "info", "warning", "success", "title", "code")
        for element in app.get(kind)
    )


def test_every_tab_renders_with_kpis_charts_and_footer(app_env):
    app = run_app()
    assert [tab.label for tab in app.tabs] == TABS
    tabs = every_tab(app)
    for label, shown in tabs.items():
        assert "Marketing performance" in shown.texts and FOOTER in shown.texts, label
        assert shown.opened == [label], f"{label} open, but {shown.opened} ran"
    assert list(tabs["Overview"].metrics)[:5] == KPI_LABELS
    assert len(tabs["Overview"].charts) == 3
    assert sum(len(shown.charts) for shown in tabs.values()) >= 6
    so_whats = tabs["Overview"].info
    assert any(
        "below the 4.00× target" in text or "meet the 4.00× target" in text for text in so_whats
    )
    assert any("ad-set days" in text for text in so_whats)


def test_only_the_open_tab_runs_its_queries(app_env):
    """A first render pays for the Overview alone: the other tabs' bodies stay empty."""
    app = run_app()
    assert [tab.label for tab in app.tabs if tab.children] == ["Overview"]
    assert not app.get("radio"), "the What-if's scenario radio ran with the What-if tab closed"


def test_page_opens_with_its_title_and_no_stray_text_above_it(app_env):
    app = run_app()
    assert app.main.children[0].value == "Marketing performance"


def test_default_kpis_cover_the_last_28_days_of_every_ad_set(app_env):
    app = run_app()
    picker = app.multiselect(key="ad_sets")
    assert picker.value == [], "every ad set by default, without chips"
    assert len(picker.options) == 10 and all("(AS_0" in label for label in picker.options)
    assert "Showing all 10 ad sets." in texts(app)
    assert "· all 10 ad sets ·" in texts(app)
    ((first_day, last_day),) = app_env.serving_query(
        "SELECT max(date) - INTERVAL 27 DAY, max(date) FROM gold.daily_adset_metrics"
    )
    ad_set_ids = [
        row[0]
        for row in app_env.serving_query("SELECT DISTINCT ad_set_id FROM gold.daily_adset_metrics")
    ]
    expected = serving_kpis(app_env.serving, ad_set_ids, first_day.date(), last_day)
    assert {label: metric_values(app)[label] for label in KPI_LABELS} == expected


def test_filtering_ad_sets_and_dates_changes_kpis_to_the_duckdb_figures(app_env):
    app = run_app()
    before = metric_values(app)
    chosen = ["AS_002", "AS_005", "AS_007"]
    app.multiselect(key="ad_sets").set_value(chosen)
    app.date_input(key="date_range").set_value((date(2024, 8, 10), date(2024, 9, 8)))
    run_app(app)
    after = metric_values(app)
    expected = serving_kpis(app_env.serving, chosen, date(2024, 8, 10), date(2024, 9, 8))
    assert {label: after[label] for label in KPI_LABELS} == expected
    assert after["Spend"] != before["Spend"]
    assert "3 ad sets" in texts(app)


def test_select_all_and_reset_restore_every_ad_set_and_the_default_period(app_env):
    app = run_app()
    default = metric_values(app)
    app.multiselect(key="ad_sets").set_value(["AS_001"])
    app.number_input(key="roas_target").set_value(6.0)
    app.segmented_control(key="group_by").set_value("lookalike_source")
    run_app(app)
    assert metric_values(app)["Spend"] != default["Spend"]
    assert "Showing 1 chosen ad set of 10." in texts(app)
    app.button(key="select_all").click()
    run_app(app)
    assert app.multiselect(key="ad_sets").value == [], "select all is every ad set: no chips"
    assert metric_values(app)["Spend"] == default["Spend"]
    assert "Showing all 10 ad sets." in texts(app)
    app.button(key="reset_filters").click()
    run_app(app)
    assert app.number_input(key="roas_target").value == 4.0
    assert app.segmented_control(key="group_by").value == "ad_set"
    assert metric_values(app) == default


def test_presenter_mode_hides_widgets_and_keeps_the_filters(app_env):
    app = run_app()
    app.multiselect(key="ad_sets").set_value(["AS_001", "AS_002"])
    run_app(app)
    filtered = {label: metric_values(app)[label] for label in KPI_LABELS}
    app.toggle(key="presenter").set_value(True)
    run_app(app)
    for kind in (
        "multiselect",
        "date_input",
        "number_input",
        "slider",
        "button",
        "tabs",
        "dataframe",
        "segmented_control",
    ):
        assert not app.get(kind), f"presenter mode still shows a {kind}"
    assert [toggle.key for toggle in app.toggle] == ["presenter"]
    assert metric_values(app) == filtered
    assert len(app.get("plotly_chart")) == 3
    assert FOOTER in texts(app)
    app.toggle(key="presenter").set_value(False)
    run_app(app)
    assert app.multiselect(key="ad_sets").value == ["AS_001", "AS_002"]


def test_missing_serving_file_shows_the_not_built_page_naming_make_run(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(tmp_path / "nowhere" / "serving.duckdb"))
    st.cache_data.clear()
    app = run_app()
    assert "has not been built yet" in app.title[0].value
    assert [code.value for code in app.code] == ["make run"]
    assert not app.metric


def test_tabs_without_model_tables_say_not_available_and_still_render(
    app_env, tmp_path, monkeypatch
):
    stripped = tmp_path / "serving.duckdb"
    shutil.copy(app_env.serving, stripped)
    with duckdb.connect(str(stripped)) as connection:
        for table in (
            "gold.scored_adsets",
            "gold.scored_conversions",
            "models.pacing_risk_model",
            "models.conversion_model",
        ):
            connection.execute(f"DROP TABLE IF EXISTS {table}")
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(stripped))
    tabs = every_tab()
    warnings = [warning for shown in tabs.values() for warning in shown.warning]
    assert sum("Not available yet: run `make run`" in text for text in warnings) == 3
    assert list(tabs["Overview"].metrics)[:5] == KPI_LABELS


def test_a_new_publish_is_read_at_once_despite_the_cache(app_env, tmp_path, monkeypatch):
    serving = tmp_path / "serving.duckdb"
    shutil.copy(app_env.serving, serving)
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(serving))
    app = run_app()
    before = metric_values(app)["Spend"]
    replacement = tmp_path / "next.duckdb"
    shutil.copy(serving, replacement)
    with duckdb.connect(str(replacement)) as connection:
        connection.execute("UPDATE gold.daily_adset_metrics SET spend = spend * 2")
    os.replace(replacement, serving)
    run_app(app)
    assert metric_values(app)["Spend"] != before


def test_forecasts_and_models_tabs_show_the_scored_tables(app_env):
    app = run_app(tab="Forecasts")
    assert any("risk of under-pacing tomorrow" in info.value for info in app.info)
    provenance = [
        caption.value for caption in app.caption if "trained on data through" in caption.value
    ]
    trained_through = app_env.serving_query(
        "SELECT DISTINCT model_version, trained_through FROM gold.scored_adsets"
    )
    assert len(trained_through) == 1 and len(provenance) == 2
    version, day = trained_through[0]
    shown = unescape_markdown(provenance[0])
    assert f"version {version[:7]} (an id of this fit" in shown and version not in shown
    assert f"{day:%d %b %Y}" in shown
    run_app(app, tab="Models")
    assert sum("validation rows" in info.value for info in app.info) == 2


def test_models_tab_shows_how_well_the_response_curves_predicted_past_weeks(app_env):
    """The curves the budget plan rests on, backtested: the verdict in words with the served
    backtest's own figures, a row per four-week period, the latest period per ad set, and what
    the curves cannot see."""
    from app import evidence, queries
    from app.budget_plan import CURVES_CANNOT_SEE
    from app.text import unescape_markdown

    backtest = queries.response_curve_backtest(app_env.serving)
    assert backtest["cutoff"].nunique() == 2  # 90 days: the 84-day cutoff has no history
    found = evidence.curve_backtest(backtest)
    app = run_app(tab="Models")
    assert any(header.value.startswith("Response curves") for header in app.subheader), [
        header.value for header in app.subheader
    ]
    [verdict] = [info.value for info in app.info if "four-week periods" in info.value]
    assert unescape_markdown(verdict) == found["verdict"]
    assert "predicted total revenue within" in verdict and "of the 90% ranges held" in verdict
    frames = [frame.value for frame in app.get("dataframe")]
    periods = [frame for frame in frames if "In the 90% range" in frame.columns]
    assert len(periods) == 1 and len(periods[0]) == 2
    per_ad_set = [frame for frame in frames if "actual_revenue" in frame.columns]
    assert len(per_ad_set) == 1
    latest = backtest[backtest["cutoff"] == backtest["cutoff"].max()]
    assert sorted(per_ad_set[0]["actual_revenue"].round(2)) == sorted(
        latest["actual_revenue"].round(2)
    )
    assert any(unescape_markdown(caption.value) == CURVES_CANNOT_SEE for caption in app.caption)


def test_the_plan_table_shows_recent_actual_revenue_beside_expected(app_env):
    from app.budget_plan import CURVES_CANNOT_SEE
    from app.text import unescape_markdown

    app = run_app(tab="What-if")
    [table] = [frame.value for frame in app.get("dataframe") if "role" in frame.value]
    columns = list(table.columns)
    assert columns.index("recent_revenue") == columns.index("expected_revenue_recommended_high") + 1
    served = app_env.serving_query("SELECT ad_set_id, recent_revenue FROM gold.budget_plan")
    recent = dict(served)
    for ad_set_id, value in zip(table["ad_set_id"], table["recent_revenue"], strict=True):
        assert value == pytest.approx(recent[ad_set_id])
    assert any(unescape_markdown(caption.value) == CURVES_CANNOT_SEE for caption in app.caption)


UNINFORMATIVE = (
    "uninformative: 99.1% of 700 labelled ad-set days were under-pacing the next day (the rarer "
    "outcome: 6 days; a model needs at least 50 and 2%), so no model was fitted and every ad set "
    "gets the base rate 99.0%"
)


def test_an_uninformative_model_says_why_instead_of_a_risk_per_ad_set(
    app_env, tmp_path, monkeypatch
):
    """Every ad set scored with a 99% base rate would read as "99% risk" ad set by ad set."""
    serving = tmp_path / "serving.duckdb"
    shutil.copy(app_env.serving, serving)
    with duckdb.connect(str(serving)) as connection:
        connection.execute("UPDATE models.pacing_risk_model SET status = ?", [UNINFORMATIVE])
        connection.execute(
            "UPDATE gold.scored_adsets SET under_pacing_risk = 0.99, model_status = ?",
            [UNINFORMATIVE],
        )
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(serving))
    app = run_app(tab="Forecasts")
    shown = [unescape_markdown(info.value) for info in app.info]
    reason = UNINFORMATIVE.removeprefix("uninformative: ")
    assert f"Under-pacing risk: no forecast per ad set. {reason}." in shown
    assert not any("risk of under-pacing tomorrow" in text for text in shown)
    table = app.tabs[1].dataframe[0].value
    assert "under_pacing_risk" not in table and "roas_on_target_prob" in table
    run_app(app, tab="Models")
    models = [unescape_markdown(info.value) for info in app.info]
    assert f"No model: {reason}." in models


def test_whatif_moves_budget_and_offers_the_plan_as_csv(app_env):
    app = run_app(tab="What-if")
    app.slider(key="whatif_share").set_value(0.3)
    run_app(app)
    naive = [unescape_markdown(info.value) for info in app.info if "naive rule moves" in info.value]
    assert len(naive) == 1 and " a day from the " in naive[0], naive
    assert " expected revenue a day on the plan's curves " in naive[0]
    assert app.get("download_button")


def test_the_plan_view_proposes_the_published_lift_test_in_one_sentence(app_env):
    ((proposal, ad_set),) = app_env.serving_query(
        "SELECT test_proposal, test_ad_set_id FROM gold.budget_plan_summary"
    )
    assert proposal.startswith(("Test +", "Even +")) and ad_set
    app = run_app(tab="What-if")
    assert [info.value for info in app.info if info.value.startswith(("Test +", "Even +"))] == [
        markdown_text(proposal)
    ]


def test_report_asset_writes_a_self_contained_html_next_to_the_serving_file(served):
    path = report_path(served.serving)
    html = path.read_text(encoding="utf-8")
    assert path.parent == served.serving.parent / "report"
    for label in (*KPI_LABELS, FOOTER, "Data quality", "Model evidence"):
        assert label in html
    assert "<script src=" not in html, "the report must not load scripts from the network"
    assert "Plotly.newPlot" in html and len(html) > 1_000_000, "plotly.js is not embedded"


# --- deployment defaults: .streamlit/config.toml --------------------------------------------------


def test_committed_streamlit_config_is_offline_on_loopback_with_a_viewer_toolbar():
    config = tomllib.loads((REPOSITORY / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["client"]["disableDataExport"] is True, "dataframe CSVs skip app.text.csv_text"
    assert config["server"]["fileWatcherType"] == "none", "watching cost ~0.3 s per new session"
    assert config["runner"]["magicEnabled"] is False


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (Linux /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def new_session_config(port: int):
    """The settings the server sends a browser when a page opens (Streamlit's NewSession)."""
    back = BackMsg()
    back.rerun_script.SetInParent()
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"]) as stream:
        stream.send(back.SerializeToString())
        for _ in range(50):
            message = ForwardMsg()
            message.ParseFromString(stream.recv(timeout=30))
            if message.WhichOneof("type") == "new_session":
                return message.new_session.config
    raise AssertionError("no NewSession message")


def test_plain_streamlit_run_listens_on_loopback_only_and_gathers_no_statistics(tmp_path):
    """`streamlit run app/serve.py` from the repository root, no address flag: the committed
    config puts it on 127.0.0.1 only and tells the page not to gather usage statistics."""
    port = free_port()
    env = {**os.environ, "MARKETING_ML_SERVING_DB": str(tmp_path / "none" / "serving.duckdb")}
    for name in list(env):
        if name.startswith("STREAMLIT_"):
            del env[name]
    log = tmp_path / "streamlit.log"
    server = started(
        [sys.executable, "-m", "streamlit", "run", "app/serve.py"]
        + ["--server.port", str(port), "--server.headless", "true"],
        env,
        log,
        cwd=REPOSITORY,
    )
    try:
        deadline = time.monotonic() + 60
        while not listening_addresses(port):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert listening_addresses(port) == {"127.0.0.1"}
        with pytest.raises(ConnectionRefusedError):  # any other loopback address: refused
            socket.create_connection(("127.0.0.2", port), timeout=2).close()
        config = new_session_config(port)
        assert config.gather_usage_stats is False
        assert config.toolbar_mode == config.ToolbarMode.VIEWER
        assert config.disable_data_export is True
    finally:
        stop(server)


# --- every ad set by default, the top and bottom of 2,000, portfolio groups -----------------------


def plotly_values(value) -> list:
    """A plotly JSON array: a list, or NumPy's bytes in base64 (`dtype`, `bdata`, `shape`)."""
    if not isinstance(value, dict):
        return list(value)
    array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    if "shape" in value:
        array = array.reshape([int(size) for size in value["shape"].split(",")])
    return array.tolist()


def roas_chart(app: AppTest) -> dict:
    [chart] = [
        figure
        for figure in (json.loads(chart.proto.spec) for chart in app.get("plotly_chart"))
        if figure["layout"]["title"]["text"].startswith("ROAS by")
    ]
    return chart


def widened_serving(served: Lakehouse, target: Path, copies: int = 3) -> Path:
    """A copy of the served file with `copies` more ad sets per ad set (40 in all): the same days
    at a different spend (so a different ROAS), their own ids, names and audience segments."""
    shutil.copy(served.serving, target)
    with duckdb.connect(str(target)) as connection:
        connection.execute(
            "CREATE TEMP TABLE originals AS SELECT DISTINCT ad_set_id FROM gold.daily_adset_metrics"
        )
        for copy in range(1, copies + 1):
            connection.execute(
                f"""
INSERT INTO gold.daily_adset_metrics
SELECT * REPLACE (
    ad_set_id || '_c{copy}' AS ad_set_id,
    ad_set_name || ' copy {copy}' AS ad_set_name,
    spend * (1 + {copy} * 0.37) AS spend
)
FROM gold.daily_adset_metrics WHERE ad_set_id IN (SELECT ad_set_id FROM originals)"""
            )
            connection.execute(
                f"""
INSERT INTO silver.audience_segments
SELECT * REPLACE (ad_set_id || '_c{copy}' AS ad_set_id)
FROM silver.audience_segments WHERE ad_set_id IN (SELECT ad_set_id FROM originals)"""
            )
    return target


def period_totals(serving: Path, start: date, end: date) -> dict[str, tuple[float, float]]:
    """Spend and revenue per ad set over the period, straight from DuckDB."""
    with duckdb.connect(str(serving), read_only=True) as connection:
        rows = connection.execute(
            "SELECT ad_set_name, sum(spend), sum(revenue) FROM gold.daily_adset_metrics "
            "WHERE date BETWEEN ? AND ? GROUP BY ad_set_name",
            [start, end],
        ).fetchall()
    return {name: (spend, revenue) for name, spend, revenue in rows}


def test_top_and_bottom_ten_and_the_pooled_rest_add_up_to_every_ad_set(
    app_env, tmp_path, monkeypatch
):
    serving = widened_serving(app_env, tmp_path / "serving.duckdb")
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(serving))
    app = run_app()
    start, end = app.date_input(key="date_range").value
    totals = period_totals(serving, start, end)
    assert len(totals) == 40
    chart = roas_chart(app)
    bars, pooled = chart["data"]
    shown = [name for name in bars["y"]]
    assert len(shown) == 20 and pooled["y"] == ["20 others (pooled)"]
    by_roas = sorted(totals, key=lambda name: totals[name][1] / totals[name][0])
    assert set(shown) == set(by_roas[:10]) | set(by_roas[-10:]), "the 10 highest and lowest ROAS"
    assert chart["layout"]["yaxis"]["categoryarray"][-1] == by_roas[-1], "the best on top"
    assert chart["layout"]["height"] == 130 + 24 * 21, "a fixed height: one row per bar"
    spend_revenue = plotly_values(bars["customdata"])
    for name, (spend, revenue, _) in zip(shown, spend_revenue, strict=True):
        assert (spend, revenue) == pytest.approx(totals[name])
    [[pooled_spend, pooled_revenue]] = plotly_values(pooled["customdata"])
    rest = [totals[name] for name in totals if name not in shown]
    assert pooled_spend == pytest.approx(sum(spend for spend, _ in rest))
    assert pooled_revenue == pytest.approx(sum(revenue for _, revenue in rest))
    assert plotly_values(pooled["x"]) == pytest.approx([pooled_revenue / pooled_spend])
    every = sum(spend for spend, _ in totals.values())
    assert sum(row[0] for row in spend_revenue) + pooled_spend == pytest.approx(every)
    tables = [frame.value for frame in app.dataframe if "ad_set_name" in frame.value]
    assert [len(table) for table in tables] == [10, 10]
    assert set(tables[0]["ad_set_name"]) | set(tables[1]["ad_set_name"]) == set(shown)
    assert any(
        caption.startswith("20 other ad sets: spend £") for caption in texts(app).split("\n")
    )


def test_a_smaller_ranking_shows_fewer_bars_and_pools_the_rest(app_env, tmp_path, monkeypatch):
    serving = widened_serving(app_env, tmp_path / "serving.duckdb")
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(serving))
    app = run_app()
    app.segmented_control(key="rank_size").set_value(5)
    app.segmented_control(key="rank_by").set_value("spend")
    run_app(app)
    start, end = app.date_input(key="date_range").value
    totals = period_totals(serving, start, end)
    bars, pooled = roas_chart(app)["data"]
    by_spend = sorted(totals, key=lambda name: totals[name][0])
    assert set(bars["y"]) == set(by_spend[:5]) | set(by_spend[-5:])
    assert pooled["y"] == ["30 others (pooled)"]


def group_totals(serving: Path, column: str, start: date, end: date) -> dict:
    """Per group: spend, revenue and ROAS of the sums, straight from DuckDB; the audience is the
    segment's interests, joined by ad set."""
    source = (
        "gold.daily_adset_metrics JOIN silver.audience_segments USING (ad_set_id)"
        if column == "target_interests"
        else "gold.daily_adset_metrics"
    )
    with duckdb.connect(str(serving), read_only=True) as connection:
        rows = connection.execute(
            f"SELECT {column}, sum(spend), sum(revenue), sum(revenue) / sum(spend) FROM {source} "
            "WHERE date BETWEEN ? AND ? GROUP BY ALL",
            [start, end],
        ).fetchall()
    return {group: (spend, revenue, roas) for group, spend, revenue, roas in rows}


@pytest.mark.parametrize(
    ("grouping", "column", "noun"),
    [
        ("audience", "target_interests", "audience"),
        ("lookalike_source", "lookalike_source", "lookalike source"),
        ("age_band", "target_age", "age band"),
    ],
)
def test_group_by_sums_the_ad_sets_of_each_group_in_duckdb(app_env, grouping, column, noun):
    app = run_app()
    start, end = app.date_input(key="date_range").value
    app.segmented_control(key="group_by").set_value(grouping)
    run_app(app)
    expected = group_totals(app_env.serving, column, start, end)
    chart = roas_chart(app)
    assert chart["layout"]["title"]["text"] == f"ROAS by {noun}"
    [bars] = chart["data"]  # fewer than 20 groups: all of them, nothing pooled
    assert sorted(bars["y"]) == sorted(expected)
    roas = dict(zip(bars["y"], plotly_values(bars["x"]), strict=True))
    sums = dict(zip(bars["y"], plotly_values(bars["customdata"]), strict=True))
    for group, (spend, revenue, group_roas) in expected.items():
        assert roas[group] == pytest.approx(group_roas), "ROAS of the group's sums"
        assert sums[group][:2] == pytest.approx([spend, revenue])
    every = period_totals(app_env.serving, start, end)
    assert sum(spend for spend, _, _ in expected.values()) == pytest.approx(
        sum(spend for spend, _ in every.values())
    ), "the groups hold every ad set's spend once"
    [table] = [frame.value for frame in app.dataframe if "group_name" in frame.value]
    assert table["ad_sets"].sum() == 10


def test_group_by_with_chosen_ad_sets_sums_only_those(app_env):
    app = run_app()
    start, end = app.date_input(key="date_range").value
    app.multiselect(key="ad_sets").set_value(["AS_001", "AS_008"])  # both adventure_travelers
    app.segmented_control(key="group_by").set_value("lookalike_source")
    run_app(app)
    [bars] = roas_chart(app)["data"]
    assert sorted(bars["y"]) == ["adventure_travelers"]
    [[spend, revenue, members]] = plotly_values(bars["customdata"])
    chosen = serving_kpis(app_env.serving, ["AS_001", "AS_008"], start, end)
    assert members == 2
    assert metric_values(app)["Spend"] == chosen["Spend"]
    assert f"{revenue / spend:.2f}×" == chosen["ROAS"]


def test_presenter_mode_shows_the_group_by_chosen_in_the_dashboard(app_env):
    app = run_app()
    app.segmented_control(key="group_by").set_value("age_band")
    run_app(app)
    app.toggle(key="presenter").set_value(True)
    run_app(app)
    assert roas_chart(app)["layout"]["title"]["text"] == "ROAS by age band"
    app.toggle(key="presenter").set_value(False)
    run_app(app)
    assert app.segmented_control(key="group_by").value == "age_band"


def test_a_serving_file_without_audience_segments_offers_no_audience_grouping(
    app_env, tmp_path, monkeypatch
):
    serving = tmp_path / "serving.duckdb"
    shutil.copy(app_env.serving, serving)
    with duckdb.connect(str(serving)) as connection:
        connection.execute("DROP TABLE silver.audience_segments")
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(serving))
    app = run_app()
    assert app.segmented_control(key="group_by").options == [
        "Ad set",
        "Lookalike source",
        "Age band",
    ]
