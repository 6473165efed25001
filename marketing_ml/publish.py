"""Publish: copy what the dashboard reads into the serving file, swapped in atomically.

The dashboard never opens the working lakehouse (a reader's lock would stall every run). This
asset runs last, only when every blocking check upstream passed, writes a new file under a
temporary name and renames it into place: readers see the old file or the new one, never half.
"""

import os
from pathlib import Path

import dagster as dg
import duckdb

from marketing_ml.resources import LakehouseResource, ServingResource

SERVED_TABLES = (
    "gold.daily_adset_metrics",
    "gold.data_quality_report",
    "gold.row_accounting",
    "silver.quarantine",
    "gold.scored_adsets",
    "gold.scored_conversions",
    "models.pacing_risk_model",
    "models.conversion_model",
)
UNSERVED_COLUMNS = {"booster"}
"""The dashboard shows model cards, not boosters: the serving file stays small."""


def write_serving_file(lakehouse_path: Path, serving_path: Path, tables: tuple[str, ...]) -> dict:
    """Copy `tables` from the lakehouse into a fresh file and move it over `serving_path`."""
    serving_path.parent.mkdir(parents=True, exist_ok=True)
    staging_path = serving_path.with_name(f".{serving_path.name}.{os.getpid()}.tmp")
    staging_path.unlink(missing_ok=True)
    row_counts = {}
    try:
        with duckdb.connect(str(staging_path)) as serving:
            serving.execute(f"ATTACH '{lakehouse_path}' AS lakehouse (READ_ONLY)")
            for table in tables:
                schema, _ = table.split(".")
                serving.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                columns = [
                    name
                    for (name,) in serving.execute(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_catalog = 'lakehouse' AND table_schema = ? "
                        "AND table_name = ? ORDER BY ordinal_position",
                        table.split("."),
                    ).fetchall()
                    if name not in UNSERVED_COLUMNS
                ]
                column_list = ", ".join(f'"{name}"' for name in columns)
                serving.execute(
                    f"CREATE TABLE {table} AS SELECT {column_list} FROM lakehouse.{table}"
                )
                row_counts[table] = serving.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            serving.execute("DETACH lakehouse")
            serving.execute("CHECKPOINT")
        os.replace(staging_path, serving_path)
    finally:
        staging_path.unlink(missing_ok=True)
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
        row_counts = write_serving_file(lakehouse.path, serving.path, tables)
        return dg.MaterializeResult(
            metadata={
                "serving_path": dg.MetadataValue.path(str(serving.path.resolve())),
                **{f"rows_{table}": count for table, count in row_counts.items()},
            }
        )

    return publish
