"""`make check-raw`: validate a folder of exports against the contract in seconds, building nothing.

Every problem is printed as FILE:LINE: rule: reason. File-level problems (missing, empty, not
UTF-8, missing columns, an unclosed quote, a link out of the folder...) make the exit status 1;
row-level problems are listed (those rows would be quarantined) and leave it 0, since a run would
still succeed. It loads and classifies each file with the pipeline's own code (bronze, then the
cleaning rules), so its verdicts are the run's.
"""

import argparse
import sys
from pathlib import Path

import duckdb

from marketing_ml.cleaning import classified_rows_sql
from marketing_ml.contract import RAW_FILES
from marketing_ml.ingest.errors import RawFileError
from marketing_ml.ingest.incremental import load_bronze_table, still_being_written_text
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml.resources import raw_dir_path


def optional_columns_text(header: tuple[str, ...], optional_columns: tuple[str, ...]) -> str:
    """Which optional columns the file has and which read as blank, so a missing campaign column
    is seen before a run plans every budget at ad-set level."""
    present = [column for column in optional_columns if column in header]
    absent = [column for column in optional_columns if column not in header]
    text = ""
    if present:
        text += f", optional column(s) read: {', '.join(present)}"
    if absent:
        text += f", optional column(s) absent (read as blank): {', '.join(absent)}"
    return text


def check_raw_folder(raw_dir: Path, max_listed: int = 50) -> tuple[list[str], int]:
    """Report lines and the number of file-level problems found in `raw_dir`."""
    report: list[str] = []
    file_problems = 0
    connection = duckdb.connect()
    for raw_file in RAW_FILES:
        path = raw_dir / raw_file.file_name
        if raw_file.optional and not path.exists() and not path.is_symlink():
            report.append(f"OK    {path}: absent (optional; nothing to calibrate with)")
            continue
        try:
            profile = profile_raw_file(path, raw_file)
            rows, profile = load_bronze_table(connection, "main", "bronze_rows", profile)
        except (RawFileError, ValueError) as error:
            file_problems += 1
            report.append(f"ERROR {error}")
            continue
        if rows != profile.data_rows:
            file_problems += 1
            report.append(
                f"ERROR {path}: {profile.data_rows} records in the file but {rows} read; "
                "re-export it and report the file if this persists."
            )
            continue
        connection.execute(
            "CREATE OR REPLACE TABLE classified_rows AS "
            f"{classified_rows_sql(raw_file, 'bronze_rows')}"
        )
        rejected = connection.execute(
            "SELECT _source_line, rule, reason FROM classified_rows WHERE rule IS NOT NULL "
            "ORDER BY _source_line"
        ).fetchall()
        distinct_rows = connection.execute("SELECT count(*) FROM classified_rows").fetchone()[0]
        summary = (
            f"OK    {path}: {rows} rows, {rows - distinct_rows} exact duplicate(s) to drop, "
            f"{len(rejected)} row(s) to quarantine"
        )
        summary += optional_columns_text(profile.header, raw_file.optional_columns)
        if profile.extra_columns:
            summary += f", extra column(s) ignored: {', '.join(profile.extra_columns)}"
        if profile.blank_lines:
            summary += f", {profile.blank_lines} blank line(s) skipped"
        if profile.still_being_written:
            summary += f", {still_being_written_text(profile)}"
        if rows == 0:
            summary += " (header only: no data rows)"
        report.append(summary)
        for line, rule, reason in rejected[:max_listed]:
            report.append(f"      {path}:{line}: {rule}: {reason}")
        if len(rejected) > max_listed:
            report.append(f"      ... and {len(rejected) - max_listed} more in {path}")
    connection.close()
    return report, file_problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_dir", nargs="?", type=Path, default=None)
    parser.add_argument("--max-listed", type=int, default=50, help="row problems listed per file")
    arguments = parser.parse_args(argv)
    raw_dir = arguments.raw_dir or raw_dir_path()
    report, file_problems = check_raw_folder(raw_dir, arguments.max_listed)
    print("\n".join(report))
    if file_problems:
        print(f"{file_problems} file-level problem(s): fix them before running the pipeline.")
        return 1
    print("All files can be loaded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
