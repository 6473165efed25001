"""The daily refresh after one appended day: the dated CSVs replaced by the next day's export (the
same bytes plus one more day), then `daily_refresh` with the models the whole graph trained."""

import shutil
from pathlib import Path

from .bench_data import DATED_FILES, appended_rows
from .cli_timing import cli_run


def daily_refresh(
    initial: Path, next_export: Path, raw: Path, env: dict, run_dir: Path, workers: tuple[int, ...]
) -> dict:
    """The run's figures with the rows the new day appended to each dated file."""
    for raw_file in DATED_FILES:  # the next day's export: yesterday's bytes and one day more
        shutil.copyfile(next_export / raw_file.file_name, raw / raw_file.file_name)
    daily = cli_run(
        ["job", "execute", "-m", "marketing_ml", "-j", "daily_refresh"],
        env,
        Path(env["DAGSTER_HOME"]),
        run_dir / "daily_refresh.log",
        workers,
    )
    daily["appended_rows"] = appended_rows(initial, next_export)
    print(
        f"  daily refresh after one appended day {daily['wall_s']} s, {daily['peak_mib']} MiB "
        f"({daily['status']}), rows appended {daily['appended_rows']}",
        flush=True,
    )
    return daily
