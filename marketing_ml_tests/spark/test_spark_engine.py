"""The Spark engine builds what DuckDB builds: the same graph, run on both engines over generated
data with hostile rows (and over the original sample where `MARKETING_ML_SEED_RAW` names it),
gives equal tables (as multisets, numbers to 1e-9 relative), the same check verdicts, models
with identical metrics, and equal serving files. One Spark session (local mode) serves the whole module."""

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from marketing_ml.definitions import build_definitions
from marketing_ml.parity import compare_databases, compare_frames
from marketing_ml.sample_data import write_sample_data
from marketing_ml.storage.engine import ENGINE_ENV, WAREHOUSE_ENV
from marketing_ml.storage.spark import spark_tables
from marketing_ml_tests.support.lakehouse import check_outcomes

SEED_RAW_ENV = "MARKETING_ML_SEED_RAW"
"""The original project's sample, where one is at hand (CI sets it to the copy beside its
checkout): its runs join the generated ones. A user's clone has no such copy, and the suite
there compares the engines on generated data only."""
RAW_SOURCES = ("generated", *(("seed",) if os.environ.get(SEED_RAW_ENV) else ()))
HASH_COLUMNS = ("_row_hash", "_key_hash")
"""Engine-specific hash values (DuckDB's 64-bit hash, Spark's xxhash64): compared as the rows
they group, not as numbers."""
MODEL_BYTES = ("booster",)

HOSTILE_PERFORMANCE_ROWS = (
    "1/8/2024,AS_001,Day first in one digit,1000,20,55.10,2.00,10.00,1.10",
    "05/08/2024,AS_002,Underscore thousands,4_000,120,55.10,3.00,12.00,1.20",
    "06/08/2024,AS_003,Non-finite spend,1000,10,inf,1.00,10.00,1.00",
    "07/08/2024,AS_004,Shifted,1,000,10,5.00,1.00,10.00,1.00",
    '08/08/2024,AS_005,"A name with a\r\nline break",100,10,5.00,1.00,10.00,1.00',
    "01/01/1999,AS_006,Implausible date,100,10,5.00,1.00,10.00,1.00",
    "09/08/24,AS_007,Two-digit year,100,10,5.00,1.00,10.00,1.00",
    "10/08/2024,AS_008,Whole number with a fraction,100.5,10,5.00,1.00,10.00,1.00",
    "11/08/2024,AS_009,Hex count,0x10,10,5.00,1.00,10.00,1.00",
    "12/08/2024,AS_010,NaN spend,100,10,NaN,1.00,10.00,1.00",
    "12/08/2024,AS_010,NaN spend,100,10,NaN,1.00,10.00,1.00",
    "13/08/2024,AS_011,Too few fields,100,10",
    "14/08/2024,AS_\u200b012,Zero-width look-alike id,100,10,5.00,1.00,10.00,1.00",
    "15/08/2024,AS_012,A name ending in a no-break space\u00a0,100,10,5.00,1.00,10.00,1.00",
    "16/08/2024,AS_012,A name with a \u202eright-to-left override,100,10,5.00,1.00,10.00,1.00",
)
"""Rows of the kinds the reader and every quarantine rule meet, appended to a generated file:
where the engines' parsers differ (dates, numbers, JSON text, line numbering) a verdict moves."""
HOSTILE_AUDIENCE_ROWS = (
    "AS_098,Unknown level,25-34,travel,travellers,100.00,CMP_098,Spring,cbo",
    "AS_099,Campaign budget without its campaign,25-34,travel,travellers,100.00,,Spring,campaign",
)
"""Audience rows breaking the campaign columns' rules (ad sets with no days: gold is unchanged)."""


@contextmanager
def spark_engine(warehouse: Path):
    saved = {name: os.environ.get(name) for name in (ENGINE_ENV, WAREHOUSE_ENV)}
    os.environ[ENGINE_ENV] = "spark"
    os.environ[WAREHOUSE_ENV] = str(warehouse)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def materialize(database: Path, raw: Path, serving: Path) -> dg.ExecuteInProcessResult:
    definitions = build_definitions(str(database), str(raw), str(serving))
    return dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources=definitions.resources,
        raise_on_error=False,
    )


def write_generated_raw(raw: Path) -> None:
    """Generated data (with its own dirt) plus the hostile rows above."""
    write_sample_data(raw, 12, 75, 11)
    with (raw / "meta_campaign_performance.csv").open(
        "a", encoding="utf-8", newline=""
    ) as performance:
        performance.write("".join(f"{row}\r\n" for row in HOSTILE_PERFORMANCE_ROWS))
    with (raw / "audience_segments.csv").open("a", encoding="utf-8", newline="") as audience:
        audience.write("".join(f"{row}\r\n" for row in HOSTILE_AUDIENCE_ROWS))


@dataclass
class EngineRuns:
    duckdb_run: dg.ExecuteInProcessResult
    spark_run: dg.ExecuteInProcessResult
    duckdb_lakehouse: Path
    duckdb_serving: Path
    spark_serving: Path
    warehouse: Path


@pytest.fixture(scope="module", params=RAW_SOURCES)
def runs(request, tmp_path_factory) -> EngineRuns:
    folder = tmp_path_factory.mktemp(f"engines-{request.param}")
    raw = folder / "raw"
    if request.param == "seed":
        shutil.copytree(os.environ[SEED_RAW_ENV], raw)
    else:
        write_generated_raw(raw)
    duckdb_run = materialize(folder / "lakehouse.duckdb", raw, folder / "duckdb-serving.duckdb")
    warehouse = folder / "warehouse"
    with spark_engine(warehouse):
        spark_run = materialize(folder / "unused.duckdb", raw, folder / "spark-serving.duckdb")
    return EngineRuns(
        duckdb_run,
        spark_run,
        folder / "lakehouse.duckdb",
        folder / "duckdb-serving.duckdb",
        folder / "spark-serving.duckdb",
        warehouse,
    )


def lakehouse_tables(database: Path) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return [
            f"{schema}.{table}"
            for schema, table in connection.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL"
            ).fetchall()
        ]


def duckdb_frame(database: Path, table: str):
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.sql(f"SELECT * FROM {table}").to_arrow_table().to_pandas()


def test_both_engines_build_the_whole_graph(runs: EngineRuns):
    assert runs.duckdb_run.success
    assert runs.spark_run.success
    materialized = {event.asset_key for event in runs.spark_run.get_asset_materialization_events()}
    assert materialized == {
        event.asset_key for event in runs.duckdb_run.get_asset_materialization_events()
    }


def test_every_lakehouse_table_is_equal_on_both_engines(runs: EngineRuns):
    tables = lakehouse_tables(runs.duckdb_lakehouse)
    assert {"bronze", "silver", "gold", "models"} <= {table.split(".")[0] for table in tables}
    with spark_engine(runs.warehouse):
        connection = spark_tables.connect()
        differences = []
        for table in tables:
            expected = duckdb_frame(runs.duckdb_lakehouse, table)
            actual = spark_tables.fetch_frame(connection, f"SELECT * FROM {table}")
            ignored = [c for c in (*HASH_COLUMNS, *MODEL_BYTES) if c in expected.columns]
            differences += compare_frames(expected, actual, table, ignore_columns=ignored)
            for column in ignored:
                if column in HASH_COLUMNS:
                    grouped = expected.groupby(column).ngroups, actual.groupby(column).ngroups
                    assert grouped[0] == grouped[1], f"{table}.{column} groups rows differently"
    assert differences == []


def test_every_check_gives_the_same_verdict_on_both_engines(runs: EngineRuns):
    duckdb_verdicts = check_outcomes(runs.duckdb_run)
    assert len(duckdb_verdicts) > 20
    assert check_outcomes(runs.spark_run) == duckdb_verdicts


def test_models_trained_on_both_engines_have_identical_metrics(runs: EngineRuns):
    with spark_engine(runs.warehouse):
        connection = spark_tables.connect()
        for model in ("pacing_risk_model", "conversion_model"):
            table = f"models.{model}"
            query = f"SELECT model_version, training_rows, metrics, backtest FROM {table}"
            expected = duckdb_frame(runs.duckdb_lakehouse, table)
            actual = spark_tables.fetch_frame(connection, query)
            columns = ["model_version", "training_rows", "metrics", "backtest"]
            assert actual.to_dict("records") == expected[columns].to_dict("records")


def test_both_engines_publish_equal_serving_files(runs: EngineRuns):
    assert compare_databases(runs.duckdb_serving, runs.spark_serving) == []


@pytest.mark.parametrize("runs", ["generated"], indirect=True)
def test_the_hostile_rows_meet_their_rules_on_spark(runs: EngineRuns):
    """The parity above covers the rows where the engines' parsers differ most."""
    with spark_engine(runs.warehouse):
        connection = spark_tables.connect()
        rules = dict(
            connection.execute(
                "SELECT rule, count(*) FROM silver.quarantine "
                "WHERE source_file = 'meta_campaign_performance.csv' GROUP BY rule"
            ).fetchall()
        )
    assert {
        "non_finite",
        "wrong_field_count",
        "implausible_date",
        "non_numeric",
        "invisible_character",
    } <= set(rules)


@pytest.mark.parametrize("runs", ["generated"], indirect=True)
def test_the_campaign_columns_meet_their_rules_on_spark(runs: EngineRuns):
    """A budget level outside the vocabulary and a campaign budget without its campaign are
    quarantined; every kept ad set has a level (blank would read as ad_set)."""
    with spark_engine(runs.warehouse):
        connection = spark_tables.connect()
        quarantined = connection.execute(
            "SELECT source_line, rule, reason FROM silver.quarantine "
            "WHERE source_file = 'audience_segments.csv' ORDER BY source_line"
        ).fetchall()
        levels = connection.execute(
            "SELECT budget_level, count(*) FROM silver.audience_segments GROUP BY budget_level"
        ).fetchall()
    assert [(rule, reason.split(" (")[0]) for _, rule, reason in quarantined] == [
        ("unknown_vocabulary", "budget_level 'cbo' is not one of ad_set, campaign"),
        ("missing_required", "campaign_id is blank where budget_level is campaign"),
    ]
    assert {level for level, _ in levels} <= {"ad_set", "campaign"}
    assert sum(count for _, count in levels) == 12


@pytest.mark.parametrize("runs", ["generated"], indirect=True)
def test_a_failed_spark_write_keeps_the_previous_version_and_its_state(runs: EngineRuns):
    from pyspark.errors import PySparkException

    table = "silver.budget_pacing"
    with spark_engine(runs.warehouse):
        connection = spark_tables.connect()
        before = spark_tables.fetch_frame(connection, f"SELECT * FROM {table}")
        state = spark_tables.table_state(connection, "silver", "budget_pacing")
        versions = spark_tables.new_location(connection, table).parent
        assert len(list(versions.iterdir())) == 1
        with pytest.raises(PySparkException):
            spark_tables.create_table_as(connection, table, f"SELECT no_such_column FROM {table}")
        after = spark_tables.fetch_frame(connection, f"SELECT * FROM {table}")
        assert compare_frames(before, after, table) == []
        assert spark_tables.table_state(connection, "silver", "budget_pacing") == state

        spark_tables.create_table_as(connection, "gold.replaced", "SELECT 1 AS a")
        spark_tables.set_table_state(connection, "gold", "replaced", {"it's": "a \\ state"})
        assert spark_tables.table_state(connection, "gold", "replaced") == {"it's": "a \\ state"}
        spark_tables.create_table_as(connection, "gold.replaced", "SELECT 2 AS a")
        assert connection.execute("SELECT a FROM gold.replaced").fetchall() == [(2,)]
        assert spark_tables.table_state(connection, "gold", "replaced") is None
        spark_tables.create_table_as(connection, "gold.replaced", "SELECT 'x' AS b, 3 AS c")
        assert connection.execute("SELECT b, c FROM gold.replaced").fetchall() == [("x", 3)]
        replaced_versions = spark_tables.new_location(connection, "gold.replaced").parent
        assert len(list(replaced_versions.iterdir())) == 1


@pytest.mark.parametrize("runs", ["generated"], indirect=True)
def test_an_empty_frame_is_written_with_its_columns_on_spark(runs: EngineRuns):
    """A curves backtest on too little history (the original sample) is an empty frame: Spark
    cannot infer a schema from no rows, so the run failed on Spark and not on DuckDB."""
    import pandas as pd

    from planning.backtest import BACKTEST_COLUMNS, backtest_curves

    empty = backtest_curves(pd.DataFrame(columns=["date", "ad_set_id", "spend", "revenue"]))
    assert empty.empty and list(empty.columns) == list(BACKTEST_COLUMNS)
    with spark_engine(runs.warehouse):
        connection = spark_tables.connect()
        spark_tables.replace_table_with_frame(connection, "gold.empty_backtest", empty)
        stored = spark_tables.fetch_frame(connection, "SELECT * FROM gold.empty_backtest")
    assert stored.empty and list(stored.columns) == list(BACKTEST_COLUMNS)
