"""The table operations every engine provides, as one interface: what asset code, the IO manager,
checks and the publish step call on the lakehouse, whichever engine holds it.

`tables_for(connection)` (marketing_ml/storage/engine.py) returns the implementation of the
connection's engine: `DuckDBTables` (marketing_ml/storage/duckdb_tables.py) or `SparkTables`
(marketing_ml/storage/spark/spark_tables.py). Each method delegates to its module's function of the same
name, so both engines' code stays where it was written.
"""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

Connection = Any
"""A DuckDB connection or a `SparkConnection`: both take the pipeline's SQL (DuckDB's dialect)
through `execute`/`sql`."""


class TableOperations(Protocol):
    """Writing, reading and describing lakehouse tables on one engine."""

    updates_in_place: bool
    """Whether rows can be deleted, inserted and updated inside a transaction (DuckDB), so an
    incremental table is brought up to date in place; else it is built in full (Spark)."""

    def create_schema(self, connection: Connection, schema: str) -> None: ...

    def column_names(self, connection: Connection, name: str) -> list[str]: ...

    def row_count(self, connection: Connection, name: str) -> int: ...

    def table_metadata(self, connection: Connection, name: str) -> dict:
        """Row count and column schema, the metadata every table asset carries."""
        ...

    def transaction(self, connection: Connection) -> AbstractContextManager: ...

    def create_table_as(
        self, connection: Connection, name: str, query: str, order_by: Sequence[str] = ()
    ) -> None: ...

    def replace_table_with_query(
        self, connection: Connection, name: str, query: str, order_by: Sequence[str] = ()
    ) -> None:
        """Swap `name` for the query's rows; the old table survives a failure."""
        ...

    def replace_table_with_frame(
        self, connection: Connection, name: str, frame: pd.DataFrame
    ) -> None: ...

    def replace_table_with_scores(self, connection: Connection, name: str, scored) -> None:
        """`scored` (a `ScoredRows`) computed on its query's rows, then stored as `name`."""
        ...

    def fetch_arrow(self, connection: Connection, name: str):
        """A whole table as an Arrow table."""
        ...

    def fetch_frame(self, connection: Connection, query: str) -> pd.DataFrame:
        """The query's rows as a frame, through Arrow."""
        ...

    def table_state(self, connection: Connection, schema: str, table: str) -> dict | None:
        """What an incrementally written table records about its inputs; None without one."""
        ...

    def set_table_state(
        self, connection: Connection, schema: str, table: str, state: dict
    ) -> None: ...


class SnapshotTables(TableOperations, Protocol):
    """An engine that cannot update rows in place (`updates_in_place` False) replaces a table by
    writing a new version under a fresh location and switching the table to it; bronze writes
    its Parquet snapshot there (raw_files.plan_bronze_snapshot)."""

    def new_location(self, connection: Connection, name: str) -> Path: ...

    def switch_to(self, location: Path) -> Callable[[Connection, str], None]:
        """An `Update.apply` that makes a table the Parquet files at `location`."""
        ...
