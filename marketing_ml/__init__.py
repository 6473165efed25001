"""marketing-ml: a local, offline marketing lakehouse on Dagster and DuckDB."""

from marketing_ml.definitions import defs

__all__ = ["defs"]
