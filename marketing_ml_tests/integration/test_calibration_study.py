"""The calibration study's scores on hand-made plans whose right answers are known, and one real run."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ml.simulation import (
    Run,
    markdown,
    score_plan,
    study_run,
    summarise,
    true_best_spend,
    true_marginal,
    true_revenue,
)
from planning import hill_marginal, hill_revenue

TRUTH = pd.DataFrame(
    {
        "ad_set_id": ["A", "B", "C"],
        "vmax": [20000.0, 9000.0, 12000.0],
        "half_saturation": [3000.0, 800.0, 1500.0],
        "shape": [0.8, 0.9, 0.7],
        "capacity": [np.inf, np.inf, 1100.0],
        "flat_budget": [False, False, True],
    }
)
CURRENT = np.array([1000.0, 1000.0, 1000.0])


def plan_of(recommended, spread: float = 0.1) -> pd.DataFrame:
    """A plan row per ad set whose intervals are the true values +-spread."""
    recommended = np.asarray(recommended, dtype=float)
    revenue = true_revenue(TRUTH, recommended)
    marginal = true_marginal(TRUTH, recommended)
    return pd.DataFrame(
        {
            "ad_set_id": TRUTH["ad_set_id"],
            "fit": "own",
            "current_spend": CURRENT,
            "recommended_spend": recommended,
            "expected_revenue_recommended_low": revenue * (1 - spread),
            "expected_revenue_recommended_high": revenue * (1 + spread),
            "marginal_roas_recommended_low": marginal * (1 - spread),
            "marginal_roas_recommended_high": marginal * (1 + spread),
            "some_new_column": "others may add columns",
        }
    )


def summary_of(plan: pd.DataFrame, claimed_factor: float = 1.0) -> dict:
    uplift = float(
        (
            true_revenue(TRUTH, plan["recommended_spend"].to_numpy()) - true_revenue(TRUTH, CURRENT)
        ).sum()
    )
    claimed = uplift * claimed_factor
    return {"uplift": claimed, "uplift_low": claimed * 0.9, "uplift_high": claimed * 1.1}


def test_true_best_keeps_the_total_and_equalises_marginal_roas_within_bounds():
    best = true_best_spend(TRUTH, CURRENT)
    assert best.sum() == pytest.approx(CURRENT.sum())
    assert (best >= 0.5 * CURRENT - 1e-6).all() and (best <= 1.5 * CURRENT + 1e-6).all()
    assert best[2] <= 1100.0 + 1e-6
    free = (best > 0.5 * CURRENT + 1) & (best < np.minimum(1.5 * CURRENT, 1100.0) - 1)
    marginals = hill_marginal(
        best[free], *(TRUTH[c][free] for c in ("vmax", "half_saturation", "shape"))
    )
    assert np.ptp(marginals) < 1e-3


def test_plan_at_the_true_optimum_scores_the_whole_share():
    plan = plan_of(true_best_spend(TRUTH, CURRENT))
    scores = score_plan(plan, summary_of(plan), TRUTH)
    assert scores["share"] == pytest.approx(1.0)
    assert scores["best_uplift"] > 100
    assert scores["claim_ratio"] == pytest.approx(1.0)
    assert scores["truth_inside_range"]
    assert scores["revenue_covered"] == scores["revenue_intervals"] == 3
    assert scores["marginal_covered"] == scores["marginal_intervals"] == 3


def test_plan_that_changes_nothing_scores_zero_share():
    plan = plan_of(CURRENT)
    scores = score_plan(plan, summary_of(plan), TRUTH)
    assert scores["share"] == 0.0
    assert scores["true_uplift"] == 0.0
    assert scores["flat_moved"] == 0


def test_budget_above_the_true_capacity_buys_nothing_and_is_counted():
    over = np.array([1000.0, 800.0, 1200.0])
    assert true_revenue(TRUTH, over)[2] == pytest.approx(hill_revenue(1100.0, 12000.0, 1500.0, 0.7))
    assert true_marginal(TRUTH, over)[2] == 0.0
    at_capacity = np.array([1000.0, 1000.0, 1100.0])
    assert true_marginal(TRUTH, at_capacity)[2] == pytest.approx(
        hill_marginal(1100.0, 12000.0, 1500.0, 0.7)
    )
    scores = score_plan(plan_of(over), summary_of(plan_of(over)), TRUTH)
    assert scores["planned_above_capacity"] == 1


def test_plans_own_bounds_are_scored_apart_from_its_curves():
    """Bounds that keep ad set A (the true best's recipient) from any increase cost the plan
    even on the true curves."""
    plan = plan_of(CURRENT).assign(lower_bound=0.5 * CURRENT, upper_bound=1.5 * CURRENT)
    free = score_plan(plan, summary_of(plan), TRUTH)
    assert free["raise_blocked"] == 0
    assert free["own_bounds_share"] == pytest.approx(1.0)
    blocked = plan.assign(upper_bound=CURRENT * np.array([1.0, 1.5, 1.5]))
    scores = score_plan(blocked, summary_of(blocked), TRUTH)
    assert scores["raise_blocked"] == 1
    assert scores["own_bounds_share"] < 0.9


def test_claims_off_the_truth_and_intervals_beside_it_are_scored_as_misses():
    plan = plan_of(true_best_spend(TRUTH, CURRENT))
    shifted = plan.assign(
        expected_revenue_recommended_low=plan["expected_revenue_recommended_low"] * 1.5,
        expected_revenue_recommended_high=plan["expected_revenue_recommended_high"] * 1.5,
    )
    scores = score_plan(shifted, summary_of(plan, claimed_factor=1.5), TRUTH)
    assert scores["claim_ratio"] == pytest.approx(1.5)
    assert not scores["truth_inside_range"]
    assert scores["revenue_covered"] == 0
    assert scores["marginal_covered"] == 3


def test_flat_budget_ad_set_counts_as_moved_beyond_ten_percent_only():
    def flat_moved(factor):
        recommended = CURRENT * np.array([1.0, 1.0, factor])
        return score_plan(plan_of(recommended), summary_of(plan_of(recommended)), TRUTH)[
            "flat_moved"
        ]

    assert [flat_moved(f) for f in (1.09, 0.91, 1.11, 0.89)] == [0, 0, 1, 1]


def test_summary_marks_each_figure_against_its_target():
    runs = [
        {
            "variant": "baseline",
            "seed": seed,
            "share": share,
            "claim_ratio": claim,
            "truth_inside_range": inside,
            "revenue_intervals": 10,
            "revenue_covered": 9,
            "marginal_intervals": 10,
            "marginal_covered": 5,
            "flat_ad_sets": 2,
            "flat_moved": moved,
            "true_uplift": 100.0,
            "best_uplift": 110.0,
            "claimed_uplift": 105.0,
            "own_fits": 40,
            "own_bounds_share": 0.9,
            "raise_blocked": 2,
            "moved_over_25pct": 3,
            "planned_above_capacity": 0,
            "seconds": 1.0,
        }
        for seed, share, claim, inside, moved in (
            (1, 0.95, 1.0, True, 0),
            (2, 0.91, 1.1, True, 0),
            (3, 0.70, float("inf"), False, 0),
        )
    ]
    figures = summarise(runs)["baseline"]
    assert figures["share_median"] == pytest.approx(0.91)
    assert figures["met"] == {
        "share_median": True,
        "share_worst": False,
        "claim_ratio_median": True,
        "truth_inside_range": False,
        "revenue_coverage": True,
        "marginal_coverage": False,
        "flat_moved_max": True,
    }
    study = {"code": "x", "ad_sets": 3, "days": 9, "seeds": [1, 2, 3], "seconds": 3.0}
    page = markdown({**study, "variants": {"baseline": figures}, "runs": runs})
    assert "| baseline | 91% met | 70% **missed** | 1.10 (1.00–∞) met | 2 of 3 **missed** |" in page
    no_flat = summarise([{**run, "variant": "seasonal_demand", "flat_ad_sets": 0} for run in runs])
    assert no_flat["seasonal_demand"]["met"]["flat_moved_max"] is None


def test_study_run_builds_the_real_plan_and_never_beats_the_true_best(tmp_path: Path):
    scores = study_run(Run("delivery_cap", seed=2, ad_sets=16, days=120), tmp_path)
    assert scores["ad_sets"] == 16
    assert scores["best_uplift"] > 0
    assert scores["share"] <= 1.0 + 1e-9
    assert scores["own_fits"] >= 8
    assert scores["revenue_intervals"] >= 8
    assert np.isfinite(scores["claimed_uplift"])
    assert list(tmp_path.iterdir()) == []
