"""A real browser: headless Chromium loads `streamlit run app/serve.py` over loopback.

Chromium is driven through the DevTools protocol (marketing_ml_tests.support.chromium, shared with
scripts/browser_timing.py): `--dump-dom` would fire before Streamlit renders the page over its
own websocket.
"""

import base64
import os
import time
from pathlib import Path

import pytest

from marketing_ml.defs.serving.presenter_report import report_path
from marketing_ml_tests.support.chromium import (
    CHROMIUM,
    chromium_page,
    click,
    evaluate,
    streamlit_server,
    wait_for,
)
from marketing_ml_tests.support.dashboard_harness import (
    CLOSED_PORT_ENDPOINT,
    FOOTER,
    KPI_LABELS,
    SERVER,
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture
def dashboard_url(served_lakehouse, tmp_path):
    served = served_lakehouse
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(served.serving),
        "LM_ENDPOINT": CLOSED_PORT_ENDPOINT,
    }
    with streamlit_server(SERVER, env, tmp_path / "streamlit.log") as (url, _):
        yield url


@pytest.fixture
def served_report(served_lakehouse) -> Path:
    """The report the pipeline wrote next to the served lakehouse's serving file."""
    return report_path(served_lakehouse.serving)


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


PHONE = {"width": 414, "height": 896}
"""A phone held upright: Streamlit collapses the sidebar below 768 px."""
SCREENS = {"laptop": LAPTOP, "phone": PHONE}
CUT_TEXT = """
(() => {
  const clipped = (element) => {
    const style = getComputedStyle(element);
    return (style.overflow !== 'visible' || style.textOverflow === 'ellipsis')
      && element.scrollWidth > element.clientWidth + 1;
  };
  const boxes = [...document.querySelectorAll(
    '[data-testid="stMetric"], .st-key-plan_headline [data-testid="stAlert"]')]
    .filter((box) => box.getBoundingClientRect().width > 0);
  const cut = [];
  for (const box of boxes) {
    for (const element of [box, ...box.querySelectorAll('*')]) {
      const text = (element.innerText || '').trim();
      if (text && (clipped(element) || (element.children.length === 0 && text.endsWith('…')))) {
        cut.push(text.slice(0, 80));
      }
    }
  }
  return {
    boxes: boxes.length,
    cut,
    page: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
  };
})()
"""
"""Every metric tile and the plan's headline: the texts cut by their box (an ellipsis or a
clipped overflow), how many boxes were looked at, and the page's width against the window's."""


def open_tab(devtools, name: str, shown: str) -> None:
    """A real click on a tab (scrolled into view first: on a phone the tabs sit below Next
    steps), then wait for `shown` (a JavaScript condition) with no script running."""
    locate = (
        "(() => { const tab = [...document.querySelectorAll('[role=tab]')]"
        f".find((tab) => tab.innerText.includes({name!r})); tab.scrollIntoView({{block: 'center'}});"
        " const box = tab.getBoundingClientRect(); return [box.x + box.width / 2,"
        " box.y + box.height / 2]; })()"
    )
    evaluate(devtools, locate, strict=True)
    time.sleep(0.5)  # the scroll settles before the click lands
    click(devtools, *evaluate(devtools, locate, strict=True))
    rendered(devtools, shown, f"the {name} tab")


def screenshot(devtools, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(devtools("Page.captureScreenshot", format="png")["data"]))


@pytest.mark.parametrize("screen", list(SCREENS))
def test_no_metric_tile_or_headline_is_cut_on_the_overview_or_what_if(
    dashboard_url, devtools, screen, tmp_path
):
    """ "£113.4…", "£589k–£6…" and "Expected revenue tomor…" were cut by their tiles at 1366×768:
    every tile and the plan's headline now show their whole text, at a laptop's size and a
    phone's, and the page is never wider than the window."""
    size = SCREENS[screen]
    devtools(
        "Emulation.setDeviceMetricsOverride", **size, deviceScaleFactor=1, mobile=screen == "phone"
    )
    devtools("Page.navigate", url=dashboard_url)
    rendered(devtools, "!!document.querySelector('.st-key-plan_headline')", "the Overview")
    time.sleep(1.0)  # fonts and layout settle
    overview = evaluate(devtools, CUT_TEXT, strict=True)
    screenshot(devtools, tmp_path / f"overview-{screen}.png")
    open_tab(devtools, "What-if", "document.body.innerText.includes('Naive rule, for comparison')")
    time.sleep(1.0)
    whatif = evaluate(devtools, CUT_TEXT, strict=True)
    screenshot(devtools, tmp_path / f"whatif-{screen}.png")
    # the headline with five KPI tiles; with the plan's four tiles and the naive rule's two
    assert overview["boxes"] >= 6 and whatif["boxes"] >= 7, (overview, whatif)
    for view in (overview, whatif):
        assert view["cut"] == [], view
        assert view["page"] <= view["viewport"] == size["width"], view


NEXT_STEPS_HEADING = """
(() => {
  const heading = [...document.querySelectorAll('h3')]
    .find((h) => h.innerText.trim() === 'Next steps' && h.getBoundingClientRect().height > 0);
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  if (!heading) return null;
  const box = heading.getBoundingClientRect();
  return {
    top: box.top, bottom: box.bottom, left: box.left, right: box.right,
    viewport: [window.innerWidth, window.innerHeight],
    in_sidebar: !!(sidebar && sidebar.contains(heading)),
    sidebar_open: !!sidebar && sidebar.getAttribute('aria-expanded') === 'true',
  };
})()
"""


def test_next_steps_are_in_view_on_a_phone_without_opening_the_sidebar(dashboard_url, devtools):
    """On a phone Streamlit collapses the sidebar, where Next steps lived: their heading is now
    in the main column, on the first screen, with the sidebar closed."""
    devtools("Emulation.setDeviceMetricsOverride", **PHONE, deviceScaleFactor=1, mobile=True)
    devtools("Page.navigate", url=dashboard_url)
    rendered(devtools, "!!document.querySelector('.st-key-plan_headline')", "the Overview")
    evaluate(devtools, "window.scrollTo(0, 0)")
    heading = wait_for(
        lambda: evaluate(devtools, NEXT_STEPS_HEADING), 30, "a visible Next steps heading"
    )
    assert not heading["in_sidebar"] and not heading["sidebar_open"], heading
    assert 0 <= heading["top"] < heading["bottom"] <= PHONE["height"], heading
    assert 0 <= heading["left"] < heading["right"] <= PHONE["width"], heading
    text = evaluate(devtools, "document.querySelector('.st-key-next_steps_narrow').innerText")
    assert "LM Studio: offline" in text and "(rule-based)" in text, text


def test_next_steps_stay_in_the_sidebar_on_a_laptop(dashboard_url, devtools):
    """Above 768 px the sidebar is open and holds Next steps; the main column's copy is hidden,
    so the page shows them once."""
    devtools("Emulation.setDeviceMetricsOverride", **LAPTOP, deviceScaleFactor=1, mobile=False)
    devtools("Page.navigate", url=dashboard_url)
    rendered(devtools, "!!document.querySelector('.st-key-plan_headline')", "the Overview")
    heading = wait_for(
        lambda: evaluate(devtools, NEXT_STEPS_HEADING), 30, "a visible Next steps heading"
    )
    assert heading["in_sidebar"], heading
    visible = evaluate(
        devtools,
        "[...document.querySelectorAll('h3')].filter((h) => h.innerText.trim() === 'Next steps'"
        " && h.getBoundingClientRect().height > 0).length",
    )
    assert visible == 1


def test_the_report_reads_on_a_phone_its_plan_table_as_cards(served_report, devtools):
    """The report's plan table was wider than a phone: at 414 px each row is a card of "header:
    value" lines and nothing is wider than the page."""
    devtools("Emulation.setDeviceMetricsOverride", **PHONE, deviceScaleFactor=1, mobile=True)
    devtools("Page.navigate", url=served_report.as_uri())
    wait_for(
        lambda: evaluate(
            devtools, "document.readyState === 'complete' && !!document.querySelector('footer')"
        ),
        30,
        "the report to load",
    )
    layout = evaluate(
        devtools,
        """(() => {
          const wide = [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
              && !e.closest('.js-plotly-plot'))
            .map((e) => e.tagName + ': ' + (e.innerText || '').slice(0, 60));
          const cell = [...document.querySelectorAll('td')]
            .find((td) => td.getAttribute('data-label') === 'Why');
          return {
            page: document.documentElement.scrollWidth, viewport: window.innerWidth, wide,
            cell: cell ? getComputedStyle(cell).display : null,
            label: cell ? getComputedStyle(cell, '::before').content : null,
            header: getComputedStyle(document.querySelector('thead')).position,
          };
        })()""",
        strict=True,
    )
    assert layout["page"] <= layout["viewport"] == PHONE["width"], layout
    assert layout["wide"] == [], layout
    assert layout["cell"] == "block" and layout["label"] == '"Why: "', layout
    assert layout["header"] == "absolute", layout
