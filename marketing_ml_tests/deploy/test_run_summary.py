"""`make run`'s summary (scripts/run_summary.py), run for real on a small raw folder: what it
prints must be what the run's event log in the Dagster instance says, and a failure must exit
non-zero with its step, its message and where the full log is."""

import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster import DagsterEventType

from app.budget_plan import PublishedPlan
from app.queries import published_plan
from marketing_ml.contract import BUDGET_PACING, META_CAMPAIGN_PERFORMANCE
from marketing_ml.run_lock import lakehouse_run_lock
from marketing_ml_tests.support import REPOSITORY
from marketing_ml_tests.support.lakehouse import (
    Lakehouse,
    clean_performance_rows,
    performance_row,
    raw_path,
    write_raw_csv,
)

RUN_SUMMARY = REPOSITORY / "scripts" / "run_summary.py"


def run_summary(lakehouse: Lakehouse, dagster_home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_SUMMARY)],
        env=lakehouse.cli_environment(dagster_home),
        capture_output=True,
        text=True,
        timeout=600,
    )


def printed(output: str, label: str) -> str:
    (value,) = re.findall(rf"^{re.escape(label)}: (.*)$", output, flags=re.MULTILINE)
    return value


def recorded_run(dagster_home: Path):
    """The run as the instance holds it, read independently of the script."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    (run,) = instance.get_runs()
    records = instance.get_records_for_run(run.run_id, limit=1_000_000).records
    events = [record.event_log_entry.dagster_event for record in records]
    events = [event for event in events if event is not None]
    evaluations = [
        event.event_specific_data
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    return run, events, evaluations


def test_summary_counts_and_names_what_the_run_recorded(lakehouse, tmp_path):
    rows = clean_performance_rows() + [
        performance_row("05/08/2024", "AS_404", "1000", "10", "5.00")
    ]
    write_raw_csv(
        raw_path(lakehouse, META_CAMPAIGN_PERFORMANCE), META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    dagster_home = tmp_path / "dagster_home"
    completed = run_summary(lakehouse, dagster_home)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    output = completed.stdout

    run, events, evaluations = recorded_run(dagster_home)
    materialized = sum(e.event_type == DagsterEventType.ASSET_MATERIALIZATION for e in events)
    passed = [e for e in evaluations if e.passed]
    warned = sorted(
        e.asset_check_key.to_user_string()
        for e in evaluations
        if not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    )
    assert printed(output, f"Run {run.run_id}") == "succeeded"
    assert printed(output, "Assets built") == str(materialized)
    assert printed(output, "Checks") == (
        f"{len(evaluations)} evaluated, {len(passed)} passed, {len(warned)} warned, 0 failed"
    )
    assert re.findall(r"^  warned: (.*)$", output, flags=re.MULTILINE) == warned
    assert any(name.endswith(":meta_campaign_performance_ad_sets_known") for name in warned)

    # the plan line is the dashboard's headline, worded from the figures the run stored
    published = PublishedPlan.from_tables(published_plan(lakehouse.serving))
    assert printed(output, "Plan") == published.headline
    assert published.headline.startswith(("Move £", "Cut £", "Add £", "Keep the current"))
    assert "http://127.0.0.1:8501" in printed(output, "Dashboard")
    assert "http://127.0.0.1:3000" in printed(output, "UI")

    log = Path(printed(output, "Full log"))
    assert log.parent == dagster_home / "logs"
    log_text = log.read_text()
    assert f"{run.run_id} - " in log_text and "RUN_SUCCESS" in log_text
    assert "DEBUG" not in output
    assert len(output.splitlines()) <= 10 + len(warned)


def test_failed_run_exits_non_zero_with_its_step_message_and_log(lakehouse, tmp_path):
    raw_path(lakehouse, BUDGET_PACING).unlink()
    dagster_home = tmp_path / "dagster_home"
    completed = run_summary(lakehouse, dagster_home)
    output = completed.stdout
    assert completed.returncode != 0, output

    run, events, _ = recorded_run(dagster_home)
    failed_steps = [e.step_key for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert failed_steps == ["bronze__budget_pacing"]
    assert printed(output, f"Run {run.run_id}") == "FAILED"
    step_line = printed(output, "Step failed")
    assert step_line.startswith("bronze__budget_pacing: ")
    assert "budget_pacing.csv: file is missing" in step_line
    assert not step_line.startswith("bronze__budget_pacing: dagster.")
    assert "Plan:" not in output and "Dashboard:" not in output

    log = Path(printed(output, "Full log"))
    assert "budget_pacing.csv: file is missing" in log.read_text()


def test_run_failed_outside_any_step_says_why(lakehouse, tmp_path):
    """The lakehouse held by another run fails the run before its first step: no step failed,
    so the run's own failure must be what the summary names."""
    dagster_home = tmp_path / "dagster_home"
    with lakehouse_run_lock(lakehouse.database, "another-run", wait_seconds=0):
        completed = run_summary(lakehouse, dagster_home)
    output = completed.stdout
    assert completed.returncode != 0, output

    run, events, _ = recorded_run(dagster_home)
    assert not [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert printed(output, f"Run {run.run_id}") == "FAILED"
    assert printed(output, "Assets built") == "0"
    reason = printed(output, "Run failed")
    assert f"The lakehouse {lakehouse.database} is in use by another run" in reason
    assert "run id another-run" in reason
    assert Path(printed(output, "Full log")).is_file()
