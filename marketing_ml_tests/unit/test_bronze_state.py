"""The bronze state has one typed owner: what a load records reads back field for field, and a
state from an older release is still understood the way it was before."""

import hashlib
import json

import duckdb
import pytest

from marketing_ml.contract import BUDGET_PACING
from marketing_ml.defs.bronze.bronze_tables import RawExport
from marketing_ml.ingest.bronze_state import BronzeState, read_bronze_state, stored_profile

HEADER = ",".join(BUDGET_PACING.columns) + "\n"
DAY_ONE = "2025-01-01,AS_1,100,90,0.9,on_track\n2025-01-01,AS_2,50,55,1.1,overspending\n"
DAY_TWO = "2025-01-02,AS_1,100,95,0.95,on_track\n"


@pytest.fixture
def connection():
    with duckdb.connect() as connection:
        connection.execute("CREATE SCHEMA bronze")
        yield connection


def recorded_json(connection) -> dict:
    (comment,) = connection.execute(
        "SELECT comment FROM duckdb_tables() "
        "WHERE schema_name = 'bronze' AND table_name = 'budget_pacing'"
    ).fetchone()
    return json.loads(comment)


def load(connection, path) -> dict:
    return RawExport(BUDGET_PACING, path).write(connection, "bronze", "budget_pacing")


def test_the_state_a_load_and_an_append_record_reads_back_field_for_field(connection, tmp_path):
    path = tmp_path / BUDGET_PACING.file_name
    path.write_text(HEADER + DAY_ONE)
    load(connection, path)
    path.write_text(HEADER + DAY_ONE + DAY_TWO)
    assert load(connection, path)["load"] == "appended 1 rows"

    state = read_bronze_state(connection, "bronze.budget_pacing")
    assert state.to_json() == recorded_json(connection)
    assert state.file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (state.file.data_rows, state.file.lines, state.file.blank_lines) == (3, 4, 0)
    assert state.file.header == BUDGET_PACING.columns
    assert state.rows == 3
    assert list(state.rows_by_version.values()) == [2, 3]
    assert state.query == state.versions[-1][0].split(":")[0]


def test_a_table_without_a_state_reads_as_none(connection):
    connection.execute("CREATE TABLE bronze.budget_pacing (x INTEGER)")
    assert read_bronze_state(connection, "bronze.budget_pacing") is None


def test_a_state_from_before_lines_were_counted_reloads_in_full_and_keeps_its_records(
    connection, tmp_path
):
    path = tmp_path / BUDGET_PACING.file_name
    path.write_text(HEADER + DAY_ONE)
    load(connection, path)
    legacy = recorded_json(connection)
    del legacy["file"]["lines"], legacy["file"]["blank_lines"]

    state = BronzeState.from_json(legacy)
    assert state.to_json() == legacy
    assert state.file.data_rows == 2
    assert stored_profile(state, path, BUDGET_PACING) is None

    text = json.dumps(legacy).replace("'", "''")
    connection.execute(f"COMMENT ON TABLE bronze.budget_pacing IS '{text}'")
    assert load(connection, path)["load"] == "full load (2 rows)"
    assert recorded_json(connection)["file"]["lines"] == 3
