"""The dashboard is never blocked by a run, never sees half a publish, and survives a killed run."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from marketing_ml.contract import CONVERSION_EVENTS, META_CAMPAIGN_PERFORMANCE
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support.lakehouse import (
    MATERIALIZE_EVERYTHING,
    Lakehouse,
    clean_conversion_rows,
    clean_performance_rows,
    raw_path,
    write_raw_csv,
)

READER = """
import json, sys, time, traceback
from datetime import date
from pathlib import Path
from app import queries

serving, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
seen, errors = [], []
while not stop.exists():
    try:
        ad_sets = list(queries.ad_sets(serving)["ad_set_id"])
        first, last = queries.date_bounds(serving)
        kpis = queries.kpis(serving, ad_sets, first, last)
        seen.append([round(kpis["spend"], 2), round(kpis["revenue"], 2)])
    except Exception:
        errors.append(traceback.format_exc())
    time.sleep(0.01)
out.write_text(json.dumps({"seen": seen, "errors": errors}))
"""


def write_scaled_raw_files(lakehouse: Lakehouse, scale: int) -> None:
    """Spend and booking values times `scale`: each run's (spend, revenue) pair is its own."""
    performance = clean_performance_rows()
    for row in performance:
        row[5] = f"{scale * float(row[5]):.2f}"
    write_raw_csv(
        raw_path(lakehouse, META_CAMPAIGN_PERFORMANCE),
        META_CAMPAIGN_PERFORMANCE.columns,
        performance,
    )
    conversions = clean_conversion_rows()
    for row in conversions:
        if row[4]:
            row[4] = f"{scale * float(row[4]):.2f}"
    write_raw_csv(raw_path(lakehouse, CONVERSION_EVENTS), CONVERSION_EVENTS.columns, conversions)


def served_totals(lakehouse: Lakehouse) -> tuple[float, float]:
    spend, revenue = lakehouse.serving_query(
        "SELECT round(sum(spend), 2), round(sum(revenue), 2) FROM gold.daily_adset_metrics"
    )[0]
    return spend, revenue


def test_reader_sees_whole_publishes_only_while_the_graph_runs_five_times(lakehouse, tmp_path):
    write_scaled_raw_files(lakehouse, 1)
    assert lakehouse.materialize().success
    expected = {served_totals(lakehouse)}
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(lakehouse.serving), str(stop), str(out)]
    )
    try:
        for scale in range(2, 7):
            write_scaled_raw_files(lakehouse, scale)
            assert lakehouse.materialize().success
            expected.add(served_totals(lakehouse))
    finally:
        stop.touch()
        reader.wait(timeout=60)
    report = json.loads(out.read_text())
    assert report["errors"] == []
    observed = {tuple(pair) for pair in report["seen"]}
    assert observed <= expected, observed - expected
    assert len(observed) >= 3, "the reader should have seen several publishes"
    assert len(report["seen"]) > 100


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli_run(lakehouse: Lakehouse, dagster_home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        MATERIALIZE_EVERYTHING,
        env=lakehouse.cli_environment(dagster_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_run_killed_mid_way_leaves_the_published_data_and_the_next_run_succeeds(
    lakehouse, tmp_path
):
    dagster_home = tmp_path / "dagster_home"
    assert lakehouse.materialize().success
    published = file_digest(lakehouse.serving)
    totals = served_totals(lakehouse)

    for path in lakehouse.raw_dir.iterdir():
        path.unlink()
    write_sample_data(lakehouse.raw_dir, ad_sets=40, days=150, seed=3)
    run = cli_run(lakehouse, dagster_home)
    for line in run.stderr:  # wait until the run is deep in silver, then kill it outright
        if 'Started execution of step "silver__quarantine"' in line:
            break
    assert run.poll() is None, "the run should still be going when it is killed"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    assert file_digest(lakehouse.serving) == published
    assert served_totals(lakehouse) == totals

    rerun = cli_run(lakehouse, dagster_home)
    _, errors = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errors[-3000:]
    assert served_totals(lakehouse) != totals
