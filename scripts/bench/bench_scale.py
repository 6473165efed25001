"""One scale end to end, each run a fresh `dagster` process on a fresh run folder: the whole
graph on the initial files, the daily refresh after one appended day, the weekly retrain; then,
when the whole graph built, the probes that read what it published."""

import os
import shutil
from pathlib import Path

from marketing_ml.contract import REQUIRED_RAW_FILES

from .bench_data import SEED, Scale, bare_scan_seconds, ensure_data, raw_facts
from .bench_engine import Engine
from .cli_timing import cli_run
from .daily_refresh_run import daily_refresh
from .dashboard_probes import browser_dashboard, dashboard
from .ml_probes import feature_scaling, training_budget
from .replan_probe import replan
from .step_layers import bronze_to_gold_seconds, by_layer, plan_seconds


def fresh_run(run_dir: Path, initial: Path, engine: Engine) -> dict[str, str]:
    """An empty run folder (a Dagster home, a raw folder with the initial files) and the
    environment that points the CLI at it and at the engine."""
    shutil.rmtree(run_dir, ignore_errors=True)
    home = run_dir / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("")  # defaults, without the CLI's warning
    raw = run_dir / "raw"
    raw.mkdir()
    for raw_file in REQUIRED_RAW_FILES:
        shutil.copyfile(initial / raw_file.file_name, raw / raw_file.file_name)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKETING_ML_RAW_DIR": str(raw),
        "MARKETING_ML_DB": str(run_dir / "lakehouse.duckdb"),
        "MARKETING_ML_SERVING_DB": str(run_dir / "serving.duckdb"),
        "PYTHONWARNINGS": "ignore",
        **engine.env(run_dir),
    }
    if engine.name == "spark":
        env.pop("SPARK_REMOTE", None)  # it would win over SPARK_MASTER
        if not engine.master:
            env.pop("SPARK_MASTER", None)
    return env


def bench_scale(scale: Scale, data_root: Path, work: Path, engine: Engine) -> dict:
    """One scale's figures: its data and bare scan, the three runs, then the probes."""
    print(f"{scale.name}: {scale.ad_sets} ad sets × {scale.days} days", flush=True)
    initial, next_export = ensure_data(scale, data_root)
    run_dir = work / scale.name if engine.name == "duckdb" else work / engine.kind / scale.name
    env = fresh_run(run_dir, initial, engine)
    home, raw = Path(env["DAGSTER_HOME"]), Path(env["MARKETING_ML_RAW_DIR"])
    lakehouse, serving = Path(env["MARKETING_ML_DB"]), Path(env["MARKETING_ML_SERVING_DB"])
    result = {
        "scale": scale.name,
        "ad_sets": scale.ad_sets,
        "days": scale.days,
        "seed": SEED,
        **raw_facts(initial),
        "bare_scan_s": bare_scan_seconds(initial),
    }
    full = cli_run(
        ["asset", "materialize", "-m", "marketing_ml", "--select", "*"],
        env,
        home,
        run_dir / "full_graph.log",
        engine.workers,
    )
    print(f"  full graph {full['wall_s']} s, {full['peak_mib']} MiB ({full['status']})", flush=True)
    daily = daily_refresh(initial, next_export, raw, env, run_dir, engine.workers)
    weekly = cli_run(
        ["job", "execute", "-m", "marketing_ml", "-j", "weekly_retrain"],
        env,
        home,
        run_dir / "weekly_retrain.log",
        engine.workers,
    )
    print(f"  weekly retrain {weekly['wall_s']} s, {weekly['peak_mib']} MiB ({weekly['status']})")
    full["by_layer"] = by_layer(full)
    weekly["by_layer"] = by_layer(weekly)
    if engine.name == "spark":
        daily["by_layer"] = by_layer(daily)
    bronze_to_gold = bronze_to_gold_seconds(full["steps"])
    result.update(
        full_graph=full,
        daily_refresh=daily,
        weekly_retrain=weekly,
        bronze_to_gold_s=bronze_to_gold,
        bronze_to_gold_over_scan=round(bronze_to_gold / max(result["bare_scan_s"], 1e-3), 1),
    )
    result["plan_steps"] = plan_seconds(full["steps"])
    print(f"  curves and plan {result['plan_steps']}", flush=True)
    if full["returncode"] == 0:
        result["replan"] = replan(serving)
        print(f"  re-plan {result['replan']}", flush=True)
        result["dashboard"] = dashboard(serving)
        print(f"  dashboard {result['dashboard']}", flush=True)
        result["browser"] = browser_dashboard(serving)
        print(f"  dashboard in Chromium {result['browser']}", flush=True)
    # the 2× days test opens the DuckDB lakehouse file: there is none on Spark
    if scale.name != "small" and full["returncode"] == 0 and engine.name == "duckdb":
        result["feature_scaling_2x_days"] = feature_scaling(lakehouse)
        print(f"  2x days {result['feature_scaling_2x_days']}", flush=True)
        result["training_budget"] = training_budget(lakehouse)
        print(f"  training budget {result['training_budget']}", flush=True)
    return result
