"""Splits, purging, calibration and scores: the pure functions the model assets are built on."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from marketing_ml.ml.evaluation import (
    apply_isotonic,
    auc,
    backtest_cutoffs,
    expected_calibration_error,
    fit_isotonic,
    make_split,
    paired_bootstrap,
    population_stability,
    purge,
    reliability_table,
    validation_cutoff,
)

DATES = np.arange(np.datetime64("2024-08-01"), np.datetime64("2024-08-31"))  # 30 days


def test_purge_drops_rows_whose_label_window_crosses_the_boundary():
    kept = purge(DATES, np.datetime64("2024-08-20"), horizon_days=7)
    assert DATES[kept].max() == np.datetime64("2024-08-13")
    assert kept.sum() == 13


def test_cutoff_leaves_the_last_fifth_of_dates_for_validation():
    cutoff = validation_cutoff(np.repeat(DATES, 3), 0.2)
    assert cutoff == np.datetime64("2024-08-24")
    assert (DATES > cutoff).sum() == 6


def test_split_orders_fit_calibration_and_validation_with_horizon_gaps():
    split = make_split(DATES, np.datetime64("2024-08-24"), horizon_days=7, evaluation_end=None)
    assert split.violations() == []
    assert split.calibration[1] + np.timedelta64(7, "D") <= split.cutoff
    assert split.fit[1] + np.timedelta64(7, "D") < split.calibration[0]
    assert split.evaluation == (np.datetime64("2024-08-25"), np.datetime64("2024-08-30"))


def test_split_violations_name_a_fit_window_that_reaches_into_calibration():
    split = make_split(DATES, np.datetime64("2024-08-24"), horizon_days=7, evaluation_end=None)
    leaky = type(split)(
        7, split.cutoff, (DATES[0], split.calibration[0]), split.calibration, split.evaluation
    )
    assert any("before calibration" in problem for problem in leaky.violations())


def test_backtest_folds_walk_forward_before_the_cutoff():
    cutoff = np.datetime64("2024-08-24")
    folds = backtest_cutoffs(DATES, cutoff, folds=3)
    assert len(folds) == 3
    assert all(fold_cutoff < end <= cutoff for fold_cutoff, end in folds)
    assert [f[0] for f in folds] == sorted(f[0] for f in folds)
    assert all(folds[i][1] <= folds[i + 1][0] for i in range(2))


def test_calibration_is_monotone_and_within_zero_and_one():
    rng = np.random.default_rng(0)
    scores = rng.uniform(-3, 3, 2000)
    labels = (rng.uniform(size=2000) < 1 / (1 + np.exp(-scores))).astype(float)
    x, y = fit_isotonic(scores, labels)
    grid = np.linspace(-10, 10, 500)
    calibrated = apply_isotonic(grid, x, y)
    assert np.all(np.diff(calibrated) >= 0)
    assert calibrated.min() >= 0 and calibrated.max() <= 1


def test_calibration_is_never_certain_and_its_floor_follows_the_rows_behind_it():
    """Separable scores: isotonic regression alone puts the 300 lowest rows (no positive) at 0
    and the 100 highest (no negative) at 1. Their Jeffreys estimates, 0.5 / (m + 1), replace
    certainty; the blocks between keep their observed rates."""
    scores = np.arange(500, dtype=float)
    labels = np.r_[np.zeros(300), np.tile([1.0, 0.0], 50), np.ones(100)]
    x, y = fit_isotonic(scores, labels)
    calibrated = apply_isotonic(scores, x, y)
    assert calibrated.min() == pytest.approx(0.5 / 301) and calibrated.max() == pytest.approx(
        1 - 0.5 / 101
    )
    assert 0 < calibrated.min() and calibrated.max() < 1
    middle = calibrated[300:400]
    assert middle.min() >= 0.4 and middle.max() <= 0.6


def test_calibration_without_rows_is_the_identity():
    x, y = fit_isotonic(np.empty(0), np.empty(0))
    assert apply_isotonic(np.array([0.2, 0.7]), x, y).tolist() == [0.2, 0.7]


def test_auc_matches_scikit_learn_with_ties_and_is_none_for_one_class():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500).astype(float)
    scores = np.round(rng.uniform(size=500) + labels * 0.3, 1)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert auc(np.ones(10), scores[:10]) is None


def test_bootstrap_excludes_zero_only_for_a_real_difference_and_is_reproducible():
    rng = np.random.default_rng(2)
    dates = np.repeat(DATES, 40)
    labels = rng.integers(0, 2, len(dates)).astype(float)
    good = np.clip(labels * 0.6 + rng.uniform(0, 0.4, len(dates)), 0, 1)
    noise = rng.uniform(size=len(dates))
    better = paired_bootstrap(labels, good, noise, dates, samples=200, seed=42)
    other_noise = np.random.default_rng(10).uniform(size=(2, len(dates)))
    same = paired_bootstrap(labels, *other_noise, dates, samples=200, seed=42)
    assert better["brier"]["high"] < 0 and better["auc"]["low"] > 0
    assert same["auc"]["low"] < 0 < same["auc"]["high"]
    assert better == paired_bootstrap(labels, good, noise, dates, samples=200, seed=42)


def test_reliability_table_has_ten_bins_and_perfect_calibration_has_no_error():
    probabilities = np.repeat([0.05, 0.55], 100)
    labels = np.concatenate([np.r_[np.ones(5), np.zeros(95)], np.r_[np.ones(55), np.zeros(45)]])
    table = reliability_table(labels, probabilities)
    assert len(table) == 10 and sum(row["rows"] for row in table) == 200
    assert expected_calibration_error(table) == pytest.approx(0.0)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(3)
    training = rng.normal(0, 1, 5000)
    assert population_stability(training, training)["psi"] == pytest.approx(0.0)
    assert population_stability(training, rng.normal(2, 1, 1000))["psi"] > 0.2


def test_psi_of_an_all_null_feature_is_not_computable_but_reports_null_shares():
    result = population_stability(np.full(100, np.nan), np.full(10, np.nan))
    assert result == {"psi": None, "null_share_training": 1.0, "null_share_latest": 1.0}
