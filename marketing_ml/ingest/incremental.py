"""Bringing a bronze table up to date with its file: nothing when the file is the version
loaded, only the appended rows when it extends it (a daily export grows at the end), a full load
otherwise; on an engine without in-place updates (Spark), a Parquet snapshot of the whole file.
The rows are staged first and swapped or appended in the transaction that records the table's
new state, so a failure leaves the previous version in place."""

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import cast

import dagster as dg

from marketing_ml.contract import RawFile
from marketing_ml.ingest.bronze_state import BronzeState, bronze_state, stored_profile
from marketing_ml.ingest.profile import RawFileProfile, profile_raw_file
from marketing_ml.ingest.reader import bronze_query_id, bronze_version, stage_records
from marketing_ml.sql import quote_identifier, sql_string
from marketing_ml.storage.duckdb_tables import connect, set_table_state, transaction
from marketing_ml.storage.engine import tables_for
from marketing_ml.storage.outputs import Update
from marketing_ml.storage.tables import SnapshotTables


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
        state = replace(bronze_state(profile, [(bronze_version(profile), rows)]), rows=rows)
        set_table_state(connection, schema, table, state.to_json())
    return rows, profile


def plan_bronze_refresh(
    connection, schema: str, table: str, path: Path, raw_file: RawFile, built: dict
) -> Update:
    """Bring `schema.table` up to date with the file at `path`, from the state the table
    recorded (`built`; {} for a full load): nothing to do when the file is the version loaded,
    only the new rows when it extends it (a daily export), a full load otherwise. The rows are
    staged here; the update swaps or appends them."""
    state = BronzeState.from_json(built)
    previous = stored_profile(state, path, raw_file)
    if previous is not None and state.query != bronze_query_id(previous):
        previous = None
    profile = profile_raw_file(path, raw_file, previous)
    if not tables_for(connection).updates_in_place:
        return plan_bronze_snapshot(connection, schema, table, profile, state)
    staging = staging_name(schema, table)
    if profile.extends is None:
        rows, profile = stage_bronze_load(connection, staging, profile)
        versions = [(bronze_version(profile), rows)]
        load, apply = f"full load ({rows} rows)", swap_in(staging)
    elif profile.sha256 == profile.extends.sha256:
        load, apply = "unchanged since the last load", None
    else:
        rows, profile = stage_bronze_append(connection, staging, profile)
        versions = [*state.versions, (bronze_version(profile), state.rows + rows)]
        load, apply = f"appended {rows} rows", append_from(staging)
    if profile.still_being_written:
        load += f"; {still_being_written_text(profile)}"
    if apply is None:
        return Update(load, metadata=file_metadata(profile))
    return Update(load, apply, bronze_state(profile, versions).to_json(), file_metadata(profile))


def plan_bronze_snapshot(
    connection, schema: str, table: str, profile: RawFileProfile, built: BronzeState | None
) -> Update:
    """Bronze on an engine that cannot append in place (Spark): nothing to do when the file is
    the version loaded; otherwise the whole file, read by `ingest.reader` (so records, physical
    lines, rejects and their accounting are exactly DuckDB's), written as a Parquet snapshot
    under the table's next location, which the update switches the table to."""
    unchanged = (
        profile.extends is not None
        and built is not None
        and built.query == bronze_query_id(profile)
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
    state = bronze_state(profile, [(bronze_version(profile), rows)]).to_json()
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
