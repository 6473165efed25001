"""Step times summed the ways BENCHMARKS.md reports them: by layer, bronze → gold without the ML
assets, and the budget plan's two steps."""

BRONZE_TO_GOLD_GROUPS = ("bronze", "silver", "gold")


def bronze_to_gold_seconds(steps: dict[str, float]) -> float:
    """Every bronze, silver and gold step and data-quality check, without the ML assets and their
    checks (step keys: `silver__x` for an asset, `silver_x_rules` for its quality checks)."""
    ml = ("gold__features", "gold__labels", "gold__training_dataset", "gold__scored", "models__")

    def counts(step: str) -> bool:
        if step.startswith(ml) or step.endswith("_model_checks"):
            return False
        return step.split("__", 1)[0] in BRONZE_TO_GOLD_GROUPS or step.endswith("_rules")

    return round(sum(seconds for step, seconds in steps.items() if counts(step)), 2)


LAYERS = (
    ("bronze", lambda step: step.startswith("bronze__")),
    ("silver", lambda step: step.startswith("silver__")),
    (
        "checks",
        lambda step: (
            step.endswith(("_rules", "_checks"))
            or step.count("__") > 1
            or step.startswith("gold__")
            and step.split("__")[1] not in GOLD_ASSETS
        ),
    ),
    ("models", lambda step: step.startswith("models__")),
    ("gold", lambda step: step.startswith("gold__")),
    ("publish + report", lambda step: step in ("publish", "report")),
)
GOLD_ASSETS = (
    "daily_adset_metrics",
    "data_quality_report",
    "row_accounting",
    "features",
    "labels",
    "training_dataset",
    "scored_adsets",
    "scored_conversions",
    "response_curves",
    "budget_plan",
)
PLAN_STEPS = ("gold__response_curves", "gold__budget_plan")
"""The budget plan's two steps: curve fits, then the plan (target: together <= 10 s at large)."""


def by_layer(run: dict) -> dict[str, float]:
    """Seconds per layer; start-up and Dagster's own work are the wall time no step accounts for."""
    totals = dict.fromkeys([name for name, _ in LAYERS], 0.0)
    for step, seconds in run["steps"].items():
        layer = next((name for name, matches in LAYERS if matches(step)), "gold")
        totals[layer] += seconds
    totals["start-up and Dagster"] = run["wall_s"] - sum(totals.values())
    return {name: round(seconds, 1) for name, seconds in totals.items()}


def plan_seconds(steps: dict[str, float]) -> dict[str, float]:
    found = {step: steps.get(step) for step in PLAN_STEPS}
    found["total"] = round(sum(seconds or 0.0 for seconds in found.values()), 3)
    return found
