"""One timed run of the `dagster` CLI, measured from the outside as a user starts it: a fresh
process, start-up included; its wall time, the peak memory of its process tree, and each step's
time from the run's event log."""

import subprocess
import time
from pathlib import Path

from .bench_host import BIN, ROOT, load
from .process_memory import PeakMemory


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
