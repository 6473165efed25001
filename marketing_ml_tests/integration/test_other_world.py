"""The second world (marketing_ml.other_world): files in the raw contract, a deterministic output,
and a truth whose optimum the study solves exactly."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ml.check_raw import check_raw_folder
from marketing_ml.contract import BUDGET_PACING, META_CAMPAIGN_PERFORMANCE, REQUIRED_RAW_FILES
from marketing_ml.other_world import other_world_truth, write_other_world
from marketing_ml.simulation import (
    Run,
    beside_each_other,
    curve_marginal,
    markdown,
    study_run,
    summarise,
    true_best_spend,
    true_revenue,
)


def last_day_spend(raw_dir: Path) -> np.ndarray:
    pacing = pd.read_csv(raw_dir / BUDGET_PACING.file_name, encoding="utf-8-sig")
    last = pacing[pacing["date"] == pacing["date"].iloc[-1]]
    return last.sort_values("ad_set_id")["actual_spend"].to_numpy(dtype=float)


def test_messy_world_passes_the_contract_with_only_its_planted_duplicates(tmp_path: Path):
    write_other_world(tmp_path, ad_sets=12, days=80, seed=3, setting="messy")
    report, file_problems = check_raw_folder(tmp_path)
    assert file_problems == 0
    assert all(line.startswith("OK") for line in report), report
    assert all(
        ", 0 row(s) to quarantine" in line
        or line.endswith(": absent (optional; nothing to calibrate with)")
        for line in report
    ), report
    audience = next(line for line in report if "audience_segments.csv" in line)
    assert audience.endswith(
        "optional column(s) absent (read as blank): campaign_id, campaign_name, budget_level"
    )
    lines = (tmp_path / META_CAMPAIGN_PERFORMANCE.file_name).read_text("utf-8-sig").splitlines()
    planted_duplicates = len(lines) - len(set(lines))
    performance = next(line for line in report if META_CAMPAIGN_PERFORMANCE.file_name in line)
    assert f"{planted_duplicates} exact duplicate(s) to drop" in performance
    rows = pd.read_csv(tmp_path / META_CAMPAIGN_PERFORMANCE.file_name, encoding="utf-8-sig")
    paused = rows[rows["spend"] == 0]
    assert len(paused) >= 4 and (paused["impressions"] == 0).all()


def test_same_seed_writes_the_same_bytes_and_the_truth_without_writing_is_the_same(
    tmp_path: Path,
):
    first = write_other_world(tmp_path / "a", ad_sets=6, days=40, seed=5, setting="soft_cap")
    write_other_world(tmp_path / "b", ad_sets=6, days=40, seed=5, setting="soft_cap")
    write_other_world(tmp_path / "c", ad_sets=6, days=40, seed=6, setting="soft_cap")
    for raw_file in REQUIRED_RAW_FILES:
        same = (tmp_path / "a" / raw_file.file_name).read_bytes()
        assert same == (tmp_path / "b" / raw_file.file_name).read_bytes()
        assert same.startswith(b"\xef\xbb\xbf") and b"\r\n" in same
    assert (tmp_path / "a" / BUDGET_PACING.file_name).read_bytes() != (
        tmp_path / "c" / BUDGET_PACING.file_name
    ).read_bytes()
    pd.testing.assert_frame_equal(first, other_world_truth(6, 40, 5, "soft_cap"))


def test_true_optimum_of_the_other_world_beats_doing_nothing_and_any_small_move(tmp_path: Path):
    truth = write_other_world(tmp_path, ad_sets=20, days=90, seed=2, setting="soft_cap")
    current = last_day_spend(tmp_path)
    best = true_best_spend(truth, current)
    upper = np.minimum(1.5 * current, truth["capacity"].to_numpy())
    assert best.sum() == pytest.approx(current.sum())
    assert (best >= 0.5 * current - 1e-6).all() and (best <= upper + 1e-6).all()
    gain = true_revenue(truth, best).sum() - true_revenue(truth, current).sum()
    assert gain > 100
    free = (best > 0.5 * current + 1) & (best < upper - 1)
    assert free.sum() >= 2
    assert np.ptp(curve_marginal(truth, best)[free]) < 1e-6
    rng = np.random.default_rng(0)
    for _ in range(200):
        give, take = rng.choice(np.flatnonzero(free), size=2, replace=False)
        moved = best.copy()
        moved[give] -= 5.0
        moved[take] += 5.0
        assert true_revenue(truth, moved).sum() <= true_revenue(truth, best).sum() + 1e-9


def test_study_runs_the_real_plan_on_the_other_world_and_labels_its_table(tmp_path: Path):
    scores = study_run(Run("messy", seed=2, ad_sets=12, days=100, generator="other"), tmp_path)
    assert scores["generator"] == "other"
    assert scores["ad_sets"] == 12
    assert scores["best_uplift"] > 0
    assert scores["share"] <= 1.0 + 1e-9
    assert list(tmp_path.iterdir()) == []
    other = {
        "code": "x",
        "ad_sets": 12,
        "days": 100,
        "seeds": [2],
        "seconds": 1.0,
        "variants": summarise([scores]),
        "runs": [scores],
    }
    page = markdown({**other, "other_generator": other})
    assert "## Other generator: a world the plan was not built against" in page
    assert page.count("\n| messy |") == 4


def test_each_generators_study_keeps_the_others_figures():
    sample = {"generator": "sample", "code": "a", "variants": {"baseline": {}}}
    other = {"generator": "other", "code": "b", "variants": {"plain": {}}}
    both = beside_each_other(sample, other)
    assert both["code"] == "a" and both["other_generator"] == other
    rerun = {"generator": "sample", "code": "c", "variants": {"baseline": {}}}
    assert beside_each_other(both, rerun) == {**rerun, "other_generator": other}
    assert beside_each_other({}, rerun) == rerun
