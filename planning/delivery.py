"""Delivery: how an ad set's spend follows its planned budget, measured from the dated pacing rows.

The plan decides spend, but a marketer sets a daily budget, and the platform delivers some share
of it. Two things are read from its planned and actual spend:

- **Utilization**: actual ÷ planned spend over the ad set's last `DELIVERY_DAYS` days, shrunk toward the population's
  (pooled over every ad set) with the weight of `PRIOR_DAYS` days (empirical Bayes: an ad set with
  a week of history is half its own, half the population's). The plan's recommended daily budget
  is its recommended spend over this.
- **Delivery capacity**: where spend stopped following budget, over the last `CAP_DAYS` days
  (the curve window; its latest held-back day dated as `cap_age_days`). A day counts as held back when its
  spend sat at or within `CAP_BAND` of the ad set's top spend in the window (its `CAP_MIN_DAYS`-th
  highest day, so that one lucky day on a noisy plateau does not set it) while its budget × usual
  utilization (on its days below the top, shrunk toward the population's) asked for at least
  `CAP_ASK` more than that top; `CAP_MIN_DAYS` such days make the top a measured cap, with the
  days counted as its evidence. This rule, rather than a regression of log spend on log budget
  with a breakpoint: 28 days seldom hold budget levels on both sides of a cap (budgets change
  every few weeks), which a breakpoint needs, and the rule's evidence is a count of days a
  marketer can check in the pacing file. On a cap at 900 with spend asked to reach 1,330 for half
  of 28 days (40 draws each), a plateau with 0-6% day-to-day noise is found 40 of 40 times (with
  the single highest day as the top: 19 of 40 at 6%, 25 at 4%), and an ad set that follows the
  same budget with 12% delivery noise is never capped. The price: a budget cut after a run of
  low utilization reads as a cap (2 of 150 ad sets on generated data without caps); such a cap
  sits at the ad set's recent top spend, which limits little. Over 28 days alone a cap was
  seldom seen: budgets move every few weeks, and on generated data with hidden caps the plan
  claimed 1.65× the true uplift in the median, planning capped ad sets far above their caps.

- **Soft cap**: where spend bends toward a ceiling C as budget grows (spend = C · tanh(u ·
  budget / C)) rather than stopping at a top, fitted on the ad set's days below its top (see
  `soft_caps`). The plan prices a daily budget through it (`bought_spend`, `budget_buying`).

Without planned budgets (no pacing rows) nothing is measured (NaN) and the plan falls back on the
most an ad set spent in a day and the pacing model's risk.

Also here, because it reads the same budgets: whether an ad set's planned budget moved enough to
identify a response curve of its own (`budget_cv`, used by `planning.curves`). Delivery noise
moves spend but not budget, and a curve fitted on it alone is confidently wrong.
"""

import numpy as np
import pandas as pd

DELIVERY_DAYS = 28
"""Trailing days delivery is measured on: recent enough to be today's delivery."""
CAP_DAYS = 180
"""Trailing days a delivery cap is looked for on (the curve window): budgets move every few
weeks, so 28 days seldom ask for more than a cap delivers, and a cap a budget ran into two months
ago still holds today unless spend has since gone above it."""
PRIOR_DAYS = 7.0
"""Weight of the population's utilization, in days of an ad set's own history."""
CAP_BAND = 0.03
CAP_ASK = 0.10
CAP_MIN_DAYS = 3
"""A measured cap: at least this many days with spend within CAP_BAND of the ad set's top while
budget × usual utilization asked for CAP_ASK or more above it."""
SOFT_CAP_GRID = (1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 2.0, 3.0)
"""Soft delivery caps tried, as multiples of the most an ad set spent in a day of the window."""
SOFT_CAP_GAIN = 0.3
"""A soft cap is kept where it cuts the day-to-day spread of spend ÷ budget (log variance) by at
least this share against spend following budget in proportion: delivery noise alone gains about
nothing, a budget that ran up into a tanh ceiling most of it."""
SOFT_CAP_REACH = 0.9
"""The plan takes a soft-capped ad set to at most this share of its ceiling: beyond it each extra
pound of budget buys under 20p of spend (tanh' at atanh(0.9)), and the ceiling is a fit."""
MIN_BUDGET_CV = 0.05
"""Planned budget whose weekly means vary by less than this (coefficient of variation) did not
move enough to identify a curve: a flat budget with 2% daily jitter gives about 1%, a budget
changed once by 20% in 180 days about 8%."""

DELIVERY_COLUMNS = (
    "ad_set_id",
    "planned_budget",
    "utilization",
    "delivery_days",
    "delivery_cap",
    "capped_days",
    "cap_age_days",
    "soft_cap",
)


def measure_delivery(
    pacing: pd.DataFrame, days: int = DELIVERY_DAYS, cap_days: int = CAP_DAYS
) -> pd.DataFrame:
    """One row per ad set of `pacing` (columns date, ad_set_id, planned_spend, actual_spend) with
    a planned budget on one of the last `cap_days` dates: its latest planned budget, utilization
    over the last `days` (shrunk), the days it rests on, and its measured delivery cap over the
    last `cap_days` (NaN: none seen) with the days that show it and the latest of them. Ad sets
    in id order."""
    frame = pacing[["date", "ad_set_id", "planned_spend", "actual_spend"]].copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame["planned_spend"] = pd.to_numeric(frame["planned_spend"], errors="coerce")
    frame["actual_spend"] = pd.to_numeric(frame["actual_spend"], errors="coerce")
    frame = frame[(frame["planned_spend"] > 0) & (frame["actual_spend"] >= 0)]
    if frame.empty:
        empty = pd.DataFrame({column: pd.Series(dtype=float) for column in DELIVERY_COLUMNS})
        return empty.astype({"ad_set_id": object})
    last = frame["date"].max()
    frame = frame[frame["date"] > last - pd.Timedelta(days=max(days, cap_days))]
    frame = frame.sort_values(["ad_set_id", "date"], kind="stable")
    frame["ratio"] = frame["actual_spend"] / frame["planned_spend"]
    recent = frame["date"] > last - pd.Timedelta(days=days)
    ids = pd.Index(sorted(frame.loc[recent, "ad_set_id"].unique()), name="ad_set_id")
    frame = frame[frame["ad_set_id"].isin(ids)]
    recent = recent.loc[frame.index]
    top_by_id = plateau(frame, ids)
    top = frame["ad_set_id"].map(top_by_id)
    at_top = frame["actual_spend"] >= (1 - CAP_BAND) * top
    population = float(frame["ratio"].median())
    # Usual utilization from the days below the top, shrunk toward the population's: on a capped
    # ad set the days at its top are the held-back ones, and a cap hit on nearly every day
    # leaves the population's utilization to say what its budget asked for.
    below = frame[~at_top].groupby("ad_set_id")["ratio"]
    usual = shrink(
        below.median().reindex(ids).fillna(population),
        below.size().reindex(ids, fill_value=0),
        population,
    )
    held_back = at_top & (
        frame["planned_spend"] * frame["ad_set_id"].map(usual) >= (1 + CAP_ASK) * top
    )
    by = frame[recent].groupby("ad_set_id", sort=True)
    own = pd.DataFrame(
        {
            "planned_budget": by["planned_spend"].last(),
            "count": by["ratio"].size(),
            "top": top_by_id,
        }
    )
    own["capped_days"] = held_back.groupby(frame["ad_set_id"]).sum().astype(int)
    latest_held = frame.loc[held_back].groupby("ad_set_id")["date"].max().reindex(ids)
    capped = frame["ad_set_id"].map(own["capped_days"] >= CAP_MIN_DAYS)
    # Utilization is read on recent days where spend followed budget: a measured cap's
    # held-back days say what the cap is, not what share of its budget the ad set spends.
    followed = frame[recent & ~(held_back & capped)]
    spent = followed.groupby("ad_set_id")[["actual_spend", "planned_spend"]].sum()
    pooled = float(spent["actual_spend"].sum() / spent["planned_spend"].sum())
    followed_days = followed.groupby("ad_set_id").size().reindex(own.index, fill_value=0)
    ratio = (spent["actual_spend"] / spent["planned_spend"]).reindex(own.index).fillna(pooled)
    own["utilization"] = shrink(ratio, followed_days, pooled)
    # The soft cap is fitted below the top: under a hard cap spend follows budget there in
    # proportion (no soft cap), under a soft one it already bends.
    ceiling, low_budget_utilization, fitted_days = soft_caps(frame[~at_top])
    soft = ceiling.reindex(ids)
    own["soft_cap"] = soft
    own["utilization"] = own["utilization"].where(
        soft.isna(),
        shrink(low_budget_utilization.reindex(ids), fitted_days.reindex(ids), pooled),
    )
    own["delivery_days"] = own["count"].astype(int)
    own["delivery_cap"] = own["top"].where(own["capped_days"] >= CAP_MIN_DAYS)
    own["cap_age_days"] = ((last - latest_held).dt.days.astype(float)).where(
        own["delivery_cap"].notna()
    )
    return own.reset_index()[list(DELIVERY_COLUMNS)]


def soft_caps(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per ad set of `frame` (date, ad_set_id, planned_spend, actual_spend): the ceiling C of
    spend = C · tanh(u · budget / C) that fits its days best (NaN where spend follows budget in
    proportion as well, within SOFT_CAP_GAIN), u (what it spends of a small budget) and the days
    fitted. For each C on SOFT_CAP_GRID × its top spend, C · atanh(spend / C) is the spend the
    budget would have bought without the ceiling; the C whose ratio of that to budget varies
    least (log variance) is its fit."""
    days = frame[frame["actual_spend"] > 0]
    if days.empty:
        none = pd.Series(dtype=float)
        return none, none, none
    planned = days.pivot(index="ad_set_id", columns="date", values="planned_spend")
    actual = days.pivot(index="ad_set_id", columns="date", values="actual_spend")
    budget, spend = planned.to_numpy(float), actual.to_numpy(float)
    known = np.isfinite(budget) & np.isfinite(spend)
    count = known.sum(axis=1)
    top = np.nanmax(np.where(known, spend, np.nan), axis=1)

    def spread(log_ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.where(known, log_ratio, 0.0)
        centre = values.sum(axis=1) / np.maximum(count, 1)
        variance = (np.where(known, log_ratio - centre[:, None], 0.0) ** 2).sum(axis=1)
        return variance / np.maximum(count - 1, 1), centre

    with np.errstate(invalid="ignore", divide="ignore"):
        linear, _ = spread(np.log(spend / budget))
        best, best_centre = np.full(len(top), np.inf), np.full(len(top), np.nan)
        best_cap = np.full(len(top), np.nan)
        for multiple in SOFT_CAP_GRID:
            cap = multiple * top[:, None]
            unbounded = cap * np.arctanh(np.minimum(spend / cap, 1 - 1e-9))
            variance, centre = spread(np.log(unbounded / budget))
            better = variance < best
            best = np.where(better, variance, best)
            best_centre = np.where(better, centre, best_centre)
            best_cap = np.where(better, cap[:, 0], best_cap)
    with np.errstate(invalid="ignore", divide="ignore"):
        budget_moved, _ = spread(np.log(budget))
    # A budget that never moved cannot show how spend bends with it; a fit that has small
    # budgets overspent is a noisy plateau (a hard cap), not a ceiling spend bends toward.
    kept = (
        (count >= 2 * CAP_MIN_DAYS)
        & (np.sqrt(budget_moved) >= MIN_BUDGET_CV)
        & (best < (1 - SOFT_CAP_GAIN) * linear)
        & (best_centre <= 0)
    )
    index = planned.index
    return (
        pd.Series(np.where(kept, best_cap, np.nan), index=index),
        pd.Series(np.exp(best_centre), index=index),
        pd.Series(count, index=index),
    )


def bought_spend(budget, utilization, soft_cap):
    """The spend a daily budget buys under an ad set's delivery: utilization × budget, or
    C · tanh(utilization × budget / C) under a soft cap C (NaN: none)."""
    budget, utilization = np.asarray(budget, float), np.asarray(utilization, float)
    cap = np.asarray(soft_cap, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        softened = cap * np.tanh(utilization * budget / cap)
    return np.where(np.isfinite(cap), softened, utilization * budget)


def budget_buying(spend, utilization, soft_cap):
    """The daily budget that buys `spend` (the inverse of bought_spend; inf at or above a soft
    cap, which no budget reaches)."""
    spend, utilization = np.asarray(spend, float), np.asarray(utilization, float)
    cap = np.asarray(soft_cap, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        softened = np.where(spend < cap, cap * np.arctanh(spend / cap), np.inf) / utilization
    return np.where(np.isfinite(cap), softened, spend / utilization)


def plateau(frame: pd.DataFrame, ids: pd.Index) -> pd.Series:
    """Each ad set's top spend: its CAP_MIN_DAYS-th highest day (its highest with fewer days).
    Not the single highest: on a soft cap spend plateaus with noise, and the one day the noise
    lifted most would leave too few days near it to show the cap."""
    ordered = frame.sort_values(["ad_set_id", "actual_spend"], ascending=[True, False])
    rank = ordered.groupby("ad_set_id").cumcount()
    kth = ordered.loc[rank == CAP_MIN_DAYS - 1].set_index("ad_set_id")["actual_spend"]
    highest = frame.groupby("ad_set_id")["actual_spend"].max()
    return kth.reindex(ids).fillna(highest.reindex(ids))


def shrink(own: pd.Series, days: pd.Series, population: float) -> pd.Series:
    """An ad set's figure over `days` days, shrunk toward the population's with the weight of
    PRIOR_DAYS days."""
    return (days * own + PRIOR_DAYS * population) / (days + PRIOR_DAYS)


def budget_cv(planned: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Per row of (ad sets × days) planned budgets (`known` marks the days that have one): the
    coefficient of variation of its weekly means (weeks counted back from the last day, a week
    with no known day left out), NaN with fewer than two such weeks. Weekly means, so that a
    budget's daily jitter (and a weekday pattern) does not read as a move."""
    n, days = planned.shape
    weeks = days // 7
    if weeks < 2:
        return np.full(n, np.nan)
    tail = slice(days - 7 * weeks, days)
    values = np.where(known, planned, 0.0)[:, tail].reshape(n, weeks, 7)
    counts = known[:, tail].reshape(n, weeks, 7).sum(axis=2)
    means = values.sum(axis=2) / np.maximum(counts, 1)
    seen = counts > 0
    used = seen.sum(axis=1)
    centre = (means * seen).sum(axis=1) / np.maximum(used, 1)
    spread = np.sqrt(((means - centre[:, None]) ** 2 * seen).sum(axis=1) / np.maximum(used, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = spread / centre
    return np.where((used >= 2) & (centre > 0), cv, np.nan)
