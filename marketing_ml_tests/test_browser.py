"""A real browser: headless Chromium loads `streamlit run app/dashboard.py` over loopback.

Chromium is driven through the DevTools protocol (websocket, `websockets` ships with
Streamlit): `--dump-dom` would fire before Streamlit renders the page over its own websocket.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from marketing_ml_tests.test_app import (
    CLOSED_PORT_ENDPOINT,
    DASHBOARD,
    FOOTER,
    KPI_LABELS,
    served_lakehouse,
)

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1440,1000",
    "--hide-scrollbars",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def started(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A process in its own session, so the fixture can stop it and every child it spawned."""
    return subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def dashboard_url(tmp_path_factory, tmp_path):
    served = served_lakehouse(tmp_path_factory)
    port = free_port()
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(served.serving),
        "LM_ENDPOINT": CLOSED_PORT_ENDPOINT,
    }
    server = started(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            DASHBOARD,
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
            "--global.developmentMode",
            "false",
        ],
        env,
        tmp_path / "streamlit.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: server.poll() is None and healthy(f"{url}/_stcore/health"),
            60,
            "streamlit to answer its health check",
        )
        yield url
    finally:
        stop(server)


@pytest.fixture
def devtools(tmp_path):
    """A fresh headless Chromium; yields a function that sends DevTools commands to its page."""
    yield from chromium_page(tmp_path)


def chromium_page(tmp_path):
    """The `devtools` fixture's body, for other test modules' fixtures."""
    profile = tmp_path / "chromium-profile"
    browser = started(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        dict(os.environ),
        tmp_path / "chromium.log",
    )
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(
            lambda: port_file.exists() and port_file.read_text().strip(),
            30,
            "chromium to open its DevTools port",
        )
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
            page = next(t for t in json.load(reply) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as socket_:
            counter = iter(range(1, 1_000_000))

            def send(method: str, **params):
                message_id = next(counter)
                socket_.send(json.dumps({"id": message_id, "method": method, "params": params}))
                while True:
                    message = json.loads(socket_.recv(timeout=60))
                    if message.get("id") == message_id:
                        if "error" in message:
                            raise AssertionError(f"{method}: {message['error']}")
                        return message["result"]

            yield send
    finally:
        stop(browser)
        shutil.rmtree(profile, ignore_errors=True)


def evaluate(send, expression: str):
    return send("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get(
        "value"
    )


def test_browser_renders_kpis_and_footer_and_takes_a_screenshot(dashboard_url, devtools, tmp_path):
    devtools(
        "Emulation.setDeviceMetricsOverride",
        width=1440,
        height=2400,
        deviceScaleFactor=1,
        mobile=False,
    )
    devtools("Page.navigate", url=dashboard_url)
    wait_for(
        lambda: evaluate(
            devtools,
            "!!document.querySelector('[data-test-script-state=\"notRunning\"]') && "
            "document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 5 && "
            "document.querySelectorAll('.js-plotly-plot').length >= 2",
        ),
        60,
        "the app to finish its script run with KPI tiles and charts",
    )
    text = evaluate(devtools, "document.body.innerText")
    for label in (*KPI_LABELS, FOOTER, "Next steps", "LM Studio: offline"):
        assert label in text, f"{label!r} is not visible in the page"
    assert "Traceback" not in text
    time.sleep(1.0)  # let plotly finish its first paint
    shot = devtools("Page.captureScreenshot", format="png")
    screenshot = tmp_path / "dashboard.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.stat().st_size > 20_000


LAPTOP = {"width": 1366, "height": 768}
"""The screen the plan's headline must fit on without scrolling (issue 12)."""
HEADLINE_BOX = """
(() => {
  const headline = document.querySelector('.st-key-plan_headline');
  if (!headline || !headline.innerText.trim()) return null;
  const box = headline.getBoundingClientRect();
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const blocks = [...main.querySelectorAll('[data-testid="stElementContainer"]')]
    .filter((block) => !headline.contains(block) && block.getBoundingClientRect().height > 0
      && block.innerText.trim());
  return {
    top: box.top,
    bottom: box.bottom,
    viewport: window.innerHeight,
    scrolled: window.scrollY,
    text: headline.innerText,
    above: blocks.filter((block) => block.getBoundingClientRect().top < box.top)
      .map((block) => block.innerText.trim()),
  };
})()
"""


def rendered(devtools, condition: str, what: str):
    return wait_for(
        lambda: evaluate(
            devtools,
            "!!document.querySelector('[data-test-script-state=\"notRunning\"]') && "
            f"document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 5 && ({condition})",
        ),
        60,
        what,
    )


@pytest.mark.parametrize("presenter", [False, True], ids=["dashboard", "presenter"])
def test_the_plan_headline_is_the_first_block_and_visible_on_a_1366x768_screen(
    dashboard_url, devtools, presenter
):
    devtools("Emulation.setDeviceMetricsOverride", **LAPTOP, deviceScaleFactor=1, mobile=False)
    devtools("Page.navigate", url=dashboard_url)
    rendered(devtools, "!!document.querySelector('.st-key-plan_headline')", "the headline")
    if presenter:
        evaluate(devtools, "document.querySelector('.st-key-presenter input').click()")
        rendered(
            devtools,
            "!document.querySelector('[data-testid=\"stTabs\"]')",
            "presenter mode (no tabs)",
        )
    evaluate(devtools, "window.scrollTo(0, 0)")
    box = wait_for(lambda: evaluate(devtools, HEADLINE_BOX), 30, "the plan headline's box")
    assert "Budget plan for " in box["text"], box  # after the icon's ligature name
    assert " expected revenue a day" in box["text"], box
    assert box["above"] == ["Marketing performance"], box
    assert box["scrolled"] == 0 and 0 <= box["top"] < box["bottom"] <= box["viewport"], box
    assert box["viewport"] == LAPTOP["height"]
