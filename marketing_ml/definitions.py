"""The one Definitions object of the code location: Dagster's defs folder (marketing_ml/defs/,
one subfolder per group: bronze, silver, gold, quality, models, planning, serving, automation)
with the lakehouse's resources bound to it."""

from functools import cache
from pathlib import Path

import dagster as dg

from marketing_ml.resources import RawFilesResource, ServingResource
from marketing_ml.storage.io_manager import lakehouse_resources


@cache
def defs_folder() -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, found by Dagster in marketing_ml/defs/."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def build_definitions(
    database: str = "", raw_dir: str = "", serving_database: str = ""
) -> dg.Definitions:
    """Empty paths resolve from MARKETING_ML_* env vars when a step runs; tests pass their own."""
    return dg.Definitions.merge(
        defs_folder(),
        dg.Definitions(
            resources={
                **lakehouse_resources(database),
                "raw_files": RawFilesResource(directory=raw_dir),
                "serving": ServingResource(database=serving_database),
            },
            executor=dg.in_process_executor,
        ),
    )


defs = build_definitions()
