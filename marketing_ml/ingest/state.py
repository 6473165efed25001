"""What a bronze table records about its file (its table comment on DuckDB, a table property on
Spark): the version loaded, the SQL that loaded it and the versions appended since the last full
load."""

from pathlib import Path

from marketing_ml.contract import RawFile
from marketing_ml.ingest.profile import RawFileProfile
from marketing_ml.ingest.reader import bronze_query_id

KEPT_VERSIONS = 400
"""Versions of a file a bronze table remembers: a year of daily appends and then some."""


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
