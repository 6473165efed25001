"""Parameterised SQL against the serving file: filters and aggregations run in DuckDB.

A query opens its own read-only connection and closes it at once, or runs on one that a batch of
queries shares for a fraction of a second (`connected_fetcher`): a held connection, even a
read-only one, would make the next publish wait on the file lock and fail. Widget values only
ever reach DuckDB as `?` parameters.
"""

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from serving_contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PLAN,
    BUDGET_PLAN_SUMMARY,
    DAILY_METRICS,
    MODEL_CARD_COLUMNS,
    MODEL_JSON_COLUMNS,
    RESPONSE_CURVE_BACKTEST,
    RESPONSE_CURVES,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
)

DEFAULT_SERVING_DB = "data/serving.duckdb"
AdSetIds = Sequence[str] | None
"""The ad sets a query covers: None for every ad set (no IN list in the SQL at all)."""
Source = Path | duckdb.DuckDBPyConnection
"""The serving file (a connection per query) or a read-only connection already open on it."""


def serving_path() -> Path:
    """MARKETING_ML_SERVING_DB, read on every rerun so a test or a shell can repoint the app."""
    return Path(os.environ.get("MARKETING_ML_SERVING_DB") or DEFAULT_SERVING_DB)


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of the serving file: part of every cache key, so a new publish shows at once."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection; retried briefly while a publish swaps the file."""
    for attempt in range(3):
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            if attempt == 2:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def query(source: Source, sql: str, parameters: Sequence = ()) -> pd.DataFrame:
    """Run one query; given the file rather than a connection, on a connection of its own."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        return source.execute(sql, list(parameters)).df()
    with connect(source) as connection:
        return connection.execute(sql, list(parameters)).df()


def scope(ad_set_ids: AdSetIds, start: date, end: date) -> tuple[str, list]:
    """The filter every fact query shares and its parameters: the period, and the chosen ad sets
    as a semi-join (twice as fast as `list_contains` against 2,000 ids), or no ad-set condition
    at all for every ad set."""
    if ad_set_ids is None:
        return "date BETWEEN ? AND ?", [start, end]
    return "ad_set_id IN (SELECT unnest(?)) AND date BETWEEN ? AND ?", [
        list(ad_set_ids),
        start,
        end,
    ]


def tables(source: Source) -> frozenset[str]:
    frame = query(
        source, "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables"
    )
    return frozenset(frame["name"])


def ad_sets(source: Source) -> pd.DataFrame:
    return query(
        source,
        f"SELECT ad_set_id, any_value(ad_set_name ORDER BY date DESC) AS ad_set_name "
        f"FROM {DAILY_METRICS} GROUP BY ad_set_id ORDER BY ad_set_id",
    )


def ad_set_count(source: Source) -> int:
    frame = query(source, f"SELECT count(DISTINCT ad_set_id) AS ad_sets FROM {DAILY_METRICS}")
    return int(frame["ad_sets"].iloc[0])


def date_bounds(source: Source) -> tuple[date, date]:
    frame = query(source, f"SELECT min(date) AS first, max(date) AS last FROM {DAILY_METRICS}")
    return frame["first"].iloc[0].date(), frame["last"].iloc[0].date()


def kpis(source: Source, ad_set_ids: AdSetIds, start: date, end: date) -> dict:
    """Spend, revenue, bookings, ROAS and CPA over the filter; `days` is how many dates had data."""
    where, parameters = scope(ad_set_ids, start, end)
    frame = query(
        source,
        f"""
SELECT
    sum(spend) AS spend,
    sum(revenue) AS revenue,
    sum(bookings) AS bookings,
    sum(revenue) / nullif(sum(spend), 0) AS roas,
    sum(spend) / nullif(sum(bookings), 0) AS cpa,
    count(DISTINCT date) AS days
FROM {DAILY_METRICS}
WHERE {where}""",
        parameters,
    )
    row = frame.iloc[0]
    return {name: None if pd.isna(value) else float(value) for name, value in row.items()}


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of equal length that ends the day before `start`."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def daily_spend_revenue(source: Source, ad_set_ids: AdSetIds, start: date, end: date):
    """Per day: spend, revenue, ROAS and 7-day moving averages (which look back before `start`)."""
    where, parameters = scope(ad_set_ids, start - timedelta(days=6), end)
    return query(
        source,
        f"""
WITH days AS (
    SELECT date, sum(spend) AS spend, sum(revenue) AS revenue
    FROM {DAILY_METRICS}
    WHERE {where}
    GROUP BY date
),
averaged AS (
    SELECT
        date, spend, revenue,
        revenue / nullif(spend, 0) AS roas,
        avg(spend) OVER last_7_days AS spend_7d,
        avg(revenue) OVER last_7_days AS revenue_7d
    FROM days
    WINDOW last_7_days AS (ORDER BY date RANGE BETWEEN INTERVAL 6 DAY PRECEDING AND CURRENT ROW)
)
SELECT date, spend, revenue, roas, spend_7d, revenue_7d
FROM averaged WHERE date >= ? ORDER BY date""",
        [*parameters, start],
    )


def roas_by_ad_set(source: Source, ad_set_ids: AdSetIds, start: date, end: date):
    """One row per ad set with its spend, revenue, bookings and ROAS, best ROAS first."""
    where, parameters = scope(ad_set_ids, start, end)
    return query(
        source,
        f"""
SELECT
    ad_set_id,
    any_value(ad_set_name ORDER BY date DESC) AS ad_set_name,
    coalesce(sum(spend), 0) AS spend,
    coalesce(sum(revenue), 0) AS revenue,
    coalesce(sum(bookings), 0) AS bookings,
    sum(revenue) / nullif(sum(spend), 0) AS roas
FROM {DAILY_METRICS}
WHERE {where}
GROUP BY ad_set_id
ORDER BY roas DESC NULLS LAST, ad_set_id""",
        parameters,
    )


GROUPINGS = {
    "audience": "target_interests",
    "lookalike_source": "lookalike_source",
    "age_band": "target_age",
}
"""Portfolio groupings and the audience attribute each groups by: the audience segment's
interests (from the served silver.audience_segments), the lookalike source and the age band
(columns of the daily metrics)."""


def roas_by_group(source: Source, grouping: str, ad_set_ids: AdSetIds, start: date, end: date):
    """One row per group: its ad sets, spend, revenue and bookings summed over their days in the
    filter, and the ROAS of those sums (never a mean of ad-set ratios), best ROAS first. Ad sets
    without the attribute form the group whose `group_name` is NULL, so the groups' sums are
    the ad sets' sums."""
    where, parameters = scope(ad_set_ids, start, end)
    column = GROUPINGS[grouping]
    if grouping == "audience":
        grouped = f"""
audiences AS (
    SELECT ad_set_id, any_value({column} ORDER BY {column}) AS group_name
    FROM {AUDIENCE_SEGMENTS}
    GROUP BY ad_set_id
),
ad_set_days AS (
    SELECT period.ad_set_id, audiences.group_name, period.spend, period.revenue, period.bookings
    FROM period
    LEFT JOIN audiences ON audiences.ad_set_id = period.ad_set_id
)"""
    else:
        grouped = f"""
ad_set_days AS (
    SELECT ad_set_id, {column} AS group_name, spend, revenue, bookings
    FROM period
)"""
    return query(
        source,
        f"""
WITH period AS (
    SELECT ad_set_id, target_age, lookalike_source, spend, revenue, bookings
    FROM {DAILY_METRICS}
    WHERE {where}
),{grouped}
SELECT
    group_name,
    count(DISTINCT ad_set_id) AS ad_sets,
    coalesce(sum(spend), 0) AS spend,
    coalesce(sum(revenue), 0) AS revenue,
    coalesce(sum(bookings), 0) AS bookings,
    sum(revenue) / nullif(sum(spend), 0) AS roas
FROM ad_set_days
GROUP BY group_name
ORDER BY roas DESC NULLS LAST, group_name NULLS LAST""",
        parameters,
    )


def pacing_by_day(
    source: Source, ad_set_ids: AdSetIds, start: date, end: date, under: float, over: float
):
    """Per day: how many ad sets were under, on or over pace by the sidebar's utilization bands,
    and the planned budget left unspent on the under-paced ones."""
    where, parameters = scope(ad_set_ids, start, end)
    return query(
        source,
        f"""
WITH banded AS (
    SELECT
        date,
        CASE
            WHEN budget_utilization < ? THEN 'under'
            WHEN budget_utilization > ? THEN 'over'
            ELSE 'on'
        END AS band,
        greatest(planned_spend - actual_spend, 0) AS unspent
    FROM {DAILY_METRICS}
    WHERE {where} AND budget_utilization IS NOT NULL
)
SELECT
    date,
    count(*) FILTER (WHERE band = 'under') AS under,
    count(*) FILTER (WHERE band = 'on') AS on_pace,
    count(*) FILTER (WHERE band = 'over') AS over,
    coalesce(sum(unspent) FILTER (WHERE band = 'under'), 0) AS unspent_under
FROM banded
GROUP BY date
ORDER BY date""",
        [under, over, *parameters],
    )


def under_pacing_cost(
    source: Source, ad_set_ids: AdSetIds, start: date, end: date, under: float
) -> pd.DataFrame:
    """Per ad set: under-paced days, the budget they left unspent, and the revenue that budget
    would have earned at the ad set's own ROAS over the period."""
    where, parameters = scope(ad_set_ids, start, end)
    return query(
        source,
        f"""
WITH period AS (
    SELECT
        ad_set_id,
        any_value(ad_set_name ORDER BY date DESC) AS ad_set_name,
        sum(revenue) / nullif(sum(spend), 0) AS roas,
        count(*) FILTER (WHERE budget_utilization < ?) AS under_days,
        coalesce(sum(greatest(planned_spend - actual_spend, 0))
            FILTER (WHERE budget_utilization < ?), 0) AS unspent
    FROM {DAILY_METRICS}
    WHERE {where}
    GROUP BY ad_set_id
)
SELECT ad_set_id, ad_set_name, under_days, unspent, unspent * coalesce(roas, 0) AS revenue_missed
FROM period
ORDER BY revenue_missed DESC, ad_set_id""",
        [under, under, *parameters],
    )


SCORES = {
    SCORED_ADSETS: ("under_pacing_risk",),
    SCORED_CONVERSIONS: ("roas_on_target_prob", "roas_target"),
}
"""The scored tables and the columns the Forecasts tab reads from each."""


def latest_scores(source: Source, table: str) -> pd.DataFrame:
    """Each ad set's score on the latest date the scored table holds."""
    columns = ", ".join(SCORES[table])
    return query(
        source,
        f"""
SELECT ad_set_id, date, {columns}
FROM {table}
WHERE date = (SELECT max(date) FROM {table})
ORDER BY ad_set_id""",
    )


def score_provenance(source: Source, table: str) -> dict:
    """The model version behind a scored table's latest scores and the last day it trained on."""
    frame = query(
        source,
        f"""
SELECT model_version, trained_through, max(date) AS scored_date
FROM {table}
GROUP BY model_version, trained_through
ORDER BY scored_date DESC
LIMIT 1""",
    )
    return frame.iloc[0].to_dict() if len(frame) else {}


def quality_rules(source: Source) -> pd.DataFrame:
    return query(
        source,
        "SELECT rule, table_name, action, rows_affected, status, description "
        "FROM gold.data_quality_report ORDER BY (status = 'pass'), action, rule",
    )


def quarantine_counts(source: Source) -> pd.DataFrame:
    return query(
        source,
        "SELECT rule AS reason, source_file, count(*) AS rows FROM silver.quarantine "
        "GROUP BY ALL ORDER BY rows DESC, reason, source_file",
    )


def row_accounting(source: Source) -> pd.DataFrame:
    return query(
        source,
        "SELECT source_file, file_records, bronze_rows, silver_rows, duplicates_dropped, "
        "quarantined_rows, "
        "balanced FROM gold.row_accounting ORDER BY source_file",
    )


def model_card(source: Source, table: str) -> dict:
    """The model's one row without its booster, JSON columns decoded; columns it lacks are None."""
    present = set(
        query(
            source,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema || '.' || table_name = ?",
            [table],
        )["column_name"]
    )
    columns = [column for column in MODEL_CARD_COLUMNS if column in present]
    frame = query(source, f"SELECT {', '.join(columns)} FROM {table} LIMIT 1")
    row = frame.iloc[0].to_dict() if len(frame) else {}
    card = {column: row.get(column) for column in MODEL_CARD_COLUMNS}
    for column in MODEL_JSON_COLUMNS:
        card[column] = json.loads(card[column]) if isinstance(card[column], str) else None
    return card


def published_plan(source: Source) -> tuple[dict, pd.DataFrame] | None:
    """The plan the last run published (gold.budget_plan_summary's one row, gold.budget_plan by
    ad set); None when the serving file has no plan."""
    if not {BUDGET_PLAN, BUDGET_PLAN_SUMMARY} <= tables(source):
        return None
    summary = query(source, f"SELECT * FROM {BUDGET_PLAN_SUMMARY} LIMIT 1")
    if summary.empty:
        return None
    plan = query(source, f"SELECT * FROM {BUDGET_PLAN} ORDER BY ad_set_id")
    return summary.iloc[0].to_dict(), plan


def response_curve_backtest(source: Source) -> pd.DataFrame:
    """The curves' walk-forward backtest: one row per fold and ad set (empty if not built)."""
    if RESPONSE_CURVE_BACKTEST not in tables(source):
        return pd.DataFrame()
    return query(source, f"SELECT * FROM {RESPONSE_CURVE_BACKTEST} ORDER BY cutoff, ad_set_id")


def response_curves(source: Source) -> pd.DataFrame:
    """Every ad set's fitted curve and its bootstrap draws (list columns draws_*)."""
    return query(source, f"SELECT * FROM {RESPONSE_CURVES} ORDER BY ad_set_id")


DRAWS = ("vmax", "half_saturation", "shape")


def _draw_rows(values) -> np.ndarray:
    """A fetched list column as a matrix (ad sets × draws), NaN rows for ad sets without."""
    rows = [None if value is None or np.ma.is_masked(value) else value for value in values]
    width = max((len(row) for row in rows if row is not None), default=0)
    if rows and all(row is not None and len(row) == width for row in rows):
        return np.stack(rows).astype(float)
    matrix = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        if row is not None and len(row):
            matrix[i, : len(row)] = np.asarray(row, dtype=float)
    return matrix


def response_curve_draws(source: Source) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The curves without their list columns, and the draws as matrices in the same order:
    fetched as NumPy (a fifth of the cost of 600,000 floats through pandas at 2,000 ad sets)."""
    columns = ", ".join(f"draws_{name}" for name in DRAWS)
    frame = query(source, f"SELECT * EXCLUDE ({columns}) FROM {RESPONSE_CURVES} ORDER BY ad_set_id")
    sql = f"SELECT {columns} FROM {RESPONSE_CURVES} ORDER BY ad_set_id"
    if isinstance(source, duckdb.DuckDBPyConnection):
        fetched = source.execute(sql).fetchnumpy()
    else:
        with connect(source) as connection:
            fetched = connection.execute(sql).fetchnumpy()
    return frame, {name: _draw_rows(fetched[f"draws_{name}"]) for name in DRAWS}


def fetcher(source: Source):
    """fetch(name, *arguments) straight from the file or an open connection, uncached (the report,
    the dashboard's cached batches)."""

    def fetch(name: str, *arguments):
        return globals()[name](source, *arguments)

    return fetch


@contextmanager
def connected_fetcher(path: Path) -> Iterator:
    """A fetcher whose queries share one read-only connection, closed on exit: every connect
    starts a DuckDB instance (~15 ms, whatever the file), as long as one Overview aggregation."""
    with connect(path) as connection:
        yield fetcher(connection)
