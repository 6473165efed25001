"""Budget planning: response curves per ad set and an optimizer over scenarios under bounds.

Pure Python (numpy, pandas, scipy): the pipeline's assets and the dashboard both import it. To
re-plan on a scenario or bound change, the dashboard calls
`build_plan(curves, capacity, PlanSettings(...))` with the rows of gold.response_curves (curves and
bootstrap draws) and of gold.budget_plan (ad_set_id, under_pacing_risk).
"""

from planning.curves import (
    CURVE_COLUMNS,
    CurveFits,
    fit_response_curves,
    hill_marginal,
    hill_revenue,
)
from planning.optimizer import (
    PLAN_COLUMNS,
    SCENARIOS,
    Allocation,
    Plan,
    PlanSettings,
    allocate,
    build_plan,
    plan_bounds,
)

__all__ = [
    "CURVE_COLUMNS",
    "PLAN_COLUMNS",
    "SCENARIOS",
    "Allocation",
    "CurveFits",
    "Plan",
    "PlanSettings",
    "allocate",
    "build_plan",
    "fit_response_curves",
    "hill_marginal",
    "hill_revenue",
    "plan_bounds",
]
