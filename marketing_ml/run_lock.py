"""One run at a time per lakehouse: a lock file beside it, held for the whole run.

DuckDB allows one writer per file. Two runs on one lakehouse would interleave their steps until
one of them died with DuckDB's raw `Conflicting lock is held`. So a run takes `<lakehouse>.lock`
(e.g. `data/lakehouse.duckdb.lock`) when its resources start and gives it back when they are torn
down, whether the run succeeded or failed. The one resource that takes it is `lakehouse`
(`LakehouseResource`, marketing_ml/resources.py), which the IO manager depends on: the run's
lock is state of that resource instance, not of this module, so two lakehouses in one process
hold two locks. With the in-process executor the project uses, resources start once per run, so
the lock spans the whole run.

The lock is `fcntl.flock` on that file: atomic, and the kernel releases it when the holding
process dies (even `kill -9`), so a lock file left by a dead run is simply taken over. The file
holds the holder's PID, run id, host and start time as JSON, only for the message a second run
shows; it is emptied, not deleted, when the run ends (deleting a lock file races with the next
run opening it). Locking needs a Dagster run: resources built outside one (no run id) skip it.

A second run fails at once, naming the run that holds the lakehouse. `MARKETING_ML_LOCK_WAIT`
(seconds, default 0) makes it wait up to that long for the lakehouse instead.
"""

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_WAIT_ENV = "MARKETING_ML_LOCK_WAIT"
DEFAULT_LOCK_WAIT_SECONDS = 0.0
"""Fail at once: a run started by mistake says so straight away instead of queueing silently."""
POLL_SECONDS = 0.2


class LakehouseLockedError(RuntimeError):
    """Another run holds the lakehouse; the message names it and says what to do."""


def lock_path(lakehouse: Path) -> Path:
    """The lock file of a lakehouse: beside it, its name plus `.lock`."""
    return lakehouse.with_name(lakehouse.name + ".lock")


def lock_wait_seconds() -> float:
    """MARKETING_ML_LOCK_WAIT as seconds (empty: fail at once)."""
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also rejects nan
        raise ValueError(
            f"{LOCK_WAIT_ENV}={text!r} is not a number of seconds (0 or more) to wait for "
            "another run on the lakehouse."
        )
    return seconds


def read_holder(path: Path) -> dict:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _locked_message(lakehouse: Path, path: Path, waited: float) -> str:
    holder = read_holder(path)
    pid = holder.get("pid", "unknown")
    if holder:
        who = (
            f"PID {pid} on {holder.get('hostname', 'an unknown host')}, run id "
            f"{holder.get('run_id', 'unknown')}, started {holder.get('started_at', 'at an unknown time')}"
        )
    else:
        who = "a process that has not written its PID yet"
    waited_text = f" after waiting {waited:g} s" if waited else ""
    stop = f"kill {pid}" if isinstance(pid, int) else "stop it"
    return (
        f"The lakehouse {lakehouse} is in use by another run: {who}. One lakehouse takes one run "
        f"at a time (DuckDB allows a single writer), so this run stopped{waited_text} before "
        f"touching it. Wait for that run to finish and start this one again, or, if it is "
        f"stuck, stop it ({stop}); set {LOCK_WAIT_ENV} to a number of seconds to make runs wait "
        f"for the lakehouse instead of failing. Lock file: {path}"
    )


class RunLock:
    """`<lakehouse>.lock` taken for one run: its own descriptor, so another run of this process
    on the same lakehouse conflicts with it (two flocks on separate open files do)."""

    def __init__(self, lakehouse: Path, run_id: str):
        self.lakehouse = lakehouse
        self.run_id = run_id
        self.path = lock_path(lakehouse)
        self.descriptor: int | None = None

    def acquire(self, wait_seconds: float) -> dict:
        """Take the lock, waiting up to `wait_seconds`; returns what the lock file said before
        (a dead holder's)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            started = time.monotonic()
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self._refuse_a_second_hold_by_this_run()
                    waited = time.monotonic() - started
                    if waited >= wait_seconds:
                        raise LakehouseLockedError(
                            _locked_message(self.lakehouse, self.path, wait_seconds)
                        ) from None
                    time.sleep(min(POLL_SECONDS, wait_seconds - waited))
            previous = read_holder(self.path)
            record = {
                "pid": os.getpid(),
                "run_id": self.run_id,
                "hostname": socket.gethostname(),
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "lakehouse": str(self.lakehouse),
            }
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, (json.dumps(record) + "\n").encode("utf-8"), 0)
        except BaseException:
            os.close(descriptor)
            raise
        self.descriptor = descriptor
        return previous

    def _refuse_a_second_hold_by_this_run(self) -> None:
        """Two lakehouse resource instances of one run on one lakehouse (say the IO manager's
        and `lakehouse`, configured apart) would wait for each other: fail at once, saying how to
        bind them."""
        holder = read_holder(self.path)
        if holder.get("run_id") == self.run_id and holder.get("pid") == os.getpid():
            raise LakehouseLockedError(
                f"This run ({self.run_id}) already holds the lakehouse {self.lakehouse} through "
                "another lakehouse resource instance. Give the IO manager and the `lakehouse` "
                "resource one instance: marketing_ml.storage.io_manager.lakehouse_resources(), "
                "or LakehouseIOManager(lakehouse=<the `lakehouse` resource>) with that resource "
                "made by LakehouseResource.configure_at_launch(...)."
            )

    def release(self) -> None:
        if self.descriptor is None:
            return
        descriptor, self.descriptor = self.descriptor, None
        try:
            os.ftruncate(descriptor, 0)  # an empty lock file: nobody holds the lakehouse
        finally:
            os.close(descriptor)  # closing the only descriptor releases the flock


@contextmanager
def lakehouse_run_lock(
    lakehouse: Path, run_id: str, wait_seconds: float | None = None, log=None
) -> Iterator[RunLock]:
    """Hold `<lakehouse>.lock` for `run_id` inside the block.

    Raises LakehouseLockedError when another run (of any process, this one included) still holds
    it after `wait_seconds` (default: MARKETING_ML_LOCK_WAIT).
    """
    wait = lock_wait_seconds() if wait_seconds is None else wait_seconds
    lock = RunLock(lakehouse, run_id)
    previous = lock.acquire(wait)
    if log is not None and previous.get("pid") not in (None, os.getpid()):
        log.info(
            f"Took over the lock of {lakehouse} left by PID {previous.get('pid')} (run id "
            f"{previous.get('run_id', 'unknown')}), which no longer holds it."
        )
    try:
        yield lock
    finally:
        lock.release()
