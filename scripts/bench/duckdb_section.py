"""BENCHMARKS.md's DuckDB section: how the runs were made, then per scale its measures, its
layers against the run before the first-build work, the training budgets, the slowest steps and
the targets; then how time grows from scale to scale."""

import json

from .bench_host import ROOT
from .bench_targets import targets, verdict
from .section_rows import (
    bronze_to_gold_rows,
    browser_rows,
    dashboard_rows,
    layers_line,
    plan_rows,
    slowest_steps,
)
from .step_layers import by_layer

BEFORE_FILE = ROOT / "benchmarks" / "before-first-build.json"
"""`make bench` before the first-build work: BENCHMARKS.md shows each layer before and now."""


def intro(info: dict) -> list[str]:
    return [
        "# Benchmarks",
        "",
        f"`make bench` on {info['date']}, commit `{info['commit']}`. Machine: {info['machine']['cores']}"
        f" cores ({info['machine']['cpu']}), {info['machine']['memory_gib']} GiB memory, "
        f"Python {info['machine']['python']}, DuckDB {info['machine']['duckdb']}. "
        "Every run is a fresh `dagster` process (whole graph: `dagster asset materialize -m "
        "marketing_ml --select '*'`; then the daily refresh after one appended day: the three "
        "dated CSVs are replaced by the next day's export, the same bytes plus one more day, and "
        "`dagster job execute -j daily_refresh` runs with the models kept); peak memory is the "
        "RSS of the whole process tree, polled every 50 ms; load is the 1-minute load average "
        "when the run started (other work shares the machine).",
        "",
        "The lower bound is DuckDB counting every row of the four CSVs the whole graph read, "
        "read as text. Bronze → gold is the sum of every bronze, silver and gold step and check "
        "except the ML assets. Raw figures: `benchmarks/latest.json`.",
        "",
    ]


def measures(result: dict) -> list[str]:
    """The scale's table of measures: the runs, the lower bound, the dashboard, the plan."""
    full, daily = result["full_graph"], result["daily_refresh"]
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| whole graph, wall (load {full['load_before']}) | {full['wall_s']} s |",
        f"| whole graph, peak memory (during) | {full['peak_mib']} MiB ({full['peak_during']}) |",
        f"| daily refresh after one appended day, wall (load {daily['load_before']}) | "
        f"{daily['wall_s']} s |",
        "| daily refresh after one appended day, peak memory (during) | "
        f"{daily['peak_mib']} MiB ({daily['peak_during']}) |",
        *bronze_to_gold_rows(result),
        *dashboard_rows(result.get("dashboard", {}), with_whatif=False),
        *browser_rows(result.get("browser", {})),
        *plan_rows(result),
    ]
    scaling = result.get("feature_scaling_2x_days")
    if scaling:
        lines.append(
            f"| feature assets at 2× days ÷ 1× (limit 2.5) | {scaling['ratio']}× "
            f"({scaling['seconds_1x']} s → {scaling['seconds_2x']} s) |"
        )
    weekly = result.get("weekly_retrain")
    if weekly:
        lines += [
            f"| weekly retrain (labels, training data, both models, scoring, curves, plan, "
            f"publish, report), wall (load {weekly['load_before']}) | {weekly['wall_s']} s |",
            f"| weekly retrain, peak memory (during) | {weekly['peak_mib']} MiB "
            f"({weekly['peak_during']}) |",
        ]
    return lines


def layers_before_and_now(full: dict, before: dict, before_commit: str) -> list[str]:
    layers = full.get("by_layer") or by_layer(full)
    return [
        "",
        f"By layer, before the first-build work (`{BEFORE_FILE.name}`, commit "
        f"`{before_commit}`) and now:",
        "",
        "| layer | before (s) | now (s) |",
        "|---|---|---|",
        *(
            f"| {name} | {before['by_layer'].get(name)} | {seconds} |"
            for name, seconds in layers.items()
        ),
        f"| whole graph, wall | {before['wall_s']} | {full['wall_s']} |",
    ]


def training_budgets(budget: dict) -> list[str]:
    return [
        "",
        "Training budget, both budgets trained side by side on this scale's training data "
        "(previous: every row, learning rate 0.2, early stopping after 20 rounds, "
        "150,000-row backtest fits; current: the defaults):",
        "",
        "| model | budget | validation AUC | ECE | backtest AUC | fit rows | seconds |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {model} | {name} | {figures['auc']:.4f} | {figures['ece']:.4f} | "
            f"{figures['backtest_auc']:.4f} | {figures['fit_rows']:,} | "
            f"{figures['seconds']} |"
            for model, budgets in budget["models"].items()
            for name, figures in budgets.items()
        ),
    ]


def scale_section(result: dict, before_info: dict, before: dict | None) -> list[str]:
    full, daily = result["full_graph"], result["daily_refresh"]
    lines = [
        f"## {result['scale']}: {result['ad_sets']} ad sets × {result['days']} days",
        "",
        f"{result['csv_mib']} MiB of CSV, {result['conversion_events']:,} conversion events, "
        f"{result['performance_rows']:,} performance rows. The next day appended "
        + ", ".join(f"{rows:,} rows to {name}" for name, rows in daily["appended_rows"].items())
        + ".",
        "",
        *measures(result),
        "",
        layers_line("Whole graph by layer", full.get("by_layer") or by_layer(full)),
    ]
    if before:
        lines += layers_before_and_now(full, before, before_info["commit"])
    weekly = result.get("weekly_retrain")
    if weekly:
        lines += ["", layers_line("Weekly retrain by layer", weekly["by_layer"])]
    budget = result.get("training_budget", {})
    if "models" in budget:
        lines += training_budgets(budget)
    lines += ["", "Slowest five steps of the whole graph:", "", *slowest_steps(full, 5)]
    checks = targets(result)
    if checks:
        lines += ["", "| target | limit | measured | |", "|---|---|---|---|"]
        lines += [
            f"| {name} | {limit:g} | {value} | {verdict(value, limit)} |"
            for name, value, limit in checks
        ]
    lines.append("")
    return lines


def growth(results: list[dict]) -> list[str]:
    """How the whole graph's time grows with the events, small → large and medium → large."""
    lines = []
    by_scale = {result["scale"]: result for result in results}
    if "small" in by_scale and "large" in by_scale:
        small, large = by_scale["small"], by_scale["large"]
        lines.append(
            f"Scaling: {large['conversion_events'] / small['conversion_events']:.0f}× the events "
            f"cost {large['full_graph']['wall_s'] / small['full_graph']['wall_s']:.1f}× the time "
            "(start-up dominates the small run)."
        )
    if "medium" in by_scale and "large" in by_scale:
        medium, large = by_scale["medium"], by_scale["large"]
        ratio = large["full_graph"]["wall_s"] / medium["full_graph"]["wall_s"]
        lines.append(
            f"Medium → large: {large['conversion_events'] / medium['conversion_events']:.0f}× the "
            f"events cost {ratio:.1f}× the time (target ≤ 12×)."
        )
    return lines


def markdown(results: list[dict], info: dict) -> str:
    """The DuckDB section, BENCHMARKS.md's first, with the run before the first-build work read
    from benchmarks/before-first-build.json when it is there."""
    before_info = json.loads(BEFORE_FILE.read_text()) if BEFORE_FILE.exists() else {}
    before = {
        result["scale"]: {**result["full_graph"], "by_layer": by_layer(result["full_graph"])}
        for result in before_info.get("results", [])
    }
    lines = intro(info)
    for result in results:
        lines += scale_section(result, before_info, before.get(result["scale"]))
    lines += growth(results)
    lines.append("")
    return "\n".join(lines)
