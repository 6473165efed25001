"""Spark's side of writing tables: Parquet tables in a persistent Hive catalog, one database per
layer, each replaced atomically by writing it under a new location and then switching the
catalog to that location.

Where it runs: the process's one session (`session.session_for`). Where tables live:
MARKETING_ML_WAREHOUSE (default data/spark-warehouse), which also holds the embedded Derby
metastore, so the catalog persists between runs without a server. One process at a time may
open that metastore: runs take the lakehouse lock on the warehouse, and a run's steps share the
process's one session.

Spark's built-in Parquet tables cannot delete or update rows, so incrementally written tables
are built in full on this engine (`updates_in_place = False`); a file whose version is already
in bronze is still left alone.
"""

import json
import shutil
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_ml.storage.engine import warehouse_path
from marketing_ml.storage.spark.session import session_for
from marketing_ml.storage.spark.spark_sql import to_spark

STATE_PROPERTY = "marketing_ml.state"
VERSIONS_FOLDER = "tables"
"""Under the warehouse: tables/<schema>/<table>/<version>/ holds each written version."""

updates_in_place = False


class SparkResult:
    """A statement's result with the part of DuckDB's cursor API the pipeline uses."""

    def __init__(self, frame):
        self._frame = frame
        self._rows = None

    @property
    def description(self) -> list[tuple]:
        return [(field.name,) for field in self._frame.schema.fields]

    def _collected(self) -> list[tuple]:
        if self._rows is None:
            self._rows = [tuple(row) for row in self._frame.collect()]
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self._collected()
        return rows[0] if rows else None

    def fetchall(self) -> list[tuple]:
        return self._collected()

    def df(self) -> pd.DataFrame:
        return to_pandas(self._frame)

    def to_arrow_table(self):
        return self._frame.toArrow()


class SparkConnection:
    """The lakehouse on Spark, taking the pipeline's SQL in DuckDB's dialect (transpiled by
    `sql.to_spark`). Frames registered by name become temporary views."""

    def __init__(self, session, warehouse: Path):
        self.session = session
        self.warehouse = warehouse

    def execute(self, query: str, parameters=None) -> SparkResult:
        return SparkResult(self.session.sql(to_spark(query), args=parameters or None))

    def sql(self, query: str) -> SparkResult:
        return self.execute(query)

    def register(self, name: str, frame: pd.DataFrame) -> None:
        spark_frame(self.session, frame).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def close(self) -> None:
        """The session outlives a connection: the run's steps share it."""


def connect() -> SparkConnection:
    warehouse = warehouse_path()
    return SparkConnection(session_for(warehouse), warehouse)


def owns(connection) -> bool:
    return isinstance(connection, SparkConnection)


def create_schema(connection: SparkConnection, schema: str) -> None:
    connection.session.sql(f"CREATE DATABASE IF NOT EXISTS `{schema}`")


def _exists(connection: SparkConnection, name: str) -> bool:
    return connection.session.catalog.tableExists(name)


def row_count(connection: SparkConnection, name: str) -> int:
    return connection.session.table(name).count()


def column_names(connection: SparkConnection, name: str) -> list[str]:
    return connection.session.table(name).columns


def table_metadata(connection: SparkConnection, name: str) -> dict:
    """Row count and column schema of a table, the metadata every table asset carries."""
    fields = connection.session.table(name).schema.fields
    return {
        "dagster/row_count": dg.MetadataValue.int(row_count(connection, name)),
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name=field.name, type=field.dataType.simpleString())
                for field in fields
            ]
        ),
    }


@contextmanager
def transaction(connection: SparkConnection):
    """No multi-statement transactions on Spark: each replacement is one catalog switch, and a
    table's state is cleared by the switch and set after it, so a failure in between leaves a
    table without state, which the next write builds in full."""
    yield connection


def new_location(connection: SparkConnection, name: str) -> Path:
    """A fresh folder for the next version of table `name`."""
    schema, table = name.split(".")
    return connection.warehouse / VERSIONS_FOLDER / schema / table / uuid.uuid4().hex


def _location_of(connection: SparkConnection, name: str) -> str | None:
    rows = connection.session.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    for row in rows:
        if row[0] == "Location":
            return row[1]
    return None


def switch_to(location: Path):
    """An `Update.apply` that makes table `name` the Parquet files at `location`."""

    def apply(connection: SparkConnection, name: str) -> None:
        schema = connection.session.read.parquet(str(location)).schema
        _switch(connection, name, location, schema)

    return apply


def spark_string(value: str) -> str:
    """A Spark SQL string literal for any text (Spark reads backslash escapes in literals)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _switch(connection: SparkConnection, name: str, location: Path, schema) -> None:
    """Point `name` at the files at `location` (whose columns are `schema`) in one catalog
    change when the columns are the table's (readers see the old version or the new one);
    otherwise drop it and create it there (a new layout)."""
    session = connection.session
    previous = _location_of(connection, name) if _exists(connection, name) else None
    if previous is not None and session.table(name).schema == schema:
        session.sql(f"ALTER TABLE {name} UNSET TBLPROPERTIES IF EXISTS ('{STATE_PROPERTY}')")
        session.sql(f"ALTER TABLE {name} SET LOCATION {spark_string(str(location))}")
        session.catalog.refreshTable(name)
    else:
        session.sql(f"DROP TABLE IF EXISTS {name}")
        session.catalog.createTable(name, path=str(location), source="parquet", schema=schema)
    _remove_version(connection, previous)


def _remove_version(connection: SparkConnection, location: str | None) -> None:
    """Delete a replaced version's files when they are a local folder of this warehouse."""
    if not location:
        return
    path = Path(location.removeprefix("file:"))
    versions = (connection.warehouse / VERSIONS_FOLDER).resolve()
    if path.resolve().is_relative_to(versions) and path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _write_version(connection: SparkConnection, name: str, frame) -> None:
    """Write `frame` under a new location of `name` and switch the table to it."""
    location = new_location(connection, name)
    try:
        frame.write.mode("error").parquet(str(location))
    except BaseException:
        shutil.rmtree(location, ignore_errors=True)
        raise
    _switch(connection, name, location, frame.schema)


def create_table_as(
    connection: SparkConnection, name: str, query: str, order_by: Sequence[str] = ()
) -> None:
    ordering = f"\nORDER BY {', '.join(order_by)}" if order_by else ""
    _write_version(connection, name, connection.session.sql(to_spark(f"{query}{ordering}")))


def replace_table_with_query(
    connection: SparkConnection, name: str, query: str, order_by: Sequence[str] = ()
) -> None:
    """Swap `name` for the result of `query`; the old version survives a failure."""
    create_table_as(connection, name, query, order_by)


def replace_table_with_frame(connection: SparkConnection, name: str, frame: pd.DataFrame) -> None:
    _write_version(connection, name, spark_frame(connection.session, frame))


def spark_frame(session, frame: pd.DataFrame):
    """`frame` as a Spark DataFrame. Spark infers a schema from the rows, so an empty frame (a
    curves backtest on too little history) gets one from its pandas dtypes, text by default."""
    if len(frame):
        return session.createDataFrame(frame)
    from pyspark.sql import types

    kinds = {
        "i": types.LongType(),
        "u": types.LongType(),
        "f": types.DoubleType(),
        "b": types.BooleanType(),
        "M": types.TimestampType(),
    }
    schema = types.StructType(
        [
            types.StructField(str(column), kinds.get(dtype.kind, types.StringType()))
            for column, dtype in frame.dtypes.items()
        ]
    )
    return session.createDataFrame([], schema)


SPARK_TYPES = {"VARCHAR": "STRING", "DOUBLE": "DOUBLE", "DATE": "DATE", "BIGINT": "BIGINT"}


def replace_table_with_scores(connection: SparkConnection, name: str, scored) -> None:
    """`scored` (a `ScoredRows`) computed on the executors, batch by batch, then stored."""
    schema = ", ".join(f"`{column}` {SPARK_TYPES[kind]}" for column, kind in scored.columns)
    score = scored.score

    def score_batches(batches):
        for batch in batches:
            yield score(batch)

    frame = connection.session.sql(to_spark(scored.query)).mapInPandas(score_batches, schema)
    if scored.order_by:
        frame = frame.orderBy(*scored.order_by)
    _write_version(connection, name, frame)


def to_pandas(frame) -> pd.DataFrame:
    """A Spark frame as pandas through Arrow, typed as `duckdb_tables.fetch_frame` types it."""
    table = frame.toArrow()
    return table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)


def fetch_arrow(connection: SparkConnection, name: str):
    """A whole table as an Arrow table (what `publish` copies into the serving file)."""
    return connection.session.table(name).toArrow()


def fetch_frame(connection: SparkConnection, query: str) -> pd.DataFrame:
    return to_pandas(connection.session.sql(to_spark(query)))


def table_state(connection: SparkConnection, schema: str, table: str) -> dict | None:
    """What an incrementally written table records about its inputs (a table property, as
    JSON); None for a table without one."""
    name = f"{schema}.{table}"
    if not _exists(connection, name):
        return None
    for key, value in connection.session.sql(f"SHOW TBLPROPERTIES {name}").collect():
        if key == STATE_PROPERTY:
            return json.loads(value)
    return None


def set_table_state(connection: SparkConnection, schema: str, table: str, state: dict) -> None:
    text = spark_string(json.dumps(state, sort_keys=True))
    connection.session.sql(
        f"ALTER TABLE {schema}.{table} SET TBLPROPERTIES ('{STATE_PROPERTY}' = {text})"
    )


class SparkTables:
    """Spark's `SnapshotTables` (marketing_ml/storage/tables.py): this module's functions."""

    updates_in_place = updates_in_place

    def create_schema(self, connection, schema):
        create_schema(connection, schema)

    def column_names(self, connection, name):
        return column_names(connection, name)

    def row_count(self, connection, name):
        return row_count(connection, name)

    def table_metadata(self, connection, name):
        return table_metadata(connection, name)

    def transaction(self, connection):
        return transaction(connection)

    def create_table_as(self, connection, name, query, order_by=()):
        create_table_as(connection, name, query, order_by)

    def replace_table_with_query(self, connection, name, query, order_by=()):
        replace_table_with_query(connection, name, query, order_by)

    def replace_table_with_frame(self, connection, name, frame):
        replace_table_with_frame(connection, name, frame)

    def replace_table_with_scores(self, connection, name, scored):
        replace_table_with_scores(connection, name, scored)

    def fetch_arrow(self, connection, name):
        return fetch_arrow(connection, name)

    def fetch_frame(self, connection, query):
        return fetch_frame(connection, query)

    def table_state(self, connection, schema, table):
        return table_state(connection, schema, table)

    def set_table_state(self, connection, schema, table, state):
        set_table_state(connection, schema, table, state)

    def new_location(self, connection, name):
        return new_location(connection, name)

    def switch_to(self, location):
        return switch_to(location)
