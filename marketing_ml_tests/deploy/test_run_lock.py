"""One run at a time per lakehouse: `<lakehouse>.lock`, held for the whole run, released at its end.

The processes that hold the lock here are real (a CLI run frozen with SIGSTOP mid-run, or a small
Python process taking the lock file the way a run does); no part of the lock is replaced.
"""

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from marketing_ml.resources import LakehouseResource
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support.lakehouse import MATERIALIZE_EVERYTHING, Lakehouse
from serving_contract import SERVED_TABLES

RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def lock_file(lakehouse: Lakehouse) -> Path:
    return lakehouse.database.with_name(lakehouse.database.name + ".lock")


def read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return {}


def assert_lock_is_free(path: Path) -> None:
    """Nobody holds the lock: its file is empty and this process can take it at once."""
    assert path.exists(), "a run should have created the lock file"
    assert path.read_text() == "", "a released lock file names no holder"
    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if still held
    finally:
        os.close(descriptor)


def served_equals_kept(lakehouse: Lakehouse) -> None:
    for table in SERVED_TABLES:
        schema, name = table.split(".")
        count = f'SELECT count(*) FROM "{schema}"."{name}"'
        assert lakehouse.serving_query(count) == lakehouse.query(count), table


def test_a_second_cli_run_fails_at_once_naming_the_first_which_completes(tmp_path):
    write_sample_data(tmp_path / "raw", ad_sets=6, days=30, seed=5)
    lakehouse = Lakehouse(
        raw_dir=tmp_path / "raw",
        database=tmp_path / "lakehouse.duckdb",
        serving=tmp_path / "serving.duckdb",
    )
    first = subprocess.Popen(
        MATERIALIZE_EVERYTHING,
        env=lakehouse.cli_environment(tmp_path / "first_home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        first_run_id = None
        for line in first.stderr:  # the first run is inside its steps: it holds the lakehouse
            if "Started execution of step" in line:
                first_run_id = RUN_ID.search(line).group()
                break
        assert first_run_id, "the first run never started a step"
        os.killpg(first.pid, signal.SIGSTOP)  # frozen mid-run, so it is surely still going
        started = time.monotonic()
        try:
            second = subprocess.run(
                MATERIALIZE_EVERYTHING,
                env={
                    **lakehouse.cli_environment(tmp_path / "second_home"),
                    "MARKETING_ML_LOCK_WAIT": "0",
                },
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                "the second run did not fail within 60 s while the first held the lakehouse"
            )
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        second_took = time.monotonic() - started
        _, first_errors = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)

    assert second.returncode != 0
    assert f"is in use by another run: PID {first.pid} " in second.stderr
    assert f"run id {first_run_id}" in second.stderr
    assert "MARKETING_ML_LOCK_WAIT" in second.stderr
    assert "Conflicting lock" not in second.stderr
    assert "Started execution of step" not in second.stderr, "the second run touched nothing"
    assert second_took < 60
    assert first.returncode == 0, first_errors[-3000:]
    assert lakehouse.query("SELECT count(*) FROM silver.meta_campaign_performance")[0][0] > 0
    served_equals_kept(lakehouse)
    assert_lock_is_free(lock_file(lakehouse))


HOLDER = """
import fcntl, json, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(descriptor, fcntl.LOCK_EX)
os.ftruncate(descriptor, 0)
os.write(descriptor, json.dumps({"pid": os.getpid(), "run_id": sys.argv[2]}).encode())
print("held", flush=True)
if sys.argv[3] == "die":
    os.kill(os.getpid(), 9)
time.sleep(float(sys.argv[3]))
"""
"""Takes the lock file as a run does, then dies outright (kill -9) or holds it for a while."""


def hold_lock(path: Path, run_id: str, hold: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), run_id, hold], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "held\n"
    return process


def lock_probe(seen: list[dict], fail: bool = False) -> dg.AssetsDefinition:
    """An asset that records what the lock file says while the run executes it."""

    @dg.asset(key=["lock_probe"])
    def probe(lakehouse: LakehouseResource) -> dg.MaterializeResult:
        seen.append(read_holder(lakehouse.path.with_name(lakehouse.path.name + ".lock")))
        if fail:
            raise RuntimeError("the probe fails on purpose")
        return dg.MaterializeResult()

    return probe


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """Every error a run's events carry (a resource that fails to start reports it in its own)."""
    errors = (getattr(event.event_specific_data, "error", None) for event in result.all_events)
    return "\n".join(str(error) for error in errors if error is not None)


def probe_run(lakehouse: Lakehouse, seen: list[dict], fail: bool = False):
    return dg.materialize(
        [lock_probe(seen, fail)], resources=lakehouse.definitions.resources, raise_on_error=False
    )


def test_a_lock_left_by_a_killed_run_is_taken_over_and_the_run_succeeds(lakehouse):
    lock = lock_file(lakehouse)
    killed = hold_lock(lock, "killed-run", "die")
    killed.wait(timeout=30)
    assert read_holder(lock)["pid"] == killed.pid

    seen: list[dict] = []

    @dg.asset_check(asset=dg.AssetKey(["gold", "daily_adset_metrics"]))
    def lock_holder_during_the_run(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        seen.append(read_holder(lakehouse.path.with_name(lakehouse.path.name + ".lock")))
        return dg.AssetCheckResult(passed=True)

    result = lakehouse.materialize(extra_checks=[lock_holder_during_the_run])

    assert result.success
    assert len(seen) == 1
    assert seen[0]["pid"] == os.getpid()
    assert seen[0]["run_id"] == result.run_id
    served_equals_kept(lakehouse)
    assert_lock_is_free(lock)


def test_the_lock_is_released_after_a_failed_run(lakehouse):
    seen: list[dict] = []
    failed = probe_run(lakehouse, seen, fail=True)

    assert not failed.success
    assert seen == [{**seen[0], "pid": os.getpid(), "run_id": failed.run_id}], (
        "the failed run held the lock"
    )
    assert_lock_is_free(lock_file(lakehouse))
    assert lakehouse.materialize().success, "the next run takes the lakehouse"


def test_a_run_fails_at_once_while_another_process_holds_the_lakehouse(lakehouse, monkeypatch):
    monkeypatch.delenv("MARKETING_ML_LOCK_WAIT", raising=False)
    holder = hold_lock(lock_file(lakehouse), "the-other-run", "60")
    try:
        seen: list[dict] = []
        started = time.monotonic()
        result = probe_run(lakehouse, seen)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(timeout=30)

    assert not result.success
    assert seen == [], "no step of the run may start"
    message = failure_messages(result)
    assert f"PID {holder.pid} " in message
    assert "run id the-other-run" in message
    assert took < 20


def test_a_run_waits_for_the_lakehouse_when_told_to(lakehouse, monkeypatch):
    monkeypatch.setenv("MARKETING_ML_LOCK_WAIT", "60")
    holder = hold_lock(lock_file(lakehouse), "the-other-run", "2")
    started = time.monotonic()
    seen: list[dict] = []
    result = probe_run(lakehouse, seen)
    took = time.monotonic() - started
    holder.wait(timeout=30)

    assert result.success
    assert took >= 1.5, "the run waited for the other one to let go"
    assert seen[0]["run_id"] == result.run_id


def test_an_unreadable_lock_wait_fails_the_run_with_what_to_set(lakehouse, monkeypatch):
    monkeypatch.setenv("MARKETING_ML_LOCK_WAIT", "five minutes")
    result = probe_run(lakehouse, [])

    assert not result.success
    assert "MARKETING_ML_LOCK_WAIT='five minutes' is not a number of seconds" in (
        failure_messages(result)
    )
