"""A plan for a period, not a day: each day's spend priced at its own weekday, and one total.

A buyer sets budgets for the next week or month, and a ramp (planning.optimizer: a budget moves
at most `max_daily_change` a day, then holds its target) spends differently on each of those
days. The period is priced from the curves the daily plan prices with (rows of
gold.response_curves on the current state, priced for the plan date by
planning.calendar.priced_for_day), one day at a time:

- **Weekdays.** Day d's revenue at any spend is the plan date's × factor(day d) / factor(plan
  date), the weekday factors stored with the curves: a Saturday in the period is priced as a
  Saturday even when the plan date is a Monday.
- **Season.** The demand level is held at its latest value (the last two weeks' level the plan
  date is priced at) over the whole period: the curves do not forecast the season, so a month
  ahead is priced at today's demand, not at next month's.
- **Carry-over.** Each day's spend is priced on the curve of steady spend, as the daily plan
  prices it: the revenue a pound earns, including the part it returns on later days (after the
  period too). A ramp's revenue is thus attributed to the days its spend is made.

The ranges are the daily plan's (planning.claims): each bootstrap draw of the curves prices the
whole period, the uplift's range is the 90% interval of those period totals (so it is the range
of the total, narrower than a sum of daily ranges), and each ad set's period revenue range is its
own draws' spread placed around its figure. An ad set without a curve keeps today's spend every
day and adds no uplift; one with a curve but without draws counts at its fitted uplift in every
draw, as build_plan counts it.
"""

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from planning.calendar import day_name, factor_for_day
from planning.claims import claim, rows_interval_around
from planning.curves import hill_revenue

DAY_COLUMNS = (
    "date",
    "weekday",
    "spend_current",
    "spend",
    "revenue_current",
    "revenue",
    "uplift",
    "uplift_low",
    "uplift_high",
    "profit_uplift",
)
"""`PeriodPlan.days`: one row per day of the period. `*_current` keeps today's spend every day;
`uplift` (with its 90% range) is priced on the draws, `profit_uplift` = margin × uplift − the
extra spend."""
ROW_COLUMNS = (
    "ad_set_id",
    "period_spend",
    "period_revenue",
    "period_revenue_low",
    "period_revenue_high",
    "period_profit",
)
"""`PeriodPlan.rows`: one row per ad set, in the curves' order (NaN revenue and profit where an
ad set has no curve; NaN range where it has no draws)."""
SUMMARY_FIELDS = (
    "period_days",
    "period_start",
    "period_end",
    "period_spend_current",
    "period_spend",
    "period_revenue_current",
    "period_revenue",
    "period_uplift",
    "period_uplift_low",
    "period_uplift_high",
    "period_profit_uplift",
    "period_profit_uplift_low",
    "period_profit_uplift_high",
)


@dataclass(frozen=True)
class PeriodPlan:
    days: pd.DataFrame
    """One row per day: DAY_COLUMNS."""
    rows: pd.DataFrame
    """One row per ad set: ROW_COLUMNS."""
    summary: dict = field(default_factory=dict)
    """The period's totals: SUMMARY_FIELDS. `period_revenue` − `period_revenue_current` is the
    uplift on the fitted curves; `period_uplift` is priced on the draws (as the daily plan's
    `uplift`), and is the sum of the days' `uplift`."""


def day_multipliers(curves: pd.DataFrame, plan_date, days: int) -> np.ndarray:
    """Each day's revenue as a multiple of the plan date's: its weekday factor over the plan
    date's (all ones without a plan date or factors)."""
    if plan_date is None or pd.isna(plan_date):
        return np.ones(days)
    first = pd.Timestamp(plan_date)
    by_weekday = np.array(
        [factor_for_day(curves, first + pd.Timedelta(days=offset)) for offset in range(7)]
    )
    if not np.isfinite(by_weekday).all() or by_weekday[0] <= 0:
        return np.ones(days)
    return (by_weekday / by_weekday[0])[np.arange(days) % 7]


def period_dates(plan_date, days: int) -> list[date | None]:
    if plan_date is None or pd.isna(plan_date):
        return [None] * days
    first = pd.Timestamp(plan_date).normalize()
    return [(first + pd.Timedelta(days=offset)).date() for offset in range(days)]


def price_period(
    curves: pd.DataFrame,
    current,
    spend_path,
    plan_date,
    margin: float,
    draws: dict | None = None,
) -> PeriodPlan:
    """The period's spend, revenue, uplift and profit per day, per ad set and in total.

    `curves`: the rows build_plan plans with (vmax, half_saturation, shape, priced for
    `plan_date`; the weekday_factor_* columns give the other days); `current`: today's spend per
    ad set (the "keep as is" path spends it every day); `spend_path`: planned spend, ad sets ×
    days, day 0 = `plan_date`; `margin`: profit per £ of revenue before ad spend; `draws`:
    matrices vmax, half_saturation, shape (ad sets × draws, priced as `curves`), None or of
    width zero for no ranges (NaN)."""
    n = len(curves)
    current = np.nan_to_num(np.asarray(current, dtype=float), nan=0.0)
    path = np.asarray(spend_path, dtype=float)
    if current.shape != (n,) or path.ndim != 2 or path.shape[0] != n or path.shape[1] < 1:
        raise ValueError(
            f"price_period: {n} ad sets need current spend ({n},) and a spend path ({n}, days); "
            f"got {current.shape} and {path.shape}"
        )
    days = path.shape[1]
    vmax, half, shape = (
        pd.to_numeric(curves[c], errors="coerce").astype(float).to_numpy()
        for c in ("vmax", "half_saturation", "shape")
    )
    has_curve = np.isfinite(vmax) & np.isfinite(half) & np.isfinite(shape)
    path = np.where(has_curve[:, None], path, current[:, None])
    multiplier = day_multipliers(curves, plan_date, days)

    revenue_now = np.full(n, np.nan)
    revenue_now[has_curve] = hill_revenue(
        current[has_curve], vmax[has_curve], half[has_curve], shape[has_curve]
    )
    revenue_path = np.full((n, days), np.nan)
    revenue_path[has_curve] = hill_revenue(
        path[has_curve],
        vmax[has_curve, None],
        half[has_curve, None],
        shape[has_curve, None],
    )
    revenue_path *= multiplier
    day_revenue_current = float(np.nansum(revenue_now)) * multiplier
    day_revenue = np.nansum(revenue_path, axis=0)
    day_draws, row_draws, usable = _period_draws(
        current, path, multiplier, has_curve, revenue_now, revenue_path, draws
    )

    day_fitted = day_revenue - day_revenue_current
    claims = [claim(float(day_fitted[d]), day_draws[d]) for d in range(days)]
    spend_current = np.full(days, current.sum())
    day_spend = path.sum(axis=0)
    day_extra_spend = (path - current[:, None]).sum(axis=0)  # exactly 0 where nothing moves
    day_uplift = np.array([c.uplift for c in claims])
    dates = period_dates(plan_date, days)
    day_frame = pd.DataFrame(
        {
            "date": pd.Series(dates, dtype="object"),
            "weekday": pd.Series([day_name(d) for d in dates], dtype="object"),
            "spend_current": spend_current,
            "spend": day_spend,
            "revenue_current": day_revenue_current,
            "revenue": day_revenue,
            "uplift": day_uplift,
            "uplift_low": [c.low for c in claims],
            "uplift_high": [c.high for c in claims],
            "profit_uplift": margin * day_uplift - day_extra_spend,
        }
    )

    period_revenue = revenue_path.sum(axis=1)
    period_spend = path.sum(axis=1)
    low, high = rows_interval_around(np.where(usable, period_revenue, np.nan), row_draws)
    ids = curves["ad_set_id"] if "ad_set_id" in curves else pd.Series(range(n))
    rows = pd.DataFrame(
        {
            "ad_set_id": ids.to_numpy(),
            "period_spend": period_spend,
            "period_revenue": period_revenue,
            "period_revenue_low": low,
            "period_revenue_high": high,
            "period_profit": margin * period_revenue - period_spend,
        }
    )

    total = claim(float(day_fitted.sum()), day_draws.sum(axis=0))
    extra_spend = float(day_extra_spend.sum())
    summary = {
        "period_days": days,
        "period_start": dates[0],
        "period_end": dates[-1],
        "period_spend_current": float(spend_current.sum()),
        "period_spend": float(day_spend.sum()),
        "period_revenue_current": float(day_revenue_current.sum()),
        "period_revenue": float(day_revenue.sum()),
        "period_uplift": total.uplift,
        "period_uplift_low": total.low,
        "period_uplift_high": total.high,
        "period_profit_uplift": margin * total.uplift - extra_spend,
        "period_profit_uplift_low": margin * total.low - extra_spend,
        "period_profit_uplift_high": margin * total.high - extra_spend,
    }
    return PeriodPlan(day_frame, rows, summary)


def _period_draws(current, path, multiplier, has_curve, revenue_now, revenue_path, draws):
    """Under each bootstrap draw: the uplift of each day (days × draws, ad sets without draws
    at their fitted uplift) and each ad set's period revenue (ad sets × draws; NaN rows without
    draws), and which ad sets have draws. Only the days an ad set's spend changes are priced:
    a held budget earns in each draw what it earned the day before, so the cost follows the
    ramps, not ad sets × days × draws."""
    n, days = path.shape
    width = 0 if draws is None else np.asarray(draws["vmax"]).shape[-1]
    if width == 0:
        return np.zeros((days, 0)), np.full((n, 0), np.nan), np.zeros(n, dtype=bool)
    dv, dk = (np.asarray(draws[c], dtype=float) for c in ("vmax", "shape"))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        log_half = np.log(np.asarray(draws["half_saturation"], dtype=float))
        drawn_now = _hill_of_logs(np.log(np.maximum(current, 0.0))[:, None], dv, log_half, dk)
    usable = has_curve & np.isfinite(drawn_now).all(axis=1)
    if not usable.any():
        return np.zeros((days, 0)), np.full((n, 0), np.nan), usable

    # a change (ad set i, day d): its revenue in each draw minus the day before's
    previous = np.column_stack([current, path[:, :-1]])
    ad_set, day = np.nonzero((path != previous) & usable[:, None])  # by ad set, then day
    level = np.zeros((days, width))
    row_change = np.zeros((n, width))
    if len(ad_set):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            log_spend = np.log(np.maximum(path[ad_set, day], 0.0))[:, None]
            after = _hill_of_logs(log_spend, dv[ad_set], log_half[ad_set], dk[ad_set])
        first = np.r_[True, ad_set[1:] != ad_set[:-1]]
        step = after.copy()
        step[first] -= drawn_now[ad_set[first]]
        step[~first] -= after[np.flatnonzero(~first) - 1]
        # sums of the changes by day and (a change holds to the period's end, so weighted by the
        # multipliers from its day on) by ad set, as sparse products: no copies of the draws
        changes = np.arange(len(ad_set))
        remaining = np.cumsum(multiplier[::-1])[::-1]
        from scipy import sparse  # here, not at import: scipy is slow to load

        on_day = sparse.csr_matrix((np.ones(len(day)), (day, changes)), shape=(days, len(day)))
        of_set = sparse.csr_matrix((remaining[day], (ad_set, changes)), shape=(n, len(day)))
        level = np.cumsum(on_day @ step, axis=0)
        row_change = of_set @ step
    fitted_only = has_curve & ~usable
    without_draws = np.nansum(
        revenue_path[fitted_only] - revenue_now[fitted_only, None] * multiplier, axis=0
    )
    day_draws = level * multiplier[:, None] + without_draws[:, None]
    row_draws = np.full((n, width), np.nan)
    row_draws[usable] = multiplier.sum() * drawn_now[usable] + row_change[usable]
    return day_draws, row_draws, usable


def _hill_of_logs(log_spend, vmax, log_half, shape):
    """hill_revenue from log spend and log half-saturation: one exp per figure instead of two
    powers (the draws are most of the period's cost); log spend -inf (no spend) gives 0."""
    out = np.subtract(log_half, log_spend)
    out *= shape
    np.exp(out, out=out)
    out += 1.0
    return np.divide(vmax, out, out=out)
