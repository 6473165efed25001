"""Bronze: every raw row as text with lineage, and the exact inputs a run saw as metadata."""

import dagster as dg

from marketing_ml.contract import RAW_FILES, RawFile
from marketing_ml.raw_files import (
    BRONZE_LINE_COLUMN,
    RawFileError,
    bronze_sql,
    profile_raw_file,
)
from marketing_ml.resources import RawFilesResource
from marketing_ml.storage import Sql


def build_bronze_asset(raw_file: RawFile) -> dg.AssetsDefinition:
    @dg.asset(
        key=["bronze", raw_file.name],
        group_name="bronze",
        kinds={"duckdb", "csv"},
        description=f"Every row of {raw_file.file_name} as text, with _source_file, "
        "_source_line and _row_hash (a hash of the row's content: identical copies share it).",
    )
    def bronze_table(context: dg.AssetExecutionContext, raw_files: RawFilesResource) -> Sql:
        try:
            profile = profile_raw_file(raw_files.path / raw_file.file_name, raw_file)
        except RawFileError as error:
            raise dg.Failure(description=str(error)) from None
        context.add_output_metadata(
            {
                "source_path": dg.MetadataValue.path(str(profile.path.resolve())),
                "source_sha256": profile.sha256,
                "source_size_bytes": profile.size_bytes,
                "source_rows": profile.data_rows,
                "extra_columns": ", ".join(profile.extra_columns) or "none",
            }
        )
        return Sql(bronze_sql(profile), line_number_column=BRONZE_LINE_COLUMN)

    return bronze_table


bronze_assets = [build_bronze_asset(raw_file) for raw_file in RAW_FILES]
