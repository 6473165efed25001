"""DuckDB's strict CSV reader into a staging table: clean records split into text columns
with lineage, records it cannot split kept as their raw text with rule and reason, every row
numbered with the physical line it starts on, and the rows checked against the records counted
in the file's profile."""

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pandas as pd

from marketing_ml.cleaning import key_hash_sql
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.profile import (
    BRONZE_LINE_COLUMN,
    RawFileProfile,
    RecordLayout,
    parse_layout,
)
from marketing_ml.sql import quote_identifier, sql_string
from marketing_ml.storage.duckdb_tables import row_count
from marketing_ml.storage.outputs import query_id

MAX_RECORD_BYTES = 2 * 1024 * 1024
"""DuckDB's maximum line size: a longer record is quarantined as malformed, not read."""


def read_csv_sql(profile: RawFileProfile, path: Path | None = None, header: bool = True) -> str:
    """Every field as text, columns named by the header we parsed ourselves (no sniffing).

    Strict: a record with the wrong number of fields, a stray quote or over DuckDB's line size
    is not padded, shifted or merged into a neighbour but set aside in DuckDB's rejects tables
    (see `stage_records`), from where it reaches bronze as a malformed record.
    """
    columns = ", ".join(f"{sql_string(column)}: 'VARCHAR'" for column in profile.header)
    return (
        f"read_csv({sql_string(str(path or profile.path))}, header = {str(header).lower()}, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"columns = {{{columns}}}, strict_mode = true, ignore_errors = true, "
        f"store_rejects = true, rejects_table = '{REJECTS_TABLE}', "
        f"rejects_scan = '{REJECTS_SCAN}', max_line_size = {MAX_RECORD_BYTES})"
    )


REJECTS_TABLE = "_bronze_rejects"
REJECTS_SCAN = "_bronze_reject_scans"


def bronze_sql(profile: RawFileProfile, source: str = "") -> str:
    """Raw rows as text with lineage; `_row_hash` is over the content so identical copies share
    it, `_key_hash` over the key as silver types it, so the rows of a key are found cheaply.

    `source` is the file's `read_csv` unless given. `_source_line` is left NULL, to be filled
    from row ids once the rows are committed. The hashes are DuckDB's 64-bit `hash`: cleaning
    confirms rows sharing one by comparing their text. Malformed records are added after.
    An optional column the file lacks is a column of NULLs, so every later layer sees the
    contract's columns whichever export it was.
    """
    quoted = [quote_identifier(column) for column in profile.header]
    absent = [
        f"CAST(NULL AS VARCHAR) AS {quote_identifier(column)}"
        for column in profile.raw_file.optional_columns
        if column not in profile.header
    ]
    return f"""
SELECT
    {", ".join(quoted + absent)},
    {sql_string(profile.path.name)} AS _source_file,
    CAST(NULL AS BIGINT) AS {BRONZE_LINE_COLUMN},
    hash({", ".join(quoted)}) AS _row_hash,
    {key_hash_sql(profile.raw_file)} AS _key_hash,
    CAST(NULL AS VARCHAR) AS _malformed,
    CAST(NULL AS VARCHAR) AS _malformed_reason,
    CAST(NULL AS VARCHAR) AS _raw_record
FROM {source or read_csv_sql(profile)}"""


def _malformed_verdict(error_type: str, message: str, record: str, expected: int) -> tuple:
    """The quarantine rule and reason for a record DuckDB's strict reader set aside."""
    if error_type in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
        fields = len(next(csv.reader(io.StringIO(record, newline="")), [""]))
        hint = (
            "an unquoted comma (as in 1,234.50) splits a value and shifts every column after "
            "it: quote the value or drop the separator"
            if fields > expected
            else "a value is missing or the line was cut short"
        )
        return "wrong_field_count", f"{fields} fields where the header has {expected} ({hint})"
    if error_type == "LINE SIZE OVER MAXIMUM":
        return (
            "malformed_record",
            f"the record is {len(record.encode()):,} bytes, over the {MAX_RECORD_BYTES:,} a "
            "record may have: check the export",
        )
    if error_type == "UNQUOTED VALUE":
        return (
            "malformed_record",
            "a quote inside a value that is not quoted as a whole, or text after a closing "
            "quote: quote the whole value and double the quotes inside it",
        )
    return "malformed_record", f"the CSV reader could not split it: {message}"


@dataclass(frozen=True)
class Staged:
    """What `stage_records` loaded: rows, and the records and blank lines of the part read."""

    rows: int
    records: int
    blank_lines: int
    layout: RecordLayout


def stage_records(
    connection,
    staging: str,
    profile: RawFileProfile,
    source: Path,
    layout: RecordLayout,
    header: bool,
    line_base: int,
    records: int,
    blank_lines: int,
) -> Staged:
    """`staging` created with every record of `source` (the file, or an appended part of it):
    clean ones split into columns, malformed ones as their raw text with rule and reason, each
    numbered with its physical line (`line_base` lines come before `source`).

    Rows are numbered from row ids, which follow the order of the CSV read once the rows are
    committed, as long as DuckDB preserves insertion order (set here: without it the numbers
    are wrong). Numbering in the query would force the whole read onto one thread.
    """
    connection.execute("SET preserve_insertion_order = true")
    for name in (REJECTS_TABLE, REJECTS_SCAN):
        connection.execute(f"DROP TABLE IF EXISTS {name}")
    try:
        connection.execute(
            f"CREATE OR REPLACE TABLE {staging} AS\n"
            f"{bronze_sql(profile, read_csv_sql(profile, source, header))}"
        )
    except duckdb.Error as error:
        reason = str(error).strip().splitlines()[0]
        raise RawFileError(
            f"{profile.path}: could not be read as CSV ({reason}). Mixed line endings or a "
            "carriage return inside a line are the usual causes: re-save it as UTF-8 CSV with "
            "one kind of line ending."
        ) from None
    rejected = connection.execute(
        f"SELECT line, first(error_type ORDER BY column_idx NULLS LAST), "
        f"first(error_message ORDER BY column_idx NULLS LAST), first(csv_line) "
        f"FROM {REJECTS_TABLE} GROUP BY line ORDER BY line"
    ).fetchall()
    for name in (REJECTS_TABLE, REJECTS_SCAN):
        connection.execute(f"DROP TABLE IF EXISTS {name}")
    clean_rows = row_count(connection, staging)
    expected = len(profile.header)
    odd_records = profile.odd_records
    if profile.presumed and (
        clean_rows + len(rejected) != records
        or profile.data_commas
        != clean_rows * (expected - 1) + sum(raw.count(",") for *_, raw in rejected)
        or any(error_type == "LINE SIZE OVER MAXIMUM" for _, error_type, *_ in rejected)
    ):
        parsed = parse_layout(profile.path, source, header, expected, line_base)
        records, blank_lines = parsed.records, parsed.blank_lines
        layout, odd_records = parsed.layout, parsed.odd_records
    if clean_rows + len(rejected) != records:
        connection.execute(f"DROP TABLE {staging}")
        raise RawFileError(
            f"{profile.path}: {records} records in the file, but DuckDB's CSV reader split it "
            f"into {clean_rows + len(rejected)}: nothing was loaded. Re-save it as UTF-8 CSV "
            "with one kind of line ending and no line breaks in the header."
        )
    rejected_records = [layout.record_at_reader_line(line) for line, *_ in rejected]
    if not rejected and len(layout.runs) == 1:
        connection.execute(
            f"UPDATE {staging} SET {BRONZE_LINE_COLUMN} = rowid + {line_base + layout.runs[0][1]}"
        )
    else:
        _number_around(connection, staging, layout, rejected_records, line_base)
    set_aside_by_duckdb = set(rejected_records)
    _set_aside_accepted(
        connection,
        staging,
        profile,
        source,
        layout,
        line_base,
        [record for record, _ in odd_records if record not in set_aside_by_duckdb],
    )
    if rejected:
        connection.executemany(
            f"INSERT INTO {staging} (_source_file, {BRONZE_LINE_COLUMN}, _malformed, "
            "_malformed_reason, _raw_record, _row_hash, _key_hash) "
            "SELECT $file, $line, $rule, $reason, $text, hash($text), hash($file, $line)",
            [
                {
                    "file": profile.path.name,
                    "line": line_base + layout.physical_line(record),
                    "rule": rule,
                    "reason": reason,
                    "text": text,
                }
                for record, (_, error_type, message, raw) in zip(
                    rejected_records, rejected, strict=True
                )
                for text in [
                    _records_text(source, layout, [record])[0]
                    if error_type == "LINE SIZE OVER MAXIMUM"
                    else raw.lstrip("\r\n")
                ]
                for rule, reason in [_malformed_verdict(error_type, message, text, expected)]
            ],
        )
    return Staged(row_count(connection, staging), records, blank_lines, layout)


def _set_aside_accepted(
    connection,
    staging: str,
    profile: RawFileProfile,
    source: Path,
    layout: RecordLayout,
    line_base: int,
    records: list[int],
) -> None:
    """Turn clean rows back into malformed ones where the record has more fields than the
    header although DuckDB's strict reader accepted it: it lets trailing empty fields pass
    (`a,b,c,` or `...,1,234.50,1.2,`), which shifts the values before them."""
    if not records:
        return
    texts = _records_text(source, layout, records)
    set_aside = pd.DataFrame(
        {
            "line": [line_base + layout.physical_line(record) for record in records],
            "text": texts,
            "reason": [
                _malformed_verdict("TOO MANY COLUMNS", "", text, len(profile.header))[1]
                for text in texts
            ],
        }
    )
    blanks = ", ".join(f"{quote_identifier(column)} = NULL" for column in profile.header)
    connection.register("_set_aside_rows", set_aside)
    connection.execute(
        f"UPDATE {staging} SET {blanks}, _malformed = 'wrong_field_count', "
        "_malformed_reason = _set_aside_rows.reason, _raw_record = _set_aside_rows.text, "
        "_row_hash = hash(_set_aside_rows.text), "
        f"_key_hash = hash({sql_string(profile.path.name)}, _set_aside_rows.line) "
        f"FROM _set_aside_rows WHERE {staging}.{BRONZE_LINE_COLUMN} = _set_aside_rows.line"
    )
    connection.unregister("_set_aside_rows")


def _records_text(source: Path, layout: RecordLayout, records: list[int]) -> list[str]:
    """The text of `records` (ascending) read from the file itself, in one pass: DuckDB keeps
    only the start of a record over its line size, and none of a record it accepted."""
    spans = [(layout.physical_line(r), layout.physical_line(r + 1)) for r in records]
    texts: list[list[bytes]] = [[] for _ in records]
    at = 0
    with source.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            while at < len(spans) and number >= spans[at][1]:
                at += 1
            if at == len(spans):
                break
            if number >= spans[at][0]:
                texts[at].append(line)
    return [
        b"".join(parts).decode("utf-8").removeprefix("\ufeff").rstrip("\r\n") for parts in texts
    ]


def _number_around(
    connection, staging: str, layout: RecordLayout, rejected: list[int], line_base: int
) -> None:
    """Physical lines for the clean rows when some records were set aside or span lines: clean
    row r is record r + (records set aside before it), on that record's line."""
    connection.execute("CREATE OR REPLACE TEMP TABLE _set_aside (first_row BIGINT, shift BIGINT)")
    if rejected:
        # Records set aside one after another share the first clean row after them, which
        # takes the largest shift: one ASOF match per row, not an arbitrary one of several.
        shift_from_row = {record - rank: rank + 1 for rank, record in enumerate(rejected)}
        connection.executemany("INSERT INTO _set_aside VALUES (?, ?)", list(shift_from_row.items()))
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE _line_runs (first_record BIGINT, physical_offset BIGINT)"
    )
    connection.executemany(
        "INSERT INTO _line_runs VALUES (?, ?)",
        [[first, offset] for first, offset, _ in layout.runs],
    )
    connection.execute(
        f"""UPDATE {staging} SET {BRONZE_LINE_COLUMN} = placed.line
FROM (
    SELECT shifted.row_id, shifted.record + _line_runs.physical_offset + {line_base} AS line
    FROM (
        SELECT numbered.row_id, numbered.row_id + coalesce(_set_aside.shift, 0) AS record
        FROM (SELECT rowid AS row_id FROM {staging}) AS numbered
        ASOF LEFT JOIN _set_aside ON numbered.row_id >= _set_aside.first_row
    ) AS shifted
    ASOF JOIN _line_runs ON shifted.record >= _line_runs.first_record
) AS placed
WHERE {staging}.rowid = placed.row_id"""
    )
    connection.execute("DROP TABLE _set_aside")
    connection.execute("DROP TABLE _line_runs")


def bronze_query_id(profile: RawFileProfile) -> str:
    """Identifies the SQL that loads a file with this header, wherever the file is: a table
    loaded by other SQL (an older release) is loaded again in full, not appended to."""
    return query_id(bronze_sql(replace(profile, path=Path(profile.path.name))))


def bronze_version(profile: RawFileProfile) -> str:
    """Names the bronze rows of one version of a file: its content and the SQL that loads it."""
    return f"{bronze_query_id(profile)}:{profile.sha256}"
