"""BENCHMARKS.md's Spark sections, one per kind of Spark run (local mode, a cluster): per scale
the same measures as DuckDB's with what held the memory at its peak and where the time went, the
daily refresh too, then the scaling table (time ratio against data ratio)."""

from .section_rows import (
    bronze_to_gold_rows,
    browser_rows,
    dashboard_rows,
    layers_line,
    plan_rows,
    slowest_steps,
)
from .step_layers import by_layer

SPARK_TITLES = {
    "spark": "Spark engine (local mode)",
    "spark-cluster": "Spark engine on a standalone cluster (2 workers × 1 core)",
}


def held_by(run: dict, kinds: int = 4) -> str:
    """The process tree at its peak, largest kinds first: "java 1024 MiB, pyspark.daemon ×3 …"."""
    held = run.get("peak_processes") or []
    parts = []
    for kind in held[:kinds]:
        count = f" ×{kind['count']}" if kind["count"] > 1 else ""
        parts.append(f"{kind['process']}{count} {kind['mib']:.0f} MiB")
    return ", ".join(parts) or "–"


def intro(run: dict, kind: str, json_name: str) -> list[str]:
    """The section's title and how its runs were made: the command, the machine, where Spark
    ran and what its peak memory counts."""
    machine_info, spark = run["machine"], run.get("spark", {})
    started_cluster = run.get("cluster_started", False)
    title = (
        SPARK_TITLES[kind]
        if kind == "spark" or started_cluster
        else (f"Spark engine on a cluster (`{spark.get('master')}`)")
    )
    command = "python -m scripts.bench --engine spark" + (
        " --cluster"
        if started_cluster
        else f" --master {spark['master']}"
        if kind == "spark-cluster"
        else ""
    )
    if kind == "spark-cluster":
        memory = (
            "Peak memory is **driver side only**: the RSS of the `dagster` process tree, which "
            "holds the driver's JVM; the executors are children of the workers, not of the run"
            + (
                ", and their own peak (the sum of every executor's RSS, polled the same way) is "
                "given as the executors' peak memory"
                if started_cluster
                else ""
            )
            + ". "
        )
        where = (
            "on a standalone cluster started by the bench (`scripts/spark_cluster.sh`: a master "
            "and two workers of 1 core and 2 GB each, separate JVMs on this same machine, so the "
            "executors compete with the driver for its cores)"
            if started_cluster
            else f"on the cluster at `{spark.get('master')}`"
        )
    else:
        memory = (
            "Peak memory is the RSS of the whole process tree, Spark's JVM included (in local "
            "mode the driver and its executor threads are one JVM, a child of the `dagster` "
            "process). "
        )
        where = f"in local mode (`{spark.get('master', 'local[*]')}`)"
    return [
        "",
        f"## {title}",
        "",
        f"`{command}` on {run['date']}, commit `{run['commit']}`. Machine: "
        f"{machine_info['cores']} cores ({machine_info['cpu']}), {machine_info['memory_gib']} GiB "
        f"memory, Python {machine_info['python']}, Spark {spark.get('spark', '?')} on Java "
        f"{spark.get('java', '?')}. The same runs as DuckDB's with `MARKETING_ML_ENGINE=spark`, "
        f"{where}, the tables in a new warehouse per scale; the re-plan and the dashboard read "
        "the serving file, a DuckDB file on either engine. "
        + memory
        + "The lower bound is DuckDB's bare scan, as above. Bronze, silver, the daily facts and "
        "the features are rebuilt in full on every Spark run, the daily refresh too. Raw "
        f"figures: `benchmarks/{json_name}`.",
        "",
    ]


def run_rows(label: str, measured: dict, on_cluster: bool, executors: bool) -> list[str]:
    """A run's wall time and peak memory (driver side on a cluster; the executors' own peak when
    the bench started the cluster)."""
    memory_label = "peak memory, driver side" if on_cluster else "peak memory"
    failed = "" if measured["returncode"] == 0 else f" (**{measured['status']}**)"
    rows = [
        f"| {label}, wall (load {measured['load_before']}) | {measured['wall_s']} s{failed} |",
        f"| {label}, {memory_label} (during; held by) | {measured['peak_mib']} MiB "
        f"({measured['peak_during']}; {held_by(measured)}) |",
    ]
    if executors and "executors_peak_mib" in measured:
        rows.append(f"| {label}, executors' peak memory | {measured['executors_peak_mib']} MiB |")
    return rows


def scale_section(result: dict, kind: str, executors: bool) -> list[str]:
    full, daily = result["full_graph"], result["daily_refresh"]
    lines = [
        f"### {result['scale']}: {result['ad_sets']} ad sets × {result['days']} days",
        "",
        f"{result['csv_mib']} MiB of CSV, {result['conversion_events']:,} conversion events, "
        f"{result['performance_rows']:,} performance rows.",
        "",
        "| measure | value |",
        "|---|---|",
        *run_rows("whole graph", full, kind == "spark-cluster", executors),
        *run_rows(
            "daily refresh after one appended day", daily, kind == "spark-cluster", executors
        ),
        *bronze_to_gold_rows(result),
        *browser_rows(result.get("browser", {})),
        *plan_rows(result),
        *dashboard_rows(result.get("dashboard", {}), with_whatif=True),
    ]
    for label, measured in (("whole graph", full), ("daily refresh", daily)):
        layers = measured.get("by_layer") or by_layer(measured)
        lines += ["", layers_line(f"{label.capitalize()} by layer", layers)]
    for label, measured, slowest in (("whole graph", full, 8), ("daily refresh", daily, 5)):
        lines += [
            "",
            f"Slowest {slowest} steps of the {label}:",
            "",
            *slowest_steps(measured, slowest),
        ]
    lines.append("")
    return lines


def scaling_table(table: dict) -> list[str]:
    lines = [
        f"Scaling: each scale against {table['base']} (1×); the data ratio is the ratio of "
        "CSV bytes (rows: conversion events plus performance rows). At most linear: the time "
        "ratio is no more than the data ratio.",
        "",
        "| scale | CSV | data ratio (rows) | whole graph | time ratio | | daily refresh | "
        "time ratio | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table["scales"]:
        full, daily = row["full_graph"], row["daily_refresh"]
        lines.append(
            f"| {row['scale']} | {row['csv_mib']} MiB | {row['data_ratio']:.2f}× "
            f"({row['rows_ratio']:.2f}×) | {full['wall_s']} s | {full['time_ratio']:.2f}× | "
            f"{full['verdict']} | {daily['wall_s']} s | {daily['time_ratio']:.2f}× | "
            f"{daily['verdict']} |"
        )
    lines.append("")
    return lines


def spark_markdown(run: dict, kind: str, json_name: str) -> str:
    """A Spark run's section of BENCHMARKS.md: per scale the same measures as DuckDB's, with
    where the time goes (by layer, slowest steps, the daily refresh too), and the scaling table."""
    executors = kind == "spark-cluster" and run.get("cluster_started", False)
    lines = intro(run, kind, json_name)
    for result in run["results"]:
        lines += scale_section(result, kind, executors)
    if run.get("scaling"):
        lines += scaling_table(run["scaling"])
    return "\n".join(lines)
