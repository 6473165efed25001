"""What a bronze table records about its file (its table comment on DuckDB, a table property on
Spark), typed in one place: the load writes it, and the next load, silver's re-cleaning and the
row accounting read it through `BronzeState`, never by picking keys out of the JSON."""

from dataclasses import dataclass
from pathlib import Path

from marketing_ml.contract import RawFile
from marketing_ml.ingest.profile import RawFileProfile
from marketing_ml.ingest.reader import bronze_query_id
from marketing_ml.storage.engine import tables_for

KEPT_VERSIONS = 400
"""Versions of a file a bronze table remembers: a year of daily appends and then some."""


@dataclass(frozen=True)
class LoadedFile:
    """The version of the file the table holds, as its profile counted it when it was loaded."""

    sha256: str
    size_bytes: int
    data_rows: int
    """Records a strict CSV parser sees after the header: what the row accounting starts from."""
    header: tuple[str, ...]
    extra_columns: tuple[str, ...]
    lines: int | None = None
    """Physical lines, the header's included; None in a state written before lines were
    counted, whose file is then loaded again in full."""
    blank_lines: int | None = None


@dataclass(frozen=True)
class BronzeState:
    """The file version loaded, the SQL that loaded it, and [bronze_version, rows] of every
    version since the last full load, oldest first (so silver can tell which rows are new since
    the version it cleaned); `rows` is the table's row count, recorded with the state by the
    write (None in a state not yet written)."""

    file: LoadedFile
    query: str
    versions: tuple[tuple[str, int], ...]
    rows: int | None = None

    @classmethod
    def from_json(cls, state: dict | None) -> "BronzeState | None":
        """The state from the decoded JSON a table recorded; None for a table that records none."""
        if not state:
            return None
        file = state["file"]
        return cls(
            file=LoadedFile(
                sha256=file["sha256"],
                size_bytes=file["size_bytes"],
                data_rows=file["data_rows"],
                header=tuple(file["header"]),
                extra_columns=tuple(file["extra_columns"]),
                lines=file.get("lines"),
                blank_lines=file.get("blank_lines"),
            ),
            query=state["query"],
            versions=tuple((version, rows) for version, rows in state["versions"]),
            rows=state.get("rows"),
        )

    def to_json(self) -> dict:
        """The JSON object the table records: the same keys every release has written."""
        file = {
            "sha256": self.file.sha256,
            "size_bytes": self.file.size_bytes,
            "data_rows": self.file.data_rows,
            "header": list(self.file.header),
            "extra_columns": list(self.file.extra_columns),
        }
        if self.file.lines is not None:
            file["lines"] = self.file.lines
            file["blank_lines"] = self.file.blank_lines
        state = {
            "file": file,
            "query": self.query,
            "versions": [[version, rows] for version, rows in self.versions],
        }
        if self.rows is not None:
            state["rows"] = self.rows
        return state

    @property
    def rows_by_version(self) -> dict[str, int]:
        """Rows the table held after each version, the current version last."""
        return dict(self.versions)


def read_bronze_state(connection, table: str) -> BronzeState | None:
    """The state bronze table `table` ("schema.name") recorded, on whichever engine holds it."""
    return BronzeState.from_json(tables_for(connection).table_state(connection, *table.split(".")))


def bronze_state(profile: RawFileProfile, versions: list[tuple[str, int]]) -> BronzeState:
    """The state of a table that holds `profile`'s version, after `versions` (oldest first; the
    last KEPT_VERSIONS kept)."""
    return BronzeState(
        file=LoadedFile(
            sha256=profile.sha256,
            size_bytes=profile.size_bytes,
            data_rows=profile.data_rows,
            header=profile.header,
            extra_columns=profile.extra_columns,
            lines=profile.lines,
            blank_lines=profile.blank_lines,
        ),
        query=bronze_query_id(profile),
        versions=tuple((version, rows) for version, rows in versions[-KEPT_VERSIONS:]),
    )


def stored_profile(
    state: BronzeState | None, path: Path, raw_file: RawFile
) -> RawFileProfile | None:
    """The profile of the version the table holds, to compare the file with; None when the
    state does not say where its lines are (written before they were counted)."""
    if state is None or state.file.lines is None:
        return None
    file = state.file
    return RawFileProfile(
        path=path,
        raw_file=raw_file,
        sha256=file.sha256,
        size_bytes=file.size_bytes,
        data_rows=file.data_rows,
        header=file.header,
        extra_columns=file.extra_columns,
        lines=file.lines,
        blank_lines=file.blank_lines,
    )
