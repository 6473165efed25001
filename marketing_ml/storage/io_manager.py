"""The lakehouse IO manager: every table is replaced atomically, and SQL runs inside DuckDB.

The stock DuckDB IO manager deletes a table's rows and then inserts, outside a transaction (a
failure leaves an empty table and the first column layout sticks). Here `delete_table_slice` is a
no-op and each handler swaps the whole table with `CREATE OR REPLACE TABLE` inside one
transaction, so a failed step leaves the previous version intact and a new column just works.

The one module built on Dagster's DB IO manager internals (`DbIOManager`, `DbTypeHandler`,
`TableSlice`; none of their private methods): asset code sees only `marketing_ml.storage`'s
outputs.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster._utils.backoff import backoff
from dagster_duckdb.io_manager import DuckDbClient, DuckDBIOManager

from marketing_ml.ml.store import CalibratedModel, load_model, store_model
from marketing_ml.resources import DUCKDB_MEMORY_LIMIT, duckdb_config, lakehouse_db_path
from marketing_ml.run_lock import resource_run_lock
from marketing_ml.storage.duckdb_tables import (
    fetch_frame,
    replace_table_with_frame,
    replace_table_with_query,
    table_metadata,
)
from marketing_ml.storage.outputs import Sql, Table, TableWriter


def qualified_name(table_slice: TableSlice) -> str:
    return f"{table_slice.schema}.{table_slice.table}"


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


class ModelTypeHandler(DbTypeHandler[CalibratedModel]):
    """Stores a model as one row of `models.<asset>`, replaced atomically; loads it back."""

    def handle_output(self, context, table_slice: TableSlice, obj: CalibratedModel, connection):
        store_model(connection, qualified_name(table_slice), obj)
        return {
            "model_version": dg.MetadataValue.text(obj.version or obj.card.status),
            "dagster/row_count": dg.MetadataValue.int(1),
        }

    def load_input(self, context, table_slice: TableSlice, connection) -> CalibratedModel:
        return load_model(connection, qualified_name(table_slice))

    @property
    def supported_types(self):
        return [CalibratedModel]


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


def table_of(asset_key: dg.AssetKey) -> Table:
    """The lakehouse table an asset is stored in: its key is [schema, table] (the asset key's
    prefix is the DuckDB schema)."""
    if len(asset_key.path) != 2:
        raise dg.DagsterInvariantViolationError(
            f"{asset_key.to_user_string()}: a table asset's key is [schema, table]"
        )
    return Table(".".join(asset_key.path))


class LakehouseDbIOManager(DbIOManager):
    """Hands `Table` inputs over without opening the database: a name needs no connection, and
    opening one costs about 18 ms (a run loads some 70 table inputs)."""

    def load_input(self, context: dg.InputContext) -> object:
        if context.dagster_type.typing_type not in (Table, Any):
            return super().load_input(context)
        return table_of(context.asset_key)


class LakehouseIOManager(DuckDBIOManager):
    """DuckDB IO manager with atomic table replacement and in-engine SQL outputs.

    Empty `database` means MARKETING_ML_DB (default data/lakehouse.duckdb), read when a step runs;
    `memory_limit` caps DuckDB's working memory per connection (empty: DuckDB's default).
    """

    database: str = ""
    memory_limit: str = DUCKDB_MEMORY_LIMIT

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
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
