"""The benchmark behind `make bench`: the whole graph and the daily refresh after one appended day
through the real CLI at several scales, the dashboard through AppTest and in headless Chromium,
and DuckDB's bare scan as the lower bound.

Writes a JSON file per engine to compare commits (benchmarks/latest.json for DuckDB,
latest-spark.json for Spark in local mode, latest-spark-cluster.json for Spark on a standalone
cluster) and renders BENCHMARKS.md from every one of them that exists beside it, so a run of one
engine keeps the others' sections. Speed and memory are measured here, never asserted by timed
tests (DESIGN.md, Performance principles). Run it from the repository root:

    .venv/bin/python -m scripts.bench --scales small,medium,large
    .venv/bin/python -m scripts.bench --engine spark --scales small,medium
    .venv/bin/python -m scripts.bench --engine spark --cluster --scales medium,medium2x,medium4x

A scale is a name below or ad hoc as AD_SETSxDAYS (e.g. `20x30,40x30`). With several scales, the
JSON compares each one's times with the first one's against the ratio of their data (the scaling
run: time at k× the data at most k× the time).
"""

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from .bench_data import SCALES, scale_named
from .bench_engine import CLUSTER_MASTER, CLUSTER_SCRIPT, ENGINES, Engine, cluster_workers, warm_up
from .bench_host import ROOT, git_commit, load, machine, spark_versions
from .bench_report import JSON_NAMES, scaling, write_run
from .bench_scale import bench_scale
from .bench_targets import targets


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--scales",
        default="small,medium,large",
        help=f"comma-separated: {', '.join(SCALES)}, or AD_SETSxDAYS",
    )
    parser.add_argument("--engine", choices=ENGINES, default="duckdb")
    parser.add_argument(
        "--master",
        help="spark only: SPARK_MASTER for the runs (default: local mode, local[*])",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help=f"spark only: start scripts/spark_cluster.sh's standalone cluster in WORK/cluster "
        f"before the scales, run on it ({CLUSTER_MASTER}) and stop it after",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(tempfile.gettempdir()) / "marketing-ml-bench" / "data",
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "marketing-ml-bench" / "runs"
    )
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--json",
        type=Path,
        help="this run's results (default benchmarks/latest.json, latest-spark.json or "
        "latest-spark-cluster.json); the other engines' are read from the same folder",
    )
    return parser


def main() -> None:
    command_line = parser()
    arguments = command_line.parse_args()
    names = [name.strip() for name in arguments.scales.split(",") if name.strip()]
    unknown = [name for name in names if scale_named(name) is None]
    if unknown:
        command_line.error(
            f"unknown scale(s) {', '.join(unknown)}; choose from {', '.join(SCALES)} or give "
            "AD_SETSxDAYS"
        )
    if arguments.engine != "spark" and (arguments.master or arguments.cluster):
        command_line.error("--master and --cluster are for --engine spark")
    if arguments.cluster and arguments.master and arguments.master != CLUSTER_MASTER:
        command_line.error(f"--cluster runs on {CLUSTER_MASTER}: leave out --master")
    master = CLUSTER_MASTER if arguments.cluster else arguments.master
    engine = Engine(arguments.engine, master)
    json_path = arguments.json or ROOT / "benchmarks" / JSON_NAMES[engine.kind]
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
        "machine": machine(),
        "load_at_start": round(load(), 2),
        "engine": engine.kind,
    }
    if engine.name == "spark":
        info["spark"] = {**spark_versions(), "master": master or "local[*]"}
        info["cluster_started"] = arguments.cluster
    warm_up(engine)
    cluster_dir = arguments.work / "cluster"
    if arguments.cluster:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(cluster_dir)], check=True)
    try:
        if arguments.cluster:
            engine = Engine(engine.name, master, cluster_workers(cluster_dir))
        results = [
            bench_scale(scale_named(name), arguments.data_root, arguments.work, engine)
            for name in names
        ]
    finally:
        if arguments.cluster:
            subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(cluster_dir)], check=False)
    run = {**info, "results": results, "scaling": scaling(results)}
    write_run(run, engine.kind, json_path, arguments.markdown)
    print(f"wrote {arguments.markdown} and {json_path}")
    over_budget = [
        f"{result['scale']}: {name} {value} (limit {limit:g})"
        for result in results
        for name, value, limit in targets(result)
        if name.startswith("training_") and (value is None or value > limit)
    ]
    if over_budget:
        raise SystemExit(f"the training budget costs too much model quality: {over_budget}")


if __name__ == "__main__":
    main()
