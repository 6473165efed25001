"""The lakehouse IO manager: every table is replaced atomically, and SQL runs inside DuckDB.

The stock DuckDB IO manager deletes a table's rows and then inserts, outside a transaction (a
failure leaves an empty table and the first column layout sticks). Here `delete_table_slice` is a
no-op and each handler swaps the whole table with `CREATE OR REPLACE TABLE` inside one
transaction, so a failed step leaves the previous version intact and a new column just works.
"""

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster._utils.backoff import backoff
from dagster_duckdb.io_manager import DuckDbClient, DuckDBIOManager

from marketing_ml.resources import DUCKDB_MEMORY_LIMIT, duckdb_config, lakehouse_db_path
from marketing_ml.sql import sql_string


@dataclass(frozen=True)
class Sql:
    """An asset output that is a query: the IO manager materializes it in-engine, no round trip."""

    query: str
    order_by: Sequence[str] = field(default_factory=tuple)


FULL_LOAD_TAG = "marketing_ml/full_load"
"""Run tag that makes incrementally written tables rebuild in full (the full_refresh job sets it)."""


def full_load_requested(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(FULL_LOAD_TAG) == "true"


class TableWriter(ABC):
    """An asset output that writes its own table: for tables updated in place (appending a day,
    re-cleaning the keys it touched) rather than rebuilt. `write` must leave the previous version
    intact when it fails, and returns the table's metadata."""

    @abstractmethod
    def write(self, connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict: ...


@dataclass(frozen=True)
class Table:
    """An asset input that names an upstream table instead of loading it."""

    name: str

    def __str__(self) -> str:
        return self.name


def qualified_name(table_slice: TableSlice) -> str:
    return f"{table_slice.schema}.{table_slice.table}"


def row_count(connection: duckdb.DuckDBPyConnection, name: str) -> int:
    return connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]


def table_metadata(connection: duckdb.DuckDBPyConnection, name: str) -> dict:
    """Row count and column schema of a table, the metadata every table asset carries."""
    columns = connection.execute(f"DESCRIBE {name}").fetchall()
    return {
        "dagster/row_count": dg.MetadataValue.int(row_count(connection, name)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=column[0], type=column[1]) for column in columns]
        ),
    }


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection):
    connection.execute("BEGIN TRANSACTION")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def replace_table_with_query(
    connection: duckdb.DuckDBPyConnection, name: str, query: str, order_by: Sequence[str] = ()
) -> None:
    """Swap `name` for the result of `query` in one transaction; the old table survives a failure."""
    ordering = f"\nORDER BY {', '.join(order_by)}" if order_by else ""
    with transaction(connection):
        connection.execute(f"CREATE OR REPLACE TABLE {name} AS\n{query}{ordering}")


def query_id(query: str) -> str:
    """Names the SQL a table was built with, for the state it records: other SQL, a full build."""
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def table_state(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict | None:
    """What an incrementally written table records about its inputs (its comment, as JSON); None
    for a table without one. `CREATE OR REPLACE` clears it, so a table rebuilt any other way
    never claims a state it does not have."""
    row = connection.execute(
        "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def set_table_state(
    connection: duckdb.DuckDBPyConnection, schema: str, table: str, state: dict
) -> None:
    """Record `state` on the table; inside the transaction that writes the rows it describes."""
    text = sql_string(json.dumps(state, sort_keys=True))
    connection.execute(f"COMMENT ON TABLE {schema}.{table} IS {text}")


@dataclass(frozen=True)
class RecomputedFromChangedDays(TableWriter):
    """A table with a `date` column whose rows read only their own and earlier days, brought up
    to date by recomputing only from the first day whose inputs changed (after a day is
    appended: that day).

    The table records a fingerprint of each day's rows of its `dated_inputs` and one of each
    `undated_inputs` query. Rows dated before the first changed day are kept; the rest are
    replaced by `query(since)`, which gives exactly what a full build gives. Another query,
    other undated inputs or rows missing from the table mean a full build.
    """

    query: Callable[[str | None], str]
    """The table's SQL: every row for None, the rows dated on or after an ISO date otherwise."""
    dated_inputs: tuple[str, ...]
    undated_inputs: tuple[str, ...] = ()
    order_by: tuple[str, ...] = ()
    full_load: bool = False

    def write(self, connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict:
        name = f"{schema}.{table}"
        query = self.query(None)
        ordering = f"\nORDER BY {', '.join(self.order_by)}" if self.order_by else ""
        state = {
            "query": query_id(query),
            "undated": [
                connection.execute(
                    f"SELECT CAST(bit_xor(hash(input_rows)) AS VARCHAR) FROM ({sql}) AS input_rows"
                ).fetchone()[0]
                for sql in self.undated_inputs
            ],
            "days": dict(connection.execute(self._day_fingerprints_sql()).fetchall()),
        }
        built = {} if self.full_load else table_state(connection, schema, table) or {}
        if (
            not built
            or (built["query"], built["undated"]) != (state["query"], state["undated"])
            or built["rows"] != row_count(connection, name)
        ):
            with transaction(connection):
                connection.execute(f"CREATE OR REPLACE TABLE {name} AS\n{query}{ordering}")
                state["rows"] = row_count(connection, name)
                set_table_state(connection, schema, table, state)
            return {"load": "full build"}
        changed = {
            day
            for day in state["days"].keys() | built["days"].keys()
            if state["days"].get(day) != built["days"].get(day)
        }
        if not changed:
            return {"load": "unchanged: no day of its inputs changed"}
        since = min(changed)
        with transaction(connection):
            connection.execute(f"DELETE FROM {name} WHERE date >= DATE '{since}'")
            connection.execute(f"INSERT INTO {name} BY NAME {self.query(since)}{ordering}")
            state["rows"] = row_count(connection, name)
            set_table_state(connection, schema, table, state)
        return {"load": f"recomputed the days from {since} ({len(changed)} changed)"}

    def _day_fingerprints_sql(self) -> str:
        """Per day, a hash of every dated input's rows of that day (each input tagged, so equal
        rows in two inputs do not cancel out)."""
        per_input = "\nUNION ALL\n".join(
            f"SELECT CAST(date AS VARCHAR) AS day, hash({position}, bit_xor(hash(input_rows))) "
            f"AS fingerprint FROM {table} AS input_rows GROUP BY date"
            for position, table in enumerate(self.dated_inputs)
        )
        return (
            "SELECT day, CAST(bit_xor(fingerprint) AS VARCHAR) "
            f"FROM ({per_input}) AS fingerprints GROUP BY day"
        )


def replace_table_with_frame(
    connection: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame
) -> None:
    connection.register("_frame_to_store", frame)
    try:
        with transaction(connection):
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _frame_to_store")
    finally:
        connection.unregister("_frame_to_store")


def fetch_frame(connection: duckdb.DuckDBPyConnection, query: str) -> pd.DataFrame:
    """The query's rows as a frame, through Arrow: for the 730,000 × 80 training data 2.3 s and
    1.3 GiB peak, against 3.3-6 s and 1.6 GiB fetching pandas chunks (`.df()`: 2.2 GiB).
    Nullable integers arrive as floats with NaN, dates as datetime64."""
    table = connection.sql(query).to_arrow_table()
    return table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)


def build_failure(table_slice: TableSlice, error: duckdb.Error) -> dg.Failure:
    """A DuckDB error as a step failure that says the old table is kept and, for a missing
    upstream table, which command builds it."""
    hint = ""
    if isinstance(error, duckdb.CatalogException):
        hint = (
            " A table it reads may not exist yet: materialize what it depends on first "
            f"(dagster asset materialize -m marketing_ml --select "
            f"'*{table_slice.schema}/{table_slice.table}')."
        )
    return dg.Failure(
        description=f"Building {qualified_name(table_slice)} failed in DuckDB; the previous "
        f"version is kept. {type(error).__name__}: {error}{hint}"
    )


class SqlTypeHandler(DbTypeHandler[Sql]):
    def handle_output(self, context, table_slice: TableSlice, obj: Sql, connection):
        name = qualified_name(table_slice)
        try:
            replace_table_with_query(connection, name, obj.query, obj.order_by)
        except duckdb.Error as error:
            raise build_failure(table_slice, error) from error
        return table_metadata(connection, name)

    def load_input(self, context, table_slice: TableSlice, connection) -> Sql:
        return Sql(f"SELECT * FROM {qualified_name(table_slice)}")

    @property
    def supported_types(self):
        return [Sql]


class TableWriterTypeHandler(DbTypeHandler[TableWriter]):
    def handle_output(self, context, table_slice: TableSlice, obj: TableWriter, connection):
        try:
            metadata = obj.write(connection, table_slice.schema, table_slice.table)
        except duckdb.Error as error:
            raise build_failure(table_slice, error) from error
        return {**metadata, **table_metadata(connection, qualified_name(table_slice))}

    def load_input(self, context, table_slice: TableSlice, connection):
        raise dg.DagsterInvariantViolationError(
            f"{qualified_name(table_slice)}: load it as a Table or a DataFrame"
        )

    @property
    def supported_types(self):
        return [TableWriter]


class TableTypeHandler(DbTypeHandler[Table]):
    """Loads an upstream table as its name, so the next asset's SQL reads it in place."""

    def handle_output(self, context, table_slice: TableSlice, obj: Table, connection):
        raise dg.DagsterInvariantViolationError(
            f"{qualified_name(table_slice)}: return Sql(...) or a DataFrame, not a Table reference"
        )

    def load_input(self, context, table_slice: TableSlice, connection) -> Table:
        """No query: a table that does not exist yet fails the SQL that reads it, with a hint."""
        return Table(qualified_name(table_slice))

    @property
    def supported_types(self):
        return [Table]


class DataFrameTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Small frames at the ML boundary; written atomically like every other table."""

    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection):
        name = qualified_name(table_slice)
        replace_table_with_frame(connection, name, obj)
        return table_metadata(connection, name)

    def load_input(self, context, table_slice: TableSlice, connection) -> pd.DataFrame:
        columns = ", ".join(table_slice.columns) if table_slice.columns else "*"
        return fetch_frame(connection, f"SELECT {columns} FROM {qualified_name(table_slice)}")

    @property
    def supported_types(self):
        return [pd.DataFrame]


class AtomicDuckDbClient(DuckDbClient):
    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        """Nothing to delete: the handlers replace the whole table in one transaction."""

    @staticmethod
    @contextmanager
    def connect(context, _):
        """Like the stock client (retries while another process holds the lock), path resolved now."""
        database = Path(context.resource_config["database"] or lakehouse_db_path())
        database.parent.mkdir(parents=True, exist_ok=True)
        connection = backoff(
            fn=duckdb.connect,
            retry_on=(RuntimeError, duckdb.IOException),
            kwargs={
                "database": str(database),
                "read_only": False,
                "config": duckdb_config(context.resource_config.get("memory_limit", "")),
            },
            max_retries=10,
        )
        try:
            yield connection
        finally:
            connection.close()


class LakehouseDbIOManager(DbIOManager):
    """Hands `Table` inputs over without opening the database: a name needs no connection, and
    opening one costs about 18 ms (a run loads some 70 table inputs)."""

    def load_input(self, context: dg.InputContext) -> object:
        if context.dagster_type.typing_type not in (Table, Any):
            return super().load_input(context)
        table_slice = self._get_table_slice(context, context.upstream_output)
        return TableTypeHandler().load_input(context, table_slice, connection=None)


class LakehouseIOManager(DuckDBIOManager):
    """DuckDB IO manager with atomic table replacement and in-engine SQL outputs.

    Empty `database` means MARKETING_ML_DB (default data/lakehouse.duckdb), read when a step runs;
    `memory_limit` caps DuckDB's working memory per connection (empty: DuckDB's default).
    """

    database: str = ""
    memory_limit: str = DUCKDB_MEMORY_LIMIT

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        from marketing_ml.ml.store import ModelTypeHandler  # the model store builds on this module

        return [
            SqlTypeHandler(),
            TableWriterTypeHandler(),
            TableTypeHandler(),
            DataFrameTypeHandler(),
            ModelTypeHandler(),
        ]

    @staticmethod
    def default_load_type() -> type:
        return Table

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        """Holds the lakehouse's run lock for the whole run (shared with `lakehouse`)."""
        from marketing_ml.run_lock import resource_run_lock

        database = Path(self.database) if self.database else lakehouse_db_path()
        with resource_run_lock(context, database):
            with super().yield_for_execution(context) as io_manager:
                yield io_manager

    def create_io_manager(self, context) -> DbIOManager:
        return LakehouseDbIOManager(
            db_client=AtomicDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="LakehouseIOManager",
        )
