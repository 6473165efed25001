"""The server's warm-up (app/warmup.py, run by app/serve.py before it answers): the first
visitor of a fresh server renders from caches it filled, and the page's imports stay light."""

import json
import os
import subprocess
import sys

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import charts, queries
from app.warmup import page_modules, warm_caches
from marketing_ml_tests.support import REPOSITORY
from marketing_ml_tests.support.chromium import streamlit_server
from marketing_ml_tests.support.dashboard_harness import (
    CLOSED_PORT_ENDPOINT,
    DASHBOARD,
    KPI_LABELS,
    SERVER,
)


@pytest.fixture
def served_env(monkeypatch, served_lakehouse):
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(served_lakehouse.serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield served_lakehouse
    st.cache_data.clear()
    st.cache_resource.clear()


def test_a_warmed_process_renders_the_first_page_without_reading_or_drawing_again(
    served_env, monkeypatch
):
    """The warm-up reads and draws what a new session's defaults ask for: had it used other
    filters, another ROAS view or missed the plan, the first render would open the serving file
    or build a figure again."""
    warm_caches()

    def refuse(*arguments):
        raise AssertionError(f"the first render read or drew again: {arguments!r:.200}")

    monkeypatch.setattr(queries, "connected_fetcher", refuse)
    for figure in ("spend_revenue", "roas_ranking", "pacing_mix"):
        monkeypatch.setattr(charts, figure, refuse)
    app = AppTest.from_file(DASHBOARD, default_timeout=60).run()
    assert not app.exception, [exception.message for exception in app.exception]
    assert [metric.label for metric in app.metric] == KPI_LABELS


def test_warm_up_without_a_serving_file_only_imports(monkeypatch, tmp_path):
    """Before the first build there is nothing to read: the server must still start."""
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(tmp_path / "none" / "serving.duckdb"))
    warm_caches()
    assert all(module in sys.modules for module in page_modules())


def test_page_modules_are_the_dashboards_imports_down_to_submodules():
    modules = page_modules()
    for module in ("app.queries", "app.cache", "app.frame", "app.tabs.overview_tab"):
        assert module in modules
    assert "app.cache.Serving" not in modules  # a name imported from a module, not a module


def test_the_page_imports_no_scipy():
    """scipy.stats and scipy.optimize took 2.3-2.7 s and 0.9-1 s of a fresh server's first
    render at a load of 12, for two quantiles and one fit the first render never runs
    (planning/calendar.py); the quantiles' scipy.special is imported where they are computed."""
    script = (
        "import importlib, json, sys\n"
        "from app.warmup import page_modules\n"
        "for module in page_modules(): importlib.import_module(module)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('scipy', 'planning'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "planning.calendar" in loaded  # the module whose quantiles once loaded scipy.stats
    assert not {module for module in loaded if module.split(".")[0] == "scipy"}


def test_a_serving_file_that_cannot_be_read_still_lets_the_server_start(tmp_path):
    """A failed warm-up is logged and the server answers: its page shows the error, as a plain
    `streamlit run app/dashboard.py` would."""
    broken = tmp_path / "serving.duckdb"
    broken.write_text("not a DuckDB file")
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(broken),
        "LM_ENDPOINT": CLOSED_PORT_ENDPOINT,
    }
    log = tmp_path / "streamlit.log"
    with streamlit_server(SERVER, env, log, cwd=REPOSITORY) as (url, server):
        assert server.poll() is None
    assert "Could not prepare the first render" in log.read_text()
