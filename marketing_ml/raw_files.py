"""Reading a raw export safely: file-level problems become one clear message, never a traceback,
and every record in the file reaches bronze, clean or marked malformed with its raw text."""

import bisect
import codecs
import csv
import fcntl
import functools
import hashlib
import io
import math
import os
import shutil
import stat
import tempfile
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import dagster as dg
import duckdb
import pandas as pd

from marketing_ml.cleaning import key_hash_sql
from marketing_ml.contract import REQUIRED_RAW_FILES, RawFile
from marketing_ml.sql import quote_identifier, sql_string
from marketing_ml.storage.duckdb_tables import (
    connect,
    row_count,
    set_table_state,
    transaction,
)
from marketing_ml.storage.engine import tables_for
from marketing_ml.storage.outputs import Update, query_id
from marketing_ml.storage.tables import SnapshotTables

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

CHUNK_BYTES = 8 * 1024 * 1024
KEPT_VERSIONS = 400
"""Versions of a file a bronze table remembers: a year of daily appends and then some."""
MAX_RECORD_BYTES = 2 * 1024 * 1024
"""DuckDB's maximum line size: a longer record is quarantined as malformed, not read."""


class RawFileError(Exception):
    """A raw file that cannot be used at all: the message names the file and what to do."""


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
    snapshot: "_Snapshot | None" = field(default=None, compare=False, repr=False)
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


def _parse_layout(
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


SETTLE_ENV = "MARKETING_ML_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 2.0
"""A file nothing has written to for this long is taken as finished: vendors write an export
over seconds, and the raw-folder sensor starts a run as soon as a file lands."""
SETTLE_PATIENCE = 10
"""How many settle windows a run waits for a file that keeps changing before it loads the
file's complete lines and leaves the rest for the next run."""
MIN_PATIENCE_SECONDS = 1.0


def settle_seconds(environ=os.environ) -> float:
    text = environ.get(SETTLE_ENV, "").strip()
    if not text:
        return DEFAULT_SETTLE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise RawFileError(
            f"{SETTLE_ENV}={text!r}: expected the seconds a raw file must go unwritten before "
            f"it is read, a number from 0 up (default {DEFAULT_SETTLE_SECONDS:g})."
        )
    return value


def _missing(path: Path) -> RawFileError:
    return RawFileError(
        f"{path}: file is missing. Expected the four exports "
        f"({', '.join(f.file_name for f in REQUIRED_RAW_FILES)}) in {path.parent}; add it, or point "
        "MARKETING_ML_RAW_DIR at the folder that has them."
    )


def _opened_path(descriptor: int) -> Path | None:
    """Where the open file really is (links resolved by the kernel at open time), or None where
    the platform cannot say."""
    proc = Path(f"/proc/self/fd/{descriptor}")
    if proc.parent.is_dir():
        return Path(os.readlink(proc).removesuffix(" (deleted)"))
    if hasattr(fcntl, "F_GETPATH"):
        name = fcntl.fcntl(descriptor, fcntl.F_GETPATH, bytes(4096))
        return Path(os.fsdecode(name.split(b"\0", 1)[0]))
    return None


def _open_raw(path: Path, raw_file: RawFile) -> int:
    """The file opened once, read-only and without blocking (a FIFO would wait for a writer):
    the checks below look at what was opened, and every later read goes through this
    descriptor, so a link or file swapped in after the checks is never read. A path that is no
    regular file, or that leads outside the raw folder, is refused; a link's target is never
    echoed."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _missing(path) from None
    except OSError as error:
        raise RawFileError(
            f"{path}: cannot be read ({error.strerror}). Check its permissions, and put the "
            "export here as a plain file."
        ) from None
    try:
        opened = _opened_path(descriptor)
        if opened is None and path.is_symlink():
            opened = path.resolve()
        if opened is not None and not opened.is_relative_to(path.parent.resolve()):
            raise RawFileError(
                f"{path}: a symbolic link to a file outside the raw folder; links are followed "
                "only within it. Copy the export into the folder instead."
            )
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise RawFileError(
                f"{path}: a folder, not a file. Put the {raw_file.file_name} export here instead."
            )
        if not stat.S_ISREG(mode):
            raise RawFileError(f"{path}: not a regular file. Put the export here as a plain file.")
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _copy_range(descriptor: int, target: int, start: int, end: int) -> int:
    """Bytes [start, end) of the open file appended to `target`, in the kernel where it can;
    returns how many there were (fewer when the file shrank meanwhile)."""
    copied = 0
    in_kernel = hasattr(os, "copy_file_range")
    while start + copied < end:
        wanted = min(end - start - copied, CHUNK_BYTES * 8)
        if in_kernel:
            try:
                count = os.copy_file_range(descriptor, target, wanted, start + copied)
            except OSError:
                in_kernel = False
                continue
        else:
            chunk = os.pread(descriptor, min(wanted, CHUNK_BYTES), start + copied)
            count = os.write(target, chunk) if chunk else 0
        if count == 0:
            break
        copied += count
    return copied


class _Snapshot:
    """A private copy of a raw file's bytes, taken through its one descriptor: what is hashed,
    counted and loaded is this copy, however the file changes meanwhile. For a file that
    extends the version loaded, the copy holds the header line and the appended part only
    (read by the same reader as a whole file), and `digest` has hashed the version before it.
    The folder is removed with the last reference to it."""

    def __init__(self, file: Path, size_bytes: int, extends=None, digest=None, header_bytes=0):
        self.file = file
        self.size_bytes = size_bytes
        self.extends = extends
        self.digest = digest
        self.header_bytes = header_bytes
        self.still_being_written = False
        self.left_for_next_run = 0

    def cut_at_last_line(self, path: Path) -> None:
        """Keep only the complete lines of a file that is still being written."""
        size = self.file.stat().st_size
        end = size
        with self.file.open("rb") as stream:
            while end > self.header_bytes:
                start = max(end - CHUNK_BYTES, self.header_bytes)
                stream.seek(start)
                newline = stream.read(end - start).rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
        if end == 0:
            raise RawFileError(
                f"{path}: still being written (not even its header line is complete). Run "
                "again when the export has finished."
            )
        os.truncate(self.file, end)
        self.still_being_written = True
        self.left_for_next_run = size - end
        self.size_bytes -= size - end


def _quiet_status(descriptor: int, settle: float, deadline: float) -> os.stat_result:
    """The file's status once nothing has written to it for `settle` seconds, or at the
    deadline."""
    while True:
        status = os.fstat(descriptor)
        quiet_for = time.time() - status.st_mtime
        remaining = deadline - time.monotonic()
        if _quiet(status, settle) or remaining <= 0:
            return status
        time.sleep(min(settle - quiet_for, remaining) + 0.01)


def _quiet(status: os.stat_result, settle: float) -> bool:
    return settle <= 0 or time.time() - status.st_mtime >= settle


def _same_version(descriptor: int, status: os.stat_result) -> bool:
    now = os.fstat(descriptor)
    return (now.st_size, now.st_mtime_ns) == (status.st_size, status.st_mtime_ns)


def _copy_version(
    descriptor: int, size: int, previous: "RawFileProfile | None", folder: Path
) -> _Snapshot:
    """The file's first `size` bytes copied into `folder`: only the header line and the part
    past `previous` when the file starts with that version byte for byte (rows appended)."""
    for stale in folder.iterdir():
        stale.unlink()
    if previous is not None and 0 < previous.size_bytes <= size:
        digest = hashlib.sha256()
        header_line = b""
        offset = last_byte = 0
        while offset < previous.size_bytes:
            chunk = os.pread(descriptor, min(CHUNK_BYTES, previous.size_bytes - offset), offset)
            if not chunk:
                break
            if offset == 0 and b"\n" in chunk:
                header_line = chunk[: chunk.index(b"\n") + 1]
            digest.update(chunk)
            offset += len(chunk)
            last_byte = chunk[-1]
        if (
            offset == previous.size_bytes
            and last_byte == ord("\n")
            and header_line
            and digest.hexdigest() == previous.sha256
        ):
            part = folder / "appended.csv"
            target = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(target, header_line)
                copied = _copy_range(descriptor, target, previous.size_bytes, size)
            finally:
                os.close(target)
            return _Snapshot(part, previous.size_bytes + copied, previous, digest, len(header_line))
    whole = folder / "whole.csv"
    target = os.open(whole, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        copied = _copy_range(descriptor, target, 0, size)
    finally:
        os.close(target)
    return _Snapshot(whole, copied)


def _header_only(raw_file: RawFile, previous: "RawFileProfile | None") -> tuple[_Snapshot, Path]:
    """The copy an absent optional file reads as: the contract's header and no rows; the version
    loaded when that is what was loaded last (so an absent file is not loaded again every run)."""
    folder = Path(tempfile.mkdtemp(prefix="marketing-ml-raw-"))
    header = folder / "header.csv"
    line = (",".join(raw_file.columns) + "\n").encode()
    header.write_bytes(line)
    digest = hashlib.sha256(line)
    if (
        previous is not None
        and previous.size_bytes == len(line)
        and previous.sha256 == digest.hexdigest()
    ):
        return _Snapshot(header, len(line), previous, digest, len(line)), folder
    return _Snapshot(header, len(line)), folder


def _take_snapshot(
    path: Path, raw_file: RawFile, previous: "RawFileProfile | None", settle: float
) -> tuple[_Snapshot, Path]:
    """A copy of a version of the file that nothing wrote to while it was taken, once the file
    has been quiet for `settle` seconds; a file that keeps changing past the patience is copied
    up to its last complete line. Returns the copy and its folder. An optional file that is
    absent is read as its header line alone."""
    if raw_file.optional and not os.path.lexists(path):
        return _header_only(raw_file, previous)
    descriptor = _open_raw(path, raw_file)
    folder = Path(tempfile.mkdtemp(prefix="marketing-ml-raw-"))
    try:
        deadline = time.monotonic() + max(SETTLE_PATIENCE * settle, MIN_PATIENCE_SECONDS)
        while True:
            status = _quiet_status(descriptor, settle, deadline)
            quiet = _quiet(status, settle)
            snapshot = _copy_version(descriptor, status.st_size, previous, folder)
            unchanged = _same_version(descriptor, status) and snapshot.size_bytes == status.st_size
            if unchanged and quiet:
                return snapshot, folder
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        snapshot = _copy_version(descriptor, os.fstat(descriptor).st_size, None, folder)
        snapshot.cut_at_last_line(path)
        return snapshot, folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        os.close(descriptor)


def _scan(snapshot: _Snapshot, scan: _Scan, digest) -> _Scan:
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
    snapshot, folder = _take_snapshot(
        path, raw_file, previous, settle_seconds() if settle is None else settle
    )
    try:
        profile = _profile_snapshot(path, raw_file, snapshot)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    weakref.finalize(snapshot, shutil.rmtree, folder, ignore_errors=True)
    return profile


def _profile_snapshot(path: Path, raw_file: RawFile, snapshot: _Snapshot) -> RawFileProfile:
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
            parsed = _parse_layout(path, snapshot.file, True, line_base=previous.lines - 1)
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
        parsed = _parse_layout(path, snapshot.file, header=True)
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
        parsed = _parse_layout(profile.path, source, header, expected, line_base)
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


def bronze_state(profile: RawFileProfile, versions: list[list]) -> dict:
    """What a bronze table records about its file (see `storage.table_state`): the profile of
    the version loaded, and [bronze_version, rows] of every version since the last full load,
    oldest first, so silver can tell which rows are new since the version it cleaned."""
    return {
        "file": {
            "sha256": profile.sha256,
            "size_bytes": profile.size_bytes,
            "data_rows": profile.data_rows,
            "lines": profile.lines,
            "blank_lines": profile.blank_lines,
            "header": list(profile.header),
            "extra_columns": list(profile.extra_columns),
        },
        "query": bronze_query_id(profile),
        "versions": versions[-KEPT_VERSIONS:],
    }


def stored_profile(state: dict | None, path: Path, raw_file: RawFile) -> RawFileProfile | None:
    if not state or "lines" not in state["file"]:
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
        lines=file["lines"],
        blank_lines=file["blank_lines"],
    )


def stage_bronze_load(
    connection, staging: str, profile: RawFileProfile
) -> tuple[int, RawFileProfile]:
    """`staging` created with every record of the file, numbered; returns the row count and the
    profile with its records as loaded (blank lines found while reading)."""
    staged = stage_records(
        connection,
        staging,
        profile,
        profile.source,
        profile.layout,
        True,
        0,
        profile.data_rows,
        profile.blank_lines,
    )
    profile = replace(
        profile, data_rows=staged.records, blank_lines=staged.blank_lines, layout=staged.layout
    )
    return staged.rows, profile


def stage_bronze_append(
    connection, staging: str, profile: RawFileProfile
) -> tuple[int, RawFileProfile]:
    """`staging` created with the records past `profile.extends` (the version in the table),
    read from the copy of the header line and the appended part by the same reader as a whole
    file, and numbered exactly as a full load of the whole file would number them; returns the
    number of rows and the profile with its records as loaded."""
    staged = stage_records(
        connection,
        staging,
        profile,
        profile.source,
        profile.appended,
        True,
        profile.extends.lines - 1,
        profile.data_rows - profile.extends.data_rows,
        profile.blank_lines - profile.extends.blank_lines,
    )
    profile = replace(
        profile,
        data_rows=profile.extends.data_rows + staged.records,
        blank_lines=profile.extends.blank_lines + staged.blank_lines,
    )
    return staged.rows, profile


def swap_in(staging: str):
    """Replace the table with `staging` (drop the old one, rename the staged one): an
    `Update.apply`, so inside the transaction that records the new state."""

    def apply(connection, name: str) -> None:
        connection.execute(f"DROP TABLE IF EXISTS {name}")
        connection.execute(f"ALTER TABLE {staging} RENAME TO {name.rsplit('.', 1)[1]}")

    return apply


def append_from(staging: str):
    """Add the staged rows to the table and drop the staging table: an `Update.apply`."""

    def apply(connection, name: str) -> None:
        connection.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {staging}")
        connection.execute(f"DROP TABLE {staging}")

    return apply


def staging_name(schema: str, table: str) -> str:
    return f"{schema}.{quote_identifier('_staging_' + table)}"


def load_bronze_table(
    connection, schema: str, table: str, profile: RawFileProfile
) -> tuple[int, RawFileProfile]:
    """`schema.table` replaced by the file's bronze rows, numbered; returns the row count and
    the profile with its records as loaded. Staged first; the swap and the table's state
    commit in one transaction, so a failure leaves the previous version in place."""
    staging = staging_name(schema, table)
    rows, profile = stage_bronze_load(connection, staging, profile)
    with transaction(connection):
        swap_in(staging)(connection, f"{schema}.{table}")
        state = bronze_state(profile, [[bronze_version(profile), rows]])
        set_table_state(connection, schema, table, {**state, "rows": rows})
    return rows, profile


def plan_bronze_refresh(
    connection, schema: str, table: str, path: Path, raw_file: RawFile, built: dict
) -> Update:
    """Bring `schema.table` up to date with the file at `path`, from the state the table
    recorded (`built`; {} for a full load): nothing to do when the file is the version loaded,
    only the new rows when it extends it (a daily export), a full load otherwise. The rows are
    staged here; the update swaps or appends them."""
    previous = stored_profile(built or None, path, raw_file)
    if previous is not None and built.get("query") != bronze_query_id(previous):
        previous = None
    profile = profile_raw_file(path, raw_file, previous)
    if not tables_for(connection).updates_in_place:
        return plan_bronze_snapshot(connection, schema, table, profile, built)
    staging = staging_name(schema, table)
    if profile.extends is None:
        rows, profile = stage_bronze_load(connection, staging, profile)
        versions = [[bronze_version(profile), rows]]
        load, apply = f"full load ({rows} rows)", swap_in(staging)
    elif profile.sha256 == profile.extends.sha256:
        load, apply = "unchanged since the last load", None
    else:
        rows, profile = stage_bronze_append(connection, staging, profile)
        versions = [*built["versions"], [bronze_version(profile), built["rows"] + rows]]
        load, apply = f"appended {rows} rows", append_from(staging)
    if profile.still_being_written:
        load += f"; {still_being_written_text(profile)}"
    if apply is None:
        return Update(load, metadata=file_metadata(profile))
    return Update(load, apply, bronze_state(profile, versions), file_metadata(profile))


def plan_bronze_snapshot(
    connection, schema: str, table: str, profile: RawFileProfile, built: dict
) -> Update:
    """Bronze on an engine that cannot append in place (Spark): nothing to do when the file is
    the version loaded; otherwise the whole file, read by this module's reader (so records,
    physical lines, rejects and their accounting are exactly DuckDB's), written as a Parquet
    snapshot under the table's next location, which the update switches the table to."""
    unchanged = (
        profile.extends is not None
        and built.get("query") == bronze_query_id(profile)
        and profile.sha256 == profile.extends.sha256
    )
    if unchanged:
        return Update("unchanged since the last load", metadata=file_metadata(profile))
    if profile.extends is not None:
        profile = profile_raw_file(profile.path, profile.raw_file)
    tables = cast(SnapshotTables, tables_for(connection))
    location = tables.new_location(connection, f"{schema}.{table}")
    location.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="marketing-ml-bronze-") as folder:
        with connect(Path(folder) / "staging.duckdb", memory_limit="1GB") as staging:
            rows, profile = stage_bronze_load(staging, "staged", profile)
            target = sql_string(str(location / "records.parquet"))
            staging.execute(f"COPY staged TO {target} (FORMAT parquet)")
    state = bronze_state(profile, [[bronze_version(profile), rows]])
    return Update(
        f"full load ({rows} rows)", tables.switch_to(location), state, file_metadata(profile)
    )


def still_being_written_text(profile: RawFileProfile) -> str:
    """What a load or check-raw says of a file that kept changing past the patience, also
    when the copy ended on a line end and nothing was left over."""
    return (
        f"still being written: loaded up to its last complete line, "
        f"{profile.left_for_next_run} byte(s) after it left for the next run"
    )


def file_metadata(profile: RawFileProfile) -> dict:
    return {
        "source_path": dg.MetadataValue.path(str(profile.path.resolve())),
        "source_sha256": profile.sha256,
        "source_size_bytes": profile.size_bytes,
        "source_rows": profile.data_rows,
        "source_blank_lines": profile.blank_lines,
        "extra_columns": ", ".join(profile.extra_columns) or "none",
        "source_still_being_written": profile.still_being_written,
        "source_bytes_left_for_next_run": profile.left_for_next_run,
    }
