"""A raw file that grows by a day is loaded and cleaned incrementally, to exactly the tables a
full build gives; anything else (a rewritten file, a table touched by hand, a full refresh) is
built in full."""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from marketing_ml.contract import (
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
)
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml.storage import FULL_LOAD_TAG
from marketing_ml_tests.support.lakehouse import (
    COMPARED_TABLES,
    UP_TO_FEATURES,
    Lakehouse,
    differences,
    load_outcomes,
    performance_row,
    write_clean_raw_dir,
)

NEXT_DAY_EVENTS = [
    "CV_X001,22/08/2024,AS_001,booking_completed,1200,7_day_click,premium_leisure",
    # an event of the first day again, with another value: every copy is held back
    "CV_B001,01/08/2024,AS_001,booking_completed,999,7_day_click,premium_leisure",
    # an exact copy of a row from the first day: dropped as a duplicate, the first kept
    "CV_N002,01/08/2024,AS_001,newsletter_signup,,1_day_view,family_leisure",
    "CV_X002,22/08/2024,AS_002,made_up_type,0,7_day_click,family_leisure",
]


def append_lines(path: Path, lines: list[str]) -> None:
    with path.open("ab") as stream:
        stream.write("".join(f"{line}\r\n" for line in lines).encode())


def materialize(lakehouse: Lakehouse, tags: dict | None = None) -> dg.ExecuteInProcessResult:
    definitions = lakehouse.definitions
    result = dg.materialize(
        definitions.assets,
        resources=definitions.resources,
        selection=UP_TO_FEATURES,
        tags=tags,
    )
    assert result.success
    return result


@pytest.fixture
def grown_and_fresh(built_lakehouse, tmp_path) -> tuple[Lakehouse, Lakehouse]:
    """One lakehouse built on three weeks and then on the next day appended; one built on the
    grown files from scratch."""
    grown = built_lakehouse
    append_lines(grown.raw_dir / CONVERSION_EVENTS.file_name, NEXT_DAY_EVENTS)
    append_lines(
        grown.raw_dir / META_CAMPAIGN_PERFORMANCE.file_name,
        [",".join(performance_row("22/08/2024", "AS_001", "41000", "900", "260.50"))],
    )
    fresh = Lakehouse(grown.raw_dir, tmp_path / "fresh.duckdb", tmp_path / "s2.duckdb")
    return grown, fresh


def test_an_appended_day_is_loaded_and_cleaned_incrementally_to_the_full_build(
    grown_and_fresh,
):
    grown, fresh = grown_and_fresh
    outcomes = load_outcomes(materialize(grown))
    materialize(fresh)

    assert outcomes["bronze/conversion_events"] == "appended 4 rows"
    assert outcomes["bronze/meta_campaign_performance"] == "appended 1 rows"
    assert outcomes["bronze/budget_pacing"] == "unchanged since the last load"
    assert outcomes["silver/conversion_events"] == (
        "re-cleaned 4 key(s) touched by new bronze rows"
    )
    assert outcomes["silver/budget_pacing"].startswith("unchanged")
    assert outcomes["silver/quarantine"] == (
        "re-classified the keys new rows touch in meta_campaign_performance.csv, "
        "conversion_events.csv"
    )
    # the held-back copy of CV_B001 takes a booking off the first day: every day is recomputed
    assert outcomes["gold/features"] == "recomputed the days from 2024-08-01 (2 changed)"
    for table in COMPARED_TABLES:
        assert differences(grown.database, fresh.database, table) == 0, table
    assert grown.query(
        "SELECT count(*) FROM silver.conversion_events WHERE conversion_id = 'CV_B001'"
    ) == [(0,)]
    assert grown.query(
        "SELECT rule FROM silver.quarantine WHERE source_line = 129 "
        "AND source_file = 'conversion_events.csv'"
    ) == [("conflicting_duplicate",)]


def test_a_clean_new_day_recomputes_only_its_features(built_lakehouse, tmp_path):
    append_lines(
        built_lakehouse.raw_dir / CONVERSION_EVENTS.file_name,
        ["CV_X001,22/08/2024,AS_001,booking_completed,1200,7_day_click,premium_leisure"],
    )
    append_lines(
        built_lakehouse.raw_dir / META_CAMPAIGN_PERFORMANCE.file_name,
        [
            ",".join(performance_row("22/08/2024", ad_set, "41000", "900", "260.50"))
            for ad_set in ("AS_001", "AS_002", "AS_003")
        ],
    )
    append_lines(
        built_lakehouse.raw_dir / BUDGET_PACING.file_name,
        [f"22/08/2024,{ad_set},500,260.50,0.52,under_pacing" for ad_set in ("AS_001", "AS_002")],
    )
    outcomes = load_outcomes(materialize(built_lakehouse))
    fresh = Lakehouse(built_lakehouse.raw_dir, tmp_path / "fresh.duckdb", tmp_path / "s2.duckdb")
    materialize(fresh)

    assert outcomes["gold/daily_adset_metrics"] == "recomputed the days from 2024-08-22 (1 changed)"
    assert outcomes["gold/features"] == "recomputed the days from 2024-08-22 (1 changed)"
    assert built_lakehouse.query(
        "SELECT count(*), min(days_since_first_day), max(spend_28d) FROM gold.features "
        "WHERE date = DATE '2024-08-22'"
    ) == fresh.query(
        "SELECT count(*), min(days_since_first_day), max(spend_28d) FROM gold.features "
        "WHERE date = DATE '2024-08-22'"
    )
    for table in COMPARED_TABLES:
        assert differences(built_lakehouse.database, fresh.database, table) == 0, table


def test_a_rewritten_file_is_loaded_in_full(built_lakehouse):
    path = built_lakehouse.raw_dir / META_CAMPAIGN_PERFORMANCE.file_name
    path.write_bytes(path.read_bytes().replace(b"02/08/2024,AS_001", b"02/08/2024,AS_003", 1))

    outcomes = load_outcomes(materialize(built_lakehouse))

    assert outcomes["bronze/meta_campaign_performance"] == "full load (63 rows)"
    assert outcomes["silver/meta_campaign_performance"] == "full build"
    assert outcomes["bronze/conversion_events"] == "unchanged since the last load"


def test_rows_deleted_by_hand_make_the_next_run_build_in_full(built_lakehouse):
    with duckdb.connect(str(built_lakehouse.database)) as connection:
        connection.execute("DELETE FROM bronze.budget_pacing WHERE _source_line = 5")
        connection.execute("DELETE FROM silver.conversion_events WHERE _source_line = 5")

    outcomes = load_outcomes(materialize(built_lakehouse))

    assert outcomes["bronze/budget_pacing"] == "full load (63 rows)"
    assert outcomes["silver/conversion_events"] == "full build"
    assert built_lakehouse.query("SELECT count(*) FROM silver.conversion_events") == [(126,)]
    # bronze is the version silver cleaned again, row for row: nothing to redo
    assert outcomes["silver/budget_pacing"].startswith("unchanged")


def test_the_full_load_tag_rebuilds_unchanged_files(built_lakehouse):
    outcomes = load_outcomes(materialize(built_lakehouse, tags={FULL_LOAD_TAG: "true"}))
    assert set(outcomes.values()) == {
        "full load (0 rows)",  # experiments.csv: optional, absent, read as its header alone
        "full load (3 rows)",
        "full load (63 rows)",
        "full load (126 rows)",
        "full build",
    }
    assert outcomes["gold/features"] == outcomes["gold/daily_adset_metrics"] == "full build"


def test_profile_of_a_grown_file_counts_and_hashes_like_a_fresh_profile(tmp_path):
    path = write_clean_raw_dir(tmp_path / "raw") / CONVERSION_EVENTS.file_name
    before = profile_raw_file(path, CONVERSION_EVENTS)
    append_lines(path, NEXT_DAY_EVENTS)

    grown = profile_raw_file(path, CONVERSION_EVENTS, before)
    fresh = profile_raw_file(path, CONVERSION_EVENTS)

    assert grown.extends == before
    assert (grown.sha256, grown.data_rows, grown.header) == (
        fresh.sha256,
        fresh.data_rows,
        fresh.header,
    )
    path.write_bytes(path.read_bytes().replace(b"CV_B001", b"CV_B00Z"))
    assert profile_raw_file(path, CONVERSION_EVENTS, before).extends is None


def test_silver_catches_up_with_two_days_bronze_appended_without_it(built_lakehouse, tmp_path):
    events = built_lakehouse.raw_dir / CONVERSION_EVENTS.file_name
    bronze_only = dg.AssetSelection.assets(["bronze", "conversion_events"])
    for day, line in ((22, NEXT_DAY_EVENTS[0]), (23, NEXT_DAY_EVENTS[1])):
        append_lines(events, [line.replace("22/08/2024", f"{day}/08/2024")])
        definitions = built_lakehouse.definitions
        assert dg.materialize(
            definitions.assets, resources=definitions.resources, selection=bronze_only
        ).success

    outcomes = load_outcomes(materialize(built_lakehouse))
    fresh = Lakehouse(built_lakehouse.raw_dir, tmp_path / "fresh.duckdb", tmp_path / "s2.duckdb")
    materialize(fresh)

    assert outcomes["bronze/conversion_events"] == "unchanged since the last load"
    assert outcomes["silver/conversion_events"] == (
        "re-cleaned 2 key(s) touched by new bronze rows"
    )
    for table in COMPARED_TABLES:
        assert differences(built_lakehouse.database, fresh.database, table) == 0, table


def test_a_failed_update_leaves_silver_and_what_it_records_as_they_were(built_lakehouse):
    append_lines(built_lakehouse.raw_dir / CONVERSION_EVENTS.file_name, NEXT_DAY_EVENTS[:2])
    definitions = built_lakehouse.definitions
    assert dg.materialize(
        definitions.assets,
        resources=definitions.resources,
        selection=dg.AssetSelection.assets(["bronze", "conversion_events"]),
    ).success
    silver_now = (
        "SELECT (SELECT count(*) FROM silver.conversion_events), comment FROM duckdb_tables() "
        "WHERE schema_name = 'silver' AND table_name = 'conversion_events'"
    )
    before = built_lakehouse.query(silver_now)
    with duckdb.connect(str(built_lakehouse.database)) as connection:
        connection.execute("ALTER TABLE bronze.conversion_events DROP COLUMN value")

    result = dg.materialize(
        definitions.assets,
        resources=definitions.resources,
        selection=dg.AssetSelection.assets(["silver", "conversion_events"]),
        raise_on_error=False,
    )

    assert not result.success
    assert built_lakehouse.query(silver_now) == before
