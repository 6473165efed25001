"""Where the lakehouse lives: paths come from the environment when a run starts, never at import."""

import os
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from pydantic import PrivateAttr

from marketing_ml.run_lock import RunLock, lakehouse_run_lock
from marketing_ml.storage.engine import (
    Engine,
    engine_from_env,
    held_connection,
    lakehouse_location,
    open_lakehouse,
    tables_for,
)

if TYPE_CHECKING:
    from marketing_ml.storage.duckdb_tables import HeldConnection

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_LAKEHOUSE_DB = "data/lakehouse.duckdb"
DEFAULT_SERVING_DB = "data/serving.duckdb"
DUCKDB_MEMORY_LIMIT = "1GB"
"""DuckDB's working memory per connection; beyond it, it spills to a folder next to the file.
Its default (80% of RAM) let cleaning a year of 2,000 ad sets peak at 4 GB; with 1 GB it peaks at
1.4 GB and takes about a third longer (see BENCHMARKS.md)."""


def lakehouse_db_path() -> Path:
    return Path(os.environ.get("MARKETING_ML_DB") or DEFAULT_LAKEHOUSE_DB)


def raw_dir_path() -> Path:
    return Path(os.environ.get("MARKETING_ML_RAW_DIR") or DEFAULT_RAW_DIR)


def serving_db_path() -> Path:
    return Path(os.environ.get("MARKETING_ML_SERVING_DB") or DEFAULT_SERVING_DB)


class LakehouseResource(dg.ConfigurableResource):
    """The lakehouse and the one owner of a run's hold on it: checks, publish and the IO manager
    (which depends on it) all connect through it.

    Empty `database` means MARKETING_ML_DB (default data/lakehouse.duckdb) and no `engine` means
    MARKETING_ML_ENGINE (default duckdb), both read when a run starts, so tests and the daemon
    can point a run elsewhere without rebuilding the definitions; empty `memory_limit` means
    DuckDB's own default. In a run it holds the lakehouse's run lock (marketing_ml/run_lock.py)
    and, on DuckDB, one connection whose cursors every step uses, from start to end: both are
    state of this instance for the run, released at teardown.
    """

    database: str = ""
    engine: Engine | None = None
    memory_limit: str = DUCKDB_MEMORY_LIMIT
    _run_lock: RunLock | None = PrivateAttr(default=None)
    _held: "HeldConnection | None" = PrivateAttr(default=None)
    """The connection the run keeps open (None outside a run and on Spark)."""

    @property
    def path(self) -> Path:
        return Path(self.database) if self.database else lakehouse_db_path()

    @property
    def engine_in_use(self) -> Engine:
        return self.engine or engine_from_env()

    @property
    def run_lock(self) -> RunLock | None:
        """The lock this instance holds for its run (None outside a run)."""
        return self._run_lock

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        """In a run: take the run lock, then keep the lakehouse open for the run's steps; both
        are given back when the run ends, whether it succeeded or failed. Outside a run (no
        run id) neither: a resource built for a direct call connects per call."""
        run = context.run
        if run is None:
            yield self
            return
        engine = self.engine_in_use
        location = lakehouse_location(engine, self.path)
        with lakehouse_run_lock(location, run.run_id, log=context.log) as lock:
            self._run_lock = lock
            self._held = held_connection(engine, self.path, self.memory_limit)
            try:
                yield self
            finally:
                if self._held is not None:
                    self._held.close()
                self._held = None
                self._run_lock = None

    @contextmanager
    def connect(self, read_only: bool = False):
        """A connection to the lakehouse: in a run on DuckDB a cursor of the run's held
        connection, else a new connection."""
        if self._held is not None:
            with closing(self._held.cursor()) as cursor:
                yield cursor
            return
        with open_lakehouse(
            self.engine_in_use, self.path, read_only, self.memory_limit
        ) as connection:
            yield connection

    def release_buffers(self) -> None:
        """Free the engine's cached data held for the run (DuckDB: close the held file, reopened
        on next use; Spark: nothing, its memory is the JVM's)."""
        if self._held is not None:
            self._held.close()

    def frame(self, query: str) -> pd.DataFrame:
        """The query's rows as a frame (read-only, through Arrow: see `fetch_frame`). The
        engine's buffers are released after it, for the Python work that reads the frame."""
        with self.connect(read_only=True) as connection:
            frame = tables_for(connection).fetch_frame(connection, query)
        self.release_buffers()
        return frame


class RawFilesResource(dg.ConfigurableResource):
    """The folder of raw CSV exports. Empty `directory` means MARKETING_ML_RAW_DIR (default data/raw)."""

    directory: str = ""

    @property
    def path(self) -> Path:
        return Path(self.directory) if self.directory else raw_dir_path()


class ServingResource(dg.ConfigurableResource):
    """The file the dashboard reads. Empty `database` means MARKETING_ML_SERVING_DB."""

    database: str = ""

    @property
    def path(self) -> Path:
        return Path(self.database) if self.database else serving_db_path()
