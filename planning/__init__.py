"""Budget planning: response curves per ad set and an optimizer over scenarios under bounds.

Pure Python (numpy, pandas, scipy): the pipeline's assets and the dashboard both import it. To
re-plan on a scenario or bound change, the dashboard calls
`build_plan(on_current_state(state, curves)[0], capacity, PlanSettings(...))` with the rows of
gold.response_curves (curves and bootstrap draws, fitted weekly) and of gold.budget_plan (each ad
set's current spend and caps, under_pacing_risk: made daily). `PlanSettings` refuses a value
outside its range (`PlanSettingsError`, naming the field): the run config and the What-if share it.
"""

from planning.curves import (
    CURVE_COLUMNS,
    CurveFits,
    fit_response_curves,
    hill_marginal,
    hill_revenue,
)
from planning.limits import LimitedPlan, Limits, Units, limited_plan
from planning.optimizer import (
    PLAN_COLUMNS,
    STATE_COLUMNS,
    Allocation,
    Plan,
    allocate,
    build_plan,
    on_current_state,
    plan_bounds,
    profit_uplift_of,
    scenario_allocator,
)
from planning.settings import SCENARIOS, PlanSettings, PlanSettingsError

__all__ = [
    "CURVE_COLUMNS",
    "PLAN_COLUMNS",
    "SCENARIOS",
    "STATE_COLUMNS",
    "Allocation",
    "LimitedPlan",
    "Limits",
    "Units",
    "CurveFits",
    "Plan",
    "PlanSettings",
    "PlanSettingsError",
    "allocate",
    "build_plan",
    "fit_response_curves",
    "hill_marginal",
    "hill_revenue",
    "limited_plan",
    "on_current_state",
    "plan_bounds",
    "profit_uplift_of",
    "scenario_allocator",
]
