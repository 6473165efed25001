"""What a raw file holds, from its private copy: hash, size, encoding, line endings, header,
records and where each record starts, in one streaming pass (a second, parsing pass with
Python's strict CSV parser only for a file whose records may span lines). Bronze must hold
exactly the records counted here."""

import bisect
import codecs
import csv
import functools
import hashlib
import io
import shutil
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path

from marketing_ml.contract import RawFile
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.settle import CHUNK_BYTES, Snapshot, settle_seconds, take_snapshot

BRONZE_LINE_COLUMN = "_source_line"
LINEAGE_COLUMNS = (
    "_source_file",
    BRONZE_LINE_COLUMN,
    "_row_hash",
    "_key_hash",
    "_malformed",
    "_malformed_reason",
    "_raw_record",
)
"""Columns bronze adds to the file's own: a header may not use these names."""


@dataclass(frozen=True)
class RecordLayout:
    """Where the records of a file (or of an appended part) start, in runs of records whose
    lines follow each other: record k of the run starting at record `first` starts on physical
    line k + physical_offset and on DuckDB's line k + reader_offset (DuckDB counts a record with
    quoted newlines as one line and a blank line as one). A file without quotes or blank lines
    has one run."""

    runs: tuple[tuple[int, int, int], ...]
    """(first record, physical_offset, reader_offset), by first record."""

    @functools.cached_property
    def _first_records(self) -> list[int]:
        return [first for first, _, _ in self.runs]

    @functools.cached_property
    def _first_reader_lines(self) -> list[int]:
        return [first + reader_offset for first, _, reader_offset in self.runs]

    def physical_line(self, record: int) -> int:
        run = self.runs[bisect.bisect_right(self._first_records, record) - 1]
        return record + run[1]

    def record_at_reader_line(self, line: int) -> int:
        first, _, reader_offset = self.runs[bisect.bisect_right(self._first_reader_lines, line) - 1]
        return line - reader_offset


@dataclass(frozen=True)
class RawFileProfile:
    path: Path
    raw_file: RawFile
    sha256: str
    size_bytes: int
    data_rows: int
    """Records a strict CSV parser sees after the header (a quoted newline stays inside its
    record; blank lines are not records): bronze must hold exactly this many rows."""
    header: tuple[str, ...]
    extra_columns: tuple[str, ...]
    lines: int = 0
    """Physical lines, the header's included."""
    blank_lines: int = 0
    layout: RecordLayout = RecordLayout(((0, 2, 2),))
    odd_records: tuple[tuple[int, int], ...] = ()
    """(record, fields) of the records to load next whose field count differs from the header's
    (known when the layout was parsed; DuckDB's strict reader lets a trailing empty field pass)."""
    data_commas: int = 0
    """Commas in the data lines to load next, when the layout is presumed: with no quote in the
    file they are the field separators, so they prove every record's field count."""
    presumed: bool = False
    """The layout to load next (the whole file's, or the appended part's) is presumed from lines
    (no quote in the file), not parsed: `stage_records` parses it only if DuckDB's count differs
    (a blank line)."""
    extends: "RawFileProfile | None" = None
    """The earlier version of the file this one starts with, byte for byte (an export that had
    rows appended); None when it does not extend the version it was compared with."""
    appended: "RecordLayout | None" = None
    """Where the records past `extends` start in the copy of the appended part (its header
    line first)."""
    still_being_written: bool = False
    """The file kept changing past the patience: only its complete lines are in the copy."""
    left_for_next_run: int = 0
    """Bytes past the last complete line of a file that was still being written: not loaded
    now; the next run finds the file extends the version loaded and reads them then (0 when
    the copy ended on a line end, as a writer of whole lines leaves it)."""
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)
    """The private copy this profile describes (None for one rebuilt from a table's state)."""

    @property
    def source(self) -> Path:
        """Where the records to load are read from: the copy, never the path again."""
        return self.snapshot.file


class _Scan:
    """One streaming pass over a private copy: UTF-8 check, lines, and whether a record may span
    lines (a quote anywhere). Only single-byte searches: a two-byte one such as CRLF costs a
    second per GB, a third of the whole pass. `offset` and `line_base` place the copy's first
    byte in the file, for messages."""

    def __init__(self, path: Path, source: Path, offset: int = 0, line_base: int = 0):
        self.path = path
        self.source = source
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.offset = offset
        self.line_base = line_base
        self.newlines = 0
        self.first_line = b""
        self.last_byte = b""
        self.quotes = False
        self.carriage_returns = 0
        self.commas = 0

    def feed(self, chunk: bytes) -> None:
        try:
            self.decoder.decode(chunk)
        except UnicodeDecodeError as error:
            bad_at = self.offset + error.start
            line = self.line_base + self.newlines + chunk[: error.start].count(b"\n") + 1
            raise RawFileError(
                f"{self.path}: not UTF-8 (byte {chunk[error.start]:#04x} at offset {bad_at}, line "
                f"{line}). Re-export it as UTF-8 (for example 'CSV UTF-8' in Excel)."
            ) from None
        if not self.last_byte:
            self.first_line = chunk.split(b"\n", 1)[0]
        self.quotes = self.quotes or b'"' in chunk
        self.commas += chunk.count(b",")
        if b"\r" in chunk:
            self.carriage_returns += chunk.count(b"\r")
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
        if not self.carriage_returns:
            return
        if self.newlines == 0:
            raise RawFileError(
                f"{self.path}: lines end with a carriage return only (old Mac line endings). "
                "Re-save it with Windows (CRLF) or Unix (LF) line endings."
            )
        if self.carriage_returns == self.newlines or self.quotes:
            return
        lone = _first_line_with(self.source, _is_lone_carriage_return)
        if lone:
            raise RawFileError(
                f"{self.path}:{lone + self.line_base}: a carriage return inside a line (not "
                "followed by a line feed). Remove it, or re-save the file with Windows (CRLF) or "
                "Unix (LF) line endings."
            )
        if self.carriage_returns < self.newlines:
            raise RawFileError(
                f"{self.path}: mixed line endings ({self.carriage_returns} lines end with CRLF, "
                f"{self.newlines - self.carriage_returns} with LF only, in the part read). "
                "Re-save it with one kind."
            )

    @property
    def lines(self) -> int:
        return self.newlines + (0 if self.last_byte in (b"", b"\n") else 1)

    @property
    def one_line_per_record(self) -> bool:
        """Presumed when the file has no quote; a blank line (which DuckDB skips) shows as one
        row fewer than lines when the file is read, and the file is then parsed to place it."""
        return not self.quotes


def _is_lone_carriage_return(line: bytes) -> bool:
    return b"\r" in line.removesuffix(b"\r\n")


def _first_line_with(source: Path, predicate) -> int:
    with source.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            if predicate(line):
                return number
    return 0


@dataclass(frozen=True)
class _Parsed:
    header: tuple[str, ...] | None
    records: int
    blank_lines: int
    layout: RecordLayout
    odd_records: tuple[tuple[int, int], ...]
    """(record, fields) of every record whose field count differs from the header's."""


def parse_layout(
    path: Path, source: Path, header: bool, fields_expected: int = 0, line_base: int = 0
) -> _Parsed:
    """Records, blank lines, layout and field counts of `source` (a copy of `path`, or of its
    header line and appended part, which starts `line_base` lines into it), with Python's
    strict CSV parser: the slow path, for files whose records may span lines or skip blank ones
    (with `header`, the header's field count is the one expected)."""
    csv.field_size_limit(2**31 - 1)
    with source.open("rb") as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        header_fields = None
        records = blank_lines = 0
        reader_line = 1
        runs: list[tuple[int, int, int]] = []
        odd_records: list[tuple[int, int]] = []
        while True:
            lines_before = reader.line_num
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                if "unexpected end of data" in str(error):
                    opened = lines_before + 1
                    raise RawFileError(
                        f"{path}:{opened + line_base}: a quoted value opens on this line and "
                        f"never closes, so the {reader.line_num - opened} line(s) after it would "
                        "be read as part of it. Close the quote, or remove it, in the export."
                    ) from None
                fields = None
            if fields == []:
                blank_lines += 1
                reader_line += 1
                continue
            if header and header_fields is None:
                header_fields = tuple(fields or ())
                fields_expected = len(header_fields)
                reader_line += 1
                continue
            if fields is not None and len(fields) != fields_expected:
                odd_records.append((records, len(fields)))
            offsets = (lines_before + 1 - records, reader_line - records)
            if not runs or runs[-1][1:] != offsets:
                runs.append((records, *offsets))
            records += 1
            reader_line += 1
    layout = RecordLayout(tuple(runs) or ((0, 1, 1),))
    return _Parsed(header_fields, records, blank_lines, layout, tuple(odd_records))


def _scan(snapshot: Snapshot, scan: _Scan, digest) -> _Scan:
    """Scan the copy, hashing the file's bytes in it (all but an appended part's header line)."""
    skip = snapshot.header_bytes
    with snapshot.file.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            scan.feed(chunk)
            digest.update(chunk[skip:])
            skip = max(skip - len(chunk), 0)
    scan.finish()
    return scan


def profile_raw_file(
    path: Path,
    raw_file: RawFile,
    previous: "RawFileProfile | None" = None,
    settle: float | None = None,
) -> RawFileProfile:
    """Hash, size, encoding, header and records of a private copy of the file, in one streaming
    pass (a second, parsing pass only for files whose records may span lines); the copy is
    what `stage_records` loads.

    Given the `previous` version loaded, a file that starts with it (rows appended) is copied
    and checked only past it, with its header line in front, so that part is read exactly as a
    whole file is (line endings, BOM, encoding, field counts); the version before it is only
    hashed. `settle`: seconds the file must go unwritten first (`MARKETING_ML_SETTLE_SECONDS`).
    """
    snapshot, folder = take_snapshot(
        path, raw_file, previous, settle_seconds() if settle is None else settle
    )
    try:
        profile = _profile_snapshot(path, raw_file, snapshot)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(snapshot, shutil.rmtree, folder, ignore_errors=True)
    return profile


def _profile_snapshot(path: Path, raw_file: RawFile, snapshot: Snapshot) -> RawFileProfile:
    if snapshot.size_bytes == 0:
        raise RawFileError(
            f"{path}: file is empty (0 bytes). Re-export {raw_file.file_name} with its header row "
            f"({','.join(raw_file.header_columns)})."
        )
    previous = snapshot.extends
    if previous is not None:
        offset = previous.size_bytes - snapshot.header_bytes
        scan = _scan(
            snapshot, _Scan(path, snapshot.file, offset, previous.lines - 1), snapshot.digest
        )
        if scan.one_line_per_record:
            records, blank_lines, odd_records = scan.lines - 1, 0, ()
            appended = RecordLayout(((0, 2, 2),))
        else:
            parsed = parse_layout(path, snapshot.file, True, line_base=previous.lines - 1)
            records, blank_lines = parsed.records, parsed.blank_lines
            appended, odd_records = parsed.layout, parsed.odd_records
        return replace(
            previous,
            path=path,
            sha256=snapshot.digest.hexdigest(),
            size_bytes=snapshot.size_bytes,
            data_rows=previous.data_rows + records,
            lines=previous.lines + scan.lines - 1,
            blank_lines=previous.blank_lines + blank_lines,
            extends=previous,
            appended=appended,
            presumed=scan.one_line_per_record,
            odd_records=odd_records,
            data_commas=scan.commas - (len(previous.header) - 1),
            snapshot=snapshot,
            still_being_written=snapshot.still_being_written,
            left_for_next_run=snapshot.left_for_next_run,
        )
    scan = _scan(snapshot, _Scan(path, snapshot.file), digest := hashlib.sha256())
    odd_records = ()
    if scan.one_line_per_record:
        header_text = scan.first_line.decode("utf-8").removeprefix("\ufeff").rstrip("\r")
        fields = tuple(next(csv.reader([header_text]), ()))
        data_rows, blank_lines, layout = max(scan.lines - 1, 0), 0, RecordLayout(((0, 2, 2),))
    else:
        parsed = parse_layout(path, snapshot.file, header=True)
        fields, data_rows, blank_lines = parsed.header, parsed.records, parsed.blank_lines
        layout, odd_records = parsed.layout, parsed.odd_records
    header = _checked_header(path, raw_file, fields or ())
    return RawFileProfile(
        path=path,
        raw_file=raw_file,
        sha256=digest.hexdigest(),
        size_bytes=snapshot.size_bytes,
        data_rows=data_rows,
        header=header,
        extra_columns=tuple(column for column in header if column not in raw_file.columns),
        lines=scan.lines,
        blank_lines=blank_lines,
        layout=layout,
        presumed=scan.one_line_per_record,
        odd_records=odd_records,
        data_commas=scan.commas - (len(fields or ()) - 1),
        snapshot=snapshot,
        still_being_written=snapshot.still_being_written,
        left_for_next_run=snapshot.left_for_next_run,
    )


def _checked_header(path: Path, raw_file: RawFile, fields: tuple[str, ...]) -> tuple[str, ...]:
    header = tuple(column.strip() for column in fields)
    blank = [str(position) for position, column in enumerate(header, start=1) if not column]
    if blank:
        raise RawFileError(
            f"{path}: header column(s) {', '.join(blank)} have no name. Name them or delete "
            "the empty column(s) in the export."
        )
    missing = [column for column in raw_file.header_columns if column not in header]
    if missing:
        optional = (
            f" (optional: {', '.join(raw_file.optional_columns)})"
            if raw_file.optional_columns
            else ""
        )
        raise RawFileError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header is "
            f"{','.join(header)!r}. Expected {','.join(raw_file.header_columns)}{optional}: "
            "rename or add the column(s) in the export."
        )
    folded = [column.casefold() for column in header]
    duplicated = sorted({column for column in header if folded.count(column.casefold()) > 1})
    if duplicated:
        raise RawFileError(
            f"{path}: column(s) {', '.join(map(repr, duplicated))} appear more than once in the "
            "header (names are compared ignoring case); keep one of each."
        )
    reserved = [column for column in header if column.casefold() in LINEAGE_COLUMNS]
    if reserved:
        raise RawFileError(
            f"{path}: column(s) {', '.join(map(repr, reserved))} use a name bronze reserves for "
            "lineage; rename them in the export."
        )
    return header
