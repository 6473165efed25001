"""Time-ordered splits and honest scores: plain functions over arrays, no Dagster, no DuckDB.

Everything is resampled or split by date, never shuffled row by row: rows of one day share the
market, so a row-level shuffle would let a model see its test day's neighbours.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PROBABILITY_FLOOR = 1e-15


@dataclass(frozen=True)
class Split:
    """One time-ordered split. The booster fits on `fit`, is stopped early and calibrated on
    `calibration`, and is scored on `evaluation`. Each earlier part is purged so that its label
    windows, `horizon_days` long, end before the next part begins."""

    horizon_days: int
    cutoff: np.datetime64
    fit: tuple[np.datetime64, np.datetime64] | None
    calibration: tuple[np.datetime64, np.datetime64] | None
    evaluation: tuple[np.datetime64, np.datetime64] | None

    def rows(self, dates: np.ndarray, part: str) -> np.ndarray:
        """Boolean mask of the rows (by date) in `part`: fit, calibration or evaluation."""
        window = getattr(self, part)
        if window is None:
            return np.zeros(len(dates), dtype=bool)
        return (dates >= window[0]) & (dates <= window[1])

    def violations(self) -> list[str]:
        """Broken invariants, in words (empty when the split is sound)."""
        horizon = np.timedelta64(self.horizon_days, "D")
        problems = []
        if self.fit and self.calibration and not self.fit[1] + horizon < self.calibration[0]:
            problems.append(
                f"fit ends {self.fit[1]} + {self.horizon_days}d horizon, not before calibration "
                f"starts {self.calibration[0]}"
            )
        for part in ("fit", "calibration"):
            window = getattr(self, part)
            if window and not window[1] + horizon <= self.cutoff:
                problems.append(
                    f"{part} ends {window[1]} + {self.horizon_days}d horizon, after the cutoff "
                    f"{self.cutoff}"
                )
        if self.evaluation and not self.cutoff < self.evaluation[0]:
            problems.append(f"evaluation starts {self.evaluation[0]}, not after {self.cutoff}")
        return problems


def as_days(dates) -> np.ndarray:
    return np.asarray(dates).astype("datetime64[D]")


def validation_cutoff(labelled_dates: Sequence, validation_fraction: float) -> np.datetime64:
    """T: the last date before the final `validation_fraction` of the labelled dates."""
    dates = np.unique(as_days(labelled_dates))
    if len(dates) == 0:
        raise ValueError("no labelled dates: every label is NULL (not enough history)")
    validation_days = min(len(dates) - 1, max(1, math.ceil(len(dates) * validation_fraction)))
    return dates[len(dates) - validation_days - 1]


def backtest_cutoffs(
    labelled_dates: Sequence, cutoff: np.datetime64, folds: int, share: float = 0.4
) -> list[tuple[np.datetime64, np.datetime64]]:
    """Walk-forward folds before T: the last `share` of the dates up to T, in `folds` blocks.

    Returns (fold cutoff, last evaluation date) per fold, oldest first.
    """
    dates = np.unique(as_days(labelled_dates))
    dates = dates[dates <= cutoff]
    block = max(1, math.ceil(len(dates) * share / folds))
    bounds = []
    for fold in range(folds, 0, -1):
        first_evaluated = len(dates) - fold * block
        if first_evaluated < 1:
            continue
        bounds.append(
            (dates[first_evaluated - 1], dates[min(len(dates), first_evaluated + block) - 1])
        )
    return bounds


def purge(dates: np.ndarray, boundary: np.datetime64, horizon_days: int) -> np.ndarray:
    """Rows whose label window (t, t + horizon] ends on or before `boundary`."""
    return as_days(dates) + np.timedelta64(horizon_days, "D") <= boundary


def make_split(
    labelled_dates: Sequence,
    cutoff: np.datetime64,
    horizon_days: int,
    evaluation_end: np.datetime64 | None,
    calibration_fraction: float = 0.25,
) -> Split:
    """Train on dates purged at T, the last `calibration_fraction` of them for calibration."""
    dates = np.unique(as_days(labelled_dates))
    trainable = dates[purge(dates, cutoff, horizon_days)]
    calibration = fit = None
    if len(trainable):
        calibration_days = max(1, math.ceil(len(trainable) * calibration_fraction))
        calibration_dates = trainable[-calibration_days:]
        calibration = (calibration_dates[0], calibration_dates[-1])
        fit_dates = trainable[
            purge(trainable, calibration_dates[0] - np.timedelta64(1, "D"), horizon_days)
        ]
        if len(fit_dates):
            fit = (fit_dates[0], fit_dates[-1])
    evaluated = dates[(dates > cutoff) & (dates <= (evaluation_end or dates.max()))]
    evaluation = (evaluated[0], evaluated[-1]) if len(evaluated) else None
    return Split(horizon_days, cutoff, fit, calibration, evaluation)


def fit_isotonic(scores: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    """Isotonic calibration thresholds (x, y), never exactly 0 or 1; the identity when there is
    nothing to fit on.

    Isotonic regression gives a block of rows without a positive the rate 0 (and a block
    without a negative 1), as if the scores were certain. m rows with no positive support a
    rate of about 1/m at most; the Jeffreys estimate of zero events in m trials, 0.5 / (m + 1),
    is the floor: the lowest block's rows set the floor, the highest block's the ceiling. A
    block with a positive (k >= 1 of m) has a rate of at least 1/m, above that floor, so only
    certain blocks move.
    """
    finite = np.isfinite(scores)
    if not finite.any():
        return [0.0, 1.0], [0.0, 1.0]
    from sklearn.isotonic import IsotonicRegression  # here, not at import: sklearn is slow to load

    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    fitted = isotonic.fit_transform(
        scores[finite].astype(np.float64), labels[finite].astype(np.float64)
    )
    y = isotonic.y_thresholds_
    floor = 0.5 / (np.count_nonzero(fitted == y.min()) + 1)
    ceiling = 1.0 - 0.5 / (np.count_nonzero(fitted == y.max()) + 1)
    return isotonic.X_thresholds_.tolist(), np.clip(y, floor, ceiling).tolist()


def apply_isotonic(
    scores: np.ndarray, x: Sequence[float], y: Sequence[float], missing: float | None = None
) -> np.ndarray:
    """Piecewise-linear, clipped at both ends, as scikit-learn's isotonic predict.

    `missing` replaces scores that are NaN (a heuristic without history).
    """
    scores = np.asarray(scores, dtype=np.float64)
    calibrated = np.clip(np.interp(scores, np.asarray(x), np.asarray(y)), 0.0, 1.0)
    if missing is not None:
        calibrated[~np.isfinite(scores)] = missing
    return calibrated


def auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """Area under the ROC curve (ties count half); None when one class is missing."""
    _, rank = np.unique(scores, return_inverse=True)
    return _ranked_auc(rank, np.asarray(labels, dtype=np.float64), weights)


def _ranked_auc(rank: np.ndarray, labels: np.ndarray, weights: np.ndarray | None) -> float | None:
    """AUC from each row's rank among the distinct scores: sorting once serves every resample."""
    weights = np.ones(len(labels)) if weights is None else weights
    positives = np.bincount(rank, weights=weights * labels)
    negatives = np.bincount(rank, weights=weights * (1.0 - labels))
    total_positive, total_negative = positives.sum(), negatives.sum()
    if total_positive <= 0 or total_negative <= 0:
        return None
    below = np.cumsum(negatives) - negatives
    return float(positives @ (below + 0.5 * negatives) / (total_positive * total_negative))


def _log_losses(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(probabilities, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return -(labels * np.log(p) + (1 - labels) * np.log(1 - p))


def scores(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """AUC, Brier, log loss and ECE of probabilities; AUC None when one class only."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(labels) == 0:
        return {"auc": None, "brier": None, "log_loss": None, "ece": None}
    return {
        "auc": auc(labels, probabilities),
        "brier": float(np.mean((probabilities - labels) ** 2)),
        "log_loss": float(np.mean(_log_losses(labels, probabilities))),
        "ece": expected_calibration_error(reliability_table(labels, probabilities)),
    }


def paired_bootstrap(
    labels: np.ndarray,
    model: np.ndarray,
    heuristic: np.ndarray,
    dates: np.ndarray,
    samples: int,
    seed: int,
) -> dict:
    """95% intervals of model − heuristic (AUC, Brier, log loss), resampling whole dates.

    A resample is a multinomial count per date, so each replicate is a weighted score: cheap even
    for hundreds of thousands of rows.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if len(labels) == 0:
        return {name: None for name in ("auc", "brier", "log_loss")}
    _, day = np.unique(as_days(dates), return_inverse=True)
    days = day.max() + 1
    counts = np.random.default_rng(seed).multinomial(days, np.full(days, 1.0 / days), samples)
    rows_per_day = np.bincount(day, minlength=days)
    result = {}
    for name, loss in (
        ("brier", lambda p: (p - labels) ** 2),
        ("log_loss", lambda p: _log_losses(labels, p)),
    ):
        per_day = np.bincount(day, weights=loss(model) - loss(heuristic), minlength=days)
        replicates = counts @ per_day / (counts @ rows_per_day)
        result[name] = _interval(float(per_day.sum() / len(labels)), replicates)
    point_model, point_heuristic = auc(labels, model), auc(labels, heuristic)
    if point_model is None or point_heuristic is None:
        result["auc"] = None
        return result
    model_rank = np.unique(model, return_inverse=True)[1]
    heuristic_rank = np.unique(heuristic, return_inverse=True)[1]
    replicates = np.array(
        [
            _difference(
                _ranked_auc(model_rank, labels, weights),
                _ranked_auc(heuristic_rank, labels, weights),
            )
            for weights in (per_day[day] for per_day in counts.astype(np.float64))
        ]
    )
    result["auc"] = _interval(point_model - point_heuristic, replicates)
    return result


def _difference(a: float | None, b: float | None) -> float:
    return np.nan if a is None or b is None else a - b


def _interval(point: float, replicates: np.ndarray) -> dict:
    finite = replicates[np.isfinite(replicates)]
    low, high = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
    return {"difference": point, "low": _number(low), "high": _number(high)}


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def reliability_table(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> list[dict]:
    """Equal-width probability bins: rows, mean prediction and observed rate per bin."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    index = np.clip(np.floor(probabilities * bins).astype(int), 0, bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        table.append(
            {
                "bin": f"{b / bins:.1f}–{(b + 1) / bins:.1f}",
                "rows": count,
                "mean_predicted": float(probabilities[members].mean()) if count else None,
                "observed_rate": float(labels[members].mean()) if count else None,
            }
        )
    return table


def expected_calibration_error(table: list[dict]) -> float | None:
    total = sum(row["rows"] for row in table)
    if total == 0:
        return None
    return float(
        sum(
            row["rows"] / total * abs(row["mean_predicted"] - row["observed_rate"])
            for row in table
            if row["rows"]
        )
    )


def population_stability(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> dict:
    """PSI of the observed values of `actual` against `expected` (decile bins of `expected`),
    and the share of NULLs in each: a window that lacks history early on is not drift."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    observed_expected = expected[np.isfinite(expected)]
    observed_actual = actual[np.isfinite(actual)]
    result = {
        "psi": None,
        "null_share_training": _share(len(expected) - len(observed_expected), len(expected)),
        "null_share_latest": _share(len(actual) - len(observed_actual), len(actual)),
    }
    if len(observed_expected) == 0 or len(observed_actual) == 0:
        return result
    edges = np.unique(np.quantile(observed_expected, np.linspace(0, 1, bins + 1)[1:-1]))

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        return np.maximum(counts / len(values), 1e-4)

    e, a = shares(observed_expected), shares(observed_actual)
    result["psi"] = float(np.sum((a - e) * np.log(a / e)))
    return result


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
