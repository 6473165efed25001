"""Issue 23's targets per scale, and each measure of a scale's result beside its limit."""

TARGETS = {
    "small": {"full_graph_s": 8.0},
    "medium": {"full_graph_s": 15.0, "training_auc_drop": 0.003, "training_ece": 0.02},
    "large": {
        "full_graph_s": 60.0,
        "weekly_retrain_s": 30.0,
        "training_auc_drop": 0.003,
        "training_ece": 0.02,
        "curves_and_plan_s": 10.0,
        "replan_s": 0.3,
        "peak_mib": 2048.0,
        "daily_refresh_s": 20.0,
        "bronze_to_gold_over_scan": 10.0,
        "browser_first_render_cold_s": 2.0,
        "browser_first_render_warm_s": 1.0,
        "browser_filter_change_s": 0.3,
        "first_render_s": 2.0,
        "filter_change_s": 0.3,
        "whatif_change_s": 0.3,
        "app_mib": 500.0,
    },
}


def verdict(value, limit) -> str:
    if value is None:
        return "–"
    return "met" if value <= limit else "**missed**"


def targets(result: dict) -> list[tuple[str, object, float]]:
    limits = TARGETS.get(result["scale"], {})
    board = result.get("dashboard", {})
    measured = {
        "full_graph_s": result["full_graph"]["wall_s"],
        "peak_mib": result["full_graph"]["peak_mib"],
        "daily_refresh_s": result["daily_refresh"]["wall_s"],
        "bronze_to_gold_over_scan": result["bronze_to_gold_over_scan"],
        "first_render_s": board.get("first_render_s"),
        "filter_change_s": board.get("filter_change_median_s"),
        "whatif_change_s": board.get("whatif_change_median_s"),
        "app_mib": board.get("app_peak_mib"),
        "curves_and_plan_s": result.get("plan_steps", {}).get("total"),
        "replan_s": result.get("replan", {}).get("replan_median_s"),
        "weekly_retrain_s": (result.get("weekly_retrain") or {}).get("wall_s"),
        "browser_first_render_cold_s": result.get("browser", {}).get("browser_first_render_cold_s"),
        "browser_first_render_warm_s": result.get("browser", {}).get("browser_first_render_warm_s"),
        "browser_filter_change_s": result.get("browser", {}).get("browser_filter_change_median_s"),
        "training_auc_drop": result.get("training_budget", {}).get("auc_drop"),
        "training_ece": result.get("training_budget", {}).get("ece"),
    }
    return [(name, measured[name], limit) for name, limit in limits.items()]
