"""The dashboard at the scale's serving file, in two fresh processes: under Streamlit's AppTest
(first render, 10 filter changes, 10 What-if plan changes) and in headless Chromium through
scripts/browser_timing.py (first render cold and warm, filter changes, the server's memory)."""

import os
import sys
from pathlib import Path

from .bench_host import ROOT, load, probe

DASHBOARD = ROOT / "app" / "dashboard.py"
APP_PROBE = r"""
import json, os, statistics, sys, time
from datetime import timedelta
from streamlit.testing.v1 import AppTest

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def run(app):
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    if app.exception:
        raise SystemExit(f"dashboard failed: {[e.message for e in app.exception]}")
    return elapsed

app = AppTest.from_file(sys.argv[1], default_timeout=120)
first = run(app)
ad_sets = list(app.multiselect(key="ad_sets").options)
start, end = app.date_input(key="date_range").value
changes = []
for i in range(10):
    kind = i % 3
    if kind == 0:
        app.multiselect(key="ad_sets").set_value(ad_sets[: max(1, len(ad_sets) // (i + 2))])
    elif kind == 1:
        app.date_input(key="date_range").set_value((start + timedelta(days=i), end))
    else:
        app.number_input(key="roas_target").set_value(3.0 + i / 10)
    changes.append(run(app))
# the What-if's plan: 10 scenario and bound changes, each timed by the tab itself (in a browser
# only its fragment reruns; AppTest reruns the whole page around it)
plan_changes = []
plan_widgets = [("plan_scenario", "target_roas"), ("plan_lower", 0.6), ("plan_scenario", "same_revenue"),
                ("plan_upper", 1.8), ("plan_scenario", "same_budget"), ("plan_lower", 0.4),
                ("plan_upper", 1.2), ("plan_scenario", "target_roas"), ("plan_upper", 2.0),
                ("plan_scenario", "same_budget")]
app.session_state["tab"] = "What-if"  # only the open tab runs
run(app)
if any(radio.key == "plan_scenario" for radio in app.radio):
    for key, value in plan_widgets:
        (app.radio(key=key) if key == "plan_scenario" else app.slider(key=key)).set_value(value)
        run(app)
        plan_changes.append(app.session_state["whatif_seconds"])
print(json.dumps({"first_render_s": round(first, 3),
                  "filter_change_median_s": round(statistics.median(changes), 3),
                  "filter_change_max_s": round(max(changes), 3),
                  "whatif_change_median_s": round(statistics.median(plan_changes), 3)
                  if plan_changes else None,
                  "whatif_change_max_s": round(max(plan_changes), 3) if plan_changes else None,
                  "app_peak_mib": round(rss_mib(), 1)}))
"""


def dashboard(serving: Path) -> dict:
    """First render and 10 filter changes in a fresh AppTest process (nothing cached before)."""
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(serving),
        "LM_ENDPOINT": "http://127.0.0.1:9/v1",
    }
    env.pop("LM_MODEL", None)
    figures = probe([sys.executable, "-c", APP_PROBE, str(DASHBOARD)], env)
    if "error" in figures:
        return figures
    return {
        **figures,
        "load": round(load(), 2),
        "serving_mib": round(serving.stat().st_size / 2**20, 1),
    }


def browser_dashboard(serving: Path) -> dict:
    """The dashboard in headless Chromium (scripts/browser_timing.py): first render on a fresh
    server and in new sessions, ten filter changes, the server's peak memory."""
    figures = probe([sys.executable, str(ROOT / "scripts" / "browser_timing.py"), str(serving)])
    if "error" in figures:
        return figures
    return {**figures, "load": round(load(), 2)}
