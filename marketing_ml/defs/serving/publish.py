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

from marketing_ml.defs.automation.conditions import ON_NEW_DATA
from marketing_ml.resources import LakehouseResource, ServingResource
from marketing_ml.sql import quote_identifier, sql_string
from marketing_ml.storage import Engine, tables_for
from marketing_ml.table_keys import PUBLISH
from serving_contract import SERVED_TABLES, UNSERVED_COLUMNS


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


SERVING_CATALOG = "serving"


@contextmanager
def serving_writer(lakehouse: LakehouseResource, staging_path: Path):
    """(connection, source_of): a DuckDB connection in which the staging file is attached as
    SERVING_CATALOG, and `source_of(schema, table)` -> (what its SQL reads the lakehouse table
    as, the table's columns). DuckDB: the lakehouse's own connection (a run keeps the file open,
    and DuckDB lets no second connection of the process attach it); Spark: an in-memory
    connection that reads each table collected through Arrow."""
    if lakehouse.engine_in_use is Engine.DUCKDB:
        with lakehouse.connect(read_only=True) as connection:
            catalog = connection.execute("SELECT current_database()").fetchone()[0]

            def attached(schema: str, name: str) -> tuple[str, list[str]]:
                columns = connection.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = ? "
                    "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                    [catalog, schema, name],
                ).fetchall()
                source = ".".join(quote_identifier(part) for part in (catalog, schema, name))
                return source, [column for (column,) in columns]

            with attached_serving(connection, staging_path):
                yield connection, attached
        return
    with lakehouse.connect(read_only=True) as lakehouse_connection, duckdb.connect() as connection:
        tables = tables_for(lakehouse_connection)

        def collected(schema: str, name: str) -> tuple[str, list[str]]:
            arrow = tables.fetch_arrow(lakehouse_connection, f"{schema}.{name}")
            connection.register("_lakehouse_table", arrow)
            return "_lakehouse_table", arrow.schema.names

        with attached_serving(connection, staging_path):
            yield connection, collected


@contextmanager
def attached_serving(connection: duckdb.DuckDBPyConnection, staging_path: Path):
    """The staging file attached as SERVING_CATALOG; checkpointed and detached after the block,
    so the file is complete before it is renamed into place."""
    connection.execute(f"ATTACH {sql_string(str(staging_path))} AS {SERVING_CATALOG}")
    try:
        yield
        connection.execute(f"CHECKPOINT {SERVING_CATALOG}")
    finally:
        connection.execute(f"DETACH {SERVING_CATALOG}")


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
        with serving_writer(lakehouse, staging_path) as (connection, source_of):
            for table in tables:
                schema, name = table.split(".")
                target_schema = f"{SERVING_CATALOG}.{quote_identifier(schema)}"
                target = f"{target_schema}.{quote_identifier(name)}"
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS {target_schema}")
                source, columns = source_of(schema, name)
                column_list = ", ".join(
                    quote_identifier(column) for column in columns if column not in UNSERVED_COLUMNS
                )
                connection.execute(f"CREATE TABLE {target} AS SELECT {column_list} FROM {source}")
                row_counts[table] = connection.execute(f"SELECT count(*) FROM {target}").fetchone()[
                    0
                ]
        os.replace(staging_path, serving_path)
    finally:
        remove_staging_files(staging_path)
    return row_counts


def build_publish_asset(tables: tuple[str, ...]) -> dg.AssetsDefinition:
    @dg.asset(
        key=PUBLISH,
        deps=[dg.AssetKey(table.split(".")) for table in tables],
        group_name="serving",
        automation_condition=ON_NEW_DATA,
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


publish = build_publish_asset(SERVED_TABLES)
