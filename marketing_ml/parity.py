"""Are two lakehouse files the same data? Table by table, rows as multisets (order-free).

Two engines (DuckDB, Spark) building the same graph must publish the same serving file up to
the things engines legitimately do differently: row order, the last bits of a double, how a
double is spelled inside JSON text. This module compares with exactly that much slack:

* the same tables ("schema.table"), the same column names (in any order), the same row count;
* rows matched as a multiset: a duplicated row on one side is a difference;
* floats equal within a relative tolerance (1e-9 by default; 1e-12 absolute near zero),
  NaN equal to NaN, NULL equal to NULL (and to nothing else);
* text byte-equal, except text that parses as a JSON object or array, which compares as the
  parsed JSON with the same float tolerance;
* dates and timestamps equal as instants (a DATE equals a timestamp at its midnight), lists
  element by element.

`compare_frames` is the core (two pandas frames, e.g. one collected from Spark); `compare_databases`
runs it on every table of two DuckDB files. The command line:

    python -m marketing_ml.parity LEFT.duckdb RIGHT.duckdb [--ignore-column C ...] [--table T ...]

prints the differences and exits 1 if there are any, else prints "N tables equal" and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from marketing_ml.sql import quote_identifier

REL_TOL = 1e-9
ABS_TOL = 1e-12
KEY_DIGITS = 9
"""Significant digits of a float in the sort/match key (never in the comparison itself)."""
EXAMPLES = 5
"""Differing rows shown per table and kind of difference."""
GREEDY_LIMIT = 250_000
"""Pairs tried when matching rows whose keys differ but whose values may be within tolerance."""


# ---------------------------------------------------------------------------------------------
# Values: normalised once, then keyed (hashable, sortable) and compared (with tolerance)


class Json:
    """Text that parses as a JSON object or array: compared as the parsed value."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class Instant:
    """A date or timestamp, as a naive UTC datetime (a date is its midnight)."""

    __slots__ = ("value",)

    def __init__(self, value: dt.datetime):
        self.value = value


_MISSING = object()


def _parse_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return _MISSING
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return _MISSING
    return parsed if isinstance(parsed, dict | list) else _MISSING


def normalize(value: Any, *, in_json: bool = False) -> Any:
    """One cell as None, bool, int, float, str, bytes, Json, Instant, list or dict."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, str):
        if not in_json:
            parsed = _parse_json(value)
            if parsed is not _MISSING:
                return Json(normalize(parsed, in_json=True))
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, pd.Timestamp):
        if pd.isna(value):
            return None
        value = value.to_pydatetime()
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        value = pd.Timestamp(value).to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return Instant(value)
    if isinstance(value, dt.date):
        return Instant(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, dict):
        return {str(k): normalize(v, in_json=in_json) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [normalize(v, in_json=in_json) for v in value]
    if hasattr(value, "asDict"):  # a pyspark Row inside a struct column
        return normalize(value.asDict(recursive=True), in_json=in_json)
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return ("timedelta", pd.Timedelta(value).value)
    return value


def _round(number: float) -> float:
    if abs(number) < ABS_TOL:
        return 0.0
    return float(f"{number:.{KEY_DIGITS - 1}e}")


def key(value: Any) -> tuple:
    """A hashable, totally ordered key of a normalised value; floats rounded."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int):
        return (2, value)
    if isinstance(value, float):
        if math.isnan(value):
            return (3,)
        return (2, _round(value))
    if isinstance(value, str):
        return (4, value)
    if isinstance(value, bytes):
        return (5, value)
    if isinstance(value, Instant):
        return (6, value.value)
    if isinstance(value, list):
        return (7, tuple(key(v) for v in value))
    if isinstance(value, dict):
        return (8, tuple(sorted((k, key(v)) for k, v in value.items())))
    if isinstance(value, Json):
        return (9, key(value.value))
    return (10, repr(value))


def close(a: float, b: float, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    if a == b:
        return True
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(rel_tol * max(abs(a), abs(b)), abs_tol)


def equal(a: Any, b: Any, rel_tol: float = REL_TOL) -> bool:
    """Two normalised values: equal up to float tolerance, NaN == NaN, NULL only == NULL."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return close(float(a), float(b), rel_tol)
    if isinstance(a, Json) and isinstance(b, Json):
        return equal(a.value, b.value, rel_tol)
    if isinstance(a, Instant) and isinstance(b, Instant):
        return a.value == b.value
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y, rel_tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k], rel_tol) for k in a)
    if type(a) is not type(b):
        return False
    return a == b


def first_difference(a: Any, b: Any, rel_tol: float = REL_TOL, path: str = "$") -> str:
    """Where two unequal normalised JSON values first differ, as "$.key[2]: left=… right=…"."""
    if isinstance(a, Json) and isinstance(b, Json):
        return first_difference(a.value, b.value, rel_tol, path)
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return (
                f"{path}: keys only in left {sorted(a.keys() - b.keys())}, "
                f"only in right {sorted(b.keys() - a.keys())}"
            )
        for k in a:
            if not equal(a[k], b[k], rel_tol):
                return first_difference(a[k], b[k], rel_tol, f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in left, {len(b)} in right"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if not equal(x, y, rel_tol):
                return first_difference(x, y, rel_tol, f"{path}[{index}]")
    return f"{path}: left={_show(a)} right={_show(b)}"


def kind(value: Any) -> str | None:
    """The coarse type of a normalised value (None for NULL), for column-type differences."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str | Json):
        return "text"
    if isinstance(value, Instant):
        return "date/time"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "struct"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# Frames


def _show(value: Any, limit: int = 80) -> str:
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, Instant):
        value = value.value
    if isinstance(value, Json | dict | list):
        value = _plain(value)
    if isinstance(value, pd.Timestamp | dt.date):
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, Json):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Instant):
        return str(value.value)
    return value


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    if not columns:
        return [() for _ in range(len(frame))]
    normalised = []
    for column in columns:
        series = frame[column]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":  # the common case
            values = series.tolist()
        else:
            values = [normalize(v) for v in series.tolist()]
        normalised.append(values)
    return list(zip(*normalised, strict=True))


def _label(columns: list[str], raw: pd.DataFrame, index: int, differing: Sequence[str]) -> str:
    """A row: its first few columns (they identify it, usually), then the differing ones."""
    shown = [c for c in columns[:3] if c not in differing]
    parts = [f"{c}={_show(raw[c].iloc[index])}" for c in shown]
    if not parts:
        return ""
    return "(" + ", ".join(parts) + (", ...)" if len(columns) > len(shown) else ")")


def compare_frames(
    left: pd.DataFrame,
    right: pd.DataFrame,
    name: str = "table",
    rel_tol: float = REL_TOL,
    ignore_columns: Collection[str] = (),
) -> list[str]:
    """Differences between two frames as multisets of rows (empty = equal); see the module."""
    ignored = set(ignore_columns)
    left_columns = [str(c) for c in left.columns if str(c) not in ignored]
    right_columns = [str(c) for c in right.columns if str(c) not in ignored]
    left = left.set_axis([str(c) for c in left.columns], axis=1).reset_index(drop=True)
    right = right.set_axis([str(c) for c in right.columns], axis=1).reset_index(drop=True)
    differences: list[str] = []
    for side, columns in (("left", left_columns), ("right", right_columns)):
        repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
        if repeated:
            differences.append(f"{name}: column names repeated in {side}: {repeated}")
            return differences
    only_left = [c for c in left_columns if c not in set(right_columns)]
    only_right = [c for c in right_columns if c not in set(left_columns)]
    if only_left or only_right:
        differences.append(
            f"{name}: columns differ: only in left {only_left}, only in right {only_right}"
        )
    columns = [c for c in left_columns if c in set(right_columns)]
    if len(left) != len(right):
        differences.append(f"{name}: {len(left)} rows in left, {len(right)} in right")

    left_rows = _rows(left, columns)
    right_rows = _rows(right, columns)

    for position, column in enumerate(columns):
        kinds_left = {kind(row[position]) for row in left_rows} - {None}
        kinds_right = {kind(row[position]) for row in right_rows} - {None}
        if kinds_left and kinds_right and kinds_left != kinds_right:
            differences.append(
                f"{name}.{column}: values are {'/'.join(sorted(kinds_left))} in left, "
                f"{'/'.join(sorted(kinds_right))} in right"
            )

    # Match rows as multisets by their rounded keys, then check every match with tolerance.
    left_keys = [tuple(key(v) for v in row) for row in left_rows]
    right_keys = [tuple(key(v) for v in row) for row in right_rows]
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for index in sorted(range(len(right_keys)), key=right_keys.__getitem__, reverse=True):
        by_key[right_keys[index]].append(index)
    pairs: list[tuple[int, int]] = []
    left_over: list[int] = []
    for index in sorted(range(len(left_keys)), key=left_keys.__getitem__):
        candidates = by_key.get(left_keys[index])
        if candidates:
            pairs.append((index, candidates.pop()))
        else:
            left_over.append(index)
    right_over = sorted(
        (i for indices in by_key.values() for i in indices), key=right_keys.__getitem__
    )

    def row_equal(i: int, j: int) -> bool:
        return all(equal(a, b, rel_tol) for a, b in zip(left_rows[i], right_rows[j], strict=True))

    # A pair whose keys agree but whose values do not (past the key's rounding) goes back to the
    # pools: among several rows of one key, another partner may be the right one.
    unequal = [(i, j) for i, j in pairs if not row_equal(i, j)]
    if unequal:
        left_over = sorted([*left_over, *(i for i, _ in unequal)], key=left_keys.__getitem__)
        right_over = sorted([*right_over, *(j for _, j in unequal)], key=right_keys.__getitem__)
    mismatched: list[tuple[int, int]] = []
    # Keys differ but values may still be within tolerance (a float across a rounding boundary).
    if left_over and right_over and len(left_over) * len(right_over) <= GREEDY_LIMIT:
        still_left = []
        for i in left_over:
            for position, j in enumerate(right_over):
                if row_equal(i, j):
                    del right_over[position]
                    break
            else:
                still_left.append(i)
        left_over = still_left
    # What is left pairs up in key order as "differing rows"; the rest is on one side only.
    paired = min(len(left_over), len(right_over))
    mismatched += list(zip(left_over[:paired], right_over[:paired], strict=True))
    left_only, right_only = left_over[paired:], right_over[paired:]

    if mismatched:
        differences.append(
            f"{name}: {len(mismatched)} row(s) differ"
            + (f" (first {EXAMPLES})" if len(mismatched) > EXAMPLES else "")
        )
        for i, j in sorted(mismatched)[:EXAMPLES]:
            differing = [
                c
                for position, c in enumerate(columns)
                if not equal(left_rows[i][position], right_rows[j][position], rel_tol)
            ]
            details = "; ".join(
                f"{c}: JSON differs at "
                + first_difference(left_rows[i][p], right_rows[j][p], rel_tol)
                if isinstance(left_rows[i][p], Json) and isinstance(right_rows[j][p], Json)
                else f"{c}: left={_show(left[c].iloc[i])} right={_show(right[c].iloc[j])}"
                for p, c in enumerate(columns)
                if c in differing
            )
            label = _label(columns, left, i, differing)
            differences.append(f"  {name} row{' ' + label if label else ''}: {details}")
    for side, frame, indices in (("left", left, left_only), ("right", right, right_only)):
        if not indices:
            continue
        differences.append(
            f"{name}: {len(indices)} row(s) only in {side}"
            + (f" (first {EXAMPLES})" if len(indices) > EXAMPLES else "")
        )
        for index in indices[:EXAMPLES]:
            values = ", ".join(f"{c}={_show(frame[c].iloc[index], 40)}" for c in columns)
            differences.append(f"  {name} only in {side}: ({values})")
    return differences


# ---------------------------------------------------------------------------------------------
# DuckDB files


def list_tables(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Every base table of the connection's own database, as "schema.table"."""
    rows = connection.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary ORDER BY 1, 2"
    ).fetchall()
    return [f"{schema}.{table}" for schema, table in rows]


def _qualified(name: str) -> str:
    schema, _, table = name.rpartition(".")
    return f"{quote_identifier(schema or 'main')}.{quote_identifier(table)}"


def read_table(connection: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    relation = connection.sql(f"SELECT * FROM {_qualified(name)}")
    result = relation.arrow()
    if hasattr(result, "read_all"):  # DuckDB 1.4+: a RecordBatchReader
        result = result.read_all()
    return result.to_pandas()


def _normal_name(name: str) -> str:
    return name if "." in name else f"main.{name}"


def compare_databases(
    left: Path,
    right: Path,
    tables: Sequence[str] | None = None,
    ignore_columns: Collection[str] = (),
    rel_tol: float = REL_TOL,
) -> list[str]:
    """Differences between two DuckDB files (empty = equal).

    `tables`: "schema.table" names (a bare name is "main.name"); default every table of both.
    `ignore_columns`: "column" (in every table) or "schema.table.column".
    """
    differences: list[str] = []
    for path in (left, right):
        if not Path(path).is_file():
            return [f"{path}: no such file"]
    with (
        duckdb.connect(str(left), read_only=True) as left_db,
        duckdb.connect(str(right), read_only=True) as right_db,
    ):
        left_tables, right_tables = set(list_tables(left_db)), set(list_tables(right_db))
        names = (
            sorted(left_tables | right_tables)
            if tables is None
            else [_normal_name(t) for t in tables]
        )
        for name in names:
            missing = [
                side
                for side, present in (("left", left_tables), ("right", right_tables))
                if name not in present
            ]
            if missing:
                where = " and ".join(
                    f"{side} ({p})"
                    for side, p in zip(("left", "right"), (left, right), strict=True)
                    if side in missing
                )
                differences.append(f"{name}: table missing in {where}")
                continue
            ignored = {c for c in ignore_columns if "." not in c} | {
                c.rpartition(".")[2]
                for c in ignore_columns
                if "." in c and c.rpartition(".")[0] == name
            }
            differences += compare_frames(
                read_table(left_db, name),
                read_table(right_db, name),
                name,
                rel_tol=rel_tol,
                ignore_columns=ignored,
            )
    return differences


def compared_table_count(left: Path, right: Path) -> int:
    with (
        duckdb.connect(str(left), read_only=True) as left_db,
        duckdb.connect(str(right), read_only=True) as right_db,
    ):
        return len(set(list_tables(left_db)) | set(list_tables(right_db)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m marketing_ml.parity",
        description="Compare two DuckDB files table by table, rows as multisets, floats within "
        "a relative tolerance. Exit status 1 when they differ.",
    )
    parser.add_argument("left", type=Path)
    parser.add_argument("right", type=Path)
    parser.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        metavar="C",
        help='"column" in every table, or "schema.table.column"; repeatable',
    )
    parser.add_argument(
        "--table",
        action="append",
        default=None,
        metavar="T",
        help='compare only this "schema.table"; repeatable (default: every table of both)',
    )
    parser.add_argument("--rel-tol", type=float, default=REL_TOL)
    args = parser.parse_args(argv)
    differences = compare_databases(
        args.left, args.right, args.table, args.ignore_column, rel_tol=args.rel_tol
    )
    if differences:
        print(f"{args.left} and {args.right} differ:")
        for line in differences:
            print(line)
        return 1
    count = len(args.table) if args.table else compared_table_count(args.left, args.right)
    print(f"{count} tables equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
