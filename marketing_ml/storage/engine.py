"""Which engine holds the lakehouse, chosen by one setting: MARKETING_ML_ENGINE=duckdb|spark,
read by `engine_from_env()` alone; every other place asks it and compares `Engine` members.

Everything that writes or reads lakehouse tables opens its connection here and reaches the
engine's table operations through `tables_for(connection)` (a `TableOperations`), so asset code
never names an engine. A Spark connection takes the pipeline's SQL as written (DuckDB's dialect)
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
    """The engine of this process's runs: MARKETING_ML_ENGINE, read when a run starts (the one
    place that reads it)."""
    name = (os.environ.get(ENGINE_ENV) or Engine.DUCKDB).strip().lower()
    if name not in ENGINES:
        raise ValueError(
            f"{ENGINE_ENV}={os.environ.get(ENGINE_ENV)!r} is not an engine: set it to "
            f"{' or '.join(ENGINES)} (or leave it unset for duckdb)."
        )
    return Engine(name)


def engine_name() -> str:
    """The engine's name as the user wrote it, for messages."""
    return engine_from_env().value


def warehouse_path() -> Path:
    """Where the Spark engine keeps its tables and its catalog (MARKETING_ML_WAREHOUSE)."""
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE).absolute()


def lakehouse_location(duckdb_database: Path) -> Path:
    """What one run at a time holds (its lock file lies beside it): the DuckDB file, or the
    Spark warehouse."""
    return warehouse_path() if engine_from_env() is Engine.SPARK else duckdb_database


@contextmanager
def open_lakehouse(duckdb_database: Path, read_only: bool = False, memory_limit: str = ""):
    """A connection to the lakehouse on the configured engine."""
    if engine_from_env() is Engine.SPARK:
        from marketing_ml.storage.spark import spark_tables

        yield spark_tables.connect()
        return
    from marketing_ml.storage import duckdb_tables

    with duckdb_tables.connect(duckdb_database, read_only, memory_limit) as connection:
        yield connection


@contextmanager
def held_for_run(duckdb_database: Path, memory_limit: str = ""):
    """The lakehouse kept open while a run's steps use it: DuckDB's file stays open and each
    step's connection is a cursor of it (`duckdb_tables.held_open`); Spark's session is shared
    already."""
    if engine_from_env() is Engine.SPARK:
        yield
        return
    from marketing_ml.storage import duckdb_tables

    with duckdb_tables.held_open(duckdb_database, memory_limit):
        yield


def release_buffers(duckdb_database: Path) -> None:
    """Free the engine's cached data held for the run (DuckDB: close the held file, reopened on
    next use; Spark: nothing, its memory is the JVM's)."""
    if engine_from_env() is Engine.DUCKDB:
        from marketing_ml.storage import duckdb_tables

        duckdb_tables.release_buffers(duckdb_database)


def tables_for(connection) -> TableOperations:
    """The table operations (`DuckDBTables` or `SparkTables`) of a connection's engine."""
    from marketing_ml.storage import duckdb_tables

    if duckdb_tables.owns(connection):
        return duckdb_tables.DuckDBTables()
    from marketing_ml.storage.spark import spark_tables

    return spark_tables.SparkTables()


def engine_errors() -> tuple[type[BaseException], ...]:
    """The errors an engine raises for a statement that fails (a step failure, not a crash)."""
    import duckdb

    if engine_from_env() is not Engine.SPARK:
        return (duckdb.Error,)
    from pyspark.errors import PySparkException

    return (duckdb.Error, PySparkException)
