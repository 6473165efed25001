"""Files that cannot be used fail with a message naming the file and what to do."""

import hashlib
import json

import duckdb
import pytest

from marketing_ml.check_raw import check_raw_folder
from marketing_ml.contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
)
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.incremental import load_bronze_table
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml_tests.support.lakehouse import (
    AUDIENCE_ROWS,
    clean_conversion_rows,
    clean_pacing_rows,
    clean_performance_rows,
    write_clean_raw_dir,
    write_raw_csv,
)


def test_missing_file_names_the_file_and_the_env_var(tmp_path):
    with pytest.raises(
        RawFileError, match="budget_pacing.csv: file is missing.*MARKETING_ML_RAW_DIR"
    ):
        profile_raw_file(tmp_path / "budget_pacing.csv", BUDGET_PACING)


def test_zero_byte_file_asks_for_a_header(tmp_path):
    path = tmp_path / "budget_pacing.csv"
    path.write_bytes(b"")
    with pytest.raises(RawFileError, match="empty.*date,ad_set_id,planned_spend"):
        profile_raw_file(path, BUDGET_PACING)


def test_file_that_is_not_utf8_names_the_line(tmp_path):
    path = write_raw_csv(tmp_path / "audience_segments.csv", AUDIENCE_SEGMENTS.header_columns, [])
    path.write_bytes(path.read_bytes() + "AS_9,Caf\u00e9,25-45,x,y,5\r\n".encode("latin-1"))
    with pytest.raises(RawFileError, match=r"not UTF-8 \(byte 0xe9 .* line 2\).*Re-export"):
        profile_raw_file(path, AUDIENCE_SEGMENTS)


def test_missing_column_is_named_with_the_header_found(tmp_path):
    columns = [c for c in BUDGET_PACING.columns if c != "pacing_status"]
    path = write_raw_csv(tmp_path / "budget_pacing.csv", columns, [])
    with pytest.raises(RawFileError, match="missing required column\\(s\\) pacing_status"):
        profile_raw_file(path, BUDGET_PACING)


def test_header_only_file_has_zero_rows(tmp_path):
    path = write_raw_csv(tmp_path / "budget_pacing.csv", BUDGET_PACING.columns, [])
    assert profile_raw_file(path, BUDGET_PACING).data_rows == 0


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_rows_are_counted_whatever_the_line_endings(tmp_path, bom, newline, final_newline):
    path = write_raw_csv(
        tmp_path / "budget_pacing.csv",
        BUDGET_PACING.columns,
        clean_pacing_rows(),
        bom=bom,
        newline=newline,
        final_newline=final_newline,
    )
    profile = profile_raw_file(path, BUDGET_PACING)
    assert profile.data_rows == len(clean_pacing_rows())
    assert profile.header == BUDGET_PACING.columns


def test_extra_columns_are_reported(tmp_path):
    columns = [*META_CAMPAIGN_PERFORMANCE.columns, "campaign_objective"]
    rows = [[*row, "sales"] for row in clean_performance_rows()]
    path = write_raw_csv(tmp_path / "meta_campaign_performance.csv", columns, rows)
    assert profile_raw_file(path, META_CAMPAIGN_PERFORMANCE).extra_columns == (
        "campaign_objective",
    )


def test_check_raw_lists_row_problems_with_file_and_line_and_passes(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    rows = clean_performance_rows()
    rows[1][5] = "-12.00"
    write_raw_csv(
        raw_dir / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    report, file_problems = check_raw_folder(raw_dir)
    assert file_problems == 0
    assert any(
        "meta_campaign_performance.csv:3: negative_value: spend is negative (-12.00)" in line
        for line in report
    )


def test_check_raw_counts_file_level_problems(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    (raw_dir / "budget_pacing.csv").unlink()
    (raw_dir / "conversion_events.csv").write_bytes(b"")
    report, file_problems = check_raw_folder(raw_dir)
    assert file_problems == 2
    assert sum(line.startswith("ERROR") for line in report) == 2


def test_bronze_line_numbers_match_the_file_when_duckdb_reads_it_in_parallel(tmp_path):
    """`_source_line` comes from row ids after a parallel load: it must still be the physical
    line. 600,000 rows (36 MB) span many of DuckDB's CSV buffers and row groups; the connection
    starts without insertion order (the numbers were wrong for 499,999 rows then, before bronze
    set it itself)."""
    rows = [
        (f"CV_{line:08d}", "01/08/2024", "AS_001", "hotel_inquiry", "0.00", "7_day_click", "x")
        for line in range(2, 600_002)
    ]
    path = write_raw_csv(tmp_path / CONVERSION_EVENTS.file_name, CONVERSION_EVENTS.columns, rows)
    connection = duckdb.connect(config={"threads": 2, "preserve_insertion_order": False})
    load_bronze_table(connection, "main", "bronze_rows", profile_raw_file(path, CONVERSION_EVENTS))
    lines, misnumbered = connection.execute(
        "SELECT count(*), count(*) FILTER (WHERE conversion_id <> 'CV_' || "
        "lpad(CAST(_source_line AS VARCHAR), 8, '0')) FROM bronze_rows"
    ).fetchone()
    assert (lines, misnumbered) == (600_000, 0)


def test_bronze_keeps_every_record_as_it_arrived_and_silver_rebuilds_without_the_csv(lakehouse):
    """Every record of a dirty file (a quoted value spanning two lines, a blank line, a record
    with too many fields) is in bronze with its file, its physical first line and its text; the
    table records the file's SHA-256; silver built again from bronze alone, with the CSV gone,
    is the same table."""
    path = lakehouse.raw_dir / CONVERSION_EVENTS.file_name
    rows = clean_conversion_rows()
    text = (
        ",".join(CONVERSION_EVENTS.columns)
        + "\n"
        + "".join(",".join(row) + "\n" for row in rows[:3])
        + 'CV_Q001,01/08/2024,AS_001,booking_completed,1200,7_day_click,"two\nlines"\n'
        + "\n"
        + "CV_X001,01/08/2024,AS_001,booking_completed,1,200.50,7_day_click,x\n"
        + "".join(",".join(row) + "\n" for row in rows[3:])
    )
    path.write_bytes(text.encode())
    physical = text.split("\n")
    expected = {2 + i: ",".join(row) for i, row in enumerate(rows[:3])}
    expected[5] = physical[4] + "\n" + physical[5]
    expected[8] = physical[7]
    expected.update({9 + i: ",".join(row) for i, row in enumerate(rows[3:])})

    assert lakehouse.materialize().success
    columns = ", ".join(f"coalesce({column}, '')" for column in CONVERSION_EVENTS.columns)
    stored = lakehouse.query(
        f"SELECT _source_line, _source_file, coalesce(_raw_record, "
        f"CASE WHEN conversion_id = 'CV_Q001' THEN NULL ELSE concat_ws(',', {columns}) END), "
        f"user_segment FROM bronze.conversion_events ORDER BY _source_line"
    )
    assert [line for line, *_ in stored] == sorted(expected)
    assert {file for _, file, *_ in stored} == {CONVERSION_EVENTS.file_name}
    for line, _, record, user_segment in stored:
        if line == 5:
            assert user_segment == "two\nlines"
        else:
            assert record == expected[line], line
    (comment,) = lakehouse.query(
        "SELECT comment FROM duckdb_tables() "
        "WHERE schema_name = 'bronze' AND table_name = 'conversion_events'"
    )[0]
    assert json.loads(comment)["file"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()

    silver = "SELECT * FROM silver.conversion_events ORDER BY _source_line"
    built = lakehouse.query(silver)
    for raw_file in lakehouse.raw_dir.iterdir():
        raw_file.unlink()
    with duckdb.connect(str(lakehouse.database)) as connection:
        connection.execute("DROP TABLE silver.conversion_events")
    assert lakehouse.materialize(selection="silver/conversion_events").success
    assert lakehouse.query(silver) == built and len(built) == len(rows) + 1


def test_check_raw_says_which_optional_campaign_columns_a_file_has(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    report, _ = check_raw_folder(raw_dir)
    absent = "optional column(s) absent (read as blank): campaign_id, campaign_name, budget_level"
    assert any(
        line.startswith("OK") and "audience_segments.csv" in line and absent in line
        for line in report
    )
    rows = [[*row, "CMP_1", "Spring CBO", "campaign"] for row in AUDIENCE_ROWS]
    rows[0][-1] = "cbo"
    write_raw_csv(raw_dir / "audience_segments.csv", AUDIENCE_SEGMENTS.columns, rows)
    report, file_problems = check_raw_folder(raw_dir)
    assert file_problems == 0
    read = "optional column(s) read: campaign_id, campaign_name, budget_level"
    assert any("audience_segments.csv" in line and read in line for line in report)
    assert any(
        "audience_segments.csv:2: unknown_vocabulary: budget_level 'cbo' is not one of "
        "ad_set, campaign" in line
        for line in report
    )


def test_a_missing_column_message_tells_required_from_optional(tmp_path):
    header = [c for c in AUDIENCE_SEGMENTS.header_columns if c != "daily_budget"]
    path = write_raw_csv(tmp_path / "audience_segments.csv", header, [])
    with pytest.raises(RawFileError) as error:
        profile_raw_file(path, AUDIENCE_SEGMENTS)
    message = str(error.value)
    assert "missing required column(s) daily_budget" in message
    assert "(optional: campaign_id, campaign_name, budget_level)" in message
