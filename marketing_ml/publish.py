"""Publish: copy what the dashboard reads into the serving file, swapped in atomically.

The dashboard never opens the working lakehouse (a reader's lock would stall every run). This
asset runs last, only when every blocking check upstream passed, writes a new file under a
temporary name and renames it into place: readers see the old file or the new one, never half.
A publish killed mid-way leaves its temporary file (and DuckDB's `.wal` beside it); the next
publish removes those of processes that are no longer running.
"""

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from marketing_ml.resources import LakehouseResource, ServingResource
from marketing_ml.sql import quote_identifier, sql_string
from marketing_ml.storage import engine_name, tables_for
from serving_contract import UNSERVED_COLUMNS


def staging_path_for(serving_path: Path, pid: int) -> Path:
    """Where process `pid` builds the next serving file before renaming it into place."""
    return serving_path.with_name(f".{serving_path.name}.{pid}.tmp")


def process_is_alive(pid: int) -> bool:
    """Whether a process with this PID exists here (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def remove_orphaned_staging_files(serving_path: Path) -> list[Path]:
    """Delete what killed publishes of `serving_path` left: `.<name>.<pid>.tmp`, its `.wal` and
    DuckDB's spill folder `.tmp`, for every PID that is no longer running. This process's own
    files and those of a live process are kept. Returns what was removed."""
    pattern = re.compile(rf"\.{re.escape(serving_path.name)}\.(\d+)\.tmp(?:\.wal|\.tmp)?")
    removed = []
    if not serving_path.parent.is_dir():
        return removed
    for entry in sorted(serving_path.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        pid = int(match[1])
        if pid == os.getpid() or process_is_alive(pid):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed


def remove_staging_files(staging_path: Path) -> None:
    staging_path.unlink(missing_ok=True)
    staging_path.with_name(staging_path.name + ".wal").unlink(missing_ok=True)
    shutil.rmtree(staging_path.with_name(staging_path.name + ".tmp"), ignore_errors=True)


@contextmanager
def lakehouse_sources(serving: duckdb.DuckDBPyConnection, lakehouse: LakehouseResource):
    """`source(schema, table)` -> (what the serving file's SQL reads the table as, its columns),
    for the lakehouse on either engine: DuckDB's file attached read-only; Spark's tables
    collected through Arrow."""
    if engine_name() == "duckdb":
        serving.execute(f"ATTACH {sql_string(str(lakehouse.path))} AS lakehouse (READ_ONLY)")

        def attached(schema: str, name: str) -> tuple[str, list[str]]:
            columns = serving.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = 'lakehouse' AND table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position",
                [schema, name],
            ).fetchall()
            source = f"lakehouse.{quote_identifier(schema)}.{quote_identifier(name)}"
            return source, [column for (column,) in columns]

        yield attached
        serving.execute("DETACH lakehouse")
        return
    with lakehouse.connect(read_only=True) as connection:
        tables = tables_for(connection)

        def collected(schema: str, name: str) -> tuple[str, list[str]]:
            arrow = tables.fetch_arrow(connection, f"{schema}.{name}")
            serving.register("_lakehouse_table", arrow)
            return "_lakehouse_table", arrow.schema.names

        yield collected


def write_serving_file(
    lakehouse: LakehouseResource, serving_path: Path, tables: tuple[str, ...]
) -> dict:
    """Copy `tables` ("schema.table") from the lakehouse into a fresh file and move it over
    `serving_path`."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    staging_path = staging_path_for(serving_path, os.getpid())
    remove_staging_files(staging_path)
    row_counts = {}
    try:
        with duckdb.connect(str(staging_path)) as serving:
            with lakehouse_sources(serving, lakehouse) as source_of:
                for table in tables:
                    schema, name = table.split(".")
                    target = f"{quote_identifier(schema)}.{quote_identifier(name)}"
                    serving.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
                    source, columns = source_of(schema, name)
                    column_list = ", ".join(
                        quote_identifier(column)
                        for column in columns
                        if column not in UNSERVED_COLUMNS
                    )
                    serving.execute(f"CREATE TABLE {target} AS SELECT {column_list} FROM {source}")
                    row_counts[table] = serving.execute(
                        f"SELECT count(*) FROM {target}"
                    ).fetchone()[0]
            serving.execute("CHECKPOINT")
        os.replace(staging_path, serving_path)
    finally:
        remove_staging_files(staging_path)
    return row_counts


def build_publish_asset(tables: tuple[str, ...]) -> dg.AssetsDefinition:
    @dg.asset(
        key=["publish"],
        deps=[dg.AssetKey(table.split(".")) for table in tables],
        group_name="serving",
        kinds={"duckdb"},
        description="Writes the serving file the dashboard reads (MARKETING_ML_SERVING_DB) "
        "under a temporary name and renames it into place. Runs only after every blocking "
        "check upstream has passed; a failed run leaves the last good file untouched.",
    )
    def publish(lakehouse: LakehouseResource, serving: ServingResource) -> dg.MaterializeResult:
        orphans = remove_orphaned_staging_files(serving.path)
        row_counts = write_serving_file(lakehouse, serving.path, tables)
        return dg.MaterializeResult(
            metadata={
                "serving_path": dg.MetadataValue.path(str(serving.path.resolve())),
                "removed_orphans": dg.MetadataValue.json([orphan.name for orphan in orphans]),
                **{f"rows_{table}": count for table, count in row_counts.items()},
            }
        )

    return publish
