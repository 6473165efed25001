"""The What-if's re-plan alone, outside Streamlit: what the dashboard's optimizer costs per
scenario or bound change at the scale's number of ad sets."""

import sys
from pathlib import Path

from .bench_host import probe

REPLAN_PROBE = r"""
import json, statistics, sys, time
from pathlib import Path
from app import queries
from app.budget_plan import PublishedPlan, load_curves, replan
from planning import PlanSettings

serving = Path(sys.argv[1])
published = PublishedPlan.from_tables(queries.published_plan(serving))
frame, draws = queries.response_curve_draws(serving)
curves = load_curves(frame, published, draws)
scenarios = ["same_budget", "target_roas", "same_revenue"]
times = []
for i in range(10):
    settings = PlanSettings(scenario=scenarios[i % 3], upper_factor=1.5 + 0.05 * i)
    started = time.perf_counter()
    replan(curves, settings)
    times.append(time.perf_counter() - started)
print(json.dumps({"ad_sets": len(frame), "replan_median_s": round(statistics.median(times), 3),
                  "replan_max_s": round(max(times), 3)}))
"""


def replan(serving: Path) -> dict:
    """The What-if's re-plan of every ad set of the serving file (app.budget_plan.replan: the limits,
    campaign budgets, the period and the bootstrap ranges; curves and draws already read), 10
    scenario and bound changes: what the dashboard pays per change."""
    return probe([sys.executable, "-c", REPLAN_PROBE, str(serving)])
