"""Walk-forward backtest of the response curves: does a curve fitted on the past predict the
revenue of the next four weeks at the spend that then happened?

Per fold: the curves are fitted (planning.curves, as the weekly retrain fits them) on the days up
to a cutoff only, then each ad set's revenue over the next HORIZON_DAYS days is predicted from the
spend it actually had on each of those days, and set beside the revenue it actually earned. The
range is the predictive one a marketer needs for "will the actual land inside": the curve's 90%
bootstrap interval widened by how far four-week sums strayed from the curve in its own window
(the drift, conversion noise and everything else the curve cannot see), both from days before the
cutoff. Nothing after the cutoff but the spend enters a prediction.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planning.curves import INTERVAL, WINDOW_DAYS, fit_response_curves, hill_revenue, interval

HORIZON_DAYS = 28
"""Days each fold predicts: four weeks, so every weekday counts four times."""
CUTOFFS_BEFORE_END = (84, 56, 28)
"""Folds: cutoffs this many days before the last day; the last fold predicts the last 28 days."""
BACKTEST_DRAWS = 100
"""Bootstrap draws per fold's fit (the served curves use 200): the range's curve part."""
MIN_FOLD_DAYS = 28
"""A fold whose fit would see fewer days than this is skipped (not enough history)."""
MAX_AD_SETS = 500
"""Above this many ad sets the backtest runs on this many, chosen by a hash of their id (the same
ones every week): three fits of 2,000 ad sets took 18 s, most of the weekly retrain's budget, and
500 ad sets measure the curves' errors and coverage as well."""

BACKTEST_COLUMNS = (
    "cutoff",
    "period_start",
    "period_end",
    "ad_set_id",
    "ad_set_name",
    "fit",
    "days",
    "spend",
    "actual_revenue",
    "expected_revenue",
    "expected_revenue_low",
    "expected_revenue_high",
)
"""One row per fold and ad set with a curve: money summed over the fold's days (£)."""


@dataclass(frozen=True)
class FoldSummary:
    cutoff: object
    ad_sets: int
    actual: float
    expected: float
    total_error: float
    """(expected - actual) / actual of the fold's total revenue."""
    ad_set_error: float
    """Sum over ad sets of |expected - actual| / sum of actual (weighted absolute % error)."""
    coverage: float
    """Share of ad sets whose actual revenue lies in its 90% range."""


def backtest_curves(
    daily: pd.DataFrame,
    cutoffs_before_end: tuple[int, ...] = CUTOFFS_BEFORE_END,
    horizon_days: int = HORIZON_DAYS,
    window_days: int = WINDOW_DAYS,
    draws: int = BACKTEST_DRAWS,
) -> pd.DataFrame:
    """Rows of BACKTEST_COLUMNS for each fold of `daily` (date, ad_set_id, spend, revenue and
    the columns fit_response_curves reads), cutoffs oldest first."""
    frame = daily.copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame[frame["spend"].notna()]
    if frame.empty:
        return pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    frame["revenue"] = frame["revenue"].fillna(0.0).astype(float)
    frame = frame[frame["ad_set_id"].isin(sampled_ad_sets(frame["ad_set_id"].unique()))]
    end = frame["date"].max()
    first = frame["date"].min()
    folds = []
    for before in sorted(set(cutoffs_before_end), reverse=True):
        cutoff = end - pd.Timedelta(days=int(before))
        if (cutoff - first).days + 1 < MIN_FOLD_DAYS:
            continue
        past = frame[frame["date"] <= cutoff]
        ahead = frame[
            (frame["date"] > cutoff)
            & (frame["date"] <= cutoff + pd.Timedelta(days=int(horizon_days)))
        ]
        folds.append(_fold(past, ahead, cutoff, horizon_days, window_days, draws))
    if not folds:
        return pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    return pd.concat(folds, ignore_index=True)[list(BACKTEST_COLUMNS)]


def sampled_ad_sets(ad_set_ids, limit: int = MAX_AD_SETS) -> list:
    """All ad sets, or `limit` of them chosen by the MD5 of their id (stable across runs)."""
    ids = sorted(str(ad_set_id) for ad_set_id in ad_set_ids)
    if len(ids) <= limit:
        return ids
    return sorted(ids, key=lambda ad_set_id: hashlib.md5(ad_set_id.encode()).hexdigest())[:limit]


def _fold(past, ahead, cutoff, horizon_days, window_days, draws) -> pd.DataFrame:
    fits = fit_response_curves(past, window_days=window_days, draws=draws)
    curves = fits.curves.reset_index(drop=True)
    has_curve = curves["vmax"].notna().to_numpy()
    position = pd.Index(curves["ad_set_id"])
    ahead = ahead[ahead["ad_set_id"].isin(position[has_curve])]
    if ahead.empty:
        return pd.DataFrame(columns=list(BACKTEST_COLUMNS))
    row = position.get_indexer(ahead["ad_set_id"])
    spend = ahead["spend"].astype(float).to_numpy()
    v, h, k = (
        curves[c].astype(float).to_numpy()[row] for c in ("vmax", "half_saturation", "shape")
    )
    expected_days = hill_revenue(spend, v, h, k)
    dv, dh, dk = (fits.draws[c][row] for c in ("vmax", "half_saturation", "shape"))
    drawn_days = hill_revenue(spend[:, None], dv, dh, dk)
    ids, index = np.unique(row, return_inverse=True)
    count = len(ids)
    by_ad_set = np.zeros(count), np.zeros(count), np.zeros(count), np.zeros(count)
    np.add.at(by_ad_set[0], index, spend)
    np.add.at(by_ad_set[1], index, ahead["revenue"].to_numpy())
    np.add.at(by_ad_set[2], index, expected_days)
    np.add.at(by_ad_set[3], index, 1.0)
    drawn = np.zeros((count, drawn_days.shape[1]))
    np.add.at(drawn, index, drawn_days)
    total_spend, actual, expected, days = by_ad_set
    low, high = _predictive_range(expected, drawn, _stray(past, curves, ids, horizon_days))
    period_start = (cutoff + pd.Timedelta(days=1)).date()
    return pd.DataFrame(
        {
            "cutoff": cutoff.date(),
            "period_start": period_start,
            "period_end": (cutoff + pd.Timedelta(days=int(horizon_days))).date(),
            "ad_set_id": curves["ad_set_id"].to_numpy()[ids],
            "ad_set_name": curves["ad_set_name"].to_numpy()[ids],
            "fit": curves["fit"].to_numpy()[ids],
            "days": days.astype("int64"),
            "spend": total_spend,
            "actual_revenue": actual,
            "expected_revenue": expected,
            "expected_revenue_low": low,
            "expected_revenue_high": high,
        }
    )


def _stray(past: pd.DataFrame, curves: pd.DataFrame, ids: np.ndarray, horizon_days: int):
    """Per ad set (rows `ids` of `curves`), the sd of log(actual / curve) over the horizon-long
    blocks of its fit window (the days before the cutoff): how far a four-week sum strays from
    the curve for reasons the curve cannot see. The median over ad sets where one has < 2 blocks."""
    window_start = pd.to_datetime(curves["window_start"]).min()
    seen = past[past["date"] >= window_start]
    picked = curves.iloc[ids]
    seen = seen[seen["ad_set_id"].isin(picked["ad_set_id"])]
    params = picked.set_index("ad_set_id")[["vmax", "half_saturation", "shape"]]
    joined = seen.join(params, on="ad_set_id")
    joined["expected"] = hill_revenue(
        joined["spend"].astype(float),
        joined["vmax"],
        joined["half_saturation"],
        joined["shape"],
    )
    joined["block"] = (seen["date"].max() - joined["date"]).dt.days // horizon_days
    sums = joined.groupby(["ad_set_id", "block"])[["revenue", "expected"]].sum()
    sums = sums[(sums["revenue"] > 0) & (sums["expected"] > 0)]
    log_ratio = np.log(sums["revenue"] / sums["expected"])
    spread = log_ratio.groupby(level="ad_set_id").std(ddof=1)
    pooled = float(spread.median()) if spread.notna().any() else 0.0
    return spread.reindex(picked["ad_set_id"]).fillna(pooled).to_numpy()


def _predictive_range(expected, drawn, stray):
    """The curve's 90% range (its draws' spread around the expectation) widened by the stray of
    four-week sums around a curve (lognormal, the same 90%), the two added in quadrature on the
    log scale."""
    from scipy.special import ndtri  # here, not at import: no process loads scipy unused

    z = ndtri(0.5 + INTERVAL / 2)  # norm.ppf, without importing scipy.stats (see calendar.py)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_low, q_high = interval(drawn, axis=1)
        middle = np.median(drawn, axis=1)
        curve_low = np.log(expected / np.maximum(expected - (middle - q_low), 1e-9)) / z
        curve_high = np.log(np.maximum(expected + (q_high - middle), 1e-9) / expected) / z
    curve_low, curve_high = np.nan_to_num(curve_low), np.nan_to_num(curve_high)
    low = expected * np.exp(-z * np.sqrt(curve_low**2 + stray**2))
    high = expected * np.exp(z * np.sqrt(curve_high**2 + stray**2))
    return low, high


def fold_summaries(backtest: pd.DataFrame) -> list[FoldSummary]:
    """Each fold in words' numbers: total revenue error, per-ad-set error, range coverage."""
    summaries = []
    for cutoff, fold in backtest.groupby("cutoff", sort=True):
        actual = float(fold["actual_revenue"].sum())
        expected = float(fold["expected_revenue"].sum())
        inside = (fold["expected_revenue_low"] <= fold["actual_revenue"]) & (
            fold["actual_revenue"] <= fold["expected_revenue_high"]
        )
        summaries.append(
            FoldSummary(
                cutoff=cutoff,
                ad_sets=len(fold),
                actual=actual,
                expected=expected,
                total_error=(expected - actual) / actual if actual else float("nan"),
                ad_set_error=float((fold["expected_revenue"] - fold["actual_revenue"]).abs().sum())
                / actual
                if actual
                else float("nan"),
                coverage=float(inside.mean()),
            )
        )
    return summaries
