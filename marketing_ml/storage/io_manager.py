"""The lakehouse IO manager: every table is replaced atomically, and SQL runs inside the engine
(DuckDB or Spark, see `engine`).

The stock DuckDB IO manager deletes a table's rows and then inserts, outside a transaction (a
failure leaves an empty table and the first column layout sticks). Here `delete_table_slice` is a
no-op and each handler swaps the whole table atomically (DuckDB: `CREATE OR REPLACE TABLE` in one
transaction; Spark: files written under a new location, then the catalog switched to it), so a
failed step leaves the previous version intact and a new column just works.

It is dagster-duckdb's `DuckDBIOManager` with this project's type handlers, and it depends on
the lakehouse resource (`LakehouseResource`, a nested resource): every connection it uses is
that resource's, so in a run each step works on a cursor of the run's one held connection, under
the run lock that resource holds.

The one module built on Dagster's DB IO manager classes (`DbIOManager`, `DbClient`,
`DbTypeHandler`, `TableSlice`; none of their private methods). Dagster 1.13 exports them from no
public module (dagster-duckdb and dagster-duckdb-pandas import them from
`dagster._core.storage.db_io_manager` too), so they are imported from there, here alone: asset
code sees only `marketing_ml.storage`'s outputs.
"""

from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDBIOManager

from marketing_ml.ml.store import CalibratedModel, load_model, store_model
from marketing_ml.resources import LakehouseResource
from marketing_ml.storage.engine import engine_errors, engine_of, tables_for
from marketing_ml.storage.outputs import ScoredRows, Sql, Table, TableWriter


def qualified_name(table_slice: TableSlice) -> str:
    return f"{table_slice.schema}.{table_slice.table}"


def build_failure(table_slice: TableSlice, error: Exception, connection) -> dg.Failure:
    """An engine's error as a step failure that says the old table is kept and, for a missing
    upstream table, which command builds it."""
    hint = ""
    if "CatalogException" in type(error).__name__ or "TABLE_OR_VIEW_NOT_FOUND" in str(error):
        hint = (
            " A table it reads may not exist yet: materialize what it depends on first "
            f"(dagster asset materialize -m marketing_ml --select "
            f"'*{table_slice.schema}/{table_slice.table}')."
        )
    engine = engine_of(connection).value
    return dg.Failure(
        description=f"Building {qualified_name(table_slice)} failed in {engine}; the previous "
        f"version is kept. {type(error).__name__}: {error}{hint}"
    )


class SqlTypeHandler(DbTypeHandler[Sql]):
    def handle_output(self, context, table_slice: TableSlice, obj: Sql, connection):
        name = qualified_name(table_slice)
        tables = tables_for(connection)
        try:
            tables.replace_table_with_query(connection, name, obj.query, obj.order_by)
        except engine_errors(connection) as error:
            raise build_failure(table_slice, error, connection) from error
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
        except engine_errors(connection) as error:
            raise build_failure(table_slice, error, connection) from error
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
        except engine_errors(connection) as error:
            raise build_failure(table_slice, error, connection) from error
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
    """Connections from the lakehouse resource (the run's held connection in a run); nothing is
    deleted before a write, because the handlers replace whole tables atomically."""

    def __init__(self, lakehouse: LakehouseResource):
        self.lakehouse = lakehouse

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        """Nothing to delete: the handlers replace the whole table atomically."""

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection) -> None:
        tables_for(connection).create_schema(connection, table_slice.schema)

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        return f"SELECT * FROM {qualified_name(table_slice)}"

    @contextmanager
    def connect(self, context, table_slice: TableSlice):
        with self.lakehouse.connect() as connection:
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
    lakehouse resource's engine and connections.

    `lakehouse` is the resource it depends on; share one instance with the `lakehouse` resource
    key as `LakehouseResource.configure_at_launch(...)` (see `lakehouse_resources`), so a run
    holds one lock and one connection. `database`, dagster-duckdb's own field, is not read: the
    lakehouse resource names the file.
    """

    lakehouse: dg.ResourceDependency[LakehouseResource]
    database: str = ""

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

    def create_io_manager(self, context) -> DbIOManager:
        return LakehouseDbIOManager(
            db_client=LakehouseClient(self.lakehouse),
            database=str(self.lakehouse.path),
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="LakehouseIOManager",
        )


def lakehouse_resources(database: str = "") -> dict:
    """The `lakehouse` resource and the IO manager depending on it, as one instance: Dagster
    starts a nested resource once, under its top-level key, only when it is configured at
    launch (a fully configured one would be started again for the IO manager, and take a
    second lock). Empty `database` means MARKETING_ML_DB, read when a run starts."""
    lakehouse = LakehouseResource.configure_at_launch(database=database)
    return {"lakehouse": lakehouse, "io_manager": LakehouseIOManager(lakehouse=lakehouse)}
