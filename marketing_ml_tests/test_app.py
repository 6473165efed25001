"""The dashboard under Streamlit's AppTest, on a serving file built by materializing the graph."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from datetime import date
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.testing.v1 import AppTest
from websockets.sync.client import connect

from marketing_ml.report import report, report_path
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.conftest import Lakehouse

DASHBOARD = str(Path(__file__).resolve().parent.parent / "app" / "dashboard.py")
KPI_LABELS = ["Spend", "Revenue", "Bookings", "ROAS", "CPA"]
FOOTER = "Generated locally with DuckDB + LM Studio | v1.0"
CLOSED_PORT_ENDPOINT = "http://127.0.0.1:9/v1"
"""Nothing listens on port 9: LM Studio is offline, answered at once with a refused connection."""
_built: dict[str, Lakehouse] = {}


def served_lakehouse(tmp_path_factory) -> Lakehouse:
    """The whole graph (and the report) materialized once per session from generated data."""
    if "lakehouse" not in _built:
        root = tmp_path_factory.mktemp("served")
        lakehouse = Lakehouse(root / "raw", root / "lakehouse.duckdb", root / "serving.duckdb")
        write_sample_data(lakehouse.raw_dir, ad_sets=10, days=90, seed=3)
        definitions = lakehouse.definitions
        wired = any(report.key in getattr(asset, "keys", ()) for asset in definitions.assets)
        result = lakehouse.materialize(extra_checks=() if wired else (report,))
        assert result.success, "the graph failed to materialize"
        _built["lakehouse"] = lakehouse
    return _built["lakehouse"]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Lakehouse:
    return served_lakehouse(tmp_path_factory)


@pytest.fixture
def app_env(monkeypatch, served: Lakehouse) -> Lakehouse:
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(served.serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    yield served
    st.cache_data.clear()


def run_app(app: AppTest | None = None) -> AppTest:
    app = app or AppTest.from_file(DASHBOARD, default_timeout=30)
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


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

    def money(value: float) -> str:
        if value >= 1_000_000:
            return f"£{value / 1_000_000:.2f}m"
        if value >= 10_000:
            return f"£{value / 1_000:.1f}k"
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
    assert [tab.label for tab in app.tabs] == [
        "Overview",
        "Forecasts",
        "Data quality",
        "Models",
        "What-if",
    ]
    assert list(metric_values(app))[:5] == KPI_LABELS
    assert len(app.get("plotly_chart")) >= 4
    assert FOOTER in texts(app)
    so_whats = [info.value for info in app.info]
    assert any(
        "below the 4.00× target" in text or "meet the 4.00× target" in text for text in so_whats
    )
    assert any("ad-set days" in text for text in so_whats)


def test_page_opens_with_its_title_and_no_stray_text_above_it(app_env):
    app = run_app()
    assert app.main.children[0].value == "Marketing performance"


def test_default_kpis_cover_the_last_28_days_of_every_ad_set(app_env):
    app = run_app()
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
    run_app(app)
    assert metric_values(app)["Spend"] != default["Spend"]
    app.button(key="select_all").click()
    run_app(app)
    assert len(app.multiselect(key="ad_sets").value) == 10
    app.button(key="reset_filters").click()
    run_app(app)
    assert app.number_input(key="roas_target").value == 4.0
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
    app = run_app()
    warnings = [warning.value for warning in app.warning]
    assert sum("Not available yet: run `make run`" in text for text in warnings) == 3
    assert list(metric_values(app))[:5] == KPI_LABELS


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
    app = run_app()
    assert any("risk of under-pacing tomorrow" in info.value for info in app.info)
    provenance = [
        caption.value for caption in app.caption if "trained on data through" in caption.value
    ]
    trained_through = app_env.serving_query(
        "SELECT DISTINCT model_version, trained_through FROM gold.scored_adsets"
    )
    assert len(trained_through) == 1 and len(provenance) == 2
    version, day = trained_through[0]
    assert f"`{version}`" in provenance[0] and f"{day:%d %b %Y}" in provenance[0]
    assert sum("validation rows" in info.value for info in app.info) == 2


def test_whatif_moves_budget_and_offers_the_plan_as_csv(app_env):
    app = run_app()
    app.slider(key="whatif_share").set_value(0.3)
    run_app(app)
    assert any(
        info.value.startswith("Moving £") and "(30% of the spend" in info.value for info in app.info
    )
    assert app.get("download_button")


def test_report_asset_writes_a_self_contained_html_next_to_the_serving_file(served):
    path = report_path(served.serving)
    html = path.read_text(encoding="utf-8")
    assert path.parent == served.serving.parent / "report"
    for label in (*KPI_LABELS, FOOTER, "Data quality", "Model evidence"):
        assert label in html
    assert "<script src=" not in html, "the report must not load scripts from the network"
    assert "Plotly.newPlot" in html and len(html) > 1_000_000, "plotly.js is not embedded"


# --- deployment defaults: .streamlit/config.toml --------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_committed_streamlit_config_is_offline_on_loopback_with_a_viewer_toolbar():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["client"]["disableDataExport"] is True, "dataframe CSVs skip app.text.csv_text"


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
    """`streamlit run app/dashboard.py` from the repository root, no address flag: the committed
    config puts it on 127.0.0.1 only and tells the page not to gather usage statistics."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MARKETING_ML_SERVING_DB": str(tmp_path / "none" / "serving.duckdb")}
    for name in list(env):
        if name.startswith("STREAMLIT_"):
            del env[name]
    log = tmp_path / "streamlit.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/dashboard.py"]
        + ["--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
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
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
