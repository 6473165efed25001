"""Publish with paths and names that need quoting, and clean-up after publishes that were killed."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from marketing_ml.defs.serving.publish import build_publish_asset
from marketing_ml.resources import LakehouseResource, ServingResource
from marketing_ml_tests.support.lakehouse import Lakehouse, write_clean_raw_dir
from serving_contract import SERVED_TABLES

ODD_DIRECTORY = 'it\'s "odd"; -- dir'


def test_whole_run_publishes_when_the_lakehouse_and_serving_paths_need_quoting(tmp_path):
    odd = tmp_path / ODD_DIRECTORY
    lakehouse = Lakehouse(
        raw_dir=write_clean_raw_dir(tmp_path / "raw"),
        database=odd / "lake'house.duckdb",
        serving=odd / "serving's.duckdb",
    )
    result = lakehouse.materialize()

    assert result.success
    for table in SERVED_TABLES:
        schema, name = table.split(".")
        served = lakehouse.serving_query(f'SELECT count(*) FROM "{schema}"."{name}"')
        kept = lakehouse.query(f'SELECT count(*) FROM "{schema}"."{name}"')
        assert served == kept, table
    assert lakehouse.serving_query("SELECT count(*) FROM gold.daily_adset_metrics")[0][0] > 0


def publish_run(lakehouse: Path, serving: Path, tables: tuple[str, ...]):
    """The real publish asset in a real Dagster run, its upstream tables already in `lakehouse`."""
    return dg.materialize(
        [build_publish_asset(tables)],
        resources={
            "lakehouse": LakehouseResource(database=str(lakehouse)),
            "serving": ServingResource(database=str(serving)),
        },
        raise_on_error=False,
    )


def test_publish_quotes_table_and_column_names(tmp_path):
    lakehouse = tmp_path / "lakehouse.duckdb"
    with duckdb.connect(str(lakehouse)) as connection:
        connection.execute('CREATE SCHEMA "gold"')
        connection.execute(
            'CREATE TABLE gold."order" ("he said ""hi""" INTEGER, "select" VARCHAR, booster BLOB)'
        )
        connection.execute("INSERT INTO gold.\"order\" VALUES (1, 'a', NULL), (2, 'b', NULL)")

    result = publish_run(lakehouse, tmp_path / "serving.duckdb", ("gold.order",))

    assert result.success
    with duckdb.connect(str(tmp_path / "serving.duckdb"), read_only=True) as serving:
        assert serving.execute(
            'SELECT "he said ""hi""", "select" FROM gold."order" ORDER BY 1'
        ).fetchall() == [(1, "a"), (2, "b")]
        columns = serving.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'order'"
        ).fetchall()
        assert ("booster",) not in columns


KILLED_PUBLISH = """
import os, sys, duckdb
staging = os.path.join(sys.argv[1], f".{sys.argv[2]}.{os.getpid()}.tmp")
connection = duckdb.connect(staging)
connection.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
print(os.getpid(), flush=True)
if sys.argv[3] == "die":
    os.kill(os.getpid(), 9)
sys.stdin.read()
"""
"""Starts building a staging file the way publish does, then dies (kill -9) or waits on stdin."""


def half_published(directory: Path, serving_name: str, outcome: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PUBLISH, str(directory), serving_name, outcome],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert int(process.stdout.readline()) == process.pid
    return process


def test_publish_removes_what_killed_publishes_left_but_not_a_live_ones(tmp_path):
    lakehouse = tmp_path / "lakehouse.duckdb"
    with duckdb.connect(str(lakehouse)) as connection:
        connection.execute("CREATE SCHEMA gold")
        connection.execute("CREATE TABLE gold.kpis AS SELECT 42 AS spend")
    serving = tmp_path / "serving.duckdb"

    killed = half_published(tmp_path, serving.name, "die")
    killed.wait(timeout=30)
    dead_files = [
        tmp_path / f".serving.duckdb.{killed.pid}.tmp",
        tmp_path / f".serving.duckdb.{killed.pid}.tmp.wal",
    ]
    assert all(path.exists() for path in dead_files), "kill -9 should leave the file and its WAL"
    spill_folder = tmp_path / f".serving.duckdb.{killed.pid}.tmp.tmp"
    spill_folder.mkdir()
    (spill_folder / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled")
    other_serving_file = tmp_path / f".other.duckdb.{killed.pid}.tmp"
    other_serving_file.write_bytes(b"not ours")

    live = half_published(tmp_path, serving.name, "wait")
    try:
        live_file = tmp_path / f".serving.duckdb.{live.pid}.tmp"
        assert live_file.exists()

        result = publish_run(lakehouse, serving, ("gold.kpis",))

        assert result.success
        assert not any(path.exists() for path in [*dead_files, spill_folder])
        assert live_file.exists(), "a live run's staging file must be left alone"
        assert other_serving_file.exists(), "only the orphans of this serving file are removed"
        with duckdb.connect(str(serving), read_only=True) as connection:
            assert connection.execute("SELECT spend FROM gold.kpis").fetchall() == [(42,)]
        removed = result.get_asset_materialization_events()[0].materialization.metadata
        assert sorted(removed["removed_orphans"].value) == sorted(
            path.name for path in [*dead_files, spill_folder]
        )
    finally:
        live.communicate(input="", timeout=30)
