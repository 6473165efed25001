"""The calendar in the curves: revenue per pound by day of the week, shared by every ad set.

Bookings are not spread evenly over the week: the same spend buys more on some days. A curve
fitted without that prices tomorrow at the week's average (18-23% high on held-out data with a
weekday effect, when tomorrow was a slow day). The factors are multipliers of revenue, Monday
first, with mean one: each ad set's observed over fitted revenue averaged by weekday and set
over its own average (so an ad set's level and its curve drop out), then the median over ad sets
(robust to a few ad sets with odd weeks), kept only when the days differ beyond noise. The curves are fitted to revenue divided by its day's
factor, so they are the average day's; the plan multiplies revenue (and marginal ROAS) at any
spend by the factor of the day it is for. Stored with the curves as one column per weekday.
"""

from datetime import date

import numpy as np
import pandas as pd

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_COLUMNS = tuple(f"weekday_factor_{day}" for day in WEEKDAYS)
WEEK_TEST = 16.81
"""The factors are kept when their squared standard scores sum to at least this (the 99th
percentile of a chi-square with 6 degrees of freedom); otherwise every day counts as the average
day."""
MIN_WEEKS = 2
"""An ad set counts toward the factors when it has at least this many days of every weekday."""


def weekday_of(first_day: pd.Timestamp, days: int) -> np.ndarray:
    """The weekday (0 = Monday) of each of `days` days from `first_day`."""
    return (first_day.dayofweek + np.arange(days)) % 7


def weekday_factors(ratio: np.ndarray, mask: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """`ratio` (series × days): observed over fitted revenue; `mask` the days observed;
    `weekday` (days,) → 7 revenue multipliers, Monday first, mean one (all ones when no series
    has `MIN_WEEKS` of every weekday)."""
    seen = mask.astype(float)
    value = np.where(mask, ratio, 0.0)
    by_day = np.zeros((len(ratio), 7))
    count = np.zeros((len(ratio), 7))
    for day in range(7):
        on = weekday == day
        by_day[:, day] = value[:, on].sum(axis=1)
        count[:, day] = seen[:, on].sum(axis=1)
    enough = (count >= MIN_WEEKS).all(axis=1)
    if not enough.any():
        return np.ones(7)
    means = by_day[enough] / count[enough]
    average = means.mean(axis=1, keepdims=True)
    positive = average[:, 0] > 0
    if not positive.any():
        return np.ones(7)
    relative = means[positive] / average[positive]
    factors = np.median(relative, axis=0)
    factors /= factors.mean()
    # a median's standard error (normal data: 1.25 sd / sqrt(n)); days that differ no more than
    # noise would move prices at random
    error = 1.2533 * relative.std(axis=0) / np.sqrt(len(relative))
    if len(relative) < 2 or (((factors - 1.0) / np.maximum(error, 1e-12)) ** 2).sum() < WEEK_TEST:
        return np.ones(7)
    return factors


def factor_for_day(curves: pd.DataFrame, day: date | pd.Timestamp | None) -> float:
    """The revenue multiplier of `day`'s weekday stored with `curves` (1 when the curves have
    no factors or there is no day)."""
    if day is None or pd.isna(day) or curves.empty:
        return 1.0
    column = WEEKDAY_COLUMNS[pd.Timestamp(day).dayofweek]
    if column not in curves:
        return 1.0
    values = pd.to_numeric(curves[column], errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else 1.0


def priced_for_day(curves: pd.DataFrame, day) -> tuple[pd.DataFrame, float]:
    """`curves` (rows with vmax and optionally draws_vmax) with revenue scaled to `day`'s
    weekday: vmax and its draws times the day's factor (the curves are the average day's)."""
    factor = factor_for_day(curves, day)
    if factor == 1.0:
        return curves, factor
    scaled = curves.copy()
    scaled["vmax"] = scaled["vmax"] * factor
    if "draws_vmax" in scaled:
        scaled["draws_vmax"] = [
            None if row is None else np.asarray(row, dtype=float) * factor
            for row in scaled["draws_vmax"]
        ]
    return scaled, factor


def day_name(day) -> str | None:
    return None if day is None or pd.isna(day) else WEEKDAYS[pd.Timestamp(day).dayofweek]
