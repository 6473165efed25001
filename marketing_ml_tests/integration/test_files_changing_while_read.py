"""Raw files that change while a run reads them, and the daily path against the full one: a file
is read through the one descriptor it was opened with, from a private copy, so what is hashed is
exactly what is loaded; a file still being written is waited for or loaded up to its last
complete line; an appended part is read by the same reader as a whole file."""

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from marketing_ml.check_raw import check_raw_folder
from marketing_ml.cleaning import classified_rows_sql
from marketing_ml.contract import BUDGET_PACING, META_CAMPAIGN_PERFORMANCE, RawFile
from marketing_ml.defs.bronze.bronze_tables import RawExport
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.incremental import load_bronze_table
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml.ingest.settle import SETTLE_ENV
from marketing_ml_tests.support.lakehouse import (
    COMPARED_TABLES,
    UP_TO_FEATURES,
    Lakehouse,
    clean_pacing_rows,
    differences,
    load_outcomes,
    write_clean_raw_dir,
)

PERFORMANCE_DAY = "22/08/2024,AS_001,Premium_Travelers_25-45,62000,1020,272.50,1.65,4.40,2.1"


def refresh(connection, raw_file: RawFile, path: Path, full_load: bool = False) -> dict:
    """The bronze asset's own write: full, appended or unchanged from the state it recorded (a
    file it refuses raises its message as a RawFileError, as the reader does)."""
    try:
        return RawExport(raw_file, path, full_load=full_load).write(connection, "bronze", "rows")
    except dg.Failure as failure:
        raise RawFileError(failure.description) from None


def bronze_connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA bronze")
    return connection


def bronze_rows(connection) -> list[tuple]:
    return connection.execute("SELECT * FROM bronze.rows ORDER BY _source_line").fetchall()


def verdicts(connection, raw_file: RawFile) -> list[tuple]:
    """What silver would do with each bronze row: its line, rule and reason."""
    return connection.execute(
        f"SELECT _source_line, rule, reason FROM ({classified_rows_sql(raw_file, 'bronze.rows')}) "
        "ORDER BY _source_line"
    ).fetchall()


def fresh_load(path: Path, raw_file: RawFile) -> duckdb.DuckDBPyConnection:
    connection = bronze_connection()
    refresh(connection, raw_file, path)
    return connection


def append_bytes(path: Path, data: bytes) -> None:
    with path.open("ab") as stream:
        stream.write(data)


def file_error_kind(error: RawFileError) -> str:
    """The message up to its figures: the two paths count lines of different parts."""
    return str(error).split("(", 1)[0]


APPENDED_PARTS = {
    "lf_endings_on_a_crlf_file": f"{PERFORMANCE_DAY}\n".encode(),
    "lf_after_a_crlf_line": f"{PERFORMANCE_DAY}\r\n{PERFORMANCE_DAY}\n".encode(),
    "bom_at_the_start_of_the_part": f"\ufeff{PERFORMANCE_DAY}\r\n".encode(),
    "carriage_return_only": f"{PERFORMANCE_DAY}\r".encode(),
    "carriage_return_inside_a_line": PERFORMANCE_DAY.replace("Premium", "Pre\rmium").encode()
    + b"\r\n",
    "not_utf8": PERFORMANCE_DAY.replace("Premium", "Pr\xe9mium").encode("latin-1") + b"\r\n",
    "utf16": f"{PERFORMANCE_DAY}\r\n".encode("utf-16"),
    "unclosed_quote": PERFORMANCE_DAY.replace("Premium", '"Premium').encode() + b"\r\n",
    "quoted_line_break": PERFORMANCE_DAY.replace(
        "Premium_Travelers_25-45", '"Two\r\nlines"'
    ).encode()
    + b"\r\n",
    "stray_quote": PERFORMANCE_DAY.replace("Premium_Travelers_25-45", '"y"z').encode() + b"\r\n",
    "unquoted_thousands": PERFORMANCE_DAY.replace("62000", "62,000").encode() + b"\r\n",
    "too_few_fields": b"22/08/2024,AS_001,Short,100,10\r\n",
    "trailing_comma": f"{PERFORMANCE_DAY},\r\n".encode(),
    "blank_lines": f"\r\n\r\n{PERFORMANCE_DAY}\r\n\r\n".encode(),
    "no_final_line_break": PERFORMANCE_DAY.encode(),
    "header_again": (",".join(META_CAMPAIGN_PERFORMANCE.columns) + "\r\n").encode(),
    "non_finite": PERFORMANCE_DAY.replace("272.50", "NaN").encode() + b"\r\n",
    "copy_of_a_loaded_row_with_another_value": b"01/08/2024,AS_001,Premium_Travelers_25-45,"
    b"41000,810,999.00,1.98,6.10,2.1\r\n",
}


@pytest.mark.parametrize("case", sorted(APPENDED_PARTS))
def test_a_day_appended_loads_exactly_as_a_full_read_of_the_file_does(tmp_path, case):
    """The daily path (the version loaded, then its appended part) and a from-scratch read of
    the grown file refuse the same files with the same message, and otherwise hold the same
    bronze rows (lines, text, verdicts) with the same silver verdicts."""
    path = write_clean_raw_dir(tmp_path / "raw") / META_CAMPAIGN_PERFORMANCE.file_name
    daily = bronze_connection()
    refresh(daily, META_CAMPAIGN_PERFORMANCE, path)
    append_bytes(path, APPENDED_PARTS[case])

    try:
        daily_load = refresh(daily, META_CAMPAIGN_PERFORMANCE, path)["load"]
        daily_outcome = ("loaded", bronze_rows(daily), verdicts(daily, META_CAMPAIGN_PERFORMANCE))
    except RawFileError as error:
        daily_load, daily_outcome = "refused", ("refused", file_error_kind(error))
    try:
        full = fresh_load(path, META_CAMPAIGN_PERFORMANCE)
        full_outcome = ("loaded", bronze_rows(full), verdicts(full, META_CAMPAIGN_PERFORMANCE))
    except RawFileError as error:
        full_outcome = ("refused", file_error_kind(error))

    assert daily_outcome == full_outcome
    assert daily_load == "refused" or daily_load.startswith("appended")


def test_a_hostile_day_through_the_daily_graph_gives_the_tables_a_rebuild_gives(
    built_lakehouse, tmp_path
):
    lakehouse = built_lakehouse
    definitions = lakehouse.definitions
    usable = [
        "bom_at_the_start_of_the_part",
        "quoted_line_break",
        "stray_quote",
        "unquoted_thousands",
        "trailing_comma",
        "blank_lines",
        "non_finite",
        "header_again",
        "copy_of_a_loaded_row_with_another_value",
    ]
    append_bytes(
        lakehouse.raw_dir / META_CAMPAIGN_PERFORMANCE.file_name,
        b"".join(APPENDED_PARTS[case] for case in usable),
    )
    daily = dg.materialize(
        definitions.assets, resources=definitions.resources, selection=UP_TO_FEATURES
    )
    fresh = Lakehouse(lakehouse.raw_dir, tmp_path / "fresh.duckdb", tmp_path / "s2.duckdb")
    assert dg.materialize(
        fresh.definitions.assets, resources=fresh.definitions.resources, selection=UP_TO_FEATURES
    ).success

    assert load_outcomes(daily)["bronze/meta_campaign_performance"].startswith("appended")
    for table in COMPARED_TABLES:
        assert differences(lakehouse.database, fresh.database, table) == 0, table


def test_a_day_with_other_line_endings_fails_the_daily_run_as_a_rebuild_would(tmp_path):
    lakehouse = Lakehouse(
        write_clean_raw_dir(tmp_path / "raw"), tmp_path / "daily.duckdb", tmp_path / "s.duckdb"
    )
    definitions = lakehouse.definitions
    selection = dg.AssetSelection.groups("bronze")
    assert dg.materialize(
        definitions.assets, resources=definitions.resources, selection=selection
    ).success
    path = lakehouse.raw_dir / META_CAMPAIGN_PERFORMANCE.file_name
    append_bytes(path, APPENDED_PARTS["lf_endings_on_a_crlf_file"])

    daily = dg.materialize(
        definitions.assets,
        resources=definitions.resources,
        selection=selection,
        raise_on_error=False,
    )

    assert not daily.success
    failure = next(event for event in daily.all_events if event.event_type_value == "STEP_FAILURE")
    assert "mixed line endings" in str(failure.event_specific_data.error)
    report, file_problems = check_raw_folder(lakehouse.raw_dir)
    assert file_problems == 1
    assert any("mixed line endings" in line for line in report)


def pacing_line(day: int, ad_set: str, frequency_like: str = "500") -> str:
    return f"{day:02d}/09/2024,{ad_set},{frequency_like},400.00,0.80,under_pacing\r\n"


def test_lines_appended_during_every_refresh_reach_bronze_once_each(tmp_path):
    """A writer appends whole lines the whole time the refreshes run: no record is loaded
    twice, and once the writer stops bronze is exactly a full read of the file."""
    path = write_clean_raw_dir(tmp_path / "raw") / BUDGET_PACING.file_name
    connection = bronze_connection()
    refresh(connection, BUDGET_PACING, path)
    stop = threading.Event()

    def write_lines() -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            number = 0
            while not stop.is_set():
                number += 1
                os.write(descriptor, pacing_line(1 + number % 28, f"AS_{number:05d}").encode())
                if number % 7 == 0:
                    time.sleep(0.001)
        finally:
            os.close(descriptor)

    writer = threading.Thread(target=write_lines)
    writer.start()
    try:
        loads = [refresh(connection, BUDGET_PACING, path)["load"] for _ in range(12)]
    finally:
        stop.set()
        writer.join()
    refresh(connection, BUDGET_PACING, path)

    assert sum(load.startswith("appended") for load in loads) >= 6
    full = fresh_load(path, BUDGET_PACING)
    assert bronze_rows(connection) == bronze_rows(full)
    assert connection.execute(
        "SELECT count(*) = count(DISTINCT _source_line) FROM bronze.rows"
    ).fetchone() == (True,)


def test_a_line_being_written_is_waited_for_not_loaded_cut(tmp_path, monkeypatch):
    """The writer stops mid-line for 0.3 s: with a settle window of 0.6 s the run waits for
    the file to be quiet and loads the whole line, never its first half."""
    monkeypatch.setenv(SETTLE_ENV, "0.6")
    path = write_clean_raw_dir(tmp_path / "raw") / BUDGET_PACING.file_name
    os.utime(path, (time.time() - 5, time.time() - 5))
    connection = bronze_connection()
    refresh(connection, BUDGET_PACING, path)
    line = pacing_line(1, "AS_001", "2500")
    cut = line.index("2500") + 1
    append_bytes(path, line[:cut].encode())

    def finish_line() -> None:
        time.sleep(0.3)
        append_bytes(path, line[cut:].encode())

    writer = threading.Thread(target=finish_line)
    writer.start()
    load = refresh(connection, BUDGET_PACING, path)["load"]
    writer.join()

    assert load == "appended 1 rows"
    assert connection.execute(
        "SELECT planned_spend FROM bronze.rows WHERE _source_line = 65"
    ).fetchall() == [("2500",)]


def test_a_file_still_changing_past_the_patience_loads_its_complete_lines_only(
    tmp_path, monkeypatch
):
    """A writer that never pauses long enough: the run loads the complete lines, leaves the
    line being written for the next run and says so; the next run appends the rest."""
    monkeypatch.setenv(SETTLE_ENV, "0.05")
    path = write_clean_raw_dir(tmp_path / "raw") / BUDGET_PACING.file_name
    connection = bronze_connection()
    refresh(connection, BUDGET_PACING, path)
    stop = threading.Event()

    def write_halves() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            line = pacing_line(2, f"AS_{number:05d}", "2500")
            append_bytes(path, line[:20].encode())
            time.sleep(0.01)
            append_bytes(path, line[20:].encode())
            time.sleep(0.01)

    writer = threading.Thread(target=write_halves)
    writer.start()
    try:
        metadata = refresh(connection, BUDGET_PACING, path)
    finally:
        stop.set()
        writer.join()

    assert connection.execute(
        "SELECT count(*) FROM bronze.rows WHERE _malformed IS NOT NULL "
        "OR planned_spend <> '500' AND planned_spend <> '300' AND planned_spend <> '350' "
        "AND planned_spend <> '2500'"
    ).fetchone() == (0,)
    if metadata["source_still_being_written"]:
        assert "still being written" in metadata["load"]
    monkeypatch.setenv(SETTLE_ENV, "0")
    refresh(connection, BUDGET_PACING, path)
    assert bronze_rows(connection) == bronze_rows(fresh_load(path, BUDGET_PACING))


KEEP_WRITING = """
import itertools, sys, time
path, chunks = sys.argv[1], [chunk.encode() for chunk in sys.argv[2:]]
with open(path, "ab", buffering=0) as stream:
    stream.write(chunks[0])
    print("writing", flush=True)
    for chunk in itertools.islice(itertools.cycle(chunks), 1, None):
        time.sleep(0.01)
        stream.write(chunk)
"""


@contextmanager
def writer_process(path: Path, *chunks: str):
    """Another process appending `chunks` in turn, one write every 10 ms, until the block ends:
    a thread of this process could be held for a whole settle window by the reader's own work."""
    writer = subprocess.Popen(
        [sys.executable, "-c", KEEP_WRITING, str(path), *chunks],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline() == "writing\n"
        yield
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()


def test_check_raw_says_a_file_is_still_being_written(tmp_path, monkeypatch):
    """A settle window of 0.25 s that a writer of another process never leaves quiet (it
    writes every 10 ms, a line in two halves) for the 2.5 s patience: check-raw says so."""
    monkeypatch.setenv(SETTLE_ENV, "0.25")
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / BUDGET_PACING.file_name
    line = pacing_line(3, "AS_001")
    with writer_process(path, line[:15], line[15:]):
        report, file_problems = check_raw_folder(raw_dir)

    pacing = next(line for line in report if BUDGET_PACING.file_name in line)
    assert "still being written" in pacing
    assert file_problems == 0


def test_a_writer_of_whole_lines_is_said_to_be_still_writing_with_nothing_left_over(
    tmp_path, monkeypatch
):
    """A writer that writes each line whole leaves the copy on a line end: nothing is left for
    the next run, yet the file was still being written, and the load and check-raw say so."""
    monkeypatch.setenv(SETTLE_ENV, "0.1")
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / BUDGET_PACING.file_name
    connection = bronze_connection()
    with writer_process(path, pacing_line(4, "AS_001")):
        metadata = refresh(connection, BUDGET_PACING, path)
        report, _ = check_raw_folder(raw_dir)

    assert metadata["source_still_being_written"] is True
    assert metadata["source_bytes_left_for_next_run"] == 0
    assert metadata["load"].endswith(
        "still being written: loaded up to its last complete line, 0 byte(s) after it left "
        "for the next run"
    )
    pacing = next(line for line in report if BUDGET_PACING.file_name in line)
    assert "still being written" in pacing


def test_a_link_swapped_in_while_loads_run_never_brings_its_target_into_bronze(tmp_path):
    """Another process flips the file between a regular file and a link to a file outside the
    raw folder: every load either reads the regular file or refuses the link, never the
    target's lines."""
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / BUDGET_PACING.file_name
    regular = tmp_path / "regular.csv"
    shutil.copy(path, regular)
    secret = tmp_path / "outside" / "credentials.csv"
    secret.parent.mkdir()
    secret.write_text(
        ",".join(BUDGET_PACING.columns)
        + "\r\n"
        + "".join(pacing_line(1, f"SECRET_TOKEN_{n}") for n in range(50))
    )
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            link = raw_dir / ".incoming-link"
            os.symlink(secret, link)
            os.replace(link, path)
            copy = raw_dir / ".incoming-copy"
            shutil.copy(regular, copy)
            os.replace(copy, path)

    flipper = threading.Thread(target=flip)
    flipper.start()
    outcomes = []
    try:
        for _ in range(40):
            connection = bronze_connection()
            try:
                refresh(connection, BUDGET_PACING, path)
                leaked = connection.execute(
                    "SELECT count(*) FROM bronze.rows "
                    "WHERE CAST(bronze.rows AS VARCHAR) LIKE '%SECRET%'"
                ).fetchone()[0]
                outcomes.append(("loaded", leaked))
            except RawFileError as error:
                assert "outside the raw folder" in str(error)
                assert str(secret) not in str(error)
                outcomes.append(("refused", 0))
    finally:
        stop.set()
        flipper.join()

    assert all(leaked == 0 for _, leaked in outcomes)
    assert {kind for kind, _ in outcomes} == {"loaded", "refused"}


def test_a_fifo_in_place_of_a_file_is_refused_without_waiting_for_a_writer(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    path = raw_dir / BUDGET_PACING.file_name
    path.unlink()
    os.mkfifo(path)
    started = time.monotonic()
    with pytest.raises(RawFileError, match="not a regular file"):
        profile_raw_file(path, BUDGET_PACING)
    assert time.monotonic() - started < 2


def test_what_is_hashed_is_what_is_loaded(tmp_path):
    """The profile's hash, size and records describe its private copy, which a file rewritten
    after the profile was taken does not change."""
    path = write_clean_raw_dir(tmp_path / "raw") / BUDGET_PACING.file_name
    original = path.read_bytes()
    profile = profile_raw_file(path, BUDGET_PACING)
    path.write_bytes(original + pacing_line(4, "AS_009").encode() * 3)
    connection = bronze_connection()

    rows, loaded = load_bronze_table(connection, "bronze", "rows", profile)

    assert profile.source.read_bytes() == original
    assert rows == loaded.data_rows == len(clean_pacing_rows())
    assert loaded.sha256 == profile.sha256


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_settle_window_that_is_no_number_of_seconds_is_one_message(tmp_path, monkeypatch, value):
    monkeypatch.setenv(SETTLE_ENV, value)
    path = write_clean_raw_dir(tmp_path / "raw") / BUDGET_PACING.file_name
    with pytest.raises(RawFileError, match=f"{SETTLE_ENV}=.*a number from 0 up"):
        profile_raw_file(path, BUDGET_PACING)
