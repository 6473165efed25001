"""Reading a raw export safely: file-level problems become one clear message, never a traceback."""

import codecs
import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from marketing_ml.contract import RAW_FILES, RawFile
from marketing_ml.storage import replace_table_with_numbered_query

BRONZE_LINE_COLUMN = "_source_line"

CHUNK_BYTES = 8 * 1024 * 1024


class RawFileError(Exception):
    """A raw file that cannot be used at all: the message names the file and what to do."""


@dataclass(frozen=True)
class RawFileProfile:
    path: Path
    sha256: str
    size_bytes: int
    data_rows: int
    header: tuple[str, ...]
    extra_columns: tuple[str, ...]


def _count_records(text_lines: int, ends_with_newline: bool) -> int:
    """Physical lines minus the header; a last line without a newline still counts."""
    lines = text_lines + (0 if ends_with_newline else 1)
    return max(lines - 1, 0)


def profile_raw_file(path: Path, raw_file: RawFile) -> RawFileProfile:
    """Hash, size, encoding, header and row count in one streaming pass over the file."""
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
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    first_line = b""
    last_byte = b""
    offset = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                bad_at = offset + error.start
                line = newlines + chunk[: error.start].count(b"\n") + 1
                raise RawFileError(
                    f"{path}: not UTF-8 (byte {chunk[error.start]:#04x} at offset {bad_at}, line "
                    f"{line}). Re-export it as UTF-8 (for example 'CSV UTF-8' in Excel)."
                ) from None
            if not first_line:
                first_line = chunk.split(b"\n", 1)[0]
            newlines += chunk.count(b"\n")
            last_byte = chunk[-1:]
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise RawFileError(
            f"{path}: not UTF-8 (the file ends in the middle of a character). Re-export it as UTF-8."
        ) from None

    header_text = first_line.decode("utf-8").removeprefix("\ufeff").rstrip("\r")
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
        sha256=digest.hexdigest(),
        size_bytes=size_bytes,
        data_rows=_count_records(newlines, last_byte == b"\n"),
        header=header,
        extra_columns=tuple(column for column in header if column not in raw_file.columns),
    )


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_csv_sql(profile: RawFileProfile) -> str:
    """Every field as text, columns named by the header we parsed ourselves (no sniffing)."""
    columns = ", ".join(f"{sql_string(column)}: 'VARCHAR'" for column in profile.header)
    return (
        f"read_csv({sql_string(str(profile.path))}, header = true, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {{{columns}}}, "
        "null_padding = true, strict_mode = false)"
    )


def bronze_sql(profile: RawFileProfile) -> str:
    """Raw rows as text with lineage; `_row_hash` is over the content so identical copies share it.

    `_source_line` is left NULL for the IO manager to fill (see `Sql.line_number_column`). The
    hash is DuckDB's 64-bit `hash`: cleaning confirms rows sharing one by comparing their text.
    """
    quoted = [f'"{column}"' for column in profile.header]
    return f"""
SELECT
    {", ".join(quoted)},
    {sql_string(profile.path.name)} AS _source_file,
    CAST(NULL AS BIGINT) AS {BRONZE_LINE_COLUMN},
    hash({", ".join(quoted)}) AS _row_hash
FROM {read_csv_sql(profile)}"""


def load_bronze_table(connection, schema: str, table: str, profile: RawFileProfile) -> None:
    """`schema.table` replaced by the file's bronze rows, `_source_line` numbered."""
    replace_table_with_numbered_query(
        connection, schema, table, bronze_sql(profile), BRONZE_LINE_COLUMN
    )
