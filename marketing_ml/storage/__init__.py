"""Where tables live and how they are written, in three layers:

- `outputs`: what an asset returns or takes (a query to materialize, a table's name, a writer
  of its own table), the one flow of a table updated in place, and the full-load run tag.
  Engine-neutral: asset modules import only this package.
- `engine`: which engine holds the lakehouse (an `Engine`: the lakehouse resource's `engine`
  field, by default `engine_from_env()`, the one reader of MARKETING_ML_ENGINE=duckdb|spark),
  its connections, and `tables_for(connection)`: that engine's table operations.
- `tables`: those operations as one interface, the `TableOperations` Protocol.
- `duckdb_tables` / `spark.spark_tables`: each engine's operations: transactions, atomic
  replacement, row counts, table state (DuckDB: a JSON table comment; Spark: a table property),
  frames through Arrow. The Spark engine is its own subpackage (`spark/`: session, spark_tables,
  and spark_sql, which transpiles the pipeline's SQL, DuckDB's dialect, for Spark), imported only
  when chosen.
- `io_manager`: the Dagster IO manager and its type handlers, the only module that touches
  Dagster's DB IO manager internals.
"""

from marketing_ml.storage.engine import Engine, engine_from_env, tables_for
from marketing_ml.storage.outputs import (
    FULL_LOAD_TAG,
    IncrementalTable,
    RecomputedFromChangedDays,
    ScoredRows,
    Sql,
    Table,
    TableWriter,
    Update,
    full_load_requested,
    query_id,
)

__all__ = [
    "FULL_LOAD_TAG",
    "Engine",
    "IncrementalTable",
    "RecomputedFromChangedDays",
    "ScoredRows",
    "Sql",
    "Table",
    "TableWriter",
    "Update",
    "engine_from_env",
    "full_load_requested",
    "query_id",
    "tables_for",
]
