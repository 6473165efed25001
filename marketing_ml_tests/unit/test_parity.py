"""marketing_ml.parity: two DuckDB files compared table by table, rows as multisets."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from marketing_ml.parity import compare_databases, compare_frames, main

SCHEMA = """
CREATE SCHEMA gold;
CREATE TABLE gold.metrics (
    ad_set_id VARCHAR, date DATE, spend DOUBLE, clicks BIGINT, note VARCHAR, draws DOUBLE[]
);
CREATE TABLE gold.model (name VARCHAR, metrics VARCHAR, trained_at TIMESTAMP);
"""
METRICS = [
    ("AS_001", "2024-01-01", 120.5, 10, "ok", [1.0, 2.5]),
    ("AS_001", "2024-01-02", 0.0, 0, None, []),
    ("AS_002", "2024-01-01", float("nan"), 3, "it's", None),
    ("AS_003", "2024-01-01", 1e-300, 7, "x", [0.1]),
]
MODEL_METRICS = {"auc": 0.7702984537935994, "curve": [0.1, 1 / 3, 2e-7], "status": "ok"}


def write(path: Path, metrics=METRICS, model_json: str | None = None, extra_sql: str = "") -> Path:
    with duckdb.connect(str(path)) as db:
        db.execute(SCHEMA)
        db.executemany(
            "INSERT INTO gold.metrics VALUES (?, ?, ?, ?, ?, ?)", [list(r) for r in metrics]
        )
        db.execute(
            "INSERT INTO gold.model VALUES ('conversion', ?, TIMESTAMP '2024-01-03 04:05:06')",
            [model_json if model_json is not None else json.dumps(MODEL_METRICS)],
        )
        if extra_sql:
            db.execute(extra_sql)
    return path


@pytest.fixture
def left(tmp_path):
    return write(tmp_path / "left.duckdb")


def differ(left: Path, tmp_path: Path, **right) -> list[str]:
    return compare_databases(left, write(tmp_path / "right.duckdb", **right))


def with_row(index: int, **changes) -> list[tuple]:
    rows = [list(r) for r in METRICS]
    names = ["ad_set_id", "date", "spend", "clicks", "note", "draws"]
    for column, value in changes.items():
        rows[index][names.index(column)] = value
    return [tuple(r) for r in rows]


def test_identical_files_and_reordered_rows_are_equal(left, tmp_path):
    assert differ(left, tmp_path, metrics=list(reversed(METRICS))) == []
    assert compare_databases(left, left) == []


def test_a_changed_value_is_reported_with_the_row_and_both_values(left, tmp_path):
    differences = differ(left, tmp_path, metrics=with_row(0, clicks=11))
    assert differences[0] == "gold.metrics: 1 row(s) differ"
    assert "ad_set_id='AS_001'" in differences[1] and "clicks: left=10 right=11" in differences[1]
    assert len(differences) == 2


def test_floats_compare_with_a_relative_tolerance_of_1e_9(left, tmp_path):
    assert differ(left, tmp_path, metrics=with_row(0, spend=120.5 * (1 + 1e-12))) == []
    (tmp_path / "right.duckdb").unlink()
    differences = differ(left, tmp_path, metrics=with_row(0, spend=120.5 * (1 + 1e-6)))
    assert any("spend: left=120.5 right=120.50012" in line for line in differences)
    (tmp_path / "right.duckdb").unlink()
    # near zero: an absolute tolerance of 1e-12; list elements too
    assert differ(left, tmp_path, metrics=with_row(1, spend=1e-15, draws=[])) == []
    (tmp_path / "right.duckdb").unlink()
    assert differ(left, tmp_path, metrics=with_row(0, draws=[1.0, 2.5 + 1e-6]))


def test_rows_are_a_multiset_a_missing_or_duplicated_row_is_a_difference(left, tmp_path):
    missing = differ(left, tmp_path, metrics=METRICS[1:])
    assert missing[0] == "gold.metrics: 4 rows in left, 3 in right"
    assert missing[1] == "gold.metrics: 1 row(s) only in left"
    assert "ad_set_id='AS_001'" in missing[2] and "spend=120.5" in missing[2]
    (tmp_path / "right.duckdb").unlink()
    duplicated = differ(left, tmp_path, metrics=[*METRICS, METRICS[2]])
    assert duplicated[0] == "gold.metrics: 4 rows in left, 5 in right"
    assert duplicated[1] == "gold.metrics: 1 row(s) only in right"
    assert "ad_set_id='AS_002'" in duplicated[2]


def test_nan_equals_nan_and_null_equals_only_null(left, tmp_path):
    assert differ(left, tmp_path, metrics=with_row(2, spend=0.0))  # NaN vs 0
    (tmp_path / "right.duckdb").unlink()
    differences = differ(left, tmp_path, metrics=with_row(1, note="x"))
    assert any("note: left=None right='x'" in line for line in differences)
    (tmp_path / "right.duckdb").unlink()
    assert differ(left, tmp_path, metrics=with_row(2, draws=[]))  # NULL list vs empty list


def test_a_missing_table_and_an_extra_column_are_reported(left, tmp_path):
    differences = differ(left, tmp_path, extra_sql="DROP TABLE gold.model")
    assert differences == [f"gold.model: table missing in right ({tmp_path / 'right.duckdb'})"]
    (tmp_path / "right.duckdb").unlink()
    extra = "ALTER TABLE gold.metrics ADD COLUMN booster BLOB"
    differences = differ(left, tmp_path, extra_sql=extra)
    assert differences == [
        "gold.metrics: columns differ: only in left [], only in right ['booster']"
    ]
    right = tmp_path / "right.duckdb"
    assert compare_databases(left, right, ignore_columns=["booster"]) == []
    assert compare_databases(left, right, ignore_columns=["gold.metrics.booster"]) == []
    assert compare_databases(left, right, tables=["gold.model"]) == []


def test_column_order_does_not_matter():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert compare_frames(frame, frame[["b", "a"]].iloc[::-1], "t") == []


def test_json_text_compares_as_json_with_float_tolerance(left, tmp_path):
    # another engine's spelling: keys reordered, other separators, doubles formatted differently
    respelled = (
        '{ "status": "ok", "curve": [1.0E-1, 0.33333333333333337, 2.0000000000000002e-07], '
        '"auc": 7.702984537935994e-1 }'
    )
    assert differ(left, tmp_path, model_json=respelled) == []
    (tmp_path / "right.duckdb").unlink()
    changed = json.dumps({**MODEL_METRICS, "auc": 0.771})
    differences = differ(left, tmp_path, model_json=changed)
    assert differences[0] == "gold.model: 1 row(s) differ"
    assert "metrics: JSON differs at $.auc: left=0.7702984537935994 right=0.771" in differences[1]
    # text that is not JSON stays byte-equal
    assert compare_frames(pd.DataFrame({"t": ["1.0"]}), pd.DataFrame({"t": ["1.00"]}), "t")


def test_dates_and_timestamps_compare_as_instants():
    dates = pd.DataFrame({"d": [pd.Timestamp("2024-01-01").date()]})
    assert compare_frames(dates, pd.DataFrame({"d": [pd.Timestamp("2024-01-01")]}), "t") == []
    assert compare_frames(dates, pd.DataFrame({"d": [pd.Timestamp("2024-01-02").date()]}), "t")


def test_command_line_exit_status(left, tmp_path, capsys):
    assert main([str(left), str(left)]) == 0
    assert capsys.readouterr().out.strip() == "2 tables equal"
    right = write(tmp_path / "right.duckdb", metrics=METRICS[1:])
    assert main([str(left), str(right)]) == 1
    assert "only in left" in capsys.readouterr().out


def test_rows_that_share_a_rounded_key_still_find_their_partner_within_tolerance():
    left = pd.DataFrame({"k": ["a", "a"], "x": [1.0, 1.000000003]})
    right = pd.DataFrame({"k": ["a", "a"], "x": [1.000000003 * (1 + 1e-12), 1.0]})
    assert compare_frames(left, right, "t") == []
    differences = compare_frames(left.iloc[:1], right.iloc[:1], "t")  # 3e-9 apart: differ
    assert differences[0] == "t: 1 row(s) differ"
    assert "x: left=1.0 right=1.000000003" in differences[1]
