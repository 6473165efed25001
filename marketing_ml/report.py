"""Report: the dashboard's presenter view as one self-contained HTML file, written after publish.

For people who will not run anything: `<serving dir>/report/marketing_report.html` opens offline
(plotly's JavaScript is embedded). Built from the serving file with the dashboard's own builder,
so the report and the dashboard always agree.
"""

from pathlib import Path

import dagster as dg

from app.report import write_report
from marketing_ml.resources import ServingResource

REPORT_NAME = "marketing_report.html"


def report_path(serving_path: Path) -> Path:
    return serving_path.parent / "report" / REPORT_NAME


@dg.asset(
    key=["report"],
    deps=[dg.AssetKey(["publish"])],
    group_name="serving",
    kinds={"html"},
    description="The presenter view (KPIs, charts and their 'so what', data quality, model "
    "evidence) as one HTML file that opens offline, next to the serving file in report/.",
)
def report(serving: ServingResource) -> dg.MaterializeResult:
    path = write_report(serving.path, report_path(serving.path))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path.resolve())),
            "bytes": dg.MetadataValue.int(path.stat().st_size),
        }
    )
