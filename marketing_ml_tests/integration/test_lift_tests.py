"""Lift tests (issue 21 item 6): an optional experiments.csv calibrates the curves it covers, and
the plan proposes the test worth most. The pure pieces on planted truth first, then the file
through the whole graph on real DuckDB files."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ml.check_raw import check_raw_folder
from marketing_ml.contract import EXPERIMENTS
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml.sample_data import planted_curves, write_sample_data
from marketing_ml_tests.support.lakehouse import (
    Lakehouse,
    check_outcomes,
    quality_warnings,
    write_raw_csv,
)
from marketing_ml_tests.support.planning_cases import synthetic_daily
from planning import fit_response_curves
from planning.curves import hill_marginal, hill_revenue
from planning.experiments import (
    LIFT_TEST_COLUMNS,
    calibrate_curves,
    half_width_after,
    propose_budget_test,
    smallest_settling_test,
)

INCREMENTAL_SHARE = 0.6
"""The planted gap between attributed and incremental revenue: the data's curves see revenue
that would have come anyway, a lift test sees only what the spend added."""


def lift_tests_on(curves: pd.DataFrame, truth: pd.DataFrame, rows, days=28, precision=0.15):
    """Tests of +20% of current spend measured from the true incremental curve, with a 90%
    interval of ±`precision` of the measurement."""
    tests = []
    for i in rows:
        base = float(curves.at[i, "current_spend"])
        change = 0.2 * base
        true = truth.loc[i]
        lift = days * float(
            INCREMENTAL_SHARE
            * (
                hill_revenue(base + change, true["vmax"], true["half_saturation"], true["shape"])
                - hill_revenue(base, true["vmax"], true["half_saturation"], true["shape"])
            )
        )
        tests.append(
            {
                "experiment_id": f"LT_{i:02d}",
                "ad_set_id": curves.at[i, "ad_set_id"],
                "days": days,
                "base_spend": base,
                "budget_change": change,
                "incremental_revenue": lift,
                "incremental_revenue_low": lift * (1 - precision),
                "incremental_revenue_high": lift * (1 + precision),
            }
        )
    return pd.DataFrame(tests, columns=list(LIFT_TEST_COLUMNS))


@pytest.fixture(scope="module")
def biased_fits():
    daily, truth = synthetic_daily(5, 12, 120)
    return fit_response_curves(daily), truth


def test_a_lift_test_pulls_a_biased_curve_to_the_truth_and_narrows_its_interval(biased_fits):
    fits, truth = biased_fits
    tested = [0, 3, 7]
    calibrated = calibrate_curves(fits, lift_tests_on(fits.curves, truth, tested)).curves
    before = fits.curves
    true_marginal = INCREMENTAL_SHARE * hill_marginal(
        before["current_spend"], truth["vmax"], truth["half_saturation"], truth["shape"]
    )
    error_before = (before["marginal_roas"] / true_marginal - 1).abs()
    error_after = (calibrated["marginal_roas"] / true_marginal - 1).abs()
    width_before = before["marginal_roas_high"] - before["marginal_roas_low"]
    width_after = calibrated["marginal_roas_high"] - calibrated["marginal_roas_low"]
    assert (error_before[tested] > 0.3).all()
    assert (error_after[tested] < 0.15).all()
    assert (width_after[tested] < 0.5 * width_before[tested]).all()
    assert (calibrated.loc[tested, "marginal_roas_low"] <= true_marginal[tested]).all()
    assert (true_marginal[tested] <= calibrated.loc[tested, "marginal_roas_high"]).all()
    assert list(calibrated.loc[tested, "calibrated_by"]) == ["LT_00", "LT_03", "LT_07"]
    untested = before.index.difference(tested)
    assert calibrated.loc[untested, "calibrated_by"].isna().all()
    pd.testing.assert_series_equal(
        calibrated.loc[untested, "marginal_roas"], before.loc[untested, "marginal_roas"]
    )


def test_a_test_that_confirms_the_curve_keeps_what_the_fit_priced_beside_it(biased_fits):
    """A fit may price marginal ROAS with more than the bare curve (a weekday or demand factor):
    calibration changes only the curve's own factor."""
    fits, _ = biased_fits
    curves = fits.curves.copy()
    columns = ["marginal_roas", "marginal_roas_low", "marginal_roas_high"]
    curves.loc[5, columns] *= 1.3
    base = float(curves.at[5, "current_spend"])
    point = curves.loc[5, ["vmax", "half_saturation", "shape"]].to_numpy(dtype=float)
    lift = 28 * float(hill_revenue(1.2 * base, *point) - hill_revenue(base, *point))
    tests = pd.DataFrame(
        [["LT_5", curves.at[5, "ad_set_id"], 28, base, 0.2 * base, lift, 0.99 * lift, 1.01 * lift]],
        columns=list(LIFT_TEST_COLUMNS),
    )
    calibrated = calibrate_curves(replace(fits, curves=curves), tests).curves
    assert calibrated.at[5, "marginal_roas"] == pytest.approx(curves.at[5, "marginal_roas"], 0.01)
    assert calibrated.at[5, "marginal_roas_low"] > 0.8 * curves.at[5, "marginal_roas_low"]


def test_a_vague_lift_test_moves_the_curve_less_than_a_precise_one(biased_fits):
    fits, truth = biased_fits
    precise = calibrate_curves(fits, lift_tests_on(fits.curves, truth, [2], precision=0.05))
    vague = calibrate_curves(fits, lift_tests_on(fits.curves, truth, [2], precision=3.0))
    moved = {
        name: abs(result.curves.at[2, "vmax"] / fits.curves.at[2, "vmax"] - 1)
        for name, result in (("precise", precise), ("vague", vague))
    }
    assert moved["vague"] < 0.5 * moved["precise"]


def test_a_lift_test_on_an_unknown_ad_set_or_without_spend_changes_nothing(biased_fits):
    fits, truth = biased_fits
    tests = lift_tests_on(fits.curves, truth, [1, 4])
    tests.loc[0, "ad_set_id"] = "NOT_AN_AD_SET"
    tests.loc[1, "base_spend"] = np.nan
    calibrated = calibrate_curves(fits, tests).curves
    assert calibrated["calibrated_by"].isna().all()
    pd.testing.assert_series_equal(calibrated["vmax"], fits.curves["vmax"])


def plan_rows(widths, changes):
    n = len(widths)
    return pd.DataFrame(
        {
            "ad_set_id": [f"AS_{i}" for i in range(n)],
            "ad_set_name": [f"Ad set {i}" for i in range(n)],
            "current_spend": 1000.0,
            "change": changes,
            "marginal_roas_recommended_low": 2.0,
            "marginal_roas_recommended_high": [2.0 + w for w in widths],
        }
    )


def test_the_proposed_test_is_where_the_most_uplift_rides_on_an_uncertain_curve():
    plan = plan_rows(widths=[3.0, 0.2, 1.5, 2.0], changes=[20.0, 400.0, 100.0, 0.0])
    curves = pd.DataFrame({"ad_set_id": plan["ad_set_id"], "revenue_noise_sd": 200.0})
    proposal = propose_budget_test(plan, curves)
    assert proposal["test_ad_set_id"] == "AS_2"
    assert proposal["test_uplift_at_stake"] == pytest.approx(150.0)
    assert (proposal["test_budget_change"], proposal["test_days"]) == (200.0, 42)
    assert proposal["test_marginal_roas_half_width"] <= 1.5 / 4
    assert proposal["test_proposal"].startswith(
        "Test +20% (+£200 a day) on Ad set 2 for 42 days: it would pin its marginal ROAS to ±0.36×"
    )


@pytest.mark.parametrize(
    ("noise", "opening", "ending"),
    [
        (1000.0, "Test +50% (+£500 a day) on Ad set 0 for 56 days: it would pin", "run."),
        (5000.0, "Even +50% (+£500 a day) on Ad set 0 for 56 days would pin", "than its curve."),
    ],
)
def test_a_test_that_cannot_halve_the_interval_says_how_far_it_gets(noise, opening, ending):
    plan = plan_rows(widths=[1.5], changes=[100.0])
    curves = pd.DataFrame({"ad_set_id": plan["ad_set_id"], "revenue_noise_sd": noise})
    proposal = propose_budget_test(plan, curves)
    assert (proposal["test_budget_change"], proposal["test_days"]) == (500.0, 56)
    assert proposal["test_proposal"].startswith(opening)
    assert proposal["test_proposal"].endswith(ending)


def test_no_test_is_proposed_when_the_plan_moves_nothing():
    plan = plan_rows(widths=[3.0, 1.0], changes=[0.0, 0.0])
    curves = pd.DataFrame({"ad_set_id": plan["ad_set_id"], "revenue_noise_sd": 800.0})
    assert propose_budget_test(plan, curves)["test_proposal"] is None


def test_a_noisier_ad_set_needs_a_longer_or_larger_test_and_the_stated_precision_holds():
    quiet = smallest_settling_test(noise_sd=100.0, current_spend=1000.0, target_half_width=0.5)
    noisy = smallest_settling_test(noise_sd=400.0, current_spend=1000.0, target_half_width=0.5)
    assert quiet[3] and noisy[3]
    assert (quiet[0], quiet[1]) < (noisy[0], noisy[1])
    days, change, marginal, noise = 21, 200.0, 1.5, 400.0
    half_width = half_width_after(noise, change, days)
    rng = np.random.default_rng(0)
    with_change = rng.normal(marginal * change, noise, (20000, days)).mean(axis=1)
    without = rng.normal(0.0, noise, (20000, days)).mean(axis=1)
    measured = (with_change - without) / change
    assert (np.abs(measured - marginal) <= half_width).mean() == pytest.approx(0.9, abs=0.01)


def test_without_an_experiments_file_everything_builds_as_before(clean_build):
    lakehouse, result = clean_build.lakehouse, clean_build.result
    report, file_problems = check_raw_folder(lakehouse.raw_dir)
    assert file_problems == 0
    assert f"OK    {lakehouse.raw_dir / EXPERIMENTS.file_name}: absent" in "\n".join(report)
    assert result.success
    outcomes = check_outcomes(result)
    assert [name for name in outcomes if name.startswith("experiments_")] == [
        "experiments_key_unique",
        "experiments_required_not_null",
        "experiments_values_in_range",
        "experiments_ad_sets_known",
    ]
    assert quality_warnings(result) == []
    assert lakehouse.query("SELECT count(*) FROM silver.experiments") == [(0,)]
    assert lakehouse.query(
        "SELECT file_records, bronze_rows, silver_rows, quarantined_rows, balanced "
        "FROM gold.row_accounting WHERE source_file = 'experiments.csv'"
    ) == [(0, 0, 0, 0, True)]
    assert lakehouse.query(
        "SELECT count(*) FROM gold.response_curves WHERE calibrated_by IS NOT NULL"
    ) == [(0,)]


AD_SETS, DAYS, SEED = 12, 120, 1
"""Sample data from 01/08/2024: the last day is 28/11/2024."""


def experiments_rows(tested: list[str]) -> list[list[str]]:
    """A valid +£100-a-day test on each of `tested` over the last four weeks, then one row per
    way a lift-test export goes wrong."""
    valid = [
        [f"LT_{i}", ad_set, "01/11/2024", "28/11/2024", "100", "3000", "2000", "4000"]
        for i, ad_set in enumerate(tested)
    ]
    return [
        *valid,
        ["LT_back", tested[0], "28/11/2024", "01/11/2024", "100", "3000", "2000", "4000"],
        ["LT_low", tested[0], "01/11/2024", "28/11/2024", "100", "3000", "3500", "4000"],
        ["LT_date", tested[0], "31/11/2024", "28/11/2024", "100", "3000", "2000", "4000"],
        ["LT_blank", tested[0], "01/11/2024", "28/11/2024", "", "3000", "2000", "4000"],
        ["LT_0", tested[0], "01/11/2024", "28/11/2024", "100", "3500", "2000", "4000"],
        ["LT_extra", tested[0], "01/11/2024", "28/11/2024", "100", "3000", "2000"],
    ]


def test_an_experiments_file_calibrates_its_curves_and_quarantines_its_bad_rows(tmp_path: Path):
    lakehouse = Lakehouse(
        raw_dir=tmp_path / "raw",
        database=tmp_path / "lakehouse.duckdb",
        serving=tmp_path / "serving.duckdb",
    )
    write_sample_data(lakehouse.raw_dir, ad_sets=AD_SETS, days=DAYS, seed=SEED)
    tested = list(planted_curves(AD_SETS, SEED)["ad_set_id"][:3])
    write_raw_csv(
        lakehouse.raw_dir / EXPERIMENTS.file_name, EXPERIMENTS.columns, experiments_rows(tested)
    )
    report, file_problems = check_raw_folder(lakehouse.raw_dir)
    assert file_problems == 0
    assert any(
        line.endswith(":5: out_of_order: start_date (28/11/2024) comes after end_date (01/11/2024)")
        for line in report
    )

    result = lakehouse.materialize()
    assert result.success
    quarantined = lakehouse.query(
        "SELECT source_line, rule, reason FROM silver.quarantine "
        "WHERE source_file = 'experiments.csv' ORDER BY source_line"
    )
    assert [(line, rule) for line, rule, _ in quarantined] == [
        (2, "conflicting_duplicate"),
        (5, "out_of_order"),
        (6, "out_of_order"),
        (7, "unparseable_date"),
        (8, "missing_required"),
        (9, "conflicting_duplicate"),
        (10, "wrong_field_count"),
    ]
    assert "incremental_revenue_low (3500) comes after incremental_revenue (3000)" in [
        reason for _, _, reason in quarantined
    ]
    assert lakehouse.query(
        "SELECT file_records, bronze_rows, silver_rows, quarantined_rows, balanced "
        "FROM gold.row_accounting WHERE source_file = 'experiments.csv'"
    ) == [(9, 9, 2, 7, True)]

    curves = lakehouse.query(
        "SELECT ad_set_id, calibrated_by FROM gold.response_curves "
        "WHERE calibrated_by IS NOT NULL ORDER BY ad_set_id"
    )
    assert curves == [(ad_set, f"LT_{i}") for i, ad_set in enumerate(tested) if i > 0]
    reasons = dict(lakehouse.query("SELECT ad_set_id, reason FROM gold.budget_plan"))
    for ad_set, test in curves:
        assert reasons[ad_set].endswith(f"its curve is calibrated by lift test {test}")
    (proposal,) = lakehouse.query(
        "SELECT test_ad_set_id, test_days, test_proposal FROM gold.budget_plan_summary"
    )
    assert proposal[0] in reasons
    assert f"for {proposal[1]} days" in proposal[2]


def test_an_absent_experiments_file_is_the_version_loaded_until_one_arrives(tmp_path: Path):
    absent = tmp_path / EXPERIMENTS.file_name
    loaded = profile_raw_file(absent, EXPERIMENTS)
    assert (loaded.data_rows, loaded.extends) == (0, None)
    again = profile_raw_file(absent, EXPERIMENTS, loaded)
    assert again.extends is loaded and again.sha256 == loaded.sha256
    write_raw_csv(absent, EXPERIMENTS.columns, [experiments_rows(["AS_001"])[0]])
    arrived = profile_raw_file(absent, EXPERIMENTS, loaded)
    assert (arrived.data_rows, arrived.extends) == (1, None)
