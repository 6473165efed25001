"""Fixtures every tier shares: a fresh lakehouse per test, and lakehouses built once per session
(a test that changes one gets its own copy).

Each test is marked with its tier (the folder it lives in), so `pytest -m unit` and
`make test-fast` (`-m "unit or integration"`) select by what a test needs."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from marketing_ml.ingest.settle import SETTLE_ENV
from marketing_ml_tests.support.dashboard_harness import build_served_lakehouse
from marketing_ml_tests.support.lakehouse import (
    BuiltLakehouse,
    Lakehouse,
    build_clean_lakehouse,
    copy_lakehouse,
    write_clean_raw_dir,
)

os.environ.setdefault(SETTLE_ENV, "0")
"""Tests write a raw file and read it at once: the settle window (tested on its own in
integration/test_files_changing_while_read.py) would add two seconds to every build."""

RAM_DISK = Path("/dev/shm")
RAM_DISK_ROOM = 2 * 1024**3
"""Free bytes the RAM disk must have to hold the tests' temporary files: a session writes a few
hundred MB and pytest keeps the last three sessions' (a container's 64 MB /dev/shm is passed by)."""


def keep_temporary_files_in_ram() -> None:
    """tmp_path, the SQLite instances of `dg.instance_for_test` and the CLI's DAGSTER_HOME commit
    every event: about 5 ms each on disk, 0.2 ms in RAM (the sensor loop test took 47-54 s
    instead of 70-118 s). Durability is no test's subject; a TMPDIR set by the caller wins."""
    if (
        "TMPDIR" not in os.environ
        and RAM_DISK.is_dir()
        and os.access(RAM_DISK, os.W_OK)
        and shutil.disk_usage(RAM_DISK).free >= RAM_DISK_ROOM
    ):
        os.environ["TMPDIR"] = str(RAM_DISK)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


keep_temporary_files_in_ram()

TIERS = ("unit", "integration", "app", "browser", "deploy", "spark")
"""The folders under marketing_ml_tests/, each a marker declared in pyproject.toml."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier folder; a test outside one is an error, not a silent skip
    of `-m` selections."""
    root = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(root).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: test modules belong in a tier folder {TIERS}")
        item.add_marker(tier)


@pytest.fixture
def lakehouse(tmp_path: Path) -> Lakehouse:
    return Lakehouse(
        raw_dir=write_clean_raw_dir(tmp_path / "raw"),
        database=tmp_path / "lakehouse.duckdb",
        serving=tmp_path / "serving.duckdb",
    )


@pytest.fixture(scope="session")
def clean_build(tmp_path_factory: pytest.TempPathFactory) -> BuiltLakehouse:
    """The clean fixture's whole graph and the run that built it, once per session, for tests
    that only read them: a test that changes the lakehouse takes `built_lakehouse` instead."""
    return build_clean_lakehouse(tmp_path_factory.mktemp("clean"))


@pytest.fixture
def built_lakehouse(clean_build: BuiltLakehouse, tmp_path: Path) -> Lakehouse:
    """A copy of the clean build of the test's own, laid out as `lakehouse` is: what a test that
    would first materialize the clean fixture and then change it starts from."""
    return copy_lakehouse(clean_build.lakehouse, tmp_path)


@pytest.fixture(scope="session")
def served_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Lakehouse:
    """The whole graph and the report built once per session from generated data: every tier's
    tests that only read a built lakehouse share it (copy it before changing it)."""
    return build_served_lakehouse(tmp_path_factory.mktemp("served"))
