"""The benchmark behind `make bench`: the whole graph and the daily refresh after one appended day
through the real CLI at several scales, the dashboard through AppTest and in headless Chromium,
and DuckDB's bare scan as the lower bound.

Writes a JSON file per engine to compare commits (benchmarks/latest.json for DuckDB,
latest-spark.json for Spark in local mode, latest-spark-cluster.json for Spark on a standalone
cluster) and renders BENCHMARKS.md from every one of them that exists beside it, so a run of one
engine keeps the others' sections. Speed and memory are measured here, never asserted by timed
tests (DESIGN.md, Performance principles).

    .venv/bin/python scripts/bench.py --scales small,medium,large
    .venv/bin/python scripts/bench.py --engine spark --scales small,medium
    .venv/bin/python scripts/bench.py --engine spark --cluster --scales medium,medium2x,medium4x

A scale is a name below or ad hoc as AD_SETSxDAYS (e.g. `20x30,40x30`). With several scales, the
JSON compares each one's times with the first one's against the ratio of their data (the scaling
run: time at k× the data at most k× the time).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marketing_ml.contract import REQUIRED_RAW_FILES  # noqa: E402
from marketing_ml.ml.features import feature_sql, label_sql, training_dataset_sql  # noqa: E402

BIN = Path(sys.executable).parent
DASHBOARD = ROOT / "app" / "dashboard.py"
SEED = 42
ROAS_TARGET = 4.0


@dataclass(frozen=True)
class Scale:
    name: str
    ad_sets: int
    days: int


SCALES = {
    "small": Scale("small", 6, 21),
    "medium": Scale("medium", 200, 365),
    "medium2x": Scale("medium2x", 400, 365),
    "medium4x": Scale("medium4x", 800, 365),
    "large": Scale("large", 2000, 365),
}
"""medium2x and medium4x: the Spark cluster's scaling run (1×, 2× and 4× medium), no targets."""
AD_HOC_SCALE = re.compile(r"(\d+)x(\d+)")
"""A scale given as AD_SETSxDAYS on the command line (e.g. a tiny scaling run to try the bench)."""


def scale_named(name: str) -> Scale | None:
    if name in SCALES:
        return SCALES[name]
    match = AD_HOC_SCALE.fullmatch(name)
    if match and int(match[1]) > 0 and int(match[2]) > 1:
        return Scale(name, int(match[1]), int(match[2]))
    return None


ENGINES = ("duckdb", "spark")
JSON_NAMES = {
    "duckdb": "latest.json",
    "spark": "latest-spark.json",
    "spark-cluster": "latest-spark-cluster.json",
}
"""Each kind of run's JSON file, side by side in one folder (benchmarks/): BENCHMARKS.md is
rendered from all of them."""
CLUSTER_MASTER = "spark://127.0.0.1:7077"
"""scripts/spark_cluster.sh's master."""
CLUSTER_SCRIPT = ROOT / "scripts" / "spark_cluster.sh"
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
BRONZE_TO_GOLD_GROUPS = ("bronze", "silver", "gold")
ML_STEPS = ("gold__features", "gold__labels", "gold__training_dataset")
"""The feature assets: not part of bronze → gold, timed by the 2× days test."""


def load() -> float:
    return os.getloadavg()[0]


def java_version() -> str:
    try:
        output = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    except OSError:
        return "none"
    match = re.search(r'version "([^"]+)"', output)
    return match[1] if match else output.strip().splitlines()[0] if output.strip() else "unknown"


def spark_versions() -> dict:
    import pyspark

    return {"spark": pyspark.__version__, "java": java_version()}


def machine() -> dict:
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
    }


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + ("+changes" if dirty else "")
    except OSError:
        return "unknown"


# ---------------------------------------------------------------------------------------- memory
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root: int, tree: dict[int, list[int]] | None = None) -> int:
    """RSS of a process and every descendant: with the Spark engine in local mode that includes
    Spark's JVM (pyspark starts it as a child of the Python process, spark-submit exec'ing java)
    and the JVM's own children, pyspark's Python workers."""
    return sum(tree_rss_by_pid(root, tree).values())


def tree_rss_by_pid(root: int, tree: dict[int, list[int]] | None = None) -> dict[int, int]:
    """Each process's RSS, except a child caught between fork and exec (the parent's command
    line and at least 98% of its RSS: the same pages, not more memory). Without that, a JVM
    spawning a helper process was counted twice (2.3 GiB for one 1.2 GiB driver)."""
    tree = _children() if tree is None else tree
    found, stack = {}, [(root, None)]
    while stack:
        pid, parent = stack.pop()
        rss = _rss_kib(pid)
        if (
            parent is not None
            and rss
            and rss >= 0.98 * found.get(parent, 0)
            and _cmdline(pid) == _cmdline(parent)
        ):
            rss = 0
        found[pid] = rss
        stack.extend((child, pid) for child in tree.get(pid, []))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _process_name(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode(errors="replace") for word in command if word]
    if not words:
        return "?"
    program = Path(words[0]).name
    if program.startswith("python") and len(words) > 1:  # its module or script says more
        if words[1] == "-m" and len(words) > 2:
            return words[2]  # python -m pyspark.daemon
        if not words[1].startswith("-"):
            return Path(words[1]).name  # python .venv/bin/dagster
    for word in words:  # java …: the main class
        if word.startswith("org.apache.spark."):
            return f"{program} {word.rsplit('.', 1)[-1]}"  # java SparkSubmit: the driver
    return program


def rss_breakdown(rss_by_pid: dict[int, int]) -> list[dict]:
    """A process tree's RSS by kind of process, largest first (RSS counts pages that forked
    processes share once in each of them)."""
    kinds: dict[str, list[int]] = {}
    for pid, kib in rss_by_pid.items():
        if kib == 0:  # gone, or a zombie
            continue
        kinds.setdefault(_process_name(pid), []).append(kib)
    return sorted(
        (
            {"process": name, "count": len(sizes), "mib": round(sum(sizes) / 1024, 1)}
            for name, sizes in kinds.items()
        ),
        key=lambda kind: -kind["mib"],
    )


class PeakMemory:
    """Polls the RSS of a process and all its descendants every 50 ms; keeps the peak.

    `workers`: a standalone cluster's worker JVMs, whose children are the executors (not
    descendants of the run): their RSS, without the workers' own, is kept as a peak of its own."""

    def __init__(self, pid: int, workers: tuple[int, ...] = ()):
        self.pid, self.peak_kib, self.peak_at = pid, 0, time.time()
        self.peak_processes: list[dict] = []
        self.workers, self.executors_peak_kib = workers, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            tree = _children()
            by_pid = tree_rss_by_pid(self.pid, tree)
            rss = sum(by_pid.values())
            if rss > self.peak_kib:
                self.peak_kib, self.peak_at = rss, time.time()
                self.peak_processes = rss_breakdown(by_pid)  # what the tree held at its peak
            if self.workers:
                executors = sum(tree_rss_kib(w, tree) - _rss_kib(w) for w in self.workers)
                self.executors_peak_kib = max(self.executors_peak_kib, executors)
            self._stop.wait(0.05)

    @property
    def executors_peak_mib(self) -> float:
        return round(self.executors_peak_kib / 1024, 1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak_kib / 1024, 1)


# -------------------------------------------------------------------------------------- the data
DATED_FILES = tuple(raw_file for raw_file in REQUIRED_RAW_FILES if raw_file.dates)
"""The files an export grows day by day; audience_segments.csv is a snapshot."""


def cached(folder: Path, build: Callable[[Path], None]) -> Path:
    """Built once into a sibling folder and renamed when complete, so an interrupted build is never
    taken for a cached one."""
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    build(partial)
    partial.rename(folder)
    print(f"  built {folder} in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def generate(out: Path, ad_sets: int, days: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "marketing_ml.sample_data",
            "--out",
            str(out),
            "--ad-sets",
            str(ad_sets),
            "--days",
            str(days),
            "--seed",
            str(SEED),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def last_day_start(data: bytes, date_column: int) -> int:
    """Where the last day's first line starts: the generator writes rows day by day, so the bytes
    before it are the export as it stood the day before."""
    last_line = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    day = last_line.split(b",")[date_column]
    found = data.find((b"\n" if date_column == 0 else b",") + day + b",")
    return data.rfind(b"\n", 0, found + 1) + 1 if found >= 0 else 0


def write_initial(next_export: Path, initial: Path) -> None:
    """Each dated file without its last day; the audience file unchanged."""
    for raw_file in REQUIRED_RAW_FILES:
        source, target = next_export / raw_file.file_name, initial / raw_file.file_name
        if not raw_file.dates:
            shutil.copyfile(source, target)
            continue
        data = source.read_bytes()
        prefix = memoryview(data)[: last_day_start(data, raw_file.columns.index(raw_file.dates[0]))]
        assert 0 < len(prefix) < len(data), f"no last day to split off {source}"
        target.write_bytes(prefix)
        assert data.startswith(target.read_bytes()), f"{target} is not a prefix of {source}"


def ensure_data(scale: Scale, data_root: Path) -> tuple[Path, Path]:
    """The scale's days plus one, and the same files without that last day: the whole graph runs on
    the initial files, the daily refresh on the next day's export. Generated once per (scale, seed)
    and reused: the CSVs are a pure function of the seed."""
    next_export = cached(
        data_root / f"{scale.ad_sets}x{scale.days}+1-seed{SEED}",
        lambda out: generate(out, scale.ad_sets, scale.days + 1),
    )
    initial = cached(
        data_root / f"{next_export.name}-initial", lambda out: write_initial(next_export, out)
    )
    return initial, next_export


def appended_rows(initial: Path, next_export: Path) -> dict[str, int]:
    """Data rows the next day's export adds to each dated file: the newlines after the initial
    bytes."""
    rows = {}
    for raw_file in DATED_FILES:
        with (next_export / raw_file.file_name).open("rb") as stream:
            stream.seek((initial / raw_file.file_name).stat().st_size)
            rows[raw_file.file_name] = stream.read().count(b"\n")
    return rows


def bare_scan_seconds(raw: Path, repeats: int = 3) -> float:
    """DuckDB reading all four CSVs once (every field as text, counted): the lower bound."""
    sql = " UNION ALL ".join(
        f"SELECT count(*) FROM read_csv('{raw / raw_file.file_name}', all_varchar = true, "
        "header = true)"
        for raw_file in REQUIRED_RAW_FILES
    )
    times = []
    with duckdb.connect() as connection:
        for _ in range(repeats):
            started = time.perf_counter()
            connection.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
    return round(min(times), 3)


def raw_facts(raw: Path) -> dict:
    sizes = sum((raw / raw_file.file_name).stat().st_size for raw_file in REQUIRED_RAW_FILES)
    with duckdb.connect() as connection:
        events = connection.execute(
            f"SELECT count(*) FROM read_csv('{raw / 'conversion_events.csv'}', all_varchar = true)"
        ).fetchone()[0]
        performance = connection.execute(
            f"SELECT count(*) FROM read_csv('{raw / 'meta_campaign_performance.csv'}', "
            "all_varchar = true)"
        ).fetchone()[0]
    return {
        "csv_bytes": sizes,
        "csv_mib": round(sizes / 2**20, 1),
        "conversion_events": events,
        "performance_rows": performance,
    }


# ------------------------------------------------------------------------------------ a CLI run
def step_times(dagster_home: Path) -> tuple[str, dict[str, float], dict[str, tuple]]:
    """Seconds per step of the newest run, from STEP_START/STEP_SUCCESS in its event log, and
    each step's (start, end) timestamps."""
    from dagster import DagsterEventType, DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_runs(limit=1)[0]
        started: dict[str, float] = {}
        durations: dict[str, float] = {}
        windows: dict[str, tuple] = {}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                started[event.step_key] = entry.timestamp
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                durations[event.step_key] = round(entry.timestamp - started[event.step_key], 3)
                windows[event.step_key] = (started[event.step_key], entry.timestamp)
        return run.status.value, durations, windows


def cli_run(
    arguments: list[str], env: dict, dagster_home: Path, log: Path, workers: tuple[int, ...] = ()
) -> dict:
    """One fresh `dagster` process: wall time, peak memory of its process tree, step times (and
    with a cluster's `workers`, the peak memory of their executors)."""
    load_before = load()
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(BIN / "dagster"), *arguments],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        memory = PeakMemory(process.pid, workers)
        returncode = process.wait()
    wall = time.perf_counter() - started
    peak = memory.stop()
    status, steps, windows = step_times(dagster_home)
    peak_step = next(
        (step for step, (start, end) in windows.items() if start <= memory.peak_at <= end),
        "between steps",
    )
    run = {
        "wall_s": round(wall, 2),
        "peak_mib": peak,
        "peak_during": peak_step,
        "peak_processes": memory.peak_processes,
        "returncode": returncode,
        "status": status,
        "load_before": round(load_before, 2),
        "load_after": round(load(), 2),
        "steps": dict(sorted(steps.items(), key=lambda item: -item[1])),
        "log": str(log),
    }
    if workers:
        run["executors_peak_mib"] = memory.executors_peak_mib
    return run


def bronze_to_gold_seconds(steps: dict[str, float]) -> float:
    """Every bronze, silver and gold step and data-quality check, without the ML assets and their
    checks (step keys: `silver__x` for an asset, `silver_x_rules` for its quality checks)."""
    ml = ("gold__features", "gold__labels", "gold__training_dataset", "gold__scored", "models__")

    def counts(step: str) -> bool:
        if step.startswith(ml) or step.endswith("_model_checks"):
            return False
        return step.split("__", 1)[0] in BRONZE_TO_GOLD_GROUPS or step.endswith("_rules")

    return round(sum(seconds for step, seconds in steps.items() if counts(step)), 2)


# ------------------------------------------------------------------------- feature scaling (2×)
def feature_scaling(lakehouse: Path, repeats: int = 3) -> dict:
    """Features, labels and training data on gold's daily rows and on twice the days per ad set
    (the year again, a year earlier): the time ratio must stay under 2.5× (nothing quadratic)."""
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{lakehouse}' AS lakehouse (READ_ONLY)")
        connection.execute(
            "CREATE TEMP TABLE daily_1x AS SELECT * FROM lakehouse.gold.daily_adset_metrics"
        )
        span = connection.execute(
            "SELECT date_diff('day', min(date), max(date)) + 1 FROM daily_1x"
        ).fetchone()[0]
        connection.execute(
            f"""CREATE TEMP TABLE daily_2x AS
            SELECT * FROM daily_1x UNION ALL
            SELECT * REPLACE (CAST(date - INTERVAL {span} DAY AS DATE) AS date) FROM daily_1x"""
        )
        connection.execute("DETACH lakehouse")

        def once(daily: str) -> float:
            started = time.perf_counter()
            connection.execute(f"CREATE OR REPLACE TEMP TABLE f AS {feature_sql(daily)}")
            connection.execute(f"CREATE OR REPLACE TEMP TABLE l AS {label_sql(daily, ROAS_TARGET)}")
            connection.execute(
                f"CREATE OR REPLACE TEMP TABLE t AS {training_dataset_sql('f', 'l', daily)}"
            )
            return time.perf_counter() - started

        single = statistics.median(once("daily_1x") for _ in range(repeats))
        double = statistics.median(once("daily_2x") for _ in range(repeats))
        rows = connection.execute("SELECT count(*) FROM daily_1x").fetchone()[0]
    return {
        "daily_rows": rows,
        "seconds_1x": round(single, 3),
        "seconds_2x": round(double, 3),
        "ratio": round(double / single, 2),
        "limit": 2.5,
        "passed": double / single < 2.5,
    }


# -------------------------------------------------------------------------------- the dashboard
APP_PROBE = r"""
import json, os, statistics, sys, time
from datetime import timedelta
from streamlit.testing.v1 import AppTest

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

def run(app):
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    if app.exception:
        raise SystemExit(f"dashboard failed: {[e.message for e in app.exception]}")
    return elapsed

app = AppTest.from_file(sys.argv[1], default_timeout=120)
first = run(app)
ad_sets = list(app.multiselect(key="ad_sets").options)
start, end = app.date_input(key="date_range").value
changes = []
for i in range(10):
    kind = i % 3
    if kind == 0:
        app.multiselect(key="ad_sets").set_value(ad_sets[: max(1, len(ad_sets) // (i + 2))])
    elif kind == 1:
        app.date_input(key="date_range").set_value((start + timedelta(days=i), end))
    else:
        app.number_input(key="roas_target").set_value(3.0 + i / 10)
    changes.append(run(app))
# the What-if's plan: 10 scenario and bound changes, each timed by the tab itself (in a browser
# only its fragment reruns; AppTest reruns the whole page around it)
plan_changes = []
plan_widgets = [("plan_scenario", "target_roas"), ("plan_lower", 0.6), ("plan_scenario", "same_revenue"),
                ("plan_upper", 1.8), ("plan_scenario", "same_budget"), ("plan_lower", 0.4),
                ("plan_upper", 1.2), ("plan_scenario", "target_roas"), ("plan_upper", 2.0),
                ("plan_scenario", "same_budget")]
app.session_state["tab"] = "What-if"  # only the open tab runs
run(app)
if any(radio.key == "plan_scenario" for radio in app.radio):
    for key, value in plan_widgets:
        (app.radio(key=key) if key == "plan_scenario" else app.slider(key=key)).set_value(value)
        run(app)
        plan_changes.append(app.session_state["whatif_seconds"])
print(json.dumps({"first_render_s": round(first, 3),
                  "filter_change_median_s": round(statistics.median(changes), 3),
                  "filter_change_max_s": round(max(changes), 3),
                  "whatif_change_median_s": round(statistics.median(plan_changes), 3)
                  if plan_changes else None,
                  "whatif_change_max_s": round(max(plan_changes), 3) if plan_changes else None,
                  "app_peak_mib": round(rss_mib(), 1)}))
"""


def dashboard(serving: Path) -> dict:
    """First render and 10 filter changes in a fresh AppTest process (nothing cached before)."""
    env = {
        **os.environ,
        "MARKETING_ML_SERVING_DB": str(serving),
        "LM_ENDPOINT": "http://127.0.0.1:9/v1",
    }
    env.pop("LM_MODEL", None)
    result = subprocess.run(
        [sys.executable, "-c", APP_PROBE, str(DASHBOARD)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip().splitlines()[-1:]}
    return {
        **json.loads(result.stdout.strip().splitlines()[-1]),
        "load": round(load(), 2),
        "serving_mib": round(serving.stat().st_size / 2**20, 1),
    }


# ------------------------------------------------------------------------- the training budget
TRAINING_BUDGET_PROBE = r"""
import json, sys, time
import duckdb
from marketing_ml.ml.training import CONVERSION, PACING_RISK, TrainingParameters, train_model

budgets = {"previous": TrainingParameters(**json.loads(sys.argv[2])), "current": TrainingParameters()}
with duckdb.connect(sys.argv[1], read_only=True) as connection:
    frame = connection.sql("SELECT * FROM gold.training_dataset").df()
figures = {}
for spec in (PACING_RISK, CONVERSION):
    for budget, params in budgets.items():
        started = time.perf_counter()
        card = train_model(frame, spec, params).card
        validation = card.metrics["validation"]
        figures.setdefault(spec.name, {})[budget] = {
            "seconds": round(time.perf_counter() - started, 2),
            "auc": validation["model"]["auc"],
            "ece": validation["ece"],
            "validation_rows": validation["rows"],
            "backtest_auc": card.backtest["pooled"]["model"]["auc"],
            "fit_rows": card.metrics["fit_sample"]["rows"],
        }
print(json.dumps(figures))
"""
PREVIOUS_TRAINING_BUDGET = {
    "learning_rate": 0.2,
    "early_stopping_rounds": 20,
    "max_fit_rows": 10**12,
    "backtest_max_fit_rows": 150_000,
}
"""The training budget before the first-build work: every row, 0.2, 20 rounds, 150,000-row
backtest fits."""


def training_budget(lakehouse: Path) -> dict:
    """Both models trained on the lakehouse's training data with the previous budget and with
    the current defaults, side by side in one process: the current budget may cost at most
    0.003 validation AUC per model, and its ECE must stay <= 0.02."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TRAINING_BUDGET_PROBE,
            str(lakehouse),
            json.dumps(PREVIOUS_TRAINING_BUDGET),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip().splitlines()[-1:]}
    models = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        "models": models,
        "auc_drop": round(
            max(m["previous"]["auc"] - m["current"]["auc"] for m in models.values()), 4
        ),
        "ece": round(max(m["current"]["ece"] for m in models.values()), 4),
    }


def browser_dashboard(serving: Path) -> dict:
    """The dashboard in headless Chromium (scripts/browser_timing.py): first render on a fresh
    server and in new sessions, ten filter changes, the server's peak memory."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "browser_timing.py"), str(serving)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip().splitlines()[-1:]}
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "load": round(load(), 2)}


# ----------------------------------------------------------------------------------- the plan
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
    result = subprocess.run(
        [sys.executable, "-c", REPLAN_PROBE, str(serving)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def plan_seconds(steps: dict[str, float]) -> dict[str, float]:
    found = {step: steps.get(step) for step in PLAN_STEPS}
    found["total"] = round(sum(seconds or 0.0 for seconds in found.values()), 3)
    return found


# ---------------------------------------------------------------------------------- one scale
@dataclass(frozen=True)
class Engine:
    """Which engine the runs use: `duckdb`, or `spark` on `master` (None: Spark's default, local
    mode). `workers`: the PIDs of the cluster's worker JVMs when the bench started the cluster."""

    name: str = "duckdb"
    master: str | None = None
    workers: tuple[int, ...] = ()

    @property
    def on_cluster(self) -> bool:
        return self.name == "spark" and not (self.master or "local").startswith("local")

    @property
    def kind(self) -> str:
        """The key of JSON_NAMES this run writes."""
        return "spark-cluster" if self.on_cluster else self.name

    def env(self, run_dir: Path) -> dict[str, str]:
        if self.name == "duckdb":
            return {"MARKETING_ML_ENGINE": "duckdb"}
        env = {
            "MARKETING_ML_ENGINE": "spark",
            "MARKETING_ML_WAREHOUSE": str(run_dir / "warehouse"),
            "PYSPARK_PYTHON": sys.executable,
        }
        if self.master:
            env["SPARK_MASTER"] = self.master
        return env


def bench_scale(scale: Scale, data_root: Path, work: Path, engine: Engine = Engine()) -> dict:
    print(f"{scale.name}: {scale.ad_sets} ad sets × {scale.days} days", flush=True)
    initial, next_export = ensure_data(scale, data_root)
    run_dir = work / scale.name if engine.name == "duckdb" else work / engine.kind / scale.name
    shutil.rmtree(run_dir, ignore_errors=True)
    home = run_dir / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("")  # defaults, without the CLI's warning
    raw = run_dir / "raw"
    raw.mkdir()
    for raw_file in REQUIRED_RAW_FILES:
        shutil.copyfile(initial / raw_file.file_name, raw / raw_file.file_name)
    lakehouse, serving = run_dir / "lakehouse.duckdb", run_dir / "serving.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MARKETING_ML_RAW_DIR": str(raw),
        "MARKETING_ML_DB": str(lakehouse),
        "MARKETING_ML_SERVING_DB": str(serving),
        "PYTHONWARNINGS": "ignore",
        **engine.env(run_dir),
    }
    if engine.name == "spark":
        env.pop("SPARK_REMOTE", None)  # it would win over SPARK_MASTER
        if not engine.master:
            env.pop("SPARK_MASTER", None)
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
    for raw_file in DATED_FILES:  # the next day's export: yesterday's bytes and one day more
        shutil.copyfile(next_export / raw_file.file_name, raw / raw_file.file_name)
    daily = cli_run(
        ["job", "execute", "-m", "marketing_ml", "-j", "daily_refresh"],
        env,
        home,
        run_dir / "daily_refresh.log",
        engine.workers,
    )
    daily["appended_rows"] = appended_rows(initial, next_export)
    print(
        f"  daily refresh after one appended day {daily['wall_s']} s, {daily['peak_mib']} MiB "
        f"({daily['status']}), rows appended {daily['appended_rows']}",
        flush=True,
    )
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


# ------------------------------------------------------------------------------------ reporting
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
BEFORE_FILE = ROOT / "benchmarks" / "before-first-build.json"
"""`make bench` before the first-build work: BENCHMARKS.md shows each layer before and now."""
BEFORE_INFO = json.loads(BEFORE_FILE.read_text()) if BEFORE_FILE.exists() else {}
PLAN_STEPS = ("gold__response_curves", "gold__budget_plan")
"""The budget plan's two steps: curve fits, then the plan (target: together <= 10 s at large)."""
NOTES = "\n## Notes"
"""A hand-written section of BENCHMARKS.md that a new run keeps."""


def by_layer(run: dict) -> dict[str, float]:
    """Seconds per layer; start-up and Dagster's own work are the wall time no step accounts for."""
    totals = dict.fromkeys([name for name, _ in LAYERS], 0.0)
    for step, seconds in run["steps"].items():
        layer = next((name for name, matches in LAYERS if matches(step)), "gold")
        totals[layer] += seconds
    totals["start-up and Dagster"] = run["wall_s"] - sum(totals.values())
    return {name: round(seconds, 1) for name, seconds in totals.items()}


BEFORE = {
    result["scale"]: {**result["full_graph"], "by_layer": by_layer(result["full_graph"])}
    for result in BEFORE_INFO.get("results", [])
}


def markdown(results: list[dict], info: dict) -> str:
    lines = [
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
    for result in results:
        full, daily = result["full_graph"], result["daily_refresh"]
        board = result.get("dashboard", {})
        lines += [
            f"## {result['scale']}: {result['ad_sets']} ad sets × {result['days']} days",
            "",
            f"{result['csv_mib']} MiB of CSV, {result['conversion_events']:,} conversion events, "
            f"{result['performance_rows']:,} performance rows. The next day appended "
            + ", ".join(f"{rows:,} rows to {name}" for name, rows in daily["appended_rows"].items())
            + ".",
            "",
            "| measure | value |",
            "|---|---|",
            f"| whole graph, wall (load {full['load_before']}) | {full['wall_s']} s |",
            f"| whole graph, peak memory (during) | {full['peak_mib']} MiB "
            f"({full['peak_during']}) |",
            f"| daily refresh after one appended day, wall (load {daily['load_before']}) | "
            f"{daily['wall_s']} s |",
            "| daily refresh after one appended day, peak memory (during) | "
            f"{daily['peak_mib']} MiB ({daily['peak_during']}) |",
            f"| DuckDB bare scan (lower bound) | {result['bare_scan_s']} s |",
            f"| bronze → gold (sum of steps) | {result['bronze_to_gold_s']} s |",
            f"| bronze → gold ÷ bare scan | {result['bronze_to_gold_over_scan']}× |",
        ]
        if "error" in board:
            lines.append(f"| dashboard | failed: {board['error']} |")
        elif board:
            lines += [
                f"| dashboard first render, AppTest (load {board['load']}) | {board['first_render_s']} s |",
                f"| dashboard filter change, AppTest, median of 10 (max) | "
                f"{board['filter_change_median_s']} s ({board['filter_change_max_s']} s) |",
                f"| dashboard process peak memory | {board['app_peak_mib']} MiB |",
                f"| serving file | {board['serving_mib']} MiB |",
            ]
        browser = result.get("browser", {})
        if "error" in browser:
            lines.append(f"| dashboard in Chromium | failed: {browser['error']} |")
        elif browser:
            lines += [
                f"| dashboard in Chromium, first render cold / warm (load {browser['load']}) | "
                f"{browser['browser_first_render_cold_s']} s / "
                f"{browser['browser_first_render_warm_s']} s |",
                f"| dashboard in Chromium, filter change, median of 10 (max) | "
                f"{browser.get('browser_filter_change_median_s')} s "
                f"({browser.get('browser_filter_change_max_s')} s) |",
                f"| dashboard server peak memory (Chromium run) | "
                f"{browser['browser_app_peak_mib']} MiB |",
            ]
        plan_steps = result.get("plan_steps")
        if plan_steps:
            lines.append(
                f"| curve fits + budget plan (gold__response_curves + gold__budget_plan) | "
                f"{plan_steps['total']} s ({plan_steps.get('gold__response_curves')} s + "
                f"{plan_steps.get('gold__budget_plan')} s) |"
            )
        replanned = result.get("replan", {})
        if "replan_median_s" in replanned:
            lines.append(
                f"| optimizer alone, re-plan {replanned['ad_sets']:,} ad sets, median of 10 (max) | "
                f"{replanned['replan_median_s']} s ({replanned['replan_max_s']} s) |"
            )
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
        layers = full.get("by_layer") or by_layer(full)
        before = BEFORE.get(result["scale"])
        lines += [
            "",
            "Whole graph by layer: "
            + ", ".join(f"{name} {seconds} s" for name, seconds in layers.items())
            + ".",
        ]
        if before:
            lines += [
                "",
                f"By layer, before the first-build work (`{BEFORE_FILE.name}`, commit "
                f"`{BEFORE_INFO['commit']}`) and now:",
                "",
                "| layer | before (s) | now (s) |",
                "|---|---|---|",
                *(
                    f"| {name} | {before['by_layer'].get(name)} | {seconds} |"
                    for name, seconds in layers.items()
                ),
                f"| whole graph, wall | {before['wall_s']} | {full['wall_s']} |",
            ]
        if weekly:
            lines += [
                "",
                "Weekly retrain by layer: "
                + ", ".join(f"{name} {seconds} s" for name, seconds in weekly["by_layer"].items())
                + ".",
            ]
        budget = result.get("training_budget", {})
        if "models" in budget:
            lines += [
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
        lines += [
            "",
            "Slowest five steps of the whole graph:",
            "",
            "| step | seconds |",
            "|---|---|",
        ]
        lines += [f"| {step} | {seconds} |" for step, seconds in list(full["steps"].items())[:5]]
        checks = targets(result)
        if checks:
            lines += ["", "| target | limit | measured | |", "|---|---|---|---|"]
            lines += [
                f"| {name} | {limit:g} | {value} | {verdict(value, limit)} |"
                for name, value, limit in checks
            ]
        lines.append("")
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
    lines.append("")
    return "\n".join(lines)


def scaling(results: list[dict]) -> dict | None:
    """Each scale's whole graph and daily refresh against the first scale's (the 1×): the time
    ratio against the data ratio (CSV bytes; rows, conversion events plus performance rows, shown
    too). At most linear when the time ratio is no more than the data ratio."""
    if len(results) < 2:
        return None
    base = results[0]

    def data_rows(result: dict) -> int:
        return result["conversion_events"] + result["performance_rows"]

    rows = []
    for result in results:
        data_ratio = result["csv_bytes"] / base["csv_bytes"]
        row = {
            "scale": result["scale"],
            "csv_mib": result["csv_mib"],
            "data_ratio": round(data_ratio, 2),
            "rows_ratio": round(data_rows(result) / data_rows(base), 2),
        }
        for run in ("full_graph", "daily_refresh"):
            seconds, base_seconds = result[run]["wall_s"], base[run]["wall_s"]
            failed = result[run]["returncode"] != 0 or base[run]["returncode"] != 0
            ratio = seconds / base_seconds
            row[run] = {
                "wall_s": seconds,
                "time_ratio": round(ratio, 2),
                "verdict": "run failed"
                if failed
                else "at most linear"
                if ratio <= data_ratio
                else "more than linear",
            }
        rows.append(row)
    return {"base": base["scale"], "data_ratio_of": "CSV bytes", "scales": rows}


def held_by(run: dict, kinds: int = 4) -> str:
    """The process tree at its peak, largest kinds first: "java 1024 MiB, pyspark.daemon ×3 …"."""
    held = run.get("peak_processes") or []
    parts = []
    for kind in held[:kinds]:
        count = f" ×{kind['count']}" if kind["count"] > 1 else ""
        parts.append(f"{kind['process']}{count} {kind['mib']:.0f} MiB")
    return ", ".join(parts) or "–"


SPARK_TITLES = {
    "spark": "Spark engine (local mode)",
    "spark-cluster": "Spark engine on a standalone cluster (2 workers × 1 core)",
}


def spark_markdown(run: dict, kind: str, json_name: str) -> str:
    """A Spark run's section of BENCHMARKS.md: per scale the same measures as DuckDB's, with
    where the time goes (by layer, slowest steps, the daily refresh too), and the scaling table."""
    machine_info, spark = run["machine"], run.get("spark", {})
    started_cluster = run.get("cluster_started", False)
    title = (
        SPARK_TITLES[kind]
        if kind == "spark" or started_cluster
        else (f"Spark engine on a cluster (`{spark.get('master')}`)")
    )
    command = "python scripts/bench.py --engine spark" + (
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
    lines = [
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
    executors = kind == "spark-cluster" and started_cluster
    memory_label = "peak memory, driver side" if kind == "spark-cluster" else "peak memory"
    for result in run["results"]:
        full, daily = result["full_graph"], result["daily_refresh"]
        board = result.get("dashboard", {})
        lines += [
            f"### {result['scale']}: {result['ad_sets']} ad sets × {result['days']} days",
            "",
            f"{result['csv_mib']} MiB of CSV, {result['conversion_events']:,} conversion events, "
            f"{result['performance_rows']:,} performance rows.",
            "",
            "| measure | value |",
            "|---|---|",
        ]
        for label, measured in (
            ("whole graph", full),
            ("daily refresh after one appended day", daily),
        ):
            failed = "" if measured["returncode"] == 0 else f" (**{measured['status']}**)"
            lines += [
                f"| {label}, wall (load {measured['load_before']}) | {measured['wall_s']} s"
                f"{failed} |",
                f"| {label}, {memory_label} (during; held by) | {measured['peak_mib']} MiB "
                f"({measured['peak_during']}; {held_by(measured)}) |",
            ]
            if executors and "executors_peak_mib" in measured:
                lines.append(
                    f"| {label}, executors' peak memory | {measured['executors_peak_mib']} MiB |"
                )
        lines += [
            f"| DuckDB bare scan (lower bound) | {result['bare_scan_s']} s |",
            f"| bronze → gold (sum of steps) | {result['bronze_to_gold_s']} s |",
            f"| bronze → gold ÷ bare scan | {result['bronze_to_gold_over_scan']}× |",
        ]
        browser = result.get("browser", {})
        if "error" in browser:
            lines.append(f"| dashboard in Chromium | failed: {browser['error']} |")
        elif browser:
            lines += [
                f"| dashboard in Chromium, first render cold / warm (load {browser['load']}) | "
                f"{browser['browser_first_render_cold_s']} s / "
                f"{browser['browser_first_render_warm_s']} s |",
                f"| dashboard in Chromium, filter change, median of 10 (max) | "
                f"{browser.get('browser_filter_change_median_s')} s "
                f"({browser.get('browser_filter_change_max_s')} s) |",
                f"| dashboard server peak memory (Chromium run) | "
                f"{browser['browser_app_peak_mib']} MiB |",
            ]
        plan_steps = result.get("plan_steps")
        if plan_steps:
            lines.append(
                f"| curve fits + budget plan (gold__response_curves + gold__budget_plan) | "
                f"{plan_steps['total']} s ({plan_steps.get('gold__response_curves')} s + "
                f"{plan_steps.get('gold__budget_plan')} s) |"
            )
        replanned = result.get("replan", {})
        if "replan_median_s" in replanned:
            lines.append(
                f"| optimizer alone, re-plan {replanned['ad_sets']:,} ad sets, median of 10 (max) | "
                f"{replanned['replan_median_s']} s ({replanned['replan_max_s']} s) |"
            )
        if "error" in board:
            lines.append(f"| dashboard | failed: {board['error']} |")
        elif board:
            lines += [
                f"| dashboard first render, AppTest (load {board['load']}) | {board['first_render_s']} s |",
                f"| dashboard filter change, AppTest, median of 10 (max) | "
                f"{board['filter_change_median_s']} s ({board['filter_change_max_s']} s) |",
            ]
            if board.get("whatif_change_median_s") is not None:
                lines.append(
                    f"| dashboard What-if change, median of 10 (max) | "
                    f"{board['whatif_change_median_s']} s ({board['whatif_change_max_s']} s) |"
                )
            lines += [
                f"| dashboard process peak memory | {board['app_peak_mib']} MiB |",
                f"| serving file | {board['serving_mib']} MiB |",
            ]
        for label, measured in (("whole graph", full), ("daily refresh", daily)):
            layers = measured.get("by_layer") or by_layer(measured)
            lines += [
                "",
                f"{label.capitalize()} by layer: "
                + ", ".join(f"{name} {seconds} s" for name, seconds in layers.items())
                + ".",
            ]
        for label, measured, slowest in (
            ("whole graph", full, 8),
            ("daily refresh", daily, 5),
        ):
            lines += [
                "",
                f"Slowest {slowest} steps of the {label}:",
                "",
                "| step | seconds |",
                "|---|---|",
            ]
            lines += [
                f"| {step} | {seconds} |"
                for step, seconds in list(measured["steps"].items())[:slowest]
            ]
        lines.append("")
    table = run.get("scaling")
    if table:
        lines += [
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
    return "\n".join(lines)


def render(runs: dict[str, dict], notes: str) -> str:
    """BENCHMARKS.md from every kind of run there are results for: DuckDB's section as `markdown`
    renders it, then Spark's in local mode and on a cluster, then the hand-written notes."""
    text = ""
    if "duckdb" in runs:
        duckdb_run = runs["duckdb"]
        text = markdown(duckdb_run["results"], duckdb_run)
    else:
        text = "# Benchmarks\n"
    for kind in ("spark", "spark-cluster"):
        if kind in runs:
            text += spark_markdown(runs[kind], kind, JSON_NAMES[kind])
    return text + notes


def warm_up(engine: Engine) -> None:
    """One untimed `dagster` start, so the first scale does not pay for compiling bytecode and
    reading the libraries from disk: that made the first run of a bench 2 s slower than the
    same run repeated. On Spark, one untimed local Spark session too (its JARs from disk)."""
    env = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "marketing_ml"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    if engine.name == "spark":
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from pyspark.sql import SparkSession\n"
                "session = SparkSession.builder.master('local[1]')"
                ".config('spark.ui.enabled', 'false').getOrCreate()\n"
                "session.range(10).count()\n"
                "session.stop()\n",
            ],
            cwd=ROOT,
            env={**env, "SPARK_LOCAL_IP": "127.0.0.1"},
            check=True,
            capture_output=True,
        )


def cluster_workers(cluster_dir: Path) -> tuple[int, ...]:
    """The worker JVMs' PIDs that scripts/spark_cluster.sh wrote."""
    return tuple(
        int(pid_file.read_text().strip()) for pid_file in sorted(cluster_dir.glob("worker-*.pid"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    arguments = parser.parse_args()
    names = [name.strip() for name in arguments.scales.split(",") if name.strip()]
    unknown = [name for name in names if scale_named(name) is None]
    if unknown:
        parser.error(
            f"unknown scale(s) {', '.join(unknown)}; choose from {', '.join(SCALES)} or give "
            "AD_SETSxDAYS"
        )
    if arguments.engine != "spark" and (arguments.master or arguments.cluster):
        parser.error("--master and --cluster are for --engine spark")
    if arguments.cluster and arguments.master and arguments.master != CLUSTER_MASTER:
        parser.error(f"--cluster runs on {CLUSTER_MASTER}: leave out --master")
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
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(run, indent=2, default=str))
    runs = {engine.kind: run}
    for kind, name in JSON_NAMES.items():
        other = json_path.parent / name
        if kind not in runs and other.exists():
            runs[kind] = json.loads(other.read_text())
    previous = arguments.markdown.read_text() if arguments.markdown.exists() else ""
    notes = previous[previous.index(NOTES) :] if NOTES in previous else ""
    arguments.markdown.write_text(render(runs, notes))
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
