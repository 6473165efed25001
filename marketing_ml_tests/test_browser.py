"""A real browser: headless Chromium loads `streamlit run app/dashboard.py` over loopback.

Chromium is driven through the DevTools protocol (marketing_ml_tests.chromium, shared with
scripts/browser_timing.py): `--dump-dom` would fire before Streamlit renders the page over its
own websocket.
"""

import base64
import os
import time
from pathlib import Path

import pytest

from marketing_ml_tests.chromium import (
    CHROMIUM,
    chromium_page,
    evaluate,
    streamlit_server,
    wait_for,
)
from marketing_ml_tests.test_app import (
    CLOSED_PORT_ENDPOINT,
    DASHBOARD,
    FOOTER,
    KPI_LABELS,
    served_lakehouse,
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture
def dashboard_url(tmp_path_factory, tmp_path):
    served = served_lakehouse(tmp_path_factory)
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(served.serving),
        "LM_ENDPOINT": CLOSED_PORT_ENDPOINT,
    }
    with streamlit_server(DASHBOARD, env, tmp_path / "streamlit.log") as (url, _):
        yield url


@pytest.fixture
def devtools(tmp_path):
    """A fresh headless Chromium; yields a function that sends DevTools commands to its page."""
    yield from chromium_page(tmp_path)


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
