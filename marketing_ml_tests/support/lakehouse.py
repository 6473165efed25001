"""Raw folders the tests write themselves, a lakehouse in a temporary folder, and readers of a
run's outcome."""

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from marketing_ml.contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
    RAW_FILES,
    RawFile,
)
from marketing_ml.definitions import build_definitions
from marketing_ml.defs.quality.quality_checks import RULES


def write_raw_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    bom: bool = True,
    newline: str = "\r\n",
    final_newline: bool = True,
) -> Path:
    """A CSV as a vendor exports it; fields are written as given (quote them yourself)."""
    lines = [",".join(header), *(",".join(row) for row in rows)]
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))
    return path


FIXTURE_DAYS = 21
"""Three weeks, like the original sample: enough for both models' label windows."""

AUDIENCE_ROWS = [
    [
        "AS_001",
        "Premium_Travelers_25-45",
        "25-45",
        '"luxury travel, premium hotels"',
        "high_value_customers",
        "500",
    ],
    [
        "AS_002",
        "Budget_Conscious_Families",
        "28-50",
        '"family travel, budget flights"',
        "family_bookers",
        "300",
    ],
    [
        "AS_003",
        "Senior_Leisure_Travelers",
        "55+",
        '"cruise travel, guided tours"',
        "senior_travelers",
        "350",
    ],
]


def performance_row(day: str, ad_set: str, impressions: str, clicks: str, spend: str):
    name = {
        "AS_001": "Premium_Travelers_25-45",
        "AS_002": "Budget_Conscious_Families",
        "AS_003": "Senior_Leisure_Travelers",
    }.get(ad_set, "Unknown_Ad_Set")
    try:
        ctr = f"{int(clicks) / int(impressions) * 100:.2f}"
        cpm = f"{float(spend) / int(impressions) * 1000:.2f}"
    except ValueError:
        ctr, cpm = "2.00", "5.00"
    return [day, ad_set, name, impressions, clicks, spend, ctr, cpm, "2.1"]


def clean_performance_rows(days: int = FIXTURE_DAYS) -> list[list[str]]:
    rows = []
    for day in range(1, days + 1):
        for index, ad_set in enumerate(("AS_001", "AS_002", "AS_003")):
            impressions = 40000 + 1000 * day + 500 * index
            rows.append(
                performance_row(
                    f"{day:02d}/08/2024",
                    ad_set,
                    str(impressions),
                    str(800 + 10 * day),
                    f"{250 + day + index}.50",
                )
            )
    return rows


def clean_pacing_rows(days: int = FIXTURE_DAYS) -> list[list[str]]:
    rows = []
    for day in range(1, days + 1):
        for ad_set, planned in (("AS_001", 500), ("AS_002", 300), ("AS_003", 350)):
            actual = planned * (0.6 + 0.1 * (day % 7))
            status = "under_pacing" if actual / planned < 0.9 else "on_pace"
            rows.append(
                [
                    f"{day:02d}/08/2024",
                    ad_set,
                    str(planned),
                    f"{actual:.2f}",
                    f"{actual / planned:.2f}",
                    status,
                ]
            )
    return rows


def clean_conversion_rows(days: int = FIXTURE_DAYS) -> list[list[str]]:
    rows = []
    for day in range(1, days + 1):
        for index, ad_set in enumerate(("AS_001", "AS_002", "AS_003")):
            number = len(rows) + 1
            rows.append(
                [
                    f"CV_B{number:03d}",
                    f"{day:02d}/08/2024",
                    ad_set,
                    "booking_completed",
                    f"{1000 + 100 * index}",
                    "7_day_click",
                    "premium_leisure",
                ]
            )
            rows.append(
                [
                    f"CV_N{number:03d}",
                    f"{day:02d}/08/2024",
                    ad_set,
                    "newsletter_signup",
                    "",
                    "1_day_view",
                    "family_leisure",
                ]
            )
    return rows


def write_clean_raw_dir(raw_dir: Path) -> Path:
    raw_dir.mkdir(parents=True, exist_ok=True)
    write_raw_csv(
        raw_dir / "audience_segments.csv", AUDIENCE_SEGMENTS.header_columns, AUDIENCE_ROWS
    )
    write_raw_csv(
        raw_dir / "meta_campaign_performance.csv",
        META_CAMPAIGN_PERFORMANCE.columns,
        clean_performance_rows(),
    )
    write_raw_csv(raw_dir / "budget_pacing.csv", BUDGET_PACING.columns, clean_pacing_rows())
    write_raw_csv(
        raw_dir / "conversion_events.csv", CONVERSION_EVENTS.columns, clean_conversion_rows()
    )
    return raw_dir


@dataclass
class Lakehouse:
    """A lakehouse in a temporary folder: its files and the Definitions pointed at them."""

    raw_dir: Path
    database: Path
    serving: Path

    @property
    def definitions(self) -> dg.Definitions:
        return build_definitions(str(self.database), str(self.raw_dir), str(self.serving))

    def materialize(
        self, selection: str | None = None, extra_checks=()
    ) -> dg.ExecuteInProcessResult:
        definitions = self.definitions
        return dg.materialize(
            [*definitions.assets, *definitions.asset_checks, *extra_checks],
            resources=definitions.resources,
            selection=selection,
            raise_on_error=False,
        )

    def cli_environment(self, dagster_home: Path) -> dict[str, str]:
        """The environment for the real `dagster` CLI pointed at this lakehouse."""
        dagster_home.mkdir(exist_ok=True)
        return {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "MARKETING_ML_RAW_DIR": str(self.raw_dir),
            "MARKETING_ML_DB": str(self.database),
            "MARKETING_ML_SERVING_DB": str(self.serving),
        }

    def query(self, sql: str, parameters=None) -> list[tuple]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(sql, parameters or []).fetchall()

    def serving_query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.serving), read_only=True) as connection:
            return connection.execute(sql).fetchall()


@dataclass(frozen=True)
class BuiltLakehouse:
    """A lakehouse with its whole graph materialized, and the run that built it."""

    lakehouse: Lakehouse
    result: dg.ExecuteInProcessResult


def build_clean_lakehouse(root: Path) -> BuiltLakehouse:
    """The clean fixture's whole graph materialized under `root`: the session fixture
    `clean_build` (conftest.py) builds it once for every test that starts from it."""
    lakehouse = Lakehouse(
        write_clean_raw_dir(root / "raw"), root / "lakehouse.duckdb", root / "serving.duckdb"
    )
    result = lakehouse.materialize()
    assert result.success, "the clean fixture failed to materialize"
    return BuiltLakehouse(lakehouse, result)


def copy_lakehouse(source: Lakehouse, root: Path) -> Lakehouse:
    """A lakehouse of its own under `root` holding what `source` holds: its raw files (their
    modification times kept), its DuckDB files and the report beside the serving file. A bronze
    table's state names files by content, not path, so the copy loads exactly as the source
    would; a test that changes a built lakehouse starts here instead of building it again."""
    root.mkdir(parents=True, exist_ok=True)
    copy = Lakehouse(root / "raw", root / "lakehouse.duckdb", root / "serving.duckdb")
    shutil.copytree(source.raw_dir, copy.raw_dir)
    for database, target in ((source.database, copy.database), (source.serving, copy.serving)):
        shutil.copy2(database, target)
        write_ahead_log = database.with_name(f"{database.name}.wal")
        if write_ahead_log.exists():
            shutil.copy2(write_ahead_log, target.with_name(f"{target.name}.wal"))
    report_dir = source.serving.parent / "report"
    if report_dir.is_dir():
        shutil.copytree(report_dir, copy.serving.parent / "report")
    return copy


MATERIALIZE_EVERYTHING = [
    sys.executable,
    "-m",
    "dagster",
    "asset",
    "materialize",
    "-m",
    "marketing_ml",
    "--select",
    "*",
]


def check_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }


def quality_warnings(result: dg.ExecuteInProcessResult) -> list[str]:
    """Data-quality checks that did not pass (the models' own checks are judged elsewhere)."""
    quality_checks = {rule.name for rule in RULES} | {"fact_files_fresh"}
    return sorted(
        name
        for name, passed in check_outcomes(result).items()
        if not passed and name in quality_checks
    )


def raw_path(lakehouse: Lakehouse, raw_file: RawFile) -> Path:
    return lakehouse.raw_dir / raw_file.file_name


UP_TO_FEATURES = (
    dg.AssetSelection.groups("bronze", "silver")
    | dg.AssetSelection.assets(["gold", "features"]).upstream()
)


COMPARED_TABLES = [
    *(f"{layer}.{raw_file.name}" for layer in ("bronze", "silver") for raw_file in RAW_FILES),
    "silver.quarantine",
    "gold.daily_adset_metrics",
    "gold.features",
]


def load_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        event.asset_key.to_user_string(): event.materialization.metadata["load"].value
        for event in result.get_asset_materialization_events()
        if "load" in event.materialization.metadata
    }


def differences(first: Path, second: Path, table: str) -> int:
    """Rows in one table and not the other (as multisets), both ways."""
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{first}' AS first (READ_ONLY)")
        connection.execute(f"ATTACH '{second}' AS second (READ_ONLY)")
        return connection.execute(
            f"""SELECT count(*) FROM (
                (SELECT * FROM first.{table} EXCEPT ALL SELECT * FROM second.{table})
                UNION ALL
                (SELECT * FROM second.{table} EXCEPT ALL SELECT * FROM first.{table})
            )"""
        ).fetchone()[0]
