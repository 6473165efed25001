"""The bench package's pure parts (scripts/bench/): how it splits off the appended day, reads a
scale, sums steps by layer, and renders BENCHMARKS.md from the committed JSON files."""

import json

import pytest

from marketing_ml_tests.support import REPOSITORY
from scripts.bench.bench_data import Scale, last_day_start, scale_named
from scripts.bench.bench_report import JSON_NAMES, NOTES, render
from scripts.bench.step_layers import bronze_to_gold_seconds, by_layer


def test_benchmarks_md_is_what_the_bench_renders_from_the_committed_json():
    """Every row, section and note of BENCHMARKS.md comes back from benchmarks/*.json: a row the
    renderer drops or rewords, or a section it moves, shows here."""
    committed = (REPOSITORY / "BENCHMARKS.md").read_text()
    runs = {
        kind: json.loads((REPOSITORY / "benchmarks" / name).read_text())
        for kind, name in JSON_NAMES.items()
        if (REPOSITORY / "benchmarks" / name).exists()
    }
    assert "duckdb" in runs
    assert render(runs, committed[committed.index(NOTES) :]) == committed


@pytest.mark.parametrize(
    ("data", "date_column", "last_day"),
    [
        (b"date,v\n2024-01-01,1\n2024-01-01,2\n2024-01-02,3\n2024-01-02,4\n", 0, b"2024-01-02,3\n"),
        (b"id,date,v\n1,2024-01-01,a\n2,2024-01-02,b\n3,2024-01-02,c\n", 1, b"2,2024-01-02,b\n"),
    ],
)
def test_last_day_starts_at_the_first_line_of_the_last_date(data, date_column, last_day):
    """The initial files are the export without its last day: cut a line early and the daily
    refresh appends a day and a half, cut late and half a day is counted twice."""
    start = last_day_start(data, date_column)
    assert data[start:].startswith(last_day)
    assert b"2024-01-02" not in data[:start]


def test_a_scale_is_a_name_or_ad_sets_by_days():
    assert scale_named("large") == Scale("large", 2000, 365)
    assert scale_named("20x30") == Scale("20x30", 20, 30)
    assert scale_named("0x30") is None  # no ad sets
    assert scale_named("20x1") is None  # no day left once the last one is split off
    assert scale_named("huge") is None


def test_bronze_to_gold_leaves_out_the_ml_assets_and_layers_add_up_to_the_wall_time():
    run = {
        "wall_s": 20.0,
        "steps": {
            "bronze__conversion_events": 3.0,
            "silver__conversion_events": 2.0,
            "silver_conversion_events_rules": 0.5,
            "gold__daily_adset_metrics": 1.5,
            "gold__features": 4.0,
            "models__pacing_risk_model": 5.0,
            "gold__scored_adsets": 1.0,
            "publish": 0.5,
        },
    }
    assert bronze_to_gold_seconds(run["steps"]) == 7.0
    layers = by_layer(run)
    assert layers["bronze"] == 3.0
    assert layers["checks"] == 0.5
    assert layers["models"] == 5.0
    assert layers["publish + report"] == 0.5
    assert layers["start-up and Dagster"] == 2.5
    assert sum(layers.values()) == pytest.approx(run["wall_s"])
