"""The raw files as external assets: Dagster does not build them, the raw-folder sensor
reports each change (marketing_ml/defs/automation/jobs.py), and their bronze tables follow."""

import dagster as dg

from marketing_ml.contract import RAW_FILES, RawFile
from marketing_ml.table_keys import raw_key


def raw_export_spec(raw_file: RawFile) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=raw_key(raw_file),
        group_name="raw",
        kinds={"csv"},
        description=f"{raw_file.file_name} in the raw folder (MARKETING_ML_RAW_DIR), as a vendor "
        "exports it. Each change (new, resized or rewritten) is reported by the raw_files_changed "
        "sensor with the file's size and modification time.",
    )


raw_exports = [dg.AssetsDefinition(specs=[raw_export_spec(raw_file)]) for raw_file in RAW_FILES]
"""As external asset definitions, not bare specs: Dagster 1.13's module loader lists a bare
AssetSpec twice (once as an asset, once as a source asset)."""
