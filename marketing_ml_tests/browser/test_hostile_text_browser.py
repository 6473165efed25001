"""Hostile ad-set names and LM replies in a real browser: no request leaves for a URL named in the
data or in the model's reply, and the names read literally on the page and in the report.

The names and the LM bullets point at a real loopback HTTP server that records every request it
gets; headless Chromium loads the dashboard (`streamlit run`), presenter mode and the HTML report.
"""

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.html_report import build_report
from app.text import WORD_JOINER
from marketing_ml_tests.support.chromium import (
    CHROMIUM,
    chromium_page,
    evaluate,
    streamlit_server,
    wait_for,
)
from marketing_ml_tests.support.dashboard_harness import DASHBOARD, FOOTER_WITH_LM, TABS
from marketing_ml_tests.support.hostile_text import hostile_serving_file
from marketing_ml_tests.support.lm_server import FakeLMStudio

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
)


class RecordingServer:
    """Answers every GET with a 1×1 PNG and records the path: any entry is a leak."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PNG)))
                self.end_headers()
                self.wfile.write(PNG)

            do_POST = do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "RecordingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def devtools(tmp_path):
    """A fresh headless Chromium page, driven over DevTools (test_browser.py)."""
    yield from chromium_page(tmp_path)


@pytest.fixture
def recorder():
    with RecordingServer() as server:
        yield server


@pytest.fixture
def hostile_serving(served_lakehouse, tmp_path, recorder) -> Path:
    serving = tmp_path / "serving.duckdb"
    hostile_serving_file(served_lakehouse, serving, recorder.base)
    return serving


@pytest.fixture
def hostile_dashboard(hostile_serving, recorder, tmp_path):
    """`streamlit run` on the hostile serving file, its LM replying with Markdown images and
    links to the recording server."""
    with FakeLMStudio("markdown", link_base=recorder.base) as lm:
        env = {
            **os.environ,
            "MARKETING_ML_SERVING_DB": str(hostile_serving),
            "LM_ENDPOINT": lm.base_url,
            "LM_TIMEOUT": "5",
        }
        env.pop("LM_MODEL", None)
        with streamlit_server(DASHBOARD, env, tmp_path / "streamlit.log") as (url, _):
            yield url, lm


LINKED = """(() => {
  const base = %r;
  const found = [];
  for (const element of document.querySelectorAll('*')) {
    for (const attribute of element.attributes) {
      if (/^(href|src|srcset|xlink:href|action|formaction|data|poster|background)$/i
            .test(attribute.name) && attribute.value.includes(base)) {
        found.push(element.tagName + ' ' + attribute.name + '=' + attribute.value);
      }
    }
  }
  return found;
})()"""


def settled(devtools, condition: str, what: str) -> None:
    wait_for(
        lambda: evaluate(
            devtools,
            "!!document.querySelector('[data-test-script-state=\"notRunning\"]') && "
            f"document.querySelectorAll('.js-plotly-plot').length >= 2 && ({condition})",
        ),
        90,
        what,
    )
    time.sleep(2.0)  # images and plotly's first paint load after the script run


def settled_tab(devtools, tab: str) -> None:
    """The open tab is `tab` and its script run has ended."""
    wait_for(
        lambda: evaluate(
            devtools,
            "!!document.querySelector('[data-test-script-state=\"notRunning\"]') && "
            '[...document.querySelectorAll(\'[role="tab"][aria-selected="true"]\')]'
            f".some((e) => e.innerText.trim() === {tab!r}) && "
            "!!document.querySelector('.st-key-page_end')",
        ),
        90,
        f"the {tab} tab",
    )
    time.sleep(2.0)  # images and plotly's first paint load after the script run


def click(devtools, selector: str, text: str) -> None:
    """A real mouse click (pressed and released) on the first `selector` element showing `text`."""
    x, y = evaluate(
        devtools,
        f"(() => {{ const box = [...document.querySelectorAll({selector!r})]"
        f".find(e => e.innerText.includes({text!r})).getBoundingClientRect();"
        " return [box.x + 12, box.y + box.height / 2]; })()",
    )
    for kind in ("mousePressed", "mouseReleased"):
        devtools("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)


def visible_text(devtools) -> str:
    """The page's text as a reader sees it: without the invisible word joiners app.text puts
    into `://`, `www.` and `@` so that GFM does not turn them into links."""
    return evaluate(devtools, "document.body.innerText").replace(WORD_JOINER, "")


def assert_nothing_fetched_and_names_literal(devtools, recorder) -> str:
    linked = evaluate(devtools, LINKED % recorder.base)
    assert linked == [], linked
    assert recorder.requests == [], f"the browser fetched {recorder.requests}"
    text = visible_text(devtools)
    assert f"![p]({recorder.base}/img" in text, "the image syntax is not shown as text"
    assert f"<img src={recorder.base}/tag" in text and f"[click]({recorder.base}/link" in text
    # LM Studio wrote the Next steps shown, so the footer names it
    assert "<b>bold</b>" in text and FOOTER_WITH_LM in text and "Traceback" not in text
    return text


def test_dashboard_and_presenter_fetch_nothing_named_in_data_or_lm_text(
    hostile_dashboard, devtools, recorder
):
    url, lm = hostile_dashboard
    devtools("Page.navigate", url=url)
    settled(
        devtools,
        "document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 5 && "
        "document.body.innerText.includes('LM Studio: online')",
        "the dashboard with KPI tiles, charts and LM Studio's Next steps (asked in the background)",
    )
    assert lm.chat_requests(), "the LM was asked for next steps"
    text = assert_nothing_fetched_and_names_literal(devtools, recorder)
    assert "LM Studio: online" in text

    for tab in TABS[1:]:  # each tab's body runs when it is opened: nothing fetched there either
        click(devtools, "[data-baseweb='tab'], [role='tab']", tab)
        settled_tab(devtools, tab)
        linked = evaluate(devtools, LINKED % recorder.base)
        assert linked == [], (tab, linked)
        assert recorder.requests == [], f"the browser fetched {recorder.requests} in {tab}"
    click(devtools, "[data-baseweb='tab'], [role='tab']", TABS[0])
    settled_tab(devtools, TABS[0])

    click(devtools, "[data-testid='stSidebar'] label", "Presenter mode")
    settled(
        devtools,
        "!document.querySelector('[data-testid=\"stTabs\"]') && "
        "document.body.innerText.includes('Next steps')",
        "presenter mode",
    )
    assert_nothing_fetched_and_names_literal(devtools, recorder)


def test_report_fetches_nothing_named_in_data(hostile_serving, devtools, recorder, tmp_path):
    report = build_report(hostile_serving)
    assert f"<img src={recorder.base}" not in report and f'<a href="{recorder.base}' not in report
    path = tmp_path / "marketing_report.html"
    path.write_text(report, encoding="utf-8")
    devtools("Page.navigate", url=path.as_uri())
    wait_for(
        lambda: evaluate(devtools, "document.querySelectorAll('.js-plotly-plot').length >= 3"),
        60,
        "the report's charts",
    )
    time.sleep(2.0)
    linked = evaluate(devtools, LINKED % recorder.base)
    assert linked == [], linked
    assert recorder.requests == [], f"the report fetched {recorder.requests}"
    text = visible_text(devtools)
    assert f"![p]({recorder.base}/img" in text and "<b>bold</b>" in text
