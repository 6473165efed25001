"""Report: the dashboard's presenter view as one self-contained HTML file, written after publish.

For people who will not run anything: `<serving dir>/report/marketing_report.html` opens offline
(plotly's JavaScript is embedded). Built from the serving file by the dashboard's own builder
(`python -m app.html_report`), so the report and the dashboard always agree; run as a program, so the
pipeline reads the dashboard package no more than it reads the dashboard.
"""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from marketing_ml.defs.automation.conditions import ON_NEW_DATA
from marketing_ml.resources import ServingResource
from marketing_ml.table_keys import PUBLISH, REPORT

REPORT_NAME = "marketing_report.html"
REPORT_BUILDER = "app.html_report"


def report_path(serving_path: Path) -> Path:
    return serving_path.parent / "report" / REPORT_NAME


@dg.asset(
    key=REPORT,
    deps=[PUBLISH],
    group_name="serving",
    automation_condition=ON_NEW_DATA,
    kinds={"html"},
    description="The presenter view (KPIs, charts and their 'so what', data quality, model "
    "evidence) as one HTML file that opens offline, next to the serving file in report/.",
)
def report(serving: ServingResource) -> dg.MaterializeResult:
    path = report_path(serving.path)
    built = subprocess.run(
        [sys.executable, "-m", REPORT_BUILDER, str(serving.path), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise dg.Failure(
            description=f"Writing the report {path} failed (python -m {REPORT_BUILDER}, exit "
            f"{built.returncode}); the previous report is kept.",
            metadata={"stderr": dg.MetadataValue.md(f"```\n{built.stderr[-4000:]}\n```")},
        )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path.resolve())),
            "bytes": dg.MetadataValue.int(path.stat().st_size),
        }
    )
