"""The lakehouse IO manager: every table is replaced atomically, and SQL runs inside the engine
(DuckDB or Spark, see `engine`).

The stock DuckDB IO manager deletes a table's rows and then inserts, outside a transaction (a
failure leaves an empty table and the first column layout sticks). Here `delete_table_slice` is a
no-op and each handler swaps the whole table atomically (DuckDB: `CREATE OR REPLACE TABLE` in one
transaction; Spark: files written under a new location, then the catalog switched to it), so a
failed step leaves the previous version intact and a new column just works.

The one module built on Dagster's DB IO manager internals (`DbIOManager`, `DbTypeHandler`,
`TableSlice`; none of their private methods): asset code sees only `marketing_ml.storage`'s
outputs.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDBIOManager

from marketing_ml.ml.store import CalibratedModel, load_model, store_model
from marketing_ml.resources import DUCKDB_MEMORY_LIMIT, lakehouse_db_path, lakehouse_for_run
from marketing_ml.storage.engine import (
    engine_errors,
    engine_name,
    open_lakehouse,
    tables_for,
)
from marketing_ml.storage.outputs import ScoredRows, Sql, Table, TableWriter


def qualified_name(table_slice: TableSlice) -> str:
    return f"{table_slice.schema}.{table_slice.table}"


def build_failure(table_slice: TableSlice, error: Exception) -> dg.Failure:
    """An engine's error as a step failure that says the old table is kept and, for a missing
    upstream table, which command builds it."""
    hint = ""
    if "CatalogException" in type(error).__name__ or "TABLE_OR_VIEW_NOT_FOUND" in str(error):
        hint = (
            " A table it reads may not exist yet: materialize what it depends on first "
            f"(dagster asset materialize -m marketing_ml --select "
            f"'*{table_slice.schema}/{table_slice.table}')."
        )
    return dg.Failure(
        description=f"Building {qualified_name(table_slice)} failed in {engine_name()}; the previous "
        f"version is kept. {type(error).__name__}: {error}{hint}"
    )


class SqlTypeHandler(DbTypeHandler[Sql]):
    def handle_output(self, context, table_slice: TableSlice, obj: Sql, connection):
        name = qualified_name(table_slice)
        tables = tables_for(connection)
        try:
            tables.replace_table_with_query(connection, name, obj.query, obj.order_by)
        except engine_errors() as error:
            raise build_failure(table_slice, error) from error
        return tables.table_metadata(connection, name)

    def load_input(self, context, table_slice: TableSlice, connection) -> Sql:
        return Sql(f"SELECT * FROM {qualified_name(table_slice)}")

    @property
    def supported_types(self):
        return [Sql]


class TableWriterTypeHandler(DbTypeHandler[TableWriter]):
    def handle_output(self, context, table_slice: TableSlice, obj: TableWriter, connection):
        try:
            metadata = obj.write(connection, table_slice.schema, table_slice.table)
        except engine_errors() as error:
            raise build_failure(table_slice, error) from error
        return {
            **metadata,
            **tables_for(connection).table_metadata(connection, qualified_name(table_slice)),
        }

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


class ScoredRowsTypeHandler(DbTypeHandler[ScoredRows]):
    def handle_output(self, context, table_slice: TableSlice, obj: ScoredRows, connection):
        name = qualified_name(table_slice)
        tables = tables_for(connection)
        try:
            tables.replace_table_with_scores(connection, name, obj)
        except engine_errors() as error:
            raise build_failure(table_slice, error) from error
        return tables.table_metadata(connection, name)

    def load_input(self, context, table_slice: TableSlice, connection):
        raise dg.DagsterInvariantViolationError(
            f"{qualified_name(table_slice)}: load it as a Table or a DataFrame"
        )

    @property
    def supported_types(self):
        return [ScoredRows]


class DataFrameTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Small frames at the ML boundary; written atomically like every other table."""

    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection):
        name = qualified_name(table_slice)
        tables = tables_for(connection)
        tables.replace_table_with_frame(connection, name, obj)
        return tables.table_metadata(connection, name)

    def load_input(self, context, table_slice: TableSlice, connection) -> pd.DataFrame:
        columns = ", ".join(table_slice.columns) if table_slice.columns else "*"
        query = f"SELECT {columns} FROM {qualified_name(table_slice)}"
        return tables_for(connection).fetch_frame(connection, query)

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


class LakehouseClient(DbClient):
    """Connections to the configured engine's lakehouse; nothing is deleted before a write,
    because the handlers replace whole tables atomically."""

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        """Nothing to delete: the handlers replace the whole table atomically."""

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection) -> None:
        tables_for(connection).create_schema(connection, table_slice.schema)

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        return f"SELECT * FROM {qualified_name(table_slice)}"

    @staticmethod
    @contextmanager
    def connect(context, _):
        """The lakehouse the run's engine names, with the path resolved now."""
        database = Path(context.resource_config["database"] or lakehouse_db_path())
        memory_limit = context.resource_config.get("memory_limit", "")
        with open_lakehouse(database, memory_limit=memory_limit) as connection:
            yield connection


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
    """The lakehouse's IO manager: atomic table replacement and in-engine SQL outputs, on the
    engine MARKETING_ML_ENGINE names.

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
            ScoredRowsTypeHandler(),
            TableTypeHandler(),
            DataFrameTypeHandler(),
            ModelTypeHandler(),
        ]

    @staticmethod
    def default_load_type() -> type:
        return Table

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        """Holds the lakehouse's run lock, and the lakehouse open, for the whole run (shared
        with `lakehouse`)."""
        database = Path(self.database) if self.database else lakehouse_db_path()
        with lakehouse_for_run(context, database, self.memory_limit):
            with super().yield_for_execution(context) as io_manager:
                yield io_manager

    def create_io_manager(self, context) -> DbIOManager:
        return LakehouseDbIOManager(
            db_client=LakehouseClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="LakehouseIOManager",
        )
