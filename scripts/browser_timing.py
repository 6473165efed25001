"""The dashboard timed in a real browser: `streamlit run app/serve.py` (as `make app` starts it)
on a free loopback port, read by headless Chromium over the DevTools protocol.

    .venv/bin/python scripts/browser_timing.py SERVING_FILE [--repeats 5]

prints one JSON line: the first render on a fresh server (cold) and in new sessions on the same
server (warm, the median of `repeats`), from navigation to the end of the first script run, each
visit in a new Chromium process with a new empty profile, as a user's first visit is (nothing in
the HTTP cache or V8's code cache: every static asset fetched and compiled again); the same warm
visit repeated in one reused browser (`..._warm_reused_s`, the figure this probe reported before:
its cache holds the assets); ten filter changes (date range, ad-set choice, group-by and ROAS
target) in that reused browser, from the input event that commits the change to the end of the
rerun; the server's peak resident memory; the one-minute load average as the cold and the warm
visits started.

"The end of a script run" is read from the page, never guessed with a sleep: a MutationObserver,
installed before the page's own scripts, records every change of Streamlit's
`data-test-script-state` attribute with `performance.now()` (whose origin is the navigation), and
a change is over at the first `notRunning` after a `running` that followed its input event, with
the app's last element (`.st-key-page_end`) on the page. Input events are real DevTools mouse and
key events; their `timeStamp` is taken in the page by a capturing listener.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marketing_ml_tests.support.chromium import (  # noqa: E402
    Send,
    chromium_page,
    click,
    evaluate,
    press,
    streamlit_server,
    wait_for,
)

DEFAULT_DAYS = 28
"""The dashboard's default period (app.html_report.DEFAULT_DAYS): four weeks up to the last day."""
CLOSED_PORT_ENDPOINT = "http://127.0.0.1:9/v1"
"""Nothing listens on port 9: LM Studio offline, known at once (a refused connection)."""
TIMEOUT = 180.0
"""Seconds a render or a rerun may take before the probe gives up (a failure, not a figure)."""
OBSERVER = r"""
(() => {
  window.__scriptStates = [];
  window.__inputs = [];
  for (const kind of ['keydown', 'mouseup']) {
    document.addEventListener(kind, (event) => window.__inputs.push(event.timeStamp), true);
  }
  const watch = () => {
    const root = document.querySelector('[data-testid="stApp"]');
    if (!root) return false;
    const note = () => window.__scriptStates.push(
      [root.getAttribute('data-test-script-state'), performance.now()]);
    note();
    new MutationObserver(note).observe(
      root, {attributes: true, attributeFilter: ['data-test-script-state']});
    return true;
  };
  const start = () => {
    if (watch()) return;
    const waiting = new MutationObserver(() => { if (watch()) waiting.disconnect(); });
    waiting.observe(document.documentElement, {childList: true, subtree: true});
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
"""
RUN_ENDED_AFTER = r"""
((since) => {
  const states = window.__scriptStates || [];
  const started = states.findIndex(([state, at]) => state === 'running' && at >= since);
  if (started < 0) return null;
  const ended = states.slice(started).find(([state]) => state === 'notRunning');
  if (!ended) return null;
  const failed = document.querySelector('[data-testid="stException"]');
  if (failed) return {failed: failed.innerText.slice(0, 2000)};
  if (!document.querySelector('.st-key-page_end')) return null;
  return ended[1];
})(%r)
"""
SETTLED = (
    "(() => { const root = document.querySelector('[data-testid=\"stApp\"]');"
    " return !!root && root.getAttribute('data-test-script-state') === 'notRunning'"
    " && !!document.querySelector('.st-key-page_end')"
    " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
    ' && !document.querySelector(\'[data-testid="stStatusWidget"] [data-testid="stSpinner"]\'); })()'
)


def run_end(send: Send, since: float, what: str) -> float:
    """performance.now() at the end of the first script run that started at or after `since`;
    an exception shown on the page fails at once."""
    ended = wait_for(lambda: evaluate(send, RUN_ENDED_AFTER % since), TIMEOUT, what, 0.02)
    if isinstance(ended, dict):
        raise AssertionError(f"the app failed during {what}: {ended['failed']}")
    return ended


def visit(send: Send, url: str) -> float:
    """Seconds from navigation to the end of the page's first script run (a new session)."""
    send("Page.navigate", url=url)
    wait_for(lambda: evaluate(send, "document.readyState !== 'loading'"), TIMEOUT, "the page")
    ended = run_end(send, 0.0, "the first script run to end")
    wait_for(lambda: evaluate(send, SETTLED), TIMEOUT, "the page to settle")
    return ended / 1000


def box(send: Send, selector: str, text: str | None = None) -> tuple[float, float]:
    """The centre of the first element matching `selector` (and showing `text`), scrolled into
    view: where a real click lands. Waits for it: Streamlit draws a skeleton until a widget's
    code has loaded, after the script run has ended."""
    found = wait_for(
        lambda: _box(send, selector, text), 30, f"{selector!r} {text or ''} on the page", 0.05
    )
    return found[0], found[1]


def _box(send: Send, selector: str, text: str | None) -> list[float] | None:
    """The point to click, once the element is drawn, on screen, the topmost thing at that
    point and in the same place two frames apart (nothing above it is still loading)."""
    return evaluate(
        send,
        strict=True,
        expression=f"""(async (selector, text) => {{
  const all = [...document.querySelectorAll(selector)];
  const element = text === null ? all[0]
    : all.find((e) => e.innerText.trim() === text) || all.find((e) => e.innerText.includes(text));
  if (!element) return null;
  element.scrollIntoView({{block: 'center', behavior: 'instant'}});
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const before = element.getBoundingClientRect();
  await frame(); await frame();
  const box = element.getBoundingClientRect();
  if (box.width === 0 || box.x !== before.x || box.y !== before.y) return null;
  const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
  const top = document.elementFromPoint(x, y);
  if (!top || !(element.contains(top) || top.contains(element))) return null;
  return [x, y];
}})({json.dumps(selector)}, {json.dumps(text)})""",
    )


@dataclass(frozen=True)
class Step:
    """One filter change: `prepare` (typing, opening a list: no rerun yet), then `commit`, whose
    first input event starts the timing; `tidy` (closing a list) after the rerun."""

    name: str
    commit: Callable[[Send], None]
    prepare: Callable[[Send], None] | None = None
    tidy: Callable[[Send], None] | None = None


def choose_option(key: str, option: str) -> Step:
    """Click `option` of the radio or segmented control with this key."""
    selector = f".st-key-{key} label, .st-key-{key} button"
    return Step(f"{key}: {option}", lambda send: click(send, *box(send, selector, option)))


def step_number(key: str, up: bool) -> Step:
    direction = "Up" if up else "Down"
    selector = f".st-key-{key} [data-testid='stNumberInputStep{direction}']"
    return Step(f"{key} {direction.lower()}", lambda send: click(send, *box(send, selector)))


def start_on(day: date) -> Step:
    """The date range's start typed as DD/MM/YYYY into its day, month and year segments (they
    advance by themselves), committed by clicking outside the field (the date input commits on
    blur)."""

    def prepare(send: Send) -> None:
        click(send, *box(send, ".st-key-date_range [data-range-field='start'] [data-type='day']"))
        for part in (f"{day:%d}", f"{day:%m}", f"{day:%Y}"):
            send("Input.insertText", text=part)

    return Step(f"start on {day:%d/%m/%Y}", lambda send: click(send, *box(send, NEUTRAL)), prepare)


NEUTRAL = "[data-testid='stSidebar'] h2"
"""Somewhere to click that does nothing but take the focus: the sidebar's "Filters" header."""


def pick_ad_set(search: str) -> Step:
    """Type into the ad-set picker; Enter adds the first match."""

    def prepare(send: Send) -> None:
        click(send, *box(send, ".st-key-ad_sets input"))
        send("Input.insertText", text=search)
        wait_for(
            lambda: evaluate(send, "!!document.querySelector('[role=\"option\"]')"),
            30,
            f"the picker to list ad sets matching {search!r}",
            0.02,
        )

    return Step(
        f"pick {search}",
        lambda send: press(send, "Enter"),
        prepare,
        tidy=lambda send: click(send, *box(send, NEUTRAL)),  # close the list, leave the picker
    )


def clear_ad_sets() -> Step:
    """The picker's clear button: back to every ad set."""
    selector = ".st-key-ad_sets [data-testid='stMultiSelectClearAll'], .st-key-ad_sets [aria-label='Clear all']"
    return Step("clear ad sets", lambda send: click(send, *box(send, selector)))


@dataclass(frozen=True)
class ServingFacts:
    """What the filter changes need from the serving file: two ad set ids to choose, two
    group-bys to switch to, the last day and the default range's first day (four weeks)."""

    ad_set_ids: list[str]
    groups: list[str]
    default_start: date
    last: date


def default_steps(facts: ServingFacts) -> list[Step]:
    """Ten changes mixing the four kinds: group-by, date range, ad sets, ROAS target. The dates
    stay inside the data whatever its length: a later start within the default four weeks, then
    the default start again."""
    later = facts.default_start + (facts.last - facts.default_start) // 2
    return [
        choose_option("group_by", facts.groups[0]),
        start_on(later),
        pick_ad_set(facts.ad_set_ids[0]),
        step_number("roas_target", up=True),
        choose_option("group_by", facts.groups[1]),
        pick_ad_set(facts.ad_set_ids[1]),
        start_on(facts.default_start),
        step_number("roas_target", up=False),
        choose_option("group_by", "Ad set"),
        clear_ad_sets(),
    ]


def timed_change(send: Send, step: Step) -> float:
    """Seconds from the first input event of `step`'s commit to the end of the rerun it starts."""
    if step.prepare is not None:
        step.prepare(send)
    before = evaluate(send, "performance.now()")
    step.commit(send)
    committed = wait_for(
        lambda: evaluate(send, f"(window.__inputs || []).find((t) => t >= {before}) ?? null"),
        10,
        f"the input event of {step.name}",
        0.02,
    )
    ended = run_end(send, committed, f"the rerun after {step.name}")
    wait_for(lambda: evaluate(send, SETTLED), TIMEOUT, "the page to settle")
    if step.tidy is not None:
        step.tidy(send)
    return (ended - committed) / 1000


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def serving_facts(serving: Path) -> ServingFacts:
    """Read before the server starts, on a read-only connection closed at once."""
    with duckdb.connect(str(serving), read_only=True) as connection:
        first, last = connection.execute(
            "SELECT min(date), max(date) FROM gold.daily_adset_metrics"
        ).fetchone()
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT ad_set_id FROM gold.daily_adset_metrics ORDER BY ad_set_id LIMIT 2"
            ).fetchall()
        ]
        audiences = connection.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'silver' AND table_name = 'audience_segments'"
        ).fetchone()[0]
    groups = ["Audience" if audiences else "Age band", "Lookalike source"]
    return ServingFacts(ids, groups, max(first, last - timedelta(days=DEFAULT_DAYS - 1)), last)


@contextmanager
def browser(directory: Path):
    """A new headless Chromium whose empty profile lives under `directory` (created here)."""
    directory.mkdir(parents=True, exist_ok=True)
    pages = chromium_page(directory)
    try:
        send = next(pages)
        send("Page.enable")
        send("Page.addScriptToEvaluateOnNewDocument", source=OBSERVER)
        yield send
    finally:
        pages.close()


def first_visit(directory: Path, url: str) -> float:
    """A user's first visit: a new Chromium with a new empty profile, one page load, closed."""
    with browser(directory) as send:
        return visit(send, url)


def measure(
    serving: Path, repeats: int = 5, *, root: Path = ROOT, steps: list[Step] | None = None
) -> dict:
    """Cold and warm first render, ten filter changes and the server's peak memory, on a fresh
    `streamlit run` of `root`/app/serve.py reading `serving` (app/dashboard.py where the tree has
    no app/serve.py: an older commit measured the same way). Every process it starts is
    stopped before it returns or raises."""
    serving = Path(serving).resolve()
    if steps is None:
        steps = default_steps(serving_facts(serving))
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(serving),
        "LM_ENDPOINT": CLOSED_PORT_ENDPOINT,
    }
    env.pop("LM_MODEL", None)
    with tempfile.TemporaryDirectory(prefix="browser-timing-") as scratch:
        directory = Path(scratch)
        server_script = (
            "app/serve.py" if (root / "app" / "serve.py").exists() else "app/dashboard.py"
        )
        with streamlit_server(server_script, env, directory / "streamlit.log", cwd=root) as (
            url,
            server,
        ):
            try:
                cold_load = os.getloadavg()[0]
                cold = first_visit(directory / "cold", url)
                warm_load = os.getloadavg()[0]
                warm = [first_visit(directory / f"warm-{index}", url) for index in range(repeats)]
                with browser(directory / "reused") as send:
                    reused = [visit(send, url) for _ in range(repeats + 1)][1:]
                    changes = [timed_change(send, step) for step in steps]
                peak = peak_mib(server.pid)
            except Exception as error:
                log = (directory / "streamlit.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{error}\n--- streamlit log ---\n{log}") from error
    result = {
        "browser_first_render_cold_s": round(cold, 3),
        "browser_first_render_warm_s": round(statistics.median(warm), 3),
        "browser_first_render_warm_reused_s": round(statistics.median(reused), 3),
        "browser_load_average_cold": round(cold_load, 2),
        "browser_load_average_warm": round(warm_load, 2),
    }
    if changes:
        result["browser_filter_change_median_s"] = round(statistics.median(changes), 3)
        result["browser_filter_change_max_s"] = round(max(changes), 3)
    result["browser_app_peak_mib"] = round(peak, 1)
    return result


def main(arguments: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("serving", type=Path, help="the serving DuckDB file to read")
    parser.add_argument("--repeats", type=int, default=5, help="warm visits (default 5)")
    options = parser.parse_args(arguments)
    if not options.serving.is_file():
        raise SystemExit(f"{options.serving}: no such file (a serving file `make run` wrote)")
    started = time.monotonic()
    try:
        result = measure(options.serving, options.repeats)
    except Exception as error:  # the traceback, then one line saying what failed (read last)
        traceback.print_exc()
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"browser timing failed: {first_line}", file=sys.stderr)
        raise SystemExit(1) from error
    print(json.dumps(result), flush=True)
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
