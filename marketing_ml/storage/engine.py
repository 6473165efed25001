"""Which engine holds the lakehouse: the lakehouse resource's `engine` field, which defaults to
MARKETING_ML_ENGINE=duckdb|spark, read by `engine_from_env()` alone when a run starts; every
other place asks the resource (or a connection, `engine_of`) and compares `Engine` members.

Everything that writes or reads lakehouse tables gets its connection from the lakehouse resource
(which opens it here) and reaches the engine's table operations through `tables_for(connection)`
(a `TableOperations`), so asset code never names an engine. A Spark connection takes the pipeline's SQL as written (DuckDB's dialect)
and transpiles it. The Spark engine (marketing_ml/storage/spark/) and pyspark are imported only
when it is chosen.
"""

import os
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

from marketing_ml.storage.tables import TableOperations

ENGINE_ENV = "MARKETING_ML_ENGINE"


class Engine(StrEnum):
    """The engines that can hold the lakehouse; the value is what MARKETING_ML_ENGINE says."""

    DUCKDB = "duckdb"
    SPARK = "spark"


ENGINES = tuple(engine.value for engine in Engine)
WAREHOUSE_ENV = "MARKETING_ML_WAREHOUSE"
DEFAULT_WAREHOUSE = "data/spark-warehouse"


def engine_from_env() -> Engine:
    """MARKETING_ML_ENGINE as an `Engine`: the lakehouse resource's engine when its `engine`
    field is unset, read when a run starts (the one place that reads it)."""
    name = (os.environ.get(ENGINE_ENV) or Engine.DUCKDB).strip().lower()
    if name not in ENGINES:
        raise ValueError(
            f"{ENGINE_ENV}={os.environ.get(ENGINE_ENV)!r} is not an engine: set it to "
            f"{' or '.join(ENGINES)} (or leave it unset for duckdb)."
        )
    return Engine(name)


def warehouse_path() -> Path:
    """Where the Spark engine keeps its tables and its catalog (MARKETING_ML_WAREHOUSE)."""
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE).absolute()


def lakehouse_location(engine: Engine, duckdb_database: Path) -> Path:
    """What one run at a time holds (its lock file lies beside it): the DuckDB file, or the
    Spark warehouse."""
    return warehouse_path() if engine is Engine.SPARK else duckdb_database


@contextmanager
def open_lakehouse(
    engine: Engine, duckdb_database: Path, read_only: bool = False, memory_limit: str = ""
):
    """A new connection to the lakehouse on `engine` (Spark: its session, shared anyway)."""
    if engine is Engine.SPARK:
        from marketing_ml.storage.spark import spark_tables

        yield spark_tables.connect()
        return
    from marketing_ml.storage import duckdb_tables

    with duckdb_tables.connect(duckdb_database, read_only, memory_limit) as connection:
        yield connection


def held_connection(engine: Engine, duckdb_database: Path, memory_limit: str = ""):
    """What a run keeps open for its steps: DuckDB's file as a `HeldConnection`; None for Spark,
    whose session is shared already."""
    if engine is Engine.SPARK:
        return None
    from marketing_ml.storage import duckdb_tables

    return duckdb_tables.HeldConnection(duckdb_database, memory_limit)


def engine_of(connection) -> Engine:
    """The engine a connection belongs to."""
    from marketing_ml.storage import duckdb_tables

    return Engine.DUCKDB if duckdb_tables.owns(connection) else Engine.SPARK


def tables_for(connection) -> TableOperations:
    """The table operations (`DuckDBTables` or `SparkTables`) of a connection's engine."""
    from marketing_ml.storage import duckdb_tables

    if engine_of(connection) is Engine.DUCKDB:
        return duckdb_tables.DuckDBTables()
    from marketing_ml.storage.spark import spark_tables

    return spark_tables.SparkTables()


def engine_errors(connection) -> tuple[type[BaseException], ...]:
    """The errors a connection's engine raises for a statement that fails (a step failure, not a
    crash)."""
    import duckdb

    if engine_of(connection) is Engine.DUCKDB:
        return (duckdb.Error,)
    from pyspark.errors import PySparkException

    return (duckdb.Error, PySparkException)
