"""Reading a raw export safely: file-level problems become one clear message, never a traceback."""

import codecs
import csv
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg

from marketing_ml.cleaning import key_hash_sql, sql_string
from marketing_ml.contract import RAW_FILES, RawFile
from marketing_ml.storage import query_id, row_count, set_table_state, table_state, transaction

BRONZE_LINE_COLUMN = "_source_line"

CHUNK_BYTES = 8 * 1024 * 1024
KEPT_VERSIONS = 400
"""Versions of a file a bronze table remembers: a year of daily appends and then some."""


class RawFileError(Exception):
    """A raw file that cannot be used at all: the message names the file and what to do."""


@dataclass(frozen=True)
class RawFileProfile:
    path: Path
    raw_file: RawFile
    sha256: str
    size_bytes: int
    data_rows: int
    header: tuple[str, ...]
    extra_columns: tuple[str, ...]
    extends: "RawFileProfile | None" = None
    """The earlier version of the file this one starts with, byte for byte (an export that had
    rows appended); None when it does not extend the version it was compared with."""


def _count_records(text_lines: int, ends_with_newline: bool) -> int:
    """Physical lines minus the header; a last line without a newline still counts."""
    lines = text_lines + (0 if ends_with_newline else 1)
    return max(lines - 1, 0)


class _Scan:
    """One streaming pass over (part of) a file: hash, UTF-8 check, line count."""

    def __init__(self, path: Path, digest, offset: int = 0, newlines: int = 0):
        self.path = path
        self.digest = digest
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.offset = offset
        self.newlines = newlines
        self.first_line = b""
        self.last_byte = b""

    def feed(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        try:
            self.decoder.decode(chunk)
        except UnicodeDecodeError as error:
            bad_at = self.offset + error.start
            line = self.newlines + chunk[: error.start].count(b"\n") + 1
            raise RawFileError(
                f"{self.path}: not UTF-8 (byte {chunk[error.start]:#04x} at offset {bad_at}, line "
                f"{line}). Re-export it as UTF-8 (for example 'CSV UTF-8' in Excel)."
            ) from None
        if not self.first_line:
            self.first_line = chunk.split(b"\n", 1)[0]
        self.newlines += chunk.count(b"\n")
        self.last_byte = chunk[-1:]
        self.offset += len(chunk)

    def finish(self) -> None:
        try:
            self.decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise RawFileError(
                f"{self.path}: not UTF-8 (the file ends in the middle of a character). "
                "Re-export it as UTF-8."
            ) from None


def _starts_with(stream, previous: "RawFileProfile", digest) -> bool:
    """Whether the stream's first `previous.size_bytes` bytes are that version, ending a line."""
    remaining = previous.size_bytes
    last_byte = b""
    while remaining and (chunk := stream.read(min(CHUNK_BYTES, remaining))):
        digest.update(chunk)
        last_byte = chunk[-1:]
        remaining -= len(chunk)
    return remaining == 0 and last_byte == b"\n" and digest.hexdigest() == previous.sha256


def profile_raw_file(
    path: Path, raw_file: RawFile, previous: "RawFileProfile | None" = None
) -> RawFileProfile:
    """Hash, size, encoding, header and row count in one streaming pass over the file.

    Given the `previous` version loaded, a file that starts with it (rows appended) is checked
    only past it: its bytes are hashed, not decoded or counted again.
    """
    if not path.exists():
        raise RawFileError(
            f"{path}: file is missing. Expected the four exports "
            f"({', '.join(f.file_name for f in RAW_FILES)}) in {path.parent}; add it, or point "
            "MARKETING_ML_RAW_DIR at the folder that has them."
        )
    size_bytes = path.stat().st_size
    if size_bytes == 0:
        raise RawFileError(
            f"{path}: file is empty (0 bytes). Re-export {raw_file.file_name} with its header row "
            f"({','.join(raw_file.columns)})."
        )
    if previous is not None and previous.size_bytes <= size_bytes:
        with path.open("rb") as stream:
            digest = hashlib.sha256()
            if _starts_with(stream, previous, digest):
                scan = _Scan(path, digest, previous.size_bytes, previous.data_rows + 1)
                while chunk := stream.read(CHUNK_BYTES):
                    scan.feed(chunk)
                scan.finish()
                return replace(
                    previous,
                    path=path,
                    sha256=digest.hexdigest(),
                    size_bytes=size_bytes,
                    data_rows=_count_records(scan.newlines, scan.last_byte in (b"", b"\n")),
                    extends=previous,
                )
    scan = _Scan(path, hashlib.sha256())
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            scan.feed(chunk)
    scan.finish()

    header_text = scan.first_line.decode("utf-8").removeprefix("\ufeff").rstrip("\r")
    header = tuple(column.strip() for column in next(csv.reader([header_text])))
    missing = [column for column in raw_file.columns if column not in header]
    if missing:
        raise RawFileError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header is "
            f"{','.join(header)!r}. Expected {','.join(raw_file.columns)}: rename or add the "
            "column(s) in the export."
        )
    duplicated = sorted({column for column in header if header.count(column) > 1})
    if duplicated:
        raise RawFileError(
            f"{path}: column(s) {', '.join(duplicated)} appear more than once in the header; "
            "keep one of each."
        )
    return RawFileProfile(
        path=path,
        raw_file=raw_file,
        sha256=scan.digest.hexdigest(),
        size_bytes=size_bytes,
        data_rows=_count_records(scan.newlines, scan.last_byte == b"\n"),
        header=header,
        extra_columns=tuple(column for column in header if column not in raw_file.columns),
    )


def read_csv_sql(profile: RawFileProfile, path: Path | None = None, header: bool = True) -> str:
    """Every field as text, columns named by the header we parsed ourselves (no sniffing)."""
    columns = ", ".join(f"{sql_string(column)}: 'VARCHAR'" for column in profile.header)
    return (
        f"read_csv({sql_string(str(path or profile.path))}, header = {str(header).lower()}, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"columns = {{{columns}}}, null_padding = true, strict_mode = false)"
    )


def bronze_sql(
    profile: RawFileProfile, source: str = "", line_numbers: str = "CAST(NULL AS BIGINT)"
) -> str:
    """Raw rows as text with lineage; `_row_hash` is over the content so identical copies share
    it, `_key_hash` over the key as silver types it, so the rows of a key are found cheaply.

    `source` is the file's `read_csv` unless given. `_source_line` is left NULL, to be filled
    from row ids after a full load. The hashes are DuckDB's 64-bit `hash`: cleaning confirms
    rows sharing one by comparing their text.
    """
    quoted = [f'"{column}"' for column in profile.header]
    return f"""
SELECT
    {", ".join(quoted)},
    {sql_string(profile.path.name)} AS _source_file,
    {line_numbers} AS {BRONZE_LINE_COLUMN},
    hash({", ".join(quoted)}) AS _row_hash,
    {key_hash_sql(profile.raw_file)} AS _key_hash
FROM {source or read_csv_sql(profile)}"""


def bronze_query_id(profile: RawFileProfile) -> str:
    """Identifies the SQL that loads a file with this header, wherever the file is: a table
    loaded by other SQL (an older release) is loaded again in full, not appended to."""
    return query_id(bronze_sql(replace(profile, path=Path(profile.path.name))))


def bronze_version(profile: RawFileProfile) -> str:
    """Names the bronze rows of one version of a file: its content and the SQL that loads it."""
    return f"{bronze_query_id(profile)}:{profile.sha256}"


def bronze_state(profile: RawFileProfile, versions: list[list]) -> dict:
    """What a bronze table records about its file (see `storage.table_state`): the profile of
    the version loaded, and [bronze_version, rows] of every version since the last full load,
    oldest first, so silver can tell which rows are new since the version it cleaned."""
    return {
        "file": {
            "sha256": profile.sha256,
            "size_bytes": profile.size_bytes,
            "data_rows": profile.data_rows,
            "header": list(profile.header),
            "extra_columns": list(profile.extra_columns),
        },
        "query": bronze_query_id(profile),
        "versions": versions[-KEPT_VERSIONS:],
    }


def stored_profile(state: dict | None, path: Path, raw_file: RawFile) -> RawFileProfile | None:
    if not state:
        return None
    file = state["file"]
    return RawFileProfile(
        path=path,
        raw_file=raw_file,
        sha256=file["sha256"],
        size_bytes=file["size_bytes"],
        data_rows=file["data_rows"],
        header=tuple(file["header"]),
        extra_columns=tuple(file["extra_columns"]),
    )


def load_bronze_table(connection, schema: str, table: str, profile: RawFileProfile) -> int:
    """`schema.table` replaced by the file's bronze rows, numbered; returns the row count.

    The table is built under a staging name and numbered with row ids, which follow the order of
    the CSV read once the rows are committed (inside the creating transaction they are not yet
    final) as long as DuckDB preserves insertion order: the default, set here anyway because
    without it the numbers are wrong. Numbering in the query (`row_number() OVER ()`) would
    force the whole read onto one thread: three times slower. The old table is dropped and the
    staged one renamed in one transaction, so a failure leaves the previous version in place.
    """
    staging = f'{schema}."_staging_{table}"'
    connection.execute("SET preserve_insertion_order = true")
    connection.execute(f"CREATE OR REPLACE TABLE {staging} AS\n{bronze_sql(profile)}")
    connection.execute(f"UPDATE {staging} SET {BRONZE_LINE_COLUMN} = rowid + 2")
    rows = row_count(connection, staging)
    with transaction(connection):
        connection.execute(f"DROP TABLE IF EXISTS {schema}.{table}")
        connection.execute(f"ALTER TABLE {staging} RENAME TO {table}")
        state = bronze_state(profile, [[bronze_version(profile), rows]])
        set_table_state(connection, schema, table, state)
    return rows


def append_bronze_rows(
    connection, schema: str, table: str, profile: RawFileProfile, state: dict
) -> int:
    """Add the rows past `profile.extends` (the version in the table) and record the new version,
    in one transaction; returns the number of rows added. The rows are few (a day), so numbering
    them in the query costs nothing; they continue the table's numbering exactly as a full load
    of the whole file would number them."""
    rows_before = state["versions"][-1][1]
    with tempfile.TemporaryDirectory(prefix="marketing-ml-append-") as folder:
        appended_part = Path(folder) / profile.path.name
        with profile.path.open("rb") as source, appended_part.open("wb") as target:
            source.seek(profile.extends.size_bytes)
            shutil.copyfileobj(source, target, CHUNK_BYTES)
        query = bronze_sql(
            profile,
            source=read_csv_sql(profile, appended_part, header=False),
            line_numbers=f"{rows_before + 1} + row_number() OVER ()",
        )
        with transaction(connection):
            connection.execute(f"INSERT INTO {schema}.{table} BY NAME {query}")
            rows = row_count(connection, f"{schema}.{table}")
            versions = [*state["versions"], [bronze_version(profile), rows]]
            set_table_state(connection, schema, table, bronze_state(profile, versions))
    return rows - rows_before


def refresh_bronze_table(
    connection, schema: str, table: str, path: Path, raw_file: RawFile, full_load: bool = False
) -> dict:
    """Bring `schema.table` up to date with the file at `path`: nothing to do when the file is
    the version loaded, only the new rows when it extends it (a daily export), a full load
    otherwise, when asked to, or when the table no longer holds the rows it recorded.
    Returns the file's metadata and what was done."""
    state = None if full_load else table_state(connection, schema, table)
    profile = profile_raw_file(path, raw_file, stored_profile(state, path, raw_file))
    if (
        profile.extends is None
        or state["query"] != bronze_query_id(profile)
        or row_count(connection, f"{schema}.{table}") != state["versions"][-1][1]
    ):
        rows = load_bronze_table(connection, schema, table, profile)
        load = f"full load ({rows} rows)"
    elif profile.sha256 == profile.extends.sha256:
        load = "unchanged since the last load"
    else:
        rows = append_bronze_rows(connection, schema, table, profile, state)
        load = f"appended {rows} rows"
    return {
        "source_path": dg.MetadataValue.path(str(profile.path.resolve())),
        "source_sha256": profile.sha256,
        "source_size_bytes": profile.size_bytes,
        "source_rows": profile.data_rows,
        "extra_columns": ", ".join(profile.extra_columns) or "none",
        "load": load,
    }
