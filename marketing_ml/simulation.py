"""The calibration study: the budget plan made by the real pipeline on generated data whose truth
is planted (`sample_data.planted_truth`), scored against that truth.

Per variant and seed: the four CSVs are written to a temporary folder, the assets the plan needs
(bronze to gold.budget_plan, the classifiers included: the plan reads their under-pacing risk) are
materialized in process against a temporary lakehouse, and the stored plan is read back by its
stable columns. The scores say what a marketing scientist would ask: how much of the best uplift
the plan reaches within plain 0.5x-1.5x of current spend and the true capacity, whether the uplift
it claims is the uplift it buys, and whether its 90% intervals hold the truth 90% of the time.
"""

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from marketing_ml.definitions import build_definitions
from marketing_ml.other_world import SETTINGS, write_other_world
from marketing_ml.sample_data import VARIANTS, planted_truth, write_sample_data
from marketing_ml.table_keys import BUDGET_PLAN, BUDGET_PLAN_SUMMARY
from planning import allocate, hill_marginal, hill_revenue

BOUNDS = (0.5, 1.5)
"""The true best is sought within these multiples of current spend (and the true capacity)."""
UNIDENTIFIED_MOVE = 0.10
"""A flat-budget ad set (no identifying budget move) should not be moved by more than this."""
GENERATORS = {"sample": VARIANTS, "other": SETTINGS}
"""The worlds the study can plan on and their variants: sample_data's (which the plan was built
against) and marketing_ml.other_world's (which it never saw)."""
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

TARGETS = {
    "share_median": (0.90, None),
    "share_worst": (0.80, None),
    "claim_ratio_median": (0.85, 1.15),
    "truth_inside_range": (0.80, None),
    "revenue_coverage": (0.85, 0.95),
    "marginal_coverage": (0.85, 0.95),
    "flat_moved_max": (None, 0),
}
"""Issue 21's targets: (at least, at most) per figure."""


# ------------------------------------------------------------------------------- the truth side
def true_revenue(truth: pd.DataFrame, spend: np.ndarray) -> np.ndarray:
    """Expected revenue of the plan's day at a budget that asks for `spend`: above its capacity an
    ad set spends (and earns) only its capacity."""
    delivered = np.minimum(spend, truth["capacity"].to_numpy())
    return curve_revenue(truth, delivered)


def true_marginal(truth: pd.DataFrame, spend: np.ndarray) -> np.ndarray:
    """Revenue per pound at the margin of `spend`: the curve's slope up to the capacity (a plan
    that stops at the capacity is priced from below), nothing beyond it."""
    marginal = curve_marginal(truth, np.maximum(spend, 1e-9))
    return np.where(spend <= truth["capacity"].to_numpy() + 0.005, marginal, 0.0)


def curve_arrays(truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(truth[c].to_numpy(dtype=float) for c in ("vmax", "half_saturation", "shape"))


def exponential(truth: pd.DataFrame) -> bool:
    """A truth from the other world (`marketing_ml.other_world`): `ceiling * (1 - exp(-s / scale))`
    per ad set; without a family column the truth is sample_data's Hill curves."""
    return "family" in truth and bool((truth["family"] == "exponential").all())


def exponential_arrays(truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return tuple(truth[c].to_numpy(dtype=float) for c in ("ceiling", "scale"))


def curve_revenue(truth: pd.DataFrame, spend: np.ndarray) -> np.ndarray:
    if exponential(truth):
        ceiling, scale = exponential_arrays(truth)
        return ceiling * -np.expm1(-spend / scale)
    return hill_revenue(spend, *curve_arrays(truth))


def curve_marginal(truth: pd.DataFrame, spend: np.ndarray) -> np.ndarray:
    if exponential(truth):
        ceiling, scale = exponential_arrays(truth)
        return ceiling / scale * np.exp(-spend / scale)
    return hill_marginal(spend, *curve_arrays(truth))


def best_spend_within(
    truth: pd.DataFrame, lower: np.ndarray, upper: np.ndarray, total: float
) -> np.ndarray:
    """The same total placed where the true curves earn most within [lower, upper]: Hill curves by
    planning.allocate; exponential ones by water-filling on the marginal, which has a closed-form
    inverse (spend = scale * log(ceiling / (scale * marginal))), bisected in log marginal."""
    if not exponential(truth):
        return allocate(*curve_arrays(truth), lower, upper, "same_budget", total=total).spend
    if total >= upper.sum():
        return upper.copy()
    if total <= lower.sum():
        return lower.copy()
    ceiling, scale = exponential_arrays(truth)

    def spend_at(log_marginal: float) -> np.ndarray:
        wanted = scale * (np.log(ceiling / scale) - log_marginal)
        return np.clip(wanted, lower, upper)

    low = float(np.log(curve_marginal(truth, upper).min())) - 1.0
    high = float(np.log(curve_marginal(truth, lower).max())) + 1.0
    for _ in range(200):
        middle = (low + high) / 2.0
        low, high = (low, middle) if spend_at(middle).sum() < total else (middle, high)
    return spend_at(low)


def true_best_spend(truth: pd.DataFrame, current: np.ndarray) -> np.ndarray:
    """The same total, placed where the true curves earn most, within 0.5x-1.5x of current spend
    and the true capacity (the problem is separable and concave)."""
    lower = BOUNDS[0] * current
    upper = np.maximum(np.minimum(BOUNDS[1] * current, truth["capacity"].to_numpy()), lower)
    return best_spend_within(truth, lower, upper, float(current.sum()))


# ------------------------------------------------------------------------------------- scoring
def _inside(value: np.ndarray, low: pd.Series, high: pd.Series) -> np.ndarray:
    """Per row with an interval, whether value lies in it (a penny's slack for rounding)."""
    low, high = low.to_numpy(dtype=float), high.to_numpy(dtype=float)
    known = np.isfinite(low) & np.isfinite(high)
    return ((value >= low - 0.005) & (value <= high + 0.005))[known]


def score_plan(plan: pd.DataFrame, summary: Mapping, truth: pd.DataFrame) -> dict:
    """One plan against its truth. `plan` needs ad_set_id, current_spend, recommended_spend (the
    interval columns are scored where present); `summary` uplift, uplift_low, uplift_high."""
    rows = plan.merge(truth, on="ad_set_id", how="inner", validate="one_to_one")
    current = rows["current_spend"].to_numpy(dtype=float)
    recommended = rows["recommended_spend"].to_numpy(dtype=float)
    revenue_now = true_revenue(rows, current)
    revenue_planned = true_revenue(rows, recommended)
    best = true_best_spend(rows, current)
    true_uplift = float((revenue_planned - revenue_now).sum())
    best_uplift = float((true_revenue(rows, best) - revenue_now).sum())
    claimed = float(summary["uplift"])
    low, high = float(summary.get("uplift_low", np.nan)), float(summary.get("uplift_high", np.nan))

    def covered(value, column):
        if f"{column}_low" not in rows or f"{column}_high" not in rows:
            return np.array([], dtype=bool)
        return _inside(value, rows[f"{column}_low"], rows[f"{column}_high"])

    revenue_hits = covered(revenue_planned, "expected_revenue_recommended")
    marginal_hits = covered(true_marginal(rows, recommended), "marginal_roas_recommended")
    change = np.abs(recommended - current) / np.maximum(current, 1e-9)
    flat = rows["flat_budget"].to_numpy(dtype=bool)
    fits = rows["fit"].astype(str) if "fit" in rows else pd.Series(dtype=str)
    return {
        "ad_sets": len(rows),
        "true_uplift": true_uplift,
        "best_uplift": best_uplift,
        **own_bounds_scores(rows, current, revenue_now, best_uplift),
        "share": true_uplift / best_uplift if best_uplift > 0 else float("nan"),
        "claimed_uplift": claimed,
        "uplift_low": low,
        "uplift_high": high,
        "claim_ratio": claim_ratio(claimed, true_uplift),
        "truth_inside_range": bool(low <= true_uplift <= high),
        "revenue_intervals": len(revenue_hits),
        "revenue_covered": int(revenue_hits.sum()),
        "marginal_intervals": len(marginal_hits),
        "marginal_covered": int(marginal_hits.sum()),
        "flat_ad_sets": int(flat.sum()),
        "flat_moved": int((flat & (change > UNIDENTIFIED_MOVE + 1e-9)).sum()),
        "moved_over_25pct": int((change > 0.25 + 1e-9).sum()),
        "planned_above_capacity": int((recommended > rows["capacity"].to_numpy() + 0.005).sum()),
        "own_fits": int((fits == "own").sum()),
    }


def own_bounds_scores(
    rows: pd.DataFrame, current: np.ndarray, revenue_now: np.ndarray, best_uplift: float
) -> dict:
    """Where the plan's own bounds are stored: the best they allow on the true curves, as a share
    of the true best, and how many ad sets they keep from any increase (the cost of the bounds,
    apart from the cost of the curves)."""
    if "lower_bound" not in rows or "upper_bound" not in rows:
        return {"own_bounds_share": float("nan"), "raise_blocked": None}
    lower = rows["lower_bound"].to_numpy(dtype=float)
    upper = rows["upper_bound"].to_numpy(dtype=float)
    spend = best_spend_within(rows, lower, upper, float(current.sum()))
    uplift = float((true_revenue(rows, spend) - revenue_now).sum())
    return {
        "own_bounds_share": uplift / best_uplift if best_uplift > 0 else float("nan"),
        "raise_blocked": int((upper <= current + 0.005).sum()),
    }


def claim_ratio(claimed: float, true_uplift: float) -> float:
    """Claimed over true uplift; a claimed gain where the truth is no gain is infinitely off."""
    if true_uplift > 0:
        return claimed / true_uplift
    return float("inf") if claimed > 0 else float("nan")


# ------------------------------------------------------------------------------ one run, built
def build_stored_plan(raw_dir: Path, work_dir: Path) -> tuple[pd.DataFrame, dict]:
    """Materialize the plan and everything upstream of it (checks left out: they gate, they do not
    change what is stored) into a lakehouse in work_dir; the stored plan and summary."""
    database = work_dir / "lakehouse.duckdb"
    definitions = build_definitions(str(database), str(raw_dir), str(work_dir / "serving.duckdb"))
    result = dg.materialize(
        list(definitions.assets),
        resources=definitions.resources,
        selection=dg.AssetSelection.assets(BUDGET_PLAN, BUDGET_PLAN_SUMMARY).upstream(),
        run_config=QUIET_LOGS,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    if not result.success:
        failed = [event.step_key for event in result.get_step_failure_events()]
        raise RuntimeError(f"the plan's build failed in {failed} (raw files in {raw_dir})")
    with duckdb.connect(str(database), read_only=True) as connection:
        plan = connection.execute("SELECT * FROM gold.budget_plan ORDER BY ad_set_id").df()
        summary = connection.execute("SELECT * FROM gold.budget_plan_summary").df()
    return plan, summary.iloc[0].to_dict()


@dataclass(frozen=True)
class Run:
    variant: str
    seed: int
    ad_sets: int
    days: int
    generator: str = "sample"


def generate(run: Run, raw_dir: Path) -> pd.DataFrame:
    """Write the run's raw files; the truth for its plan day."""
    if run.generator == "other":
        return write_other_world(raw_dir, run.ad_sets, run.days, run.seed, run.variant)
    write_sample_data(raw_dir, run.ad_sets, run.days, run.seed, variant=run.variant)
    return planted_truth(run.ad_sets, run.days, run.seed, run.variant)


def study_run(run: Run, work_root: Path) -> dict:
    """Generate, build, score: one variant and seed."""
    started = time.perf_counter()
    work_dir = Path(tempfile.mkdtemp(prefix=f"{run.variant}-{run.seed}-", dir=work_root))
    try:
        truth = generate(run, work_dir / "raw")
        plan, summary = build_stored_plan(work_dir / "raw", work_dir)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    scores = score_plan(plan, summary, truth)
    return {
        "generator": run.generator,
        "variant": run.variant,
        "seed": run.seed,
        "ad_sets": run.ad_sets,
        "days": run.days,
        **scores,
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_study(
    variants: Iterable[str] = VARIANTS,
    seeds: Iterable[int] = (1, 2, 3),
    ad_sets: int = 50,
    days: int = 240,
    progress=None,
    generator: str = "sample",
) -> dict:
    """Every variant x seed of a generator, one after the other; the runs and the figures per
    variant."""
    started, code = time.perf_counter(), code_version()
    variants, seeds = list(variants), list(seeds)
    runs = []
    with tempfile.TemporaryDirectory(prefix="calibration-") as work_root:
        for variant in variants:
            for seed in seeds:
                run = Run(variant, seed, ad_sets, days, generator)
                result = study_run(run, Path(work_root))
                runs.append(result)
                if progress is not None:
                    progress(result)
    return {
        "generator": generator,
        "ad_sets": ad_sets,
        "days": days,
        "seeds": seeds,
        "code": code,
        "seconds": round(time.perf_counter() - started, 1),
        "targets": TARGETS,
        "variants": summarise(runs),
        "runs": runs,
    }


def beside_each_other(previous: dict, study: dict) -> dict:
    """What calibration.json keeps after a study: the sample generator's figures, with the other
    generator's under other_generator, whichever of the two was run last."""
    if study.get("generator") == "other":
        return {**previous, "other_generator": study}
    if previous.get("other_generator"):
        return {**study, "other_generator": previous["other_generator"]}
    return study


def code_version() -> str:
    """The commit the study measured (with -dirty when the tree had changes): figures without the
    code they describe cannot be compared."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


# --------------------------------------------------------------------------- figures per variant
def summarise(runs: list[dict]) -> dict:
    """Per variant: each target's figure over its seeds (coverage pooled over the seeds' ad sets)."""
    frame = pd.DataFrame(runs)
    figures = {}
    for variant, group in frame.groupby("variant", sort=False):
        ratios = group["claim_ratio"].astype(float)
        figures[variant] = {
            "runs": len(group),
            "share_median": float(group["share"].median()),
            "share_worst": float(group["share"].min()),
            "claim_ratio_median": float(ratios.median()),
            "claim_ratio_min": float(ratios.min()),
            "claim_ratio_max": float(ratios.max()),
            "truth_inside_range": float(group["truth_inside_range"].mean()),
            "truth_inside_runs": int(group["truth_inside_range"].sum()),
            "revenue_coverage": pooled(group, "revenue"),
            "revenue_coverage_by_seed": by_seed(group, "revenue"),
            "marginal_coverage": pooled(group, "marginal"),
            "marginal_coverage_by_seed": by_seed(group, "marginal"),
            "flat_moved_max": int(group["flat_moved"].max()),
            "flat_moved_by_seed": group["flat_moved"].astype(int).tolist(),
            "flat_ad_sets_by_seed": group["flat_ad_sets"].astype(int).tolist(),
            "true_uplift_median": float(group["true_uplift"].median()),
            "best_uplift_median": float(group["best_uplift"].median()),
            "claimed_uplift_median": float(group["claimed_uplift"].median()),
            "own_fits_median": float(group["own_fits"].median()),
            "own_bounds_share_median": float(group["own_bounds_share"].median()),
            "raise_blocked_median": float(group["raise_blocked"].median()),
            "moved_over_25pct_median": float(group["moved_over_25pct"].median()),
            "planned_above_capacity_max": int(group["planned_above_capacity"].max()),
        }
        figures[variant]["met"] = {
            name: meets(figures[variant][name], *bounds) for name, bounds in TARGETS.items()
        }
        if not group["flat_ad_sets"].any():
            figures[variant]["met"]["flat_moved_max"] = None
    return figures


def pooled(group: pd.DataFrame, kind: str) -> float:
    intervals = group[f"{kind}_intervals"].sum()
    return float(group[f"{kind}_covered"].sum() / intervals) if intervals else float("nan")


def by_seed(group: pd.DataFrame, kind: str) -> list[float]:
    return [
        float(covered / count) if count else float("nan")
        for covered, count in zip(group[f"{kind}_covered"], group[f"{kind}_intervals"], strict=True)
    ]


def meets(value: float, at_least: float | None, at_most: float | None) -> bool:
    if value is None or not np.isfinite(value):
        return False
    return (at_least is None or value >= at_least) and (at_most is None or value <= at_most)


def json_ready(value):
    """The study with numpy scalars made plain and NaN or infinity as null: strict JSON."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ------------------------------------------------------------------------------------ the table
def percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None and np.isfinite(value) else "n/a"


def ratio(value: float | None) -> str:
    if value is None or np.isnan(value):
        return "n/a"
    return f"{value:.2f}" if np.isfinite(value) else "∞"


def count(value: float | None) -> str:
    return f"{value:.0f}" if value is not None and np.isfinite(value) else "n/a"


def verdict(met: bool | None) -> str:
    """None: the variant has nothing the target could be judged on."""
    if met is None:
        return "n/a"
    return "met" if met else "**missed**"


TABLE_HEADER = (
    "| variant | share of the true best uplift, median | share, worst seed | claimed / true "
    "uplift, median (range) | true uplift inside the stated range | expected revenue at "
    "recommended spend: 90% intervals holding the truth | marginal ROAS at recommended spend: 90% "
    "intervals holding the truth | flat-budget ad sets moved > 10% (per seed) |\n"
    "|---|---|---|---|---|---|---|---|\n"
    "| target | ≥ 90% | ≥ 80% | 0.85–1.15 | ≥ 8 of 10 runs | 85–95% | 85–95% | 0 |\n"
)


def variant_row(variant: str, figures: dict) -> str:
    met = figures["met"]

    def coverage(kind):
        seeds = figures[f"{kind}_coverage_by_seed"]
        known = [seed for seed in seeds if seed is not None and np.isfinite(seed)]
        spread = f"{percent(min(known))}–{percent(max(known))}" if known else "n/a"
        return (
            f"{percent(figures[f'{kind}_coverage'])} ({spread}) {verdict(met[f'{kind}_coverage'])}"
        )

    flats = "/".join(str(n) for n in figures["flat_moved_by_seed"])
    flat_count = max(figures["flat_ad_sets_by_seed"])
    return (
        f"| {variant} "
        f"| {percent(figures['share_median'])} {verdict(met['share_median'])} "
        f"| {percent(figures['share_worst'])} {verdict(met['share_worst'])} "
        f"| {ratio(figures['claim_ratio_median'])} ({ratio(figures['claim_ratio_min'])}–"
        f"{ratio(figures['claim_ratio_max'])}) {verdict(met['claim_ratio_median'])} "
        f"| {figures['truth_inside_runs']} of {figures['runs']} {verdict(met['truth_inside_range'])} "
        f"| {coverage('revenue')} | {coverage('marginal')} "
        f"| {flats} of {flat_count} {verdict(met['flat_moved_max'])} |\n"
    )


DIAGNOSTICS_HEADER = (
    "| variant | true uplift of the plan, £/day (median) | true best uplift, £/day (median) | "
    "claimed uplift, £/day (median) | best within the plan's own bounds / true best (median) | "
    "ad sets the plan's bounds keep from any increase (median) | own fits (median) | "
    "ad sets moved > 25% (median) | ad sets planned above their true capacity (most) | "
    "seconds per run (median) |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n"
)


def diagnostics_row(variant: str, figures: dict, seconds: float) -> str:
    return (
        f"| {variant} | {figures['true_uplift_median']:,.0f} | {figures['best_uplift_median']:,.0f} "
        f"| {figures['claimed_uplift_median']:,.0f} "
        f"| {percent(figures.get('own_bounds_share_median'))} "
        f"| {count(figures.get('raise_blocked_median'))} | {figures['own_fits_median']:.0f} "
        f"| {figures['moved_over_25pct_median']:.0f} | {figures['planned_above_capacity_max']} "
        f"| {seconds:.1f} |\n"
    )


def markdown(study: dict, before: dict | None = None) -> str:
    """The study as the page benchmarks/calibration.md shows; with `before`, its table too."""
    seconds = pd.DataFrame(study["runs"]).groupby("variant", sort=False)["seconds"].median()
    text = (
        "# Calibration study: how honest is the plan\n\n"
        "Written by `make calibrate` (scripts/calibrate.py, marketing_ml/simulation.py); a "
        "measurement, not a gate.\n\n"
        f"Code `{study['code']}`, {study['ad_sets']} ad sets x {study['days']} days, seeds "
        f"{', '.join(str(s) for s in study['seeds'])}, {study['seconds']:.0f} s in all.\n\n"
        "Each run generates a sample with one planted variant (`sample_data --variant`), builds the "
        "real pipeline to gold.budget_plan (scenario same_budget, default bounds) and scores the "
        "stored plan against the planted truth for the plan's day. Share: the true uplift of the "
        "recommended spend over the true best uplift for the same total within 0.5x–1.5x of "
        "current spend and the true capacity. Revenue at a budget above capacity is the revenue at "
        "capacity; carry-over is priced at its steady state (spend held at the level); the truth "
        "leaves out the mean-one conversion drift. Coverage is pooled over the seeds' ad sets with "
        "an interval (range over seeds in brackets).\n\n"
        + TABLE_HEADER
        + "".join(variant_row(v, f) for v, f in study["variants"].items())
        + "\n## Diagnostics\n\n"
        + DIAGNOSTICS_HEADER
        + "".join(diagnostics_row(v, f, float(seconds[v])) for v, f in study["variants"].items())
    )
    if before is not None and before.get("code") == study.get("code"):
        text += "\nThese figures are also the before figures: benchmarks/calibration-before.json.\n"
    elif before is not None:
        text += (
            f"\n## Before (code `{before['code']}`, benchmarks/calibration-before.json)\n\n"
            + TABLE_HEADER
            + "".join(variant_row(v, f) for v, f in before["variants"].items())
        )
    if study.get("other_generator"):
        text += other_generator_section(study["other_generator"])
    return text


def tables(study: dict) -> str:
    seconds = pd.DataFrame(study["runs"]).groupby("variant", sort=False)["seconds"].median()
    return (
        TABLE_HEADER
        + "".join(variant_row(v, f) for v, f in study["variants"].items())
        + "\n"
        + DIAGNOSTICS_HEADER
        + "".join(diagnostics_row(v, f, float(seconds[v])) for v, f in study["variants"].items())
    )


def other_generator_section(other: dict) -> str:
    """The same figures on marketing_ml.other_world: a world the plan was not built against."""
    return (
        "\n## Other generator: a world the plan was not built against\n\n"
        "`make calibrate CALIBRATE_ARGS='--generator other'` (marketing_ml/other_world.py). "
        f"Code `{other['code']}`, {other['ad_sets']} ad sets x {other['days']} days, seeds "
        f"{', '.join(str(s) for s in other['seeds'])}, {other['seconds']:.0f} s in all.\n\n"
        "Revenue is exponential saturation, `ceiling * (1 - exp(-spend / scale))`, not Hill; "
        "bookings negative binomial with gamma values; the conversion level a random walk (its "
        "last state is in the truth: tomorrow's expected level is today's); budgets chase "
        "performance (+20% when last week's ROAS beat 4.0, -20% below 3.0, 15% of ad sets never "
        "touched: flat-budget means the planned budget never moved). `plain` is that world; "
        "`soft_cap` gives 30% of ad sets spend = cap * tanh(budget * utilization / cap) (the true "
        "capacity is the cap); `messy` pauses 20% for 4-12 days with their budget set and shifts "
        "revenue per pound x0.55 or x1.6 for 25%, 30-100 days before the end. The optimum on the "
        "true curves is solved by water-filling on their marginal.\n\n" + tables(other)
    )
