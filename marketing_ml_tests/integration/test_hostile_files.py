"""Hostile and careless files: no SQL from content, no record lost or shifted before bronze,
one clear message per file-level problem. The files are built here, never committed."""

import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from marketing_ml.check_raw import check_raw_folder
from marketing_ml.cleaning import classified_rows_sql
from marketing_ml.contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
    RAW_FILES,
    RawFile,
)
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.incremental import load_bronze_table
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml_tests.support.lakehouse import (
    Lakehouse,
    check_outcomes,
    clean_performance_rows,
    performance_row,
    write_clean_raw_dir,
    write_raw_csv,
)


def csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def load(path: Path, raw_file: RawFile) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    load_bronze_table(connection, "main", "bronze_rows", profile_raw_file(path, raw_file))
    return connection


def verdicts(connection, raw_file: RawFile) -> dict[int, tuple[str | None, str | None]]:
    """Line -> (rule, reason) for every distinct bronze row, as silver and quarantine see it."""
    rows = connection.execute(
        f"SELECT _source_line, rule, reason FROM ({classified_rows_sql(raw_file, 'bronze_rows')})"
    ).fetchall()
    return {line: (rule, reason) for line, rule, reason in rows}


def check_raw_lines(raw_dir: Path) -> tuple[list[str], int]:
    report, file_problems = check_raw_folder(raw_dir)
    return report, file_problems


HOSTILE_HEADERS = [
    "x\") AS a FROM (SELECT 1); COPY (SELECT 42) TO '{marker}'; --",
    "it's",
    "semi;colon",
    "dash -- dash",
    "two\nlines",
    "naïve 指标 📈",
    'say "hi"',
]


def test_hostile_header_names_become_columns_with_exactly_that_name_and_run_nothing(tmp_path):
    marker = tmp_path / "written_by_a_header.csv"
    extra = [name.format(marker=marker) for name in HOSTILE_HEADERS]
    header = [*META_CAMPAIGN_PERFORMANCE.columns, *map(csv_field, extra)]
    rows = [[*row, *(str(i) for i in range(len(extra)))] for row in clean_performance_rows(2)]
    path = write_raw_csv(tmp_path / "meta_campaign_performance.csv", header, rows, newline="\n")

    connection = load(path, META_CAMPAIGN_PERFORMANCE)

    columns = [
        name
        for (name,) in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'bronze_rows' "
            "ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert columns[: len(header)] == [*META_CAMPAIGN_PERFORMANCE.columns, *extra]
    values = connection.execute(
        "SELECT "
        + ", ".join('"' + name.replace('"', '""') + '"' for name in extra)
        + " FROM bronze_rows ORDER BY _source_line LIMIT 1"
    ).fetchone()
    assert values == tuple(str(i) for i in range(len(extra)))
    assert not marker.exists()
    assert set(verdicts(connection, META_CAMPAIGN_PERFORMANCE).values()) == {(None, None)}


def test_a_header_line_break_duckdb_cannot_split_fails_the_file_and_loads_nothing(tmp_path):
    """DuckDB takes the file's line ending from its first line break: one inside a quoted
    column name of a CRLF file makes it read no rows at all. Counted, that is a message."""
    header = [*BUDGET_PACING.columns, csv_field("two\nlines")]
    path = write_raw_csv(tmp_path / "budget_pacing.csv", header, [["01/08/2024"] * 7])
    connection = duckdb.connect()
    with pytest.raises(
        RawFileError,
        match="1 records in the file, but DuckDB's CSV reader split it into 0: nothing was loaded",
    ):
        load_bronze_table(connection, "main", "bronze_rows", profile_raw_file(path, BUDGET_PACING))
    assert connection.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 0


def test_check_raw_reads_hostile_headers_without_running_them(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    marker = tmp_path / "written_by_check_raw.csv"
    injection = f"x\"); COPY (SELECT 1) TO '{marker}'; --"
    header = [*META_CAMPAIGN_PERFORMANCE.columns, csv_field(injection)]
    rows = [[*row, "1"] for row in clean_performance_rows(2)]
    write_raw_csv(raw_dir / "meta_campaign_performance.csv", header, rows)
    report, file_problems = check_raw_lines(raw_dir)
    assert file_problems == 0
    assert not marker.exists()
    assert any("extra column(s) ignored" in line and "COPY" in line for line in report)


@pytest.mark.parametrize(
    "header, message",
    [
        ([*BUDGET_PACING.columns, "Date"], "appear more than once.*ignoring case"),
        ([*BUDGET_PACING.columns, "_source_line"], "reserves for lineage"),
        ([*BUDGET_PACING.columns, ""], "column\\(s\\) 7 have no name"),
    ],
)
def test_headers_duckdb_cannot_hold_are_refused_with_a_message(tmp_path, header, message):
    path = write_raw_csv(tmp_path / "budget_pacing.csv", header, [])
    with pytest.raises(RawFileError, match=message):
        profile_raw_file(path, BUDGET_PACING)


def test_unterminated_quote_fails_the_file_at_the_line_it_opens(tmp_path):
    rows = clean_performance_rows(3)
    rows[2][2] = '"Senior_Leisure'
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    with pytest.raises(
        RawFileError,
        match=r"meta_campaign_performance.csv:4: a quoted value "
        r"opens on this line and never closes, so the 6 line\(s\)",
    ):
        profile_raw_file(path, META_CAMPAIGN_PERFORMANCE)


def test_unquoted_thousands_separator_is_quarantined_with_its_field_count_not_shifted(tmp_path):
    rows = clean_performance_rows(2)
    rows[1][5] = "1,234.50"
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    connection = load(path, META_CAMPAIGN_PERFORMANCE)
    classified = verdicts(connection, META_CAMPAIGN_PERFORMANCE)

    assert len(classified) == len(rows)
    rule, reason = classified[3]
    assert rule == "wrong_field_count"
    assert reason.startswith("10 fields where the header has 9")
    assert all(verdict == (None, None) for line, verdict in classified.items() if line != 3)
    raw = connection.execute(
        "SELECT _raw_record, spend FROM bronze_rows WHERE _source_line = 3"
    ).fetchone()
    assert raw == (",".join(rows[1]), None)


def test_short_row_is_quarantined_not_padded(tmp_path):
    rows = clean_performance_rows(2)
    rows[0] = rows[0][:7]
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    rule, reason = verdicts(load(path, META_CAMPAIGN_PERFORMANCE), META_CAMPAIGN_PERFORMANCE)[2]
    assert (rule, reason.split(" (")[0]) == ("wrong_field_count", "7 fields where the header has 9")


def test_quoted_newlines_load_with_names_whole_and_physical_line_numbers(tmp_path):
    """Valid RFC 4180: a newline inside a quoted name. The file is large enough for DuckDB to
    read it in parallel, which refused quoted newlines before."""
    rows = [
        performance_row(
            f"{1 + i % 28:02d}/{1 + i // 28 % 12:02d}/2024", f"AS_{i:06d}", "100", "1", "2.00"
        )
        for i in range(60_000)
    ]
    rows[10][2] = csv_field("Summer\nsale, two lines")
    rows[40_000][2] = csv_field("three\r\nline\nname")
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    profile = profile_raw_file(path, META_CAMPAIGN_PERFORMANCE)
    connection = load(path, META_CAMPAIGN_PERFORMANCE)

    assert profile.data_rows == 60_000
    assert connection.execute("SELECT count(*) FROM bronze_rows").fetchone()[0] == 60_000
    names = dict(
        connection.execute(
            "SELECT ad_set_id, ad_set_name FROM bronze_rows WHERE ad_set_id IN "
            "('AS_000010', 'AS_040000')"
        ).fetchall()
    )
    assert names == {"AS_000010": "Summer\nsale, two lines", "AS_040000": "three\r\nline\nname"}
    physical_lines = path.read_bytes().split(b"\n")
    for ad_set_id in ("AS_000009", "AS_000011", "AS_040001", "AS_059999"):
        line = connection.execute(
            "SELECT _source_line FROM bronze_rows WHERE ad_set_id = ?", [ad_set_id]
        ).fetchone()[0]
        assert f",{ad_set_id},".encode() in physical_lines[line - 1]


def test_rejected_records_and_blank_lines_keep_every_line_number_right(tmp_path):
    lines = [
        ",".join(CONVERSION_EVENTS.columns),
        "CV_1,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,a",
        "",
        "CV_2,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,a,extra",
        'CV_3,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,"multi',
        'line"',
        "CV_4,01/08/2024",
        "CV_5,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,a",
    ]
    path = tmp_path / "conversion_events.csv"
    path.write_text("\n".join(lines) + "\n")
    profile = profile_raw_file(path, CONVERSION_EVENTS)
    connection = load(path, CONVERSION_EVENTS)
    assert (profile.data_rows, profile.blank_lines) == (5, 1)
    classified = verdicts(connection, CONVERSION_EVENTS)
    assert {line: rule for line, (rule, _) in classified.items()} == {
        2: None,
        4: "wrong_field_count",
        5: None,
        7: "wrong_field_count",
        8: None,
    }


@pytest.mark.parametrize(
    "column, value, rule",
    [
        ("spend", "NaN", "non_finite"),
        ("spend", "inf", "non_finite"),
        ("spend", "-Infinity", "non_finite"),
        ("spend", "1e309", "non_finite"),
        ("impressions", "445229.7", "non_numeric"),
        ("impressions", "0x10", "non_numeric"),
        ("clicks", "1e3", "non_numeric"),
        ("date", "02/08/24", "implausible_date"),
        ("date", "01/01/0001", "implausible_date"),
        ("date", "01/01/2999", "implausible_date"),
    ],
)
def test_non_finite_numbers_and_impossible_dates_are_quarantined(tmp_path, column, value, rule):
    rows = clean_performance_rows(2)
    rows[0][META_CAMPAIGN_PERFORMANCE.columns.index(column)] = value
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    connection = load(path, META_CAMPAIGN_PERFORMANCE)
    found_rule, reason = verdicts(connection, META_CAMPAIGN_PERFORMANCE)[2]
    assert (found_rule, value in reason) == (rule, True)


def test_the_plausible_date_window_is_configurable(tmp_path, monkeypatch):
    rows = clean_performance_rows(2)
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    monkeypatch.setenv("MARKETING_ML_EARLIEST_DATE", "2024-08-02")
    classified = verdicts(load(path, META_CAMPAIGN_PERFORMANCE), META_CAMPAIGN_PERFORMANCE)
    assert {rule for line, (rule, _) in classified.items() if line <= 4} == {"implausible_date"}
    assert {rule for line, (rule, _) in classified.items() if line > 4} == {None}


def test_check_raw_reports_the_new_rules_like_any_other(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    rows = clean_performance_rows()
    rows[0][5] = "NaN"
    rows[1][0] = "02/08/24"
    rows[2][5] = "1,234.50"
    write_raw_csv(
        raw_dir / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    report, file_problems = check_raw_lines(raw_dir)
    assert file_problems == 0
    text = "\n".join(report)
    assert "meta_campaign_performance.csv:2: non_finite: spend 'NaN'" in text
    assert "meta_campaign_performance.csv:3: implausible_date: date '02/08/24'" in text
    assert "meta_campaign_performance.csv:4: wrong_field_count: 10 fields" in text


def file_problem(raw_dir: Path, file_name: str) -> str:
    report, file_problems = check_raw_lines(raw_dir)
    errors = [line for line in report if line.startswith("ERROR")]
    assert file_problems == 1 and len(errors) == 1, report
    assert file_name in errors[0] and "\n" not in errors[0]
    return errors[0]


def test_a_folder_where_a_csv_should_be_is_one_message(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    (raw_dir / "budget_pacing.csv").unlink()
    (raw_dir / "budget_pacing.csv").mkdir()
    assert "a folder, not a file" in file_problem(raw_dir, "budget_pacing.csv")


def test_carriage_return_only_line_endings_are_one_message(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / "budget_pacing.csv"
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r"))
    assert "carriage return only" in file_problem(raw_dir, "budget_pacing.csv")


def test_a_carriage_return_inside_a_line_names_the_line(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / "budget_pacing.csv"
    lines = path.read_bytes().split(b"\r\n")
    lines[3] = lines[3].replace(b",AS_", b",\rAS_", 1)
    path.write_bytes(b"\r\n".join(lines))
    assert "budget_pacing.csv:4: a carriage return inside a line" in file_problem(
        raw_dir, "budget_pacing.csv"
    )


def test_a_ten_megabyte_field_is_quarantined_and_the_rest_loads(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    rows = clean_performance_rows()
    rows[4][2] = "x" * (10 * 1024 * 1024)
    write_raw_csv(
        raw_dir / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    report, file_problems = check_raw_lines(raw_dir)
    assert file_problems == 0
    assert any(
        "meta_campaign_performance.csv:6: malformed_record: the record is 10,485," in line
        for line in report
    )
    assert max(len(line) for line in report) < 1000


def test_a_symlink_out_of_the_raw_folder_is_refused_without_echoing_it(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    secret = tmp_path / "secret.csv"
    secret.write_text("date,ad_set_id,planned_spend\nTOP-SECRET-CONTENT\n")
    (raw_dir / "budget_pacing.csv").unlink()
    os.symlink(secret, raw_dir / "budget_pacing.csv")
    message = file_problem(raw_dir, "budget_pacing.csv")
    assert "symbolic link to a file outside the raw folder" in message
    assert "TOP-SECRET" not in "\n".join(check_raw_lines(raw_dir)[0])


def test_a_symlink_within_the_raw_folder_is_followed(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    (raw_dir / "budget_pacing.csv").rename(raw_dir / "pacing_export.csv")
    os.symlink(raw_dir / "pacing_export.csv", raw_dir / "budget_pacing.csv")
    assert check_raw_lines(raw_dir)[1] == 0


def test_mixed_line_endings_are_one_message(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / "budget_pacing.csv"
    data = path.read_bytes()
    first_crlf = data.index(b"\r\n", data.index(b"\r\n") + 2)
    path.write_bytes(data[:first_crlf] + b"\n" + data[first_crlf + 2 :])
    assert "mixed line endings" in file_problem(raw_dir, "budget_pacing.csv")


def test_audience_interests_with_quoted_newlines_are_kept_whole(tmp_path):
    rows = [
        ["AS_001", "Premium", "25-45", csv_field("luxury travel,\npremium hotels"), "x", "500"],
        ["AS_002", "Budget", "28-50", csv_field("family"), "y", "300"],
    ]
    path = write_raw_csv(tmp_path / "audience_segments.csv", AUDIENCE_SEGMENTS.header_columns, rows)
    connection = load(path, AUDIENCE_SEGMENTS)
    assert connection.execute(
        "SELECT ad_set_id, target_interests, _source_line FROM bronze_rows ORDER BY ad_set_id"
    ).fetchall() == [("AS_001", "luxury travel,\npremium hotels", 2), ("AS_002", "family", 4)]


def dirty_raw_dir(raw_dir: Path) -> Path:
    """Clean fixture files with one of each record-level problem written into them."""
    write_clean_raw_dir(raw_dir)
    rows = clean_performance_rows()
    rows[3][5] = "1,234.50"
    rows[5][2] = csv_field("Senior\nLeisure, two lines")
    rows[7][5] = "NaN"
    rows[9][3] = "445229.7"
    rows[11] = rows[11][:6]
    write_raw_csv(
        raw_dir / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    path = raw_dir / "meta_campaign_performance.csv"
    path.write_bytes(path.read_bytes() + b"\r\n")
    return raw_dir


def test_a_dirty_file_publishes_with_every_record_accounted_from_the_file(tmp_path):
    lakehouse = Lakehouse(
        dirty_raw_dir(tmp_path / "raw"), tmp_path / "lakehouse.duckdb", tmp_path / "serving.duckdb"
    )
    result = lakehouse.materialize()
    assert result.success
    outcomes = check_outcomes(result)
    assert all(
        outcomes[f"file_records_loaded_{f.name}"]
        for f in (AUDIENCE_SEGMENTS, META_CAMPAIGN_PERFORMANCE, BUDGET_PACING, CONVERSION_EVENTS)
    )
    assert lakehouse.serving_query(
        "SELECT file_records, bronze_rows, silver_rows, quarantined_rows, balanced "
        "FROM gold.row_accounting WHERE source_file = 'meta_campaign_performance.csv'"
    ) == [(63, 63, 59, 4, True)]
    assert lakehouse.serving_query(
        "SELECT source_line, rule FROM silver.quarantine "
        "WHERE source_file = 'meta_campaign_performance.csv' ORDER BY source_line"
    ) == [
        (5, "wrong_field_count"),
        (10, "non_finite"),
        (12, "non_numeric"),
        (14, "wrong_field_count"),
    ]
    assert lakehouse.query(
        "SELECT ad_set_name, _source_line FROM silver.meta_campaign_performance "
        "WHERE date = DATE '2024-08-02' AND ad_set_id = 'AS_003'"
    ) == [("Senior\nLeisure, two lines", 7)]
    report = dict(
        lakehouse.serving_query(
            "SELECT rule, status FROM gold.data_quality_report WHERE rule LIKE 'file_records%'"
        )
    )
    assert report == {f"file_records_loaded_{f.name}": "pass" for f in RAW_FILES}

    listed = {
        (
            line.split(":")[0].split("/")[-1].strip(),
            int(line.split(":")[1]),
            line.split(":")[2].strip(),
        )
        for line in check_raw_lines(lakehouse.raw_dir)[0]
        if line.startswith("      /")
    }
    quarantined = set(
        lakehouse.query("SELECT source_file, source_line, rule FROM silver.quarantine")
    )
    assert listed == quarantined


def test_a_record_lost_before_bronze_fails_the_file_count_and_blocks_publish(built_lakehouse):
    lakehouse = built_lakehouse
    served = lakehouse.serving_query("SELECT count(*) FROM silver.quarantine")
    with duckdb.connect(str(lakehouse.database)) as connection:
        connection.execute("DELETE FROM bronze.budget_pacing WHERE _source_line = 7")
    result = lakehouse.materialize(
        selection=dg.AssetSelection.assets(["silver", "budget_pacing"]).downstream()
    )
    assert not result.success
    assert check_outcomes(result)["file_records_loaded_budget_pacing"] is False
    assert check_outcomes(result)["file_records_loaded_conversion_events"] is True
    assert dg.AssetKey("publish") not in {
        event.asset_key for event in result.get_asset_materialization_events()
    }
    assert lakehouse.serving_query("SELECT count(*) FROM silver.quarantine") == served


def test_blank_lines_in_a_file_without_quotes_are_counted_and_skipped(tmp_path):
    """Lines are presumed to be records until DuckDB's count says otherwise: then the file is
    parsed, so every line number and the record count are still right."""
    lines = [
        ",".join(CONVERSION_EVENTS.columns),
        "CV_1,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,a",
        "",
        "",
        "CV_2,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,a,extra",
        "CV_3,01/08/2024,AS_001,hotel_inquiry,0,7_day_click,a",
        "",
    ]
    path = tmp_path / "conversion_events.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    connection = duckdb.connect()
    rows, profile = load_bronze_table(
        connection, "main", "bronze_rows", profile_raw_file(path, CONVERSION_EVENTS)
    )
    assert (rows, profile.data_rows, profile.blank_lines) == (3, 3, 3)
    assert {line: rule for line, (rule, _) in verdicts(connection, CONVERSION_EVENTS).items()} == {
        2: None,
        5: "wrong_field_count",
        6: None,
    }


def test_a_day_appended_after_blank_lines_is_numbered_as_a_full_load_numbers_it(
    built_lakehouse,
):
    lakehouse = built_lakehouse
    path = lakehouse.raw_dir / "conversion_events.csv"
    path.write_bytes(
        path.read_bytes() + b"\r\nCV_NEW1,22/08/2024,AS_001,hotel_inquiry,0,7_day_click,a\r\n"
        b"CV_NEW2,22/08/2024,AS_001,hotel_inquiry,0,7_day_click,a,extra\r\n"
        b"CV_NEW3,22/08/2024,AS_001,hotel_inquiry,0,7_day_click,a,\r\n"
    )
    assert lakehouse.materialize().success
    appended = lakehouse.query(
        "SELECT _source_line, conversion_id, _malformed FROM bronze.conversion_events "
        "WHERE _source_line > 127 ORDER BY _source_line"
    )
    fresh = duckdb.connect()
    load_bronze_table(fresh, "main", "bronze_rows", profile_raw_file(path, CONVERSION_EVENTS))
    assert (
        appended
        == fresh.execute(
            "SELECT _source_line, conversion_id, _malformed FROM bronze_rows "
            "WHERE _source_line > 127 ORDER BY _source_line"
        ).fetchall()
        == [
            (129, "CV_NEW1", None),
            (130, None, "wrong_field_count"),
            (131, None, "wrong_field_count"),
        ]
    )
    assert lakehouse.query(
        "SELECT file_records, bronze_rows, balanced FROM gold.row_accounting "
        "WHERE source_file = 'conversion_events.csv'"
    ) == [(129, 129, True)]


@pytest.mark.parametrize("quoted_name", [False, True])
@pytest.mark.parametrize("extra", [",", ',""', ",,"])
def test_trailing_empty_fields_duckdb_accepts_are_still_wrong_field_count(
    tmp_path, extra, quoted_name
):
    """DuckDB's strict reader lets trailing empty fields pass; with a thousands separator before
    them the values shift silently. The file's own field count catches it, quoted or not."""
    rows = clean_performance_rows(2)
    rows[1][5] = "1,234.50"
    rows[1][8] = rows[1][8] + ""
    rows[1] = rows[1][:8]
    rows[1][-1] += extra
    rows[3][-1] += extra
    if quoted_name:
        rows[4][2] = csv_field("name, with a comma")
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    connection = load(path, META_CAMPAIGN_PERFORMANCE)
    classified = verdicts(connection, META_CAMPAIGN_PERFORMANCE)
    assert {line: rule for line, (rule, _) in classified.items() if rule} == {
        3: "wrong_field_count",
        5: "wrong_field_count",
    }
    assert classified[5][1].startswith(f"{9 + extra.count(',')} fields where the header has 9")
    assert connection.execute(
        "SELECT _raw_record, spend, ctr FROM bronze_rows WHERE _source_line = 3"
    ).fetchone() == (",".join(rows[1]), None, None)


def test_an_export_with_a_trailing_comma_on_every_line_is_set_aside_in_one_pass(tmp_path):
    """Every record has one field more than the header: all are wrong_field_count, each with its
    own text and line (one pass over the file and one UPDATE, not one per record)."""
    rows = [[*row[:-1], row[-1] + ","] for row in clean_performance_rows(21)] * 40
    path = write_raw_csv(
        tmp_path / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    connection = load(path, META_CAMPAIGN_PERFORMANCE)
    assert connection.execute(
        "SELECT count(*), count(DISTINCT _source_line), min(_source_line), max(_source_line), "
        "count(*) FILTER (WHERE _malformed = 'wrong_field_count' AND spend IS NULL), "
        "count(*) FILTER (WHERE ends_with(_raw_record, ',')) FROM bronze_rows"
    ).fetchone() == (2520, 2520, 2, 2521, 2520, 2520)
    lines = path.read_bytes().decode("utf-8-sig").split("\r\n")
    assert (
        connection.execute(
            "SELECT _raw_record FROM bronze_rows WHERE _source_line = 1000"
        ).fetchone()[0]
        == lines[999]
    )


def test_a_look_alike_ad_set_is_quarantined_by_the_run_and_by_check_raw(tmp_path):
    """AS_001's first day written as `AS_<zero-width space>001`: not a second ad set in silver
    or gold but a quarantined row naming the character, listed by check-raw; a name with a
    right-to-left override keeps its row, the override shown as an escape; every record is
    accounted for."""
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    rows = clean_performance_rows()
    rows[0][1] = "AS_\u200b001"
    rows[1][2] = "Budget\u202e_Families"
    write_raw_csv(
        raw_dir / "meta_campaign_performance.csv", META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    report, file_problems = check_raw_lines(raw_dir)
    assert file_problems == 0
    assert any(
        line.endswith(
            "meta_campaign_performance.csv:2: invisible_character: ad_set_id holds U+200B "
            "ZERO WIDTH SPACE at position 4: 'AS_\\u200b001' looks like a value without it; "
            "remove it in the export"
        )
        for line in report
    )

    lakehouse = Lakehouse(raw_dir, tmp_path / "lakehouse.duckdb", tmp_path / "serving.duckdb")
    result = lakehouse.materialize()
    assert result.success
    assert lakehouse.serving_query(
        "SELECT source_line, rule FROM silver.quarantine "
        "WHERE source_file = 'meta_campaign_performance.csv'"
    ) == [(2, "invisible_character")]
    assert lakehouse.serving_query(
        "SELECT DISTINCT ad_set_id FROM gold.daily_adset_metrics ORDER BY 1"
    ) == [("AS_001",), ("AS_002",), ("AS_003",)]
    assert lakehouse.query(
        "SELECT ad_set_name FROM silver.meta_campaign_performance WHERE _source_line = 3"
    ) == [("Budget\\u202e_Families",)]
    assert lakehouse.serving_query("SELECT bool_and(balanced) FROM gold.row_accounting") == [
        (True,)
    ]
    assert check_outcomes(result)["quarantined_invisible_character"]
