"""The engine behind one interface: both engines provide every table operation with the
Protocol's signature, the DuckDB path never loads the Spark engine, and the engine is chosen by
one reader of MARKETING_ML_ENGINE."""

import inspect
import os
import subprocess
import sys

import duckdb
import pytest

from marketing_ml.storage.duckdb_tables import DuckDBTables
from marketing_ml.storage.engine import ENGINE_ENV, Engine, engine_from_env, tables_for
from marketing_ml.storage.spark.spark_tables import SparkTables
from marketing_ml.storage.tables import SnapshotTables, TableOperations


def protocol_methods(protocol) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("implementation", "protocol"),
    [(DuckDBTables, TableOperations), (SparkTables, SnapshotTables)],
)
def test_each_engine_implements_every_operation_with_the_protocols_parameters(
    implementation, protocol
):
    expected = protocol_methods(TableOperations)
    if protocol is SnapshotTables:
        expected |= protocol_methods(SnapshotTables)
    assert len(expected) >= 13
    for name, signature in expected.items():
        method = getattr(implementation, name)
        parameters = list(inspect.signature(method).parameters.values())
        assert [(p.name, p.default) for p in parameters] == [
            (p.name, p.default) for p in signature.parameters.values()
        ], name
    assert isinstance(implementation.updates_in_place, bool)
    assert implementation.updates_in_place is (protocol is TableOperations)


def test_a_duckdb_connection_writes_reads_and_records_state_through_the_interface(tmp_path):
    with duckdb.connect(str(tmp_path / "lakehouse.duckdb")) as database:
        tables = tables_for(database)
        assert isinstance(tables, DuckDBTables)
        tables.create_schema(database, "gold")
        tables.replace_table_with_query(
            database, "gold.kpis", "SELECT * FROM (VALUES (2), (1)) v(spend)", ["spend"]
        )
        with tables.transaction(database):
            tables.set_table_state(database, "gold", "kpis", {"rows": 2})
        assert tables.row_count(database.cursor(), "gold.kpis") == 2
        assert tables.column_names(database.cursor(), "gold.kpis") == ["spend"]
        assert tables.table_state(database.cursor(), "gold", "kpis") == {"rows": 2}
        frame = tables.fetch_frame(database.cursor(), "SELECT spend FROM gold.kpis")
        assert frame["spend"].tolist() == [1, 2]


def test_the_duckdb_path_never_imports_the_spark_engine_or_pyspark():
    environment = {key: value for key, value in os.environ.items() if key != ENGINE_ENV}
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, marketing_ml.definitions\n"
            "from marketing_ml.resources import LakehouseResource\n"
            "from marketing_ml.storage.engine import tables_for\n"
            "import tempfile\n"
            "with tempfile.TemporaryDirectory() as folder:\n"
            "    lakehouse = LakehouseResource(database=folder + '/l.duckdb')\n"
            "    with lakehouse.connect() as connection:\n"
            "        tables_for(connection).create_schema(connection, 'gold')\n"
            "print(sorted(m for m in sys.modules if 'spark' in m))",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("setting", "engine"),
    [
        (None, Engine.DUCKDB),
        ("", Engine.DUCKDB),
        (" Spark ", Engine.SPARK),
        ("duckdb", Engine.DUCKDB),
    ],
)
def test_the_engine_setting_is_read_into_an_enum(monkeypatch, setting, engine):
    if setting is None:
        monkeypatch.delenv(ENGINE_ENV, raising=False)
    else:
        monkeypatch.setenv(ENGINE_ENV, setting)
    assert engine_from_env() is engine
