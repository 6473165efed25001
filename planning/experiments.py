"""Lift tests: calibrate the fitted curves with the ones that were run, and propose the next one.

A lift test moved one ad set's daily spend by `budget_change` for `days` days and measured the
incremental revenue it bought, with a 90% interval. Over the test the curve predicts
`days × (curve(base + change) − curve(base))`, where `base` is the spend the ad set would have had
without the change. A test corrects the curve's level (vmax, which scales revenue and marginal
ROAS by one factor, as Robyn's calibration scales a channel's coefficient), not its shape: the
factor's prior is the spread the curve's bootstrap draws give the predicted increment, and each
test updates it as a normal measurement (a conjugate update). The point curve moves to the
posterior factor and the draws are mapped onto the posterior, so the interval narrows with it.
"""

from dataclasses import replace

import numpy as np
import pandas as pd

from planning.curves import CurveFits, hill_marginal, hill_revenue, interval
from planning.money import prose_money, signed_prose_money

Z90 = 1.6449
"""A 90% interval's half-width in standard errors."""
MIN_FACTOR_SD = 0.01
"""The prior's spread is never taken as narrower than this: draws that all agree (a pooled curve
scaled from one group) must not make a test's measurement count for nothing."""
LIFT_TEST_COLUMNS = (
    "experiment_id",
    "ad_set_id",
    "days",
    "base_spend",
    "budget_change",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
)
TEST_CHANGES = (0.2, 0.3, 0.5)
"""Budget changes a proposed test makes, × current spend a day: the smallest that settles it."""
TEST_DAY_STEPS = (7, 14, 21, 28, 42, 56)
"""Test lengths offered, in whole weeks so every weekday counts equally."""
NO_PROPOSAL = {
    "test_ad_set_id": None,
    "test_budget_change": np.nan,
    "test_days": None,
    "test_marginal_roas_half_width": np.nan,
    "test_uplift_at_stake": np.nan,
    "test_proposal": None,
}
"""The proposal's fields when no ad set's uncertainty moves money."""


def _increment(spend: np.ndarray, change: np.ndarray, vmax, half, shape) -> np.ndarray:
    return hill_revenue(spend + change, vmax, half, shape) - hill_revenue(spend, vmax, half, shape)


def calibrate_curves(fits: CurveFits, tests: pd.DataFrame) -> CurveFits:
    """`fits` with each tested ad set's curve scaled toward its lift tests (see the module);
    `calibrated_by` names the tests (comma-separated, NULL where none applied). A test on an ad
    set without a curve, or one whose change the curve cannot price (no base spend), is left
    out. Marginal ROAS keeps whatever the fit priced beside the curve (its ratio to the bare
    curve's), so only the curve's own factor changes."""
    curves = fits.curves.copy()
    curves["calibrated_by"] = pd.Series([None] * len(curves), dtype="object")
    draws = {name: matrix.copy() for name, matrix in fits.draws.items()}
    row_of = {ad_set: i for i, ad_set in enumerate(curves["ad_set_id"])}
    usable = tests[
        tests["ad_set_id"].isin(row_of)
        & (tests["base_spend"] > 0)
        & (tests["budget_change"] != 0)
        & (tests["days"] > 0)
    ].sort_values(["ad_set_id", "experiment_id"])
    for ad_set, ad_set_tests in usable.groupby("ad_set_id", sort=True):
        i = row_of[ad_set]
        if not np.isfinite(curves.at[i, "vmax"]):
            continue
        point = curves.loc[i, ["vmax", "half_saturation", "shape"]].to_numpy(dtype=float)
        base = ad_set_tests["base_spend"].to_numpy(dtype=float)
        change = ad_set_tests["budget_change"].to_numpy(dtype=float)
        days = ad_set_tests["days"].to_numpy(dtype=float)
        predicted = days * _increment(base, change, *point)
        drawn = days[:, None] * _increment(
            base[:, None],
            change[:, None],
            draws["vmax"][i][None, :],
            draws["half_saturation"][i][None, :],
            draws["shape"][i][None, :],
        )
        keep = np.abs(predicted) > 1e-9
        if not keep.any():
            continue
        factors = drawn[keep] / predicted[keep, None]
        prior_sd = max(float(np.nanstd(factors)), MIN_FACTOR_SD)
        measured = ad_set_tests["incremental_revenue"].to_numpy(dtype=float)[keep]
        measured_sd = (
            ad_set_tests["incremental_revenue_high"].to_numpy(dtype=float)[keep]
            - ad_set_tests["incremental_revenue_low"].to_numpy(dtype=float)[keep]
        ) / (2 * Z90)
        measured_sd = np.maximum(measured_sd, 1e-6 * np.abs(predicted[keep]) + 1e-9)
        precision = 1 / prior_sd**2 + np.sum(predicted[keep] ** 2 / measured_sd**2)
        factor = (1 / prior_sd**2 + np.sum(predicted[keep] * measured / measured_sd**2)) / precision
        factor_sd = precision**-0.5
        draw_factor = factors.mean(axis=0)
        posterior = factor + factor_sd / prior_sd * (draw_factor - 1)
        draws["vmax"][i] = draws["vmax"][i] * posterior / draw_factor
        curves.at[i, "vmax"] = point[0] * factor
        curves.at[i, "calibrated_by"] = ", ".join(ad_set_tests["experiment_id"][keep])
        current = float(curves.at[i, "current_spend"])
        if current > 0:
            scale = curves.at[i, "marginal_roas"] / hill_marginal(current, *point)
            curves.at[i, "marginal_roas"] = scale * float(
                hill_marginal(current, *curves.loc[i, ["vmax", "half_saturation", "shape"]])
            )
            low, high = interval(
                hill_marginal(
                    current, draws["vmax"][i], draws["half_saturation"][i], draws["shape"][i]
                )
            )
            curves.at[i, "marginal_roas_low"] = scale * low
            curves.at[i, "marginal_roas_high"] = scale * high
    return replace(fits, curves=curves, draws=draws)


def revenue_noise_sd(window: pd.DataFrame, curves: pd.DataFrame) -> pd.Series:
    """Each ad set's day-to-day revenue noise: the standard deviation of its daily revenue
    around its fitted curve over the window (NaN without a curve or with fewer than 7 days)."""
    params = curves.set_index("ad_set_id")[["vmax", "half_saturation", "shape"]]
    days = window.dropna(subset=["spend", "revenue"]).join(params, on="ad_set_id")
    days = days[np.isfinite(days["vmax"])]
    residual = days["revenue"] - hill_revenue(
        days["spend"], days["vmax"], days["half_saturation"], days["shape"]
    )
    grouped = residual.groupby(days["ad_set_id"])
    noise = grouped.std().where(grouped.count() >= 7)
    return curves["ad_set_id"].map(noise).astype(float)


def half_width_after(noise_sd: float, change: float, days: int) -> float:
    """The 90% half-width of the marginal ROAS a test measures: it compares the days with the
    change against as many days without it, so the lift a day is a difference of two means of
    `days` noisy days (standard error `noise_sd × sqrt(2 / days)`), divided by the change."""
    return float(Z90 * noise_sd * np.sqrt(2 / days) / abs(change))


def smallest_settling_test(
    noise_sd: float, current_spend: float, target_half_width: float
) -> tuple[float, int, float, bool]:
    """(change £ a day, days, half-width, settles): the smallest change in TEST_CHANGES and then
    the shortest length in TEST_DAY_STEPS that brings the half-width to `target_half_width`;
    the largest change for the longest length (settles False) when none does."""
    for share in TEST_CHANGES:
        change = share * current_spend
        for days in TEST_DAY_STEPS:
            half_width = half_width_after(noise_sd, change, days)
            if half_width <= target_half_width:
                return change, days, half_width, True
    return change, days, half_width, False


def propose_budget_test(plan: pd.DataFrame, curves: pd.DataFrame) -> dict:
    """The lift test worth most (the fields of NO_PROPOSAL), or NO_PROPOSAL when no ad set's
    uncertainty moves money.

    What an ad set's uncertainty puts at stake is the width of its marginal ROAS interval at the
    recommended spend times the budget the plan moves there (£ a day of the plan's uplift that
    its curve cannot vouch for); the test goes to the ad set where that is largest, and is the
    smallest that halves its interval (`smallest_settling_test`), or says none would."""
    frame = plan.merge(
        curves[["ad_set_id", "revenue_noise_sd"]], on="ad_set_id", how="left", validate="1:1"
    )
    frame["width"] = (
        frame["marginal_roas_recommended_high"] - frame["marginal_roas_recommended_low"]
    )
    frame["at_stake"] = (frame["width"] * frame["change"].abs()).fillna(0.0)
    candidates = frame[
        (frame["at_stake"] > 0) & (frame["current_spend"] > 0) & (frame["revenue_noise_sd"] > 0)
    ]
    if candidates.empty:
        return dict(NO_PROPOSAL)
    best = candidates.sort_values(["at_stake", "ad_set_id"], ascending=[False, True]).iloc[0]
    current = float(best["current_spend"])
    change, days, half_width, settles = smallest_settling_test(
        float(best["revenue_noise_sd"]), current, float(best["width"]) / 4
    )
    name = str(best["ad_set_name"] or best["ad_set_id"])
    low, high = best["marginal_roas_recommended_low"], best["marginal_roas_recommended_high"]
    now = f"now {low:.2f}×–{high:.2f}×, with {prose_money(best['change'])} a day moved on it"
    test = f"+{change / current:.0%} ({signed_prose_money(change)} a day) on {name} for {days} days"
    if settles:
        sentence = f"Test {test}: it would pin its marginal ROAS to ±{half_width:.2f}× ({now})."
    elif half_width < best["width"] / 2:
        sentence = (
            f"Test {test}: it would pin its marginal ROAS to ±{half_width:.2f}× "
            f"(±{best['width'] / 2:.2f}× {now}); halving that would take longer than a test "
            "should run."
        )
    else:
        sentence = (
            f"Even {test} would pin its marginal ROAS only to ±{half_width:.2f}× ({now}): its "
            "daily revenue is too noisy for a budget test on it alone to tell more than its curve."
        )
    return {
        "test_ad_set_id": str(best["ad_set_id"]),
        "test_budget_change": round(change, 2),
        "test_days": days,
        "test_marginal_roas_half_width": round(half_width, 3),
        "test_uplift_at_stake": round(float(best["at_stake"]), 2),
        "test_proposal": sentence,
    }
