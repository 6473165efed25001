"""`make run`: build every asset with Dagster's full log in a file, then a short summary.

Dagster's DEBUG log of a whole build is hundreds of lines, and the warnings a user must see (a
check such as `bookings_have_value`) were buried in it. The summary is read from the run's own
event log in the Dagster instance (DAGSTER_HOME), not parsed from the text, so it says what
Dagster recorded: assets built, checks passed / warned / failed by name, and a failure's step
and message. Exit status: the build's, and non-zero whenever the run did not succeed.

    python scripts/run_summary.py [--select SELECTION]   (runs `dg launch --assets SELECTION`)

It imports nothing of marketing_ml: importing the package loads the whole graph (seconds), and
the build's own process does that anyway. The plan's headline is the app's (app.plan_headline),
worded from the figures the run stored.
"""

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
from dagster import DagsterEventType, DagsterRunStatus

from app.budget_plan import PublishedPlan
from app.queries import published_plan

DASHBOARD = "make app → http://127.0.0.1:8501"
UI = "make dev → http://127.0.0.1:3000"
BOTH = "make up starts both"
LOG_TAIL_LINES = 20
DEFAULT_SERVING_DB = "data/serving.duckdb"  # marketing_ml.resources.DEFAULT_SERVING_DB
RUN_ID_IN_LOG = re.compile(
    r" - dagster - \w+ - \S+ - ([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}) - "
)
DAGSTER_CLASS_PREFIX = re.compile(r"^dagster\.[\w.]+: ")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class StepFailure:
    step: str | None  # None: the run failed outside any step
    message: str


@dataclass(frozen=True)
class RunSummary:
    """What one run did, from its event log. Check names are `asset/key:check`."""

    run_id: str
    succeeded: bool
    assets_built: int
    checks_passed: tuple[str, ...]
    checks_warned: tuple[str, ...]
    checks_failed: tuple[str, ...]
    failures: tuple[StepFailure, ...]


def launch_command(selection: str) -> list[str]:
    """`dg launch` from the project root: [tool.dg] in pyproject.toml names the definitions."""
    return [str(Path(sys.executable).with_name("dg")), "launch", "--assets", selection]


def log_path_for(dagster_home: Path, started: datetime) -> Path:
    """One file per build beside the run history it belongs to."""
    return dagster_home / "logs" / f"run-{started:%Y%m%dT%H%M%SZ}.log"


def run_id_in_log(log_text: str) -> str | None:
    """The run the CLI started: its id is on every line Dagster logs for it."""
    match = RUN_ID_IN_LOG.search(log_text)
    return match.group(1) if match else None


def printable(text: str) -> str:
    """Names and messages can carry a raw file's content: no terminal control sequences."""
    return CONTROL_CHARACTERS.sub("", text)


def summarize_run(instance: dg.DagsterInstance, run_id: str) -> RunSummary:
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise LookupError(
            f"run {run_id} is not in the Dagster instance at {instance.root_directory}"
        )
    records = instance.get_records_for_run(
        run_id,
        of_type={
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.RUN_FAILURE,
        },
        limit=1_000_000,
    ).records
    events = [record.event_log_entry.dagster_event for record in records]
    evaluations = [
        event.event_specific_data
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]

    def checks(passed: bool, severity: dg.AssetCheckSeverity | None = None) -> tuple[str, ...]:
        return tuple(
            sorted(
                evaluation.asset_check_key.to_user_string()
                for evaluation in evaluations
                if evaluation.passed == passed
                and (severity is None or evaluation.severity == severity)
            )
        )

    return RunSummary(
        run_id=run_id,
        succeeded=run.status == DagsterRunStatus.SUCCESS,
        assets_built=sum(
            event.event_type == DagsterEventType.ASSET_MATERIALIZATION for event in events
        ),
        checks_passed=checks(True),
        checks_warned=checks(False, dg.AssetCheckSeverity.WARN),
        checks_failed=checks(False, dg.AssetCheckSeverity.ERROR),
        failures=failures(events),
    )


def failures(events: list[dg.DagsterEvent]) -> tuple[StepFailure, ...]:
    """Each failed step, or the run's own failure when it failed outside any step (a resource
    that could not start, such as the lakehouse's run lock held by another run)."""
    steps = tuple(
        StepFailure(event.step_key, failure_message(event.step_failure_data.error, event))
        for event in events
        if event.event_type == DagsterEventType.STEP_FAILURE
    )
    run = tuple(
        StepFailure(None, failure_message(event.event_specific_data.error, event))
        for event in events
        if event.event_type == DagsterEventType.RUN_FAILURE
    )
    return steps or run


def failure_message(error, event: dg.DagsterEvent) -> str:
    if error is None:
        return event.message or "failed"
    # Dagster's wrapper says "error occurred while executing"; its cause says why.
    while error.cause is not None and error.message.startswith("dagster._core.errors"):
        error = error.cause
    return DAGSTER_CLASS_PREFIX.sub("", error.message.strip())


def plan_headline(serving_db: Path) -> str | None:
    """The published plan's headline: what the dashboard shows, on either engine (rendered by
    the app from the plan's stored figures, as the dashboard renders it)."""
    if not serving_db.exists():
        return None
    with duckdb.connect(str(serving_db), read_only=True) as connection:
        plan = PublishedPlan.from_tables(published_plan(connection))
    return plan.headline if plan is not None else None


def summary_lines(summary: RunSummary, headline: str | None, log_path: Path) -> list[str]:
    checked = len(summary.checks_passed) + len(summary.checks_warned) + len(summary.checks_failed)
    lines = [
        f"Run {summary.run_id}: {'succeeded' if summary.succeeded else 'FAILED'}",
        f"Assets built: {summary.assets_built}",
        f"Checks: {checked} evaluated, {len(summary.checks_passed)} passed, "
        f"{len(summary.checks_warned)} warned, {len(summary.checks_failed)} failed",
    ]
    lines += [f"  warned: {printable(name)}" for name in summary.checks_warned]
    lines += [f"  FAILED: {printable(name)}" for name in summary.checks_failed]
    for failure in summary.failures:
        first_line, *_ = failure.message.splitlines() or [""]
        where = f"Step failed: {printable(failure.step)}" if failure.step else "Run failed"
        lines.append(f"{where}: {printable(first_line)}")
    if summary.succeeded:
        lines.append(f"Plan: {printable(headline) if headline else 'no plan was published'}")
        lines += [f"Dashboard: {DASHBOARD}", f"UI: {UI} ({BOTH})"]
    lines.append(f"Full log: {log_path}")
    return lines


def log_tail(log_path: Path) -> list[str]:
    return log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", default="*", help="asset selection (default: everything)")
    args = parser.parse_args(argv)
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: the summary reads the run from it (make run sets it).")
        return 2
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    log_path = log_path_for(dagster_home, datetime.now(UTC))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"Building ({args.select}); Dagster's full log: {log_path}", flush=True)
    with log_path.open("w") as log:
        build = subprocess.run(launch_command(args.select), stdout=log, stderr=subprocess.STDOUT)
    run_id = run_id_in_log(log_path.read_text(errors="replace"))
    if run_id is None:
        print("The build stopped before a run started. The log's last lines:")
        print("\n".join(printable(line) for line in log_tail(log_path)))
        print(f"Full log: {log_path}")
        return build.returncode or 1
    summary = summarize_run(dg.DagsterInstance.get(), run_id)
    headline = (
        plan_headline(Path(os.environ.get("MARKETING_ML_SERVING_DB") or DEFAULT_SERVING_DB))
        if summary.succeeded
        else None
    )
    print("\n".join(summary_lines(summary, headline, log_path)))
    if not summary.succeeded:
        return build.returncode or 1
    return build.returncode


if __name__ == "__main__":
    sys.exit(main())
