"""Where the lakehouse lives: paths come from the environment when a run starts, never at import."""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_ml.run_lock import resource_run_lock
from marketing_ml.storage.engine import (
    held_for_run,
    lakehouse_location,
    open_lakehouse,
    release_buffers,
    tables_for,
)

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


@contextmanager
def lakehouse_for_run(context: dg.InitResourceContext, database: Path, memory_limit: str):
    """What a resource holds for a run: the lakehouse's run lock and, in a run, the lakehouse
    kept open for its steps (`held_for_run`). Re-entrant: the IO manager and `lakehouse` share
    both."""
    with resource_run_lock(context, lakehouse_location(database)):
        if getattr(context, "run", None) is None:
            yield
            return
        with held_for_run(database, memory_limit):
            yield


class LakehouseResource(dg.ConfigurableResource):
    """Short-lived connections to the working lakehouse, for checks and the publish step, on
    the engine MARKETING_ML_ENGINE names (marketing_ml/storage/engine.py).

    Empty `database` means MARKETING_ML_DB (default data/lakehouse.duckdb); empty
    `memory_limit` means DuckDB's own default. In a run it holds the lakehouse's run lock
    (marketing_ml/run_lock.py) from start to end, shared with the IO manager of the same run.
    """

    database: str = ""
    memory_limit: str = DUCKDB_MEMORY_LIMIT

    @property
    def path(self) -> Path:
        return Path(self.database) if self.database else lakehouse_db_path()

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        with lakehouse_for_run(context, self.path, self.memory_limit):
            with super().yield_for_execution(context) as resource:
                yield resource

    @contextmanager
    def connect(self, read_only: bool = False):
        with open_lakehouse(self.path, read_only, self.memory_limit) as connection:
            yield connection

    def frame(self, query: str) -> pd.DataFrame:
        """The query's rows as a frame (read-only, through Arrow: see `fetch_frame`). The
        engine's buffers are released after it, for the Python work that reads the frame."""
        with self.connect(read_only=True) as connection:
            frame = tables_for(connection).fetch_frame(connection, query)
        release_buffers(self.path)
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
