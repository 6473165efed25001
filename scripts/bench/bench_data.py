"""The data at each scale: generated once per (scale, seed) with the project's sample generator,
as the initial files the whole graph reads and the next day's export the daily refresh reads;
and DuckDB's bare scan of them, the lower bound every pipeline time is compared with."""

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from marketing_ml.contract import REQUIRED_RAW_FILES

from .bench_host import ROOT

SEED = 42


@dataclass(frozen=True)
class Scale:
    name: str
    ad_sets: int
    days: int


SCALES = {
    "small": Scale("small", 6, 21),
    "medium": Scale("medium", 200, 365),
    "medium2x": Scale("medium2x", 400, 365),
    "medium4x": Scale("medium4x", 800, 365),
    "large": Scale("large", 2000, 365),
}
"""medium2x and medium4x: the Spark cluster's scaling run (1×, 2× and 4× medium), no targets."""
AD_HOC_SCALE = re.compile(r"(\d+)x(\d+)")
"""A scale given as AD_SETSxDAYS on the command line (e.g. a tiny scaling run to try the bench)."""


def scale_named(name: str) -> Scale | None:
    if name in SCALES:
        return SCALES[name]
    match = AD_HOC_SCALE.fullmatch(name)
    if match and int(match[1]) > 0 and int(match[2]) > 1:
        return Scale(name, int(match[1]), int(match[2]))
    return None


DATED_FILES = tuple(raw_file for raw_file in REQUIRED_RAW_FILES if raw_file.dates)
"""The files an export grows day by day; audience_segments.csv is a snapshot."""


def cached(folder: Path, build: Callable[[Path], None]) -> Path:
    """Built once into a sibling folder and renamed when complete, so an interrupted build is never
    taken for a cached one."""
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    build(partial)
    partial.rename(folder)
    print(f"  built {folder} in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def generate(out: Path, ad_sets: int, days: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "marketing_ml.sample_data",
            "--out",
            str(out),
            "--ad-sets",
            str(ad_sets),
            "--days",
            str(days),
            "--seed",
            str(SEED),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def last_day_start(data: bytes, date_column: int) -> int:
    """Where the last day's first line starts: the generator writes rows day by day, so the bytes
    before it are the export as it stood the day before."""
    last_line = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    day = last_line.split(b",")[date_column]
    found = data.find((b"\n" if date_column == 0 else b",") + day + b",")
    return data.rfind(b"\n", 0, found + 1) + 1 if found >= 0 else 0


def write_initial(next_export: Path, initial: Path) -> None:
    """Each dated file without its last day; the audience file unchanged."""
    for raw_file in REQUIRED_RAW_FILES:
        source, target = next_export / raw_file.file_name, initial / raw_file.file_name
        if not raw_file.dates:
            shutil.copyfile(source, target)
            continue
        data = source.read_bytes()
        prefix = memoryview(data)[: last_day_start(data, raw_file.columns.index(raw_file.dates[0]))]
        assert 0 < len(prefix) < len(data), f"no last day to split off {source}"
        target.write_bytes(prefix)
        assert data.startswith(target.read_bytes()), f"{target} is not a prefix of {source}"


def ensure_data(scale: Scale, data_root: Path) -> tuple[Path, Path]:
    """The scale's days plus one, and the same files without that last day: the whole graph runs on
    the initial files, the daily refresh on the next day's export. Generated once per (scale, seed)
    and reused: the CSVs are a pure function of the seed."""
    next_export = cached(
        data_root / f"{scale.ad_sets}x{scale.days}+1-seed{SEED}",
        lambda out: generate(out, scale.ad_sets, scale.days + 1),
    )
    initial = cached(
        data_root / f"{next_export.name}-initial", lambda out: write_initial(next_export, out)
    )
    return initial, next_export


def appended_rows(initial: Path, next_export: Path) -> dict[str, int]:
    """Data rows the next day's export adds to each dated file: the newlines after the initial
    bytes."""
    rows = {}
    for raw_file in DATED_FILES:
        with (next_export / raw_file.file_name).open("rb") as stream:
            stream.seek((initial / raw_file.file_name).stat().st_size)
            rows[raw_file.file_name] = stream.read().count(b"\n")
    return rows


def bare_scan_seconds(raw: Path, repeats: int = 3) -> float:
    """DuckDB reading all four CSVs once (every field as text, counted): the lower bound."""
    sql = " UNION ALL ".join(
        f"SELECT count(*) FROM read_csv('{raw / raw_file.file_name}', all_varchar = true, "
        "header = true)"
        for raw_file in REQUIRED_RAW_FILES
    )
    times = []
    with duckdb.connect() as connection:
        for _ in range(repeats):
            started = time.perf_counter()
            connection.execute(sql).fetchall()
            times.append(time.perf_counter() - started)
    return round(min(times), 3)


def raw_facts(raw: Path) -> dict:
    sizes = sum((raw / raw_file.file_name).stat().st_size for raw_file in REQUIRED_RAW_FILES)
    with duckdb.connect() as connection:
        events = connection.execute(
            f"SELECT count(*) FROM read_csv('{raw / 'conversion_events.csv'}', all_varchar = true)"
        ).fetchone()[0]
        performance = connection.execute(
            f"SELECT count(*) FROM read_csv('{raw / 'meta_campaign_performance.csv'}', "
            "all_varchar = true)"
        ).fetchone()[0]
    return {
        "csv_bytes": sizes,
        "csv_mib": round(sizes / 2**20, 1),
        "conversion_events": events,
        "performance_rows": performance,
    }
