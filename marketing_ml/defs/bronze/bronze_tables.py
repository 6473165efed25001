"""Bronze: every raw row as text with lineage, and the exact inputs a run saw as metadata."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from marketing_ml.contract import RAW_FILES, RawFile
from marketing_ml.defs.automation.conditions import ON_RAW_FILE_CHANGE
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.incremental import plan_bronze_refresh
from marketing_ml.resources import RawFilesResource
from marketing_ml.storage import IncrementalTable, Update, full_load_requested
from marketing_ml.table_keys import bronze_key, raw_key


@dataclass(frozen=True)
class RawExport(IncrementalTable):
    """A raw file to bring its bronze table up to date with: appended rows only, when the file
    extends the version loaded (a daily export grows at the end)."""

    raw_file: RawFile
    path: Path
    needs_updates_in_place = False
    """On an engine without in-place updates a file is still left alone when it is the version
    loaded (see `plan_bronze_refresh`)."""

    def plan(self, connection, name: str, built: dict) -> Update:
        schema, table = name.split(".")
        return plan_bronze_refresh(connection, schema, table, self.path, self.raw_file, built)

    def write(self, connection, schema: str, table: str) -> dict:
        try:
            return super().write(connection, schema, table)
        except RawFileError as error:
            raise dg.Failure(description=str(error)) from None


def build_bronze_asset(raw_file: RawFile) -> dg.AssetsDefinition:
    @dg.asset(
        key=bronze_key(raw_file),
        deps=[raw_key(raw_file)],
        group_name="bronze",
        automation_condition=ON_RAW_FILE_CHANGE,
        kinds={"duckdb", "csv"},
        description=f"Every row of {raw_file.file_name} as text, with _source_file, "
        "_source_line and _row_hash (a hash of the row's content: identical copies share it). "
        "A file that extends the version loaded (rows appended) only has its new rows read.",
    )
    def bronze_table(context: dg.AssetExecutionContext, raw_files: RawFilesResource) -> RawExport:
        return RawExport(
            raw_file, raw_files.path / raw_file.file_name, full_load=full_load_requested(context)
        )

    return bronze_table


bronze_assets = [build_bronze_asset(raw_file) for raw_file in RAW_FILES]
