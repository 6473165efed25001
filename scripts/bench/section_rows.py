"""Table rows BENCHMARKS.md's DuckDB and Spark sections both show, written once so the two
sections word a measure the same way."""


def bronze_to_gold_rows(result: dict) -> list[str]:
    return [
        f"| DuckDB bare scan (lower bound) | {result['bare_scan_s']} s |",
        f"| bronze → gold (sum of steps) | {result['bronze_to_gold_s']} s |",
        f"| bronze → gold ÷ bare scan | {result['bronze_to_gold_over_scan']}× |",
    ]


def dashboard_rows(board: dict, with_whatif: bool) -> list[str]:
    """The AppTest probe's rows; `with_whatif`: the What-if change too, when it was measured."""
    if "error" in board:
        return [f"| dashboard | failed: {board['error']} |"]
    if not board:
        return []
    rows = [
        f"| dashboard first render, AppTest (load {board['load']}) | {board['first_render_s']} s |",
        f"| dashboard filter change, AppTest, median of 10 (max) | "
        f"{board['filter_change_median_s']} s ({board['filter_change_max_s']} s) |",
    ]
    if with_whatif and board.get("whatif_change_median_s") is not None:
        rows.append(
            f"| dashboard What-if change, median of 10 (max) | "
            f"{board['whatif_change_median_s']} s ({board['whatif_change_max_s']} s) |"
        )
    return rows + [
        f"| dashboard process peak memory | {board['app_peak_mib']} MiB |",
        f"| serving file | {board['serving_mib']} MiB |",
    ]


def browser_rows(browser: dict) -> list[str]:
    if "error" in browser:
        return [f"| dashboard in Chromium | failed: {browser['error']} |"]
    if not browser:
        return []
    return [
        f"| dashboard in Chromium, first render cold / warm (load {browser['load']}) | "
        f"{browser['browser_first_render_cold_s']} s / "
        f"{browser['browser_first_render_warm_s']} s |",
        f"| dashboard in Chromium, filter change, median of 10 (max) | "
        f"{browser.get('browser_filter_change_median_s')} s "
        f"({browser.get('browser_filter_change_max_s')} s) |",
        f"| dashboard server peak memory (Chromium run) | {browser['browser_app_peak_mib']} MiB |",
    ]


def plan_rows(result: dict) -> list[str]:
    """The curve fits and the budget plan as steps of the whole graph, then the optimizer alone."""
    rows = []
    plan_steps = result.get("plan_steps")
    if plan_steps:
        rows.append(
            f"| curve fits + budget plan (gold__response_curves + gold__budget_plan) | "
            f"{plan_steps['total']} s ({plan_steps.get('gold__response_curves')} s + "
            f"{plan_steps.get('gold__budget_plan')} s) |"
        )
    replanned = result.get("replan", {})
    if "replan_median_s" in replanned:
        rows.append(
            f"| optimizer alone, re-plan {replanned['ad_sets']:,} ad sets, median of 10 (max) | "
            f"{replanned['replan_median_s']} s ({replanned['replan_max_s']} s) |"
        )
    return rows


def slowest_steps(run: dict, count: int) -> list[str]:
    return [
        "| step | seconds |",
        "|---|---|",
        *(f"| {step} | {seconds} |" for step, seconds in list(run["steps"].items())[:count]),
    ]


def layers_line(label: str, layers: dict[str, float]) -> str:
    return f"{label}: " + ", ".join(f"{name} {seconds} s" for name, seconds in layers.items()) + "."
