"""A private copy of a raw file, taken once nothing writes to it: the file is opened once and
checked (a regular file inside the raw folder), waited on until it has been quiet for the settle
time, and copied; a file that keeps changing past the patience is copied up to its last complete
line. What is hashed, counted and loaded is the copy, however the file changes meanwhile."""

import fcntl
import hashlib
import math
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from marketing_ml.contract import REQUIRED_RAW_FILES, RawFile
from marketing_ml.ingest.errors import RawFileError

if TYPE_CHECKING:
    from marketing_ml.ingest.profile import RawFileProfile

CHUNK_BYTES = 8 * 1024 * 1024

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


class Snapshot:
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
) -> Snapshot:
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
            return Snapshot(part, previous.size_bytes + copied, previous, digest, len(header_line))
    whole = folder / "whole.csv"
    target = os.open(whole, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        copied = _copy_range(descriptor, target, 0, size)
    finally:
        os.close(target)
    return Snapshot(whole, copied)


def _header_only(raw_file: RawFile, previous: "RawFileProfile | None") -> tuple[Snapshot, Path]:
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
        return Snapshot(header, len(line), previous, digest, len(line)), folder
    return Snapshot(header, len(line)), folder


def take_snapshot(
    path: Path, raw_file: RawFile, previous: "RawFileProfile | None", settle: float
) -> tuple[Snapshot, Path]:
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
