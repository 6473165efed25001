"""The one Definitions object of the code location."""

import dagster as dg

from marketing_ml.automation import (
    build_raw_files_sensor,
    build_schedules,
    daily_refresh,
    full_refresh,
    weekly_retrain,
)
from marketing_ml.bronze import bronze_assets
from marketing_ml.gold import daily_adset_metrics
from marketing_ml.ml import ml_asset_checks, ml_assets
from marketing_ml.plan import PLAN_ASSETS, PLAN_CHECKS
from marketing_ml.publish import build_publish_asset
from marketing_ml.quality import (
    data_quality_report,
    fact_files_fresh,
    quality_checks,
    row_accounting,
)
from marketing_ml.report import report
from marketing_ml.resources import LakehouseResource, RawFilesResource, ServingResource
from marketing_ml.silver import quarantine, revenue_by_day, silver_tables
from marketing_ml.storage.io_manager import LakehouseIOManager
from serving_contract import SERVED_TABLES

publish = build_publish_asset(SERVED_TABLES)


def build_definitions(
    database: str = "", raw_dir: str = "", serving_database: str = ""
) -> dg.Definitions:
    """Empty paths resolve from MARKETING_ML_* env vars when a step runs; tests pass their own."""
    return dg.Definitions(
        assets=[
            *bronze_assets,
            *silver_tables,
            revenue_by_day,
            quarantine,
            daily_adset_metrics,
            row_accounting,
            data_quality_report,
            *ml_assets,
            *PLAN_ASSETS,
            publish,
            report,
        ],
        asset_checks=[*quality_checks, fact_files_fresh, *ml_asset_checks, *PLAN_CHECKS],
        jobs=[daily_refresh, weekly_retrain, full_refresh],
        schedules=build_schedules(),
        sensors=[build_raw_files_sensor()],
        resources={
            "io_manager": LakehouseIOManager(database=database),
            "lakehouse": LakehouseResource(database=database),
            "raw_files": RawFilesResource(directory=raw_dir),
            "serving": ServingResource(database=serving_database),
        },
        executor=dg.in_process_executor,
    )


defs = build_definitions()
