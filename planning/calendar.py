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

from planning.shifts import segment_drift_sums

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


def demand_for(curves: pd.DataFrame) -> float:
    """The demand level at the end of the curves' window (`demand_level`; 1 without one)."""
    if curves.empty or "demand_level" not in curves:
        return 1.0
    values = pd.to_numeric(curves["demand_level"], errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else 1.0


def priced_for_day(curves: pd.DataFrame, day) -> tuple[pd.DataFrame, float]:
    """`curves` (rows with vmax and optionally draws_vmax) with revenue scaled to `day`: vmax and
    its draws times its weekday's factor and the latest demand level (the curves are the
    average day's) → the scaled curves and the multiplier."""
    factor = factor_for_day(curves, day) * demand_for(curves)
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


DEMAND_BLOCK_DAYS = 14
"""The shared demand level is smoothed over this many days (a season moves over weeks), and
tomorrow's is the mean of the window's last this many days."""
DEMAND_TEST = 0.99
"""The demand level is kept when its 14-day blocks differ beyond noise at this level."""
DEMAND_STEPS = 60
REVENUE_FLOOR = 0.05
"""Revenue below this share of an ad set's mean reads as this share in logs (a day without a
booking is not minus infinity)."""


def demand_level(
    y: np.ndarray, x: np.ndarray, mask: np.ndarray, phi: float = 0.0, drift: float = 0.0
) -> np.ndarray:
    """A log revenue level shared by every ad set per day (the season, demand), net of each ad
    set's own spend: log revenue = the ad set's level + its elasticity × log spend + the day's
    level, fitted by alternating per-ad-set regressions and the median over ad sets of what they
    leave, smoothed over DEMAND_BLOCK_DAYS and centred on zero. Budgets that follow demand move
    spend with the season: without this the season reads as a steeper curve. → (days,) log
    levels, all zero when the blocks do not differ beyond noise (DEMAND_TEST): day-to-day noise
    and each ad set's own slow drift (persistence `phi`, variance `drift`), whose median over ad
    sets wanders from block to block too."""
    days = y.shape[1]
    blocks = days // DEMAND_BLOCK_DAYS
    if len(y) < 8 or blocks < 3:
        return np.zeros(days)
    seen = mask.astype(float)
    count = np.maximum(seen.sum(axis=1, keepdims=True), 1)
    ly = np.log(np.maximum(y, REVENUE_FLOOR)) * seen
    lx = np.log(np.maximum(x, 1e-9)) * seen
    cx = (lx - lx.sum(axis=1, keepdims=True) / count) * seen
    sxx = np.maximum((cx**2).sum(axis=1, keepdims=True), 1e-12)
    level = np.zeros(days)
    observed = mask.any(axis=0)
    for _ in range(DEMAND_STEPS):
        z = (ly - level) * seen
        cz = (z - z.sum(axis=1, keepdims=True) / count) * seen
        slope = (cx * cz).sum(axis=1, keepdims=True) / sxx
        left = np.where(mask, cz - slope * cx + level, np.nan)
        daily = np.zeros(days)
        daily[observed] = np.nanmedian(left[:, observed], axis=0)
        daily -= daily[observed].mean()
        moved = np.abs(daily - level).max()
        level = daily
        if moved < 1e-4:
            break
    # blocks of days: their medians against the noise of a median over ad sets
    spread = np.zeros(days)
    spread[observed] = np.nanstd(left[:, observed] - daily[None, observed], axis=0)
    error = 1.2533 * spread / np.sqrt(np.maximum(mask.sum(axis=0), 1))
    cut = blocks * DEMAND_BLOCK_DAYS
    block_level = daily[days - cut :].reshape(blocks, -1).mean(axis=1)
    # the drift's days within a block move together: their median's block mean varies more
    # than independent days would (a median's variance is about pi / 2 times a mean's)
    together = segment_drift_sums(np.array([DEMAND_BLOCK_DAYS]), phi)[0] / DEMAND_BLOCK_DAYS**2
    drift_part = np.pi / 2 * drift / max(float(mask.sum(axis=0).mean()), 1.0)
    drift_part *= max(together - 1.0 / DEMAND_BLOCK_DAYS, 0.0)
    block_error = np.sqrt(
        (error[days - cut :] ** 2).reshape(blocks, -1).mean(axis=1) / DEMAND_BLOCK_DAYS + drift_part
    )
    statistic = (((block_level - block_level.mean()) / np.maximum(block_error, 1e-12)) ** 2).sum()
    from scipy.special import gammaincinv  # here, not at import: no process loads scipy unused

    # chi2.ppf(DEMAND_TEST, blocks - 1) as scipy.stats computes it, without importing scipy.stats
    # (2.3-2.7 s at a load average of 12 here, in every process that imports planning)
    if statistic < 2 * gammaincinv((blocks - 1) / 2, DEMAND_TEST):
        return np.zeros(days)
    return level


def latest_demand(level: np.ndarray) -> float:
    """Tomorrow's demand multiplier: the mean level of the window's last block of days."""
    return float(np.exp(level[-DEMAND_BLOCK_DAYS:].mean())) if len(level) else 1.0
