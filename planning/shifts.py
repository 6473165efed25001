"""Level shifts: the day an ad set's revenue per pound stepped to a new level, if it did.

A creative swap, a tracking fix or a new landing page moves an ad set's revenue at any spend by
a lasting factor. A curve fitted across such a step prices tomorrow at the average of the two
levels: 60 days after a -50% step, its marginal ROAS read 1.75-2.0 times the truth on generated
data. The test is a least-squares change point in the ratio of observed to fitted revenue: the
split that best separates two means, beside a slope on log spend (a first fit that misreads the
curve leaves a ratio that moves with spend, and spend that trends with a season would read as a
step: 3 of 60 ad sets on generated data), with at least `MIN_SEGMENT_DAYS` days on each side; it is
kept only when the change is large (`MIN_CHANGE`) and well supported (`MIN_STANDARD_ERRORS`). Its
standard error counts day-to-day noise and the slow drift the curve fit models (an AR(1) level of
persistence `phi` and variance `drift`, see planning.curves): two means 60 days apart differ by
the drift's wander as well as by noise, so the error of their difference is wider than a
white-noise t-test would say. Vectorised over ad sets (cumulative sums), a few milliseconds for
2,000 ad sets.
"""

from dataclasses import dataclass

import numpy as np

MIN_SEGMENT_DAYS = 28
"""Days with data on each side of a step: a level from fewer days is too noisy to price from."""
MIN_CHANGE = 0.25
"""The step moves revenue per pound by at least this share, up or down."""
MIN_STANDARD_ERRORS = 4.0
"""The step is at least this many standard errors: the best of about a hundred candidate days
is kept, so a plain 2-SE test would find one in nearly every ad set."""
NOISE_FLOOR = 0.1
"""Day-to-day noise variance is at least this share of the ratio's variance."""


@dataclass(frozen=True)
class LevelShifts:
    """Per series: the first day of the new level (-1 where none was kept), the ratio of the
    mean level after to the mean level before, and the step in standard errors."""

    day: np.ndarray
    ratio: np.ndarray
    standard_errors: np.ndarray


def segment_drift_sums(lengths: np.ndarray, phi: float) -> np.ndarray:
    """sum over i, j in a run of `lengths` days of phi**|i - j| (the AR(1) correlations)."""
    lags = np.arange(int(lengths.max()) + 1 if lengths.size else 1)
    if phi <= 0:
        return lengths.astype(float)
    powers = phi ** lags.astype(float)
    # S(m) = m + 2 sum_{k=1}^{m-1} (m - k) phi^k, via cumulative sums over k
    weighted = np.concatenate([[0.0], np.cumsum(powers[1:])])
    by_lag = np.concatenate([[0.0], np.cumsum(lags[1:] * powers[1:])])
    m = np.clip(lengths, 0, len(lags) - 1).astype(int)
    head = np.maximum(m - 1, 0)
    return m + 2.0 * (m * weighted[head] - by_lag[head])


def find_level_shifts(
    ratio: np.ndarray,
    mask: np.ndarray,
    phi: float,
    drift: float,
    log_spend: np.ndarray | None = None,
) -> LevelShifts:
    """`ratio` (series × days): observed over fitted revenue, `mask` the days observed; `phi`
    and `drift` the persistence and variance of the slow drift, in the ratio's units. With
    `log_spend` (series × days) the step is estimated beside a slope on log spend: a curve that
    fits badly leaves a ratio that moves with spend, and spend that trends (budgets that follow a
    season) would otherwise read as a step. A step mostly explained by spend is not tested."""
    n, days = ratio.shape
    seen = mask.astype(float)
    value = np.where(mask, ratio, 0.0)
    count = np.concatenate([np.zeros((n, 1)), np.cumsum(seen, axis=1)], axis=1)
    total = np.concatenate([np.zeros((n, 1)), np.cumsum(value, axis=1)], axis=1)
    size = np.maximum(count[:, -1:], 1)
    mean = total[:, -1:] / size
    spend = np.zeros_like(value) if log_spend is None else np.where(mask, log_spend, 0.0)
    centred_spend = (spend - spend.sum(axis=1, keepdims=True) / size) * seen
    spread = (centred_spend**2).sum(axis=1, keepdims=True)
    slope = np.where(
        spread > 1e-9,
        (centred_spend * value).sum(axis=1, keepdims=True) / np.maximum(spread, 1e-9),
        0.0,
    )
    left = (value - mean - slope * centred_spend) * seen
    # per first day of the new level: sums over the days from it on (suffix sums)
    after_left = left[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    after_spend = centred_spend[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]
    before, after = count[:, 1:days], count[:, -1:] - count[:, 1:days]
    plain = before * after / size
    step_spread = plain - np.where(spread > 1e-9, after_spend**2 / np.maximum(spread, 1e-9), 0.0)
    valid = (
        (before >= MIN_SEGMENT_DAYS) & (after >= MIN_SEGMENT_DAYS) & (step_spread >= 0.25 * plain)
    )
    safe_spread = np.maximum(step_spread, 1e-9)
    gain = np.where(valid, after_left**2 / safe_spread, -1)
    best = gain.argmax(axis=1) if days > 1 else np.zeros(n, dtype=int)
    rows = np.arange(n)
    found = gain[rows, best] >= 0 if days > 1 else np.zeros(n, dtype=bool)
    change = after_left[rows, best] / safe_spread[rows, best]
    low = mean[:, 0] - change * after[rows, best] / size[:, 0]
    high = low + change
    information = safe_spread[rows, best]
    lost = plain[rows, best] / information  # how much the slope on spend widens the step's error

    # day-to-day noise from differences of neighbouring days (a step moves one difference only)
    pairs = seen[:, 1:] * seen[:, :-1]
    differences = (np.diff(value, axis=1) ** 2 * pairs).sum(axis=1) / np.maximum(pairs.sum(1), 1)
    variance = ((value - mean) ** 2 * seen).sum(axis=1) / size[:, 0]
    noise = np.maximum(differences / 2 - drift * (1 - phi), NOISE_FLOOR * variance)

    # the drift's part of var(mean after - mean before), segments read as contiguous runs
    first, second = best + 1, days - (best + 1)
    s1 = segment_drift_sums(np.asarray(first), phi)
    s2 = segment_drift_sums(np.asarray(second), phi)
    cross = phi * (1 - phi**first) * (1 - phi**second) / (1 - phi) ** 2 if phi > 0 else 0.0
    drift_part = drift * (s1 / first**2 + s2 / second**2 - 2 * cross / (first * second)) * lost
    error = np.sqrt(noise / information + drift_part)
    z = np.abs(high - low) / np.maximum(error, 1e-12)
    step = np.where(low > 0, high / np.where(low > 0, low, 1.0), np.nan)
    kept = found & (low > 0) & (np.abs(step - 1) >= MIN_CHANGE) & (z >= MIN_STANDARD_ERRORS)
    return LevelShifts(
        day=np.where(kept, best + 1, -1),
        ratio=np.where(kept, step, np.nan),
        standard_errors=np.where(found, z, np.nan),
    )
