"""What a bench run leaves behind: its JSON (one file per kind of run, side by side in
benchmarks/) and BENCHMARKS.md rendered from every one of them that exists, so a run of one
engine keeps the others' sections and the hand-written notes."""

import json
from pathlib import Path

from .duckdb_section import markdown
from .spark_section import spark_markdown

JSON_NAMES = {
    "duckdb": "latest.json",
    "spark": "latest-spark.json",
    "spark-cluster": "latest-spark-cluster.json",
}
"""Each kind of run's JSON file, side by side in one folder (benchmarks/): BENCHMARKS.md is
rendered from all of them."""
NOTES = "\n## Notes"
"""A hand-written section of BENCHMARKS.md that a new run keeps."""


def scaling(results: list[dict]) -> dict | None:
    """Each scale's whole graph and daily refresh against the first scale's (the 1×): the time
    ratio against the data ratio (CSV bytes; rows, conversion events plus performance rows, shown
    too). At most linear when the time ratio is no more than the data ratio."""
    if len(results) < 2:
        return None
    base = results[0]

    def data_rows(result: dict) -> int:
        return result["conversion_events"] + result["performance_rows"]

    rows = []
    for result in results:
        data_ratio = result["csv_bytes"] / base["csv_bytes"]
        row = {
            "scale": result["scale"],
            "csv_mib": result["csv_mib"],
            "data_ratio": round(data_ratio, 2),
            "rows_ratio": round(data_rows(result) / data_rows(base), 2),
        }
        for run in ("full_graph", "daily_refresh"):
            seconds, base_seconds = result[run]["wall_s"], base[run]["wall_s"]
            failed = result[run]["returncode"] != 0 or base[run]["returncode"] != 0
            ratio = seconds / base_seconds
            row[run] = {
                "wall_s": seconds,
                "time_ratio": round(ratio, 2),
                "verdict": "run failed"
                if failed
                else "at most linear"
                if ratio <= data_ratio
                else "more than linear",
            }
        rows.append(row)
    return {"base": base["scale"], "data_ratio_of": "CSV bytes", "scales": rows}


def render(runs: dict[str, dict], notes: str) -> str:
    """BENCHMARKS.md from every kind of run there are results for: DuckDB's section as `markdown`
    renders it, then Spark's in local mode and on a cluster, then the hand-written notes."""
    text = ""
    if "duckdb" in runs:
        duckdb_run = runs["duckdb"]
        text = markdown(duckdb_run["results"], duckdb_run)
    else:
        text = "# Benchmarks\n"
    for kind in ("spark", "spark-cluster"):
        if kind in runs:
            text += spark_markdown(runs[kind], kind, JSON_NAMES[kind])
    return text + notes


def write_run(run: dict, kind: str, json_path: Path, markdown_path: Path) -> None:
    """This run's JSON, then BENCHMARKS.md from it, the other kinds' JSON files beside it, and the
    notes the previous BENCHMARKS.md ended with."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(run, indent=2, default=str))
    runs = {kind: run}
    for other_kind, name in JSON_NAMES.items():
        other = json_path.parent / name
        if other_kind not in runs and other.exists():
            runs[other_kind] = json.loads(other.read_text())
    previous = markdown_path.read_text() if markdown_path.exists() else ""
    notes = previous[previous.index(NOTES) :] if NOTES in previous else ""
    markdown_path.write_text(render(runs, notes))
