"""Where tables live and how they are written, in three layers:

- `outputs`: what an asset returns or takes (a query to materialize, a table's name, a writer
  of its own table), the one flow of a table updated in place, and the full-load run tag.
  Engine-neutral: asset modules import only this package.
- `duckdb_tables`: the DuckDB operations those need: transactions, atomic replacement, row
  counts, table state (a JSON table comment), frames through Arrow.
- `io_manager`: the Dagster IO manager and its type handlers, the only module that touches
  Dagster's DB IO manager internals.
"""

from marketing_ml.storage.outputs import (
    FULL_LOAD_TAG,
    IncrementalTable,
    RecomputedFromChangedDays,
    Sql,
    Table,
    TableWriter,
    Update,
    full_load_requested,
    query_id,
)

__all__ = [
    "FULL_LOAD_TAG",
    "IncrementalTable",
    "RecomputedFromChangedDays",
    "Sql",
    "Table",
    "TableWriter",
    "Update",
    "full_load_requested",
    "query_id",
]
