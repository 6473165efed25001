"""One lakehouse resource owns a run: its lock and its held connection are state of that resource
instance, and the IO manager works through it.

Nothing here is replaced: the runs are real Dagster runs on DuckDB files in a temporary folder;
the held connection's `cursor` is only wrapped to record which connection handed it out.
"""

import json
from pathlib import Path

import dagster as dg
import duckdb

from marketing_ml.resources import LakehouseResource
from marketing_ml.run_lock import lock_path
from marketing_ml.storage import Engine, Sql, Table, duckdb_tables
from marketing_ml.storage.engine import ENGINE_ENV
from marketing_ml.storage.io_manager import LakehouseIOManager, lakehouse_resources


def lock_holder(lakehouse: Path) -> dict:
    return json.loads(lock_path(lakehouse).read_text() or "{}")


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    errors = (getattr(event.event_specific_data, "error", None) for event in result.all_events)
    return "\n".join(str(error) for error in errors if error is not None)


def test_two_lakehouses_in_one_process_hold_their_own_locks(tmp_path):
    """A run on a second lakehouse, started inside a run on the first, takes and gives back its
    own lock and leaves the first run's alone; a run on the first lakehouse is refused."""
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    seen: dict = {}

    @dg.asset
    def inner_probe(lakehouse: LakehouseResource) -> None:
        seen.setdefault("inner", []).append(lock_holder(lakehouse.path))

    @dg.asset
    def outer_probe(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> None:
        seen["outer_run_id"] = context.run.run_id
        seen["outer_lock"] = lakehouse.run_lock
        seen["on_second"] = dg.materialize(
            [inner_probe], resources=lakehouse_resources(str(second))
        )
        seen["outer_after_second"] = lock_holder(first)
        seen["on_first"] = dg.materialize(
            [inner_probe], resources=lakehouse_resources(str(first)), raise_on_error=False
        )
        seen["outer_after_first"] = lock_holder(first)

    outer = dg.materialize([outer_probe], resources=lakehouse_resources(str(first)))

    assert outer.success
    assert seen["outer_lock"].path == lock_path(first)
    assert seen["on_second"].success
    assert seen["inner"] == [{**seen["inner"][0], "run_id": seen["on_second"].run_id}]
    assert seen["inner"][0]["lakehouse"] == str(second)
    assert seen["outer_after_second"]["run_id"] == seen["outer_run_id"]
    assert not seen["on_first"].success
    assert f"run id {seen['outer_run_id']}" in failure_messages(seen["on_first"])
    assert seen["outer_after_first"]["run_id"] == seen["outer_run_id"]
    assert lock_path(first).read_text() == "" and lock_path(second).read_text() == ""


def test_the_io_manager_and_checks_use_the_lakehouse_resources_held_connection(
    tmp_path, monkeypatch
):
    """Two steps written by the IO manager and a check reading through `lakehouse` get cursors of
    one connection, the one the run's lakehouse resource holds for its file."""
    database = tmp_path / "lakehouse.duckdb"
    handed_out: list[duckdb_tables.HeldConnection] = []
    real_cursor = duckdb_tables.HeldConnection.cursor

    def recording_cursor(held):
        handed_out.append(held)
        return real_cursor(held)

    monkeypatch.setattr(duckdb_tables.HeldConnection, "cursor", recording_cursor)

    @dg.asset(key=["silver", "spend"])
    def spend():
        return Sql("SELECT 2.5 AS spend")

    @dg.asset(key=["gold", "kpis"], ins={"spend": dg.AssetIn(key=["silver", "spend"])})
    def kpis(spend: Table):
        return Sql(f"SELECT sum(spend) * 2 AS spend FROM {spend}")

    @dg.asset_check(asset=kpis)
    def kpis_written(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        with lakehouse.connect(read_only=True) as connection:
            spend = connection.execute("SELECT spend FROM gold.kpis").fetchone()[0]
        return dg.AssetCheckResult(passed=spend == 5.0)

    def run() -> list[duckdb_tables.HeldConnection]:
        start = len(handed_out)
        result = dg.materialize(
            [spend, kpis, kpis_written], resources=lakehouse_resources(str(database))
        )
        assert result.success
        assert result.get_asset_check_evaluations()[0].passed
        return handed_out[start:]

    first_run, second_run = run(), run()

    assert len(first_run) >= 3, "two IO manager writes and the check"
    assert len({id(held) for held in first_run}) == 1, "one connection for the whole run"
    assert len({id(held) for held in second_run}) == 1
    assert first_run[0] is not second_run[0], "a run's connection is its own"
    assert {held.database for held in handed_out} == {database}
    with duckdb.connect(str(database), read_only=True) as connection:  # both runs let go of it
        assert connection.execute("SELECT spend FROM gold.kpis").fetchall() == [(5.0,)]


def test_the_engine_field_overrides_the_environment_which_is_its_default(monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "spark")
    assert LakehouseResource().engine_in_use is Engine.SPARK
    assert LakehouseResource(engine=Engine.DUCKDB).engine_in_use is Engine.DUCKDB
    monkeypatch.delenv(ENGINE_ENV)
    assert LakehouseResource().engine_in_use is Engine.DUCKDB


def test_an_unknown_engine_fails_the_run_with_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "postgres")
    ran: list[str] = []

    @dg.asset
    def untouched(lakehouse: LakehouseResource) -> None:
        ran.append(str(lakehouse.path))

    database = tmp_path / "lakehouse.duckdb"
    result = dg.materialize(
        [untouched], resources=lakehouse_resources(str(database)), raise_on_error=False
    )

    assert not result.success
    assert "MARKETING_ML_ENGINE='postgres' is not an engine" in failure_messages(result)
    assert ran == [] and not lock_path(database).exists()


def test_two_resource_instances_of_one_run_on_one_lakehouse_fail_with_how_to_bind_them(tmp_path):
    """Configured apart, the IO manager's lakehouse and `lakehouse` would each take the lock: the
    run stops at once and says to share one instance, instead of waiting for itself."""
    database = str(tmp_path / "lakehouse.duckdb")
    ran: list[str] = []

    @dg.asset
    def untouched(lakehouse: LakehouseResource) -> None:
        ran.append(str(lakehouse.path))

    result = dg.materialize(
        [untouched],
        resources={
            "lakehouse": LakehouseResource(database=database),
            "io_manager": LakehouseIOManager(lakehouse=LakehouseResource(database=database)),
        },
        raise_on_error=False,
    )

    assert not result.success
    assert ran == []
    message = failure_messages(result)
    assert f"This run ({result.run_id}) already holds the lakehouse" in message
    assert "lakehouse_resources()" in message
