"""A failed step keeps the previous table; a blocked run keeps the previous serving file."""

import subprocess
from contextlib import closing

import dagster as dg
import duckdb
import pandas as pd
import pytest

from marketing_ml.contract import META_CAMPAIGN_PERFORMANCE
from marketing_ml.defs.silver.silver_tables import revenue_by_day
from marketing_ml.storage import Sql, Table, duckdb_tables
from marketing_ml.storage.duckdb_tables import replace_table_with_query
from marketing_ml.storage.io_manager import lakehouse_resources, table_of
from marketing_ml_tests.support.lakehouse import (
    MATERIALIZE_EVERYTHING,
    Lakehouse,
    check_outcomes,
    clean_performance_rows,
    raw_path,
    write_raw_csv,
)


def test_query_failing_mid_write_leaves_the_previous_table(tmp_path):
    connection = duckdb.connect(str(tmp_path / "lakehouse.duckdb"))
    connection.execute("CREATE SCHEMA gold")
    replace_table_with_query(connection, "gold.kpis", "SELECT 1 AS spend")
    with pytest.raises(duckdb.ConversionException):
        replace_table_with_query(
            connection,
            "gold.kpis",
            "SELECT CAST(x AS INTEGER) AS spend FROM (VALUES ('1'), ('oops')) v(x)",
        )
    assert connection.execute("SELECT spend FROM gold.kpis").fetchall() == [(1,)]


def io_manager_run(tmp_path, output) -> dg.ExecuteInProcessResult:
    @dg.asset(key=["gold", "kpis"])
    def kpis():
        return output

    return dg.materialize(
        [kpis],
        resources=lakehouse_resources(str(tmp_path / "lakehouse.duckdb")),
        raise_on_error=False,
    )


def test_io_manager_keeps_the_old_table_when_a_step_fails_mid_write(tmp_path):
    assert io_manager_run(tmp_path, Sql("SELECT 42 AS spend")).success
    failed = io_manager_run(tmp_path, Sql("SELECT 1 / 0 AS spend, error('boom') AS crash"))
    assert not failed.success
    message = str(next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error)
    assert "previous version is kept" in message
    with duckdb.connect(str(tmp_path / "lakehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT spend FROM gold.kpis").fetchall() == [(42,)]


def test_an_upstream_table_not_built_yet_fails_with_what_to_materialize(tmp_path):
    @dg.asset(key=["silver", "spend"])
    def spend():
        return Sql("SELECT 1 AS spend")

    @dg.asset(key=["gold", "kpis"], ins={"spend": dg.AssetIn(key=["silver", "spend"])})
    def kpis(spend: Table):
        return Sql(f"SELECT sum(spend) AS spend FROM {spend}")

    result = dg.materialize(
        [spend.to_source_asset(), kpis],
        resources=lakehouse_resources(str(tmp_path / "lakehouse.duckdb")),
        raise_on_error=False,
    )
    assert not result.success
    message = str(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert "silver.spend" in message
    assert "--select '*gold/kpis'" in message


def test_a_new_column_replaces_the_table_instead_of_breaking_it(tmp_path):
    assert io_manager_run(tmp_path, pd.DataFrame({"spend": [1.0]})).success
    assert io_manager_run(tmp_path, pd.DataFrame({"spend": [2.0], "revenue": [8.0]})).success
    with duckdb.connect(str(tmp_path / "lakehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT spend, revenue FROM gold.kpis").fetchall() == [(2.0, 8.0)]


def served_spend(lakehouse: Lakehouse) -> float:
    return lakehouse.serving_query("SELECT sum(spend) FROM gold.daily_adset_metrics")[0][0]


def double_the_spend(lakehouse: Lakehouse) -> None:
    rows = clean_performance_rows()
    for row in rows:
        row[5] = f"{2 * float(row[5]):.2f}"
    write_raw_csv(
        raw_path(lakehouse, META_CAMPAIGN_PERFORMANCE), META_CAMPAIGN_PERFORMANCE.columns, rows
    )


def test_failing_blocking_check_leaves_the_previous_serving_file(built_lakehouse):
    lakehouse = built_lakehouse
    published_spend = served_spend(lakehouse)
    double_the_spend(lakehouse)

    @dg.asset_check(asset=dg.AssetKey(["gold", "daily_adset_metrics"]), blocking=True)
    def spend_doubled_alarm() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR)

    result = lakehouse.materialize(extra_checks=[spend_doubled_alarm])
    assert not result.success
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert dg.AssetKey(["gold", "daily_adset_metrics"]) in materialized
    assert dg.AssetKey("publish") not in materialized
    assert lakehouse.query("SELECT sum(spend) FROM gold.daily_adset_metrics")[0][
        0
    ] == pytest.approx(2 * published_spend)
    assert served_spend(lakehouse) == pytest.approx(published_spend)


def test_row_lost_in_silver_fails_row_accounting_and_blocks_publish(built_lakehouse):
    lakehouse = built_lakehouse
    published_spend = served_spend(lakehouse)
    with duckdb.connect(str(lakehouse.database)) as connection:
        connection.execute("DELETE FROM silver.meta_campaign_performance WHERE _source_line = 5")
    result = lakehouse.materialize(
        selection=dg.AssetSelection.assets(["silver", "quarantine"]).downstream()
    )
    assert not result.success
    assert check_outcomes(result)["row_accounting_meta_campaign_performance"] is False
    assert check_outcomes(result)["row_accounting_budget_pacing"] is True
    assert served_spend(lakehouse) == pytest.approx(published_spend)


def test_identical_inputs_give_identical_tables(clean_build, tmp_path):
    first = clean_build.lakehouse
    second = Lakehouse(
        first.raw_dir, tmp_path / "second.duckdb", tmp_path / "second-serving.duckdb"
    )
    assert clean_build.result.success and second.materialize().success
    tables = first.query(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
    )
    assert len(tables) >= 12
    for (table,) in tables:
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert first.query(query) == second.query(query), table


def test_cli_materializes_the_whole_graph(lakehouse, tmp_path):
    completed = subprocess.run(
        MATERIALIZE_EVERYTHING,
        env=lakehouse.cli_environment(tmp_path / "dagster_home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "RUN_SUCCESS" in completed.stderr
    with duckdb.connect(str(lakehouse.serving), read_only=True) as connection:
        served = connection.execute("SELECT count(*) FROM gold.daily_adset_metrics").fetchone()
        scored = connection.execute("SELECT count(*) FROM gold.scored_adsets").fetchone()
    assert served == scored == (63,)


def test_revenue_by_day_does_not_depend_on_the_order_of_the_events():
    """Summed as doubles, the same 400,000 bookings in another order gave revenues a last bit
    apart; the daily fingerprints of gold.features then saw days change that had not."""
    connection = duckdb.connect()
    connection.execute(
        """CREATE TABLE events AS
        SELECT DATE '2024-08-01' + CAST(i % 30 AS INTEGER) AS date, 'AS_' || (i % 7) AS ad_set_id,
            'booking_completed' AS conversion_type, round(random() * 1000, 2) AS value
        FROM range(400000) AS numbers(i)"""
    )
    connection.execute("CREATE TABLE shuffled AS SELECT * FROM events ORDER BY hash(value, date)")
    in_file_order, shuffled = (
        connection.execute(
            f"SELECT * FROM ({revenue_by_day(conversion_events=Table(name)).query}) "
            "ORDER BY date, ad_set_id"
        ).fetchall()
        for name in ("events", "shuffled")
    )
    assert len(in_file_order) == 210
    assert in_file_order == shuffled


def test_a_table_input_is_named_by_its_asset_key_without_opening_the_lakehouse():
    assert str(table_of(dg.AssetKey(["gold", "daily_adset_metrics"]))) == "gold.daily_adset_metrics"
    with pytest.raises(dg.DagsterInvariantViolationError, match="report: a table asset's key"):
        table_of(dg.AssetKey("report"))


def test_a_run_opens_the_lakehouse_file_once_except_after_frame_reads(lakehouse, monkeypatch):
    """Every step's connection is a cursor of the one connection the run's lakehouse resource
    holds, closed only to free DuckDB's buffers after a frame read and at the end of the run (a
    read-only connection of this process would otherwise be refused)."""
    opened, cursors_of, closed = [], [], []
    real_open = duckdb_tables._open
    real_cursor = duckdb_tables.HeldConnection.cursor
    real_close = duckdb_tables.HeldConnection.close

    def counting_open(database, read_only, memory_limit):
        opened.append(database.resolve())
        return real_open(database, read_only, memory_limit)

    def counting_cursor(held):
        cursors_of.append(held)
        return real_cursor(held)

    def counting_close(held):
        closed.append(held.database.resolve())
        real_close(held)

    monkeypatch.setattr(duckdb_tables, "_open", counting_open)
    monkeypatch.setattr(duckdb_tables.HeldConnection, "cursor", counting_cursor)
    monkeypatch.setattr(duckdb_tables.HeldConnection, "close", counting_close)
    result = lakehouse.materialize()

    assert result.success
    path = lakehouse.database.resolve()
    assert 1 <= opened.count(path) <= closed.count(path)
    assert len({id(held) for held in cursors_of}) == 1, "one held connection for the whole run"
    assert len(cursors_of) > 3 * opened.count(path)
    assert lakehouse.serving_query("SELECT count(*) FROM gold.daily_adset_metrics")[0][0] > 0
    assert lakehouse.query("SELECT count(*) FROM silver.conversion_events")[0][0] > 0


def test_the_held_connection_keeps_the_file_open_until_closed_and_reopens_on_use(tmp_path):
    database = tmp_path / "lakehouse.duckdb"
    held = duckdb_tables.HeldConnection(database)
    with closing(held.cursor()) as writer:
        writer.execute("CREATE TABLE t AS SELECT 1 AS x")
    with closing(held.cursor()) as reader:
        assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]
    with pytest.raises(duckdb.ConnectionException):
        duckdb.connect(str(database), read_only=True)
    held.close()
    with duckdb.connect(str(database), read_only=True) as reader:  # closed until next use
        assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]
    with closing(held.cursor()) as writer:
        writer.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(duckdb.ConnectionException):
        duckdb.connect(str(database), read_only=True)
    held.close()
    with duckdb.connect(str(database), read_only=True) as reader:
        assert reader.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
