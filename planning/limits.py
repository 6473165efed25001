"""Limits a buyer uses: few moves that matter, none too small, and ramps no faster than a learning
phase allows.

Works on plain arrays of budget units (an ad set, or a campaign whose budget its ad sets share:
the caller sums their curves), so the same code plans both. The plan first finds its unlimited
optimum (`planning.optimizer.allocate`), then

1. a move whose budget change is below `min_move` £ or `min_move_share` is not made;
2. the moves are ranked by value (Δrevenue − λ·Δspend at the equalised marginal ROAS λ: what the
   move adds at the plan's price of a pound) and at most `max_moves` kept (None: the fewest that
   keep KEEP_SHARE of the unlimited uplift); the others keep today's spend, the kept ones are
   re-allocated (only they are free, so each allocation is over few units) and step 1 repeated;
3. the path: day 1 is the best allocation with every kept unit's budget within
   ±`max_daily_change` of today's, day 2 within it of day 1's, and so on until the target is
   inside every unit's day range (the target is then optimal for that day too, so the ramp ends
   exactly on it). Re-optimising each day keeps a fixed total exact on every day.

A daily budget's change is converted into a spend range through the unit's delivery (`spend` =
`planning.delivery.bought_spend` of its budget) where its utilization is measured, else in
proportion to today's budget. Day 1's range is around today's budget (the pacing file's latest),
each later day's around the budget that buys the day before's spend.
"""

from dataclasses import dataclass

import numpy as np

from planning.curves import hill_revenue
from planning.delivery import bought_spend, budget_buying
from planning.settings import KEEP_SHARE

PENNY = 0.005
MAX_RAMP_DAYS = 91
"""A ramp stops here even when short of its target."""
COUNT_TOLERANCE = 0.01
"""The automatic count is the fewest moves keeping KEEP_SHARE to within this share of the moves
(a move or two more at 2,000 ad sets; each bisection step is a re-allocation)."""
MIN_MOVE_ROUNDS = 5
"""Re-allocations that drop moves fallen below the minimum (each round drops some or ends)."""


@dataclass(frozen=True)
class Units:
    """Budget units in one order: today's spend, curves, spend bounds at the ramp's end, today's
    daily budget (NaN: unknown, moves then read in spend) and delivery (utilization NaN:
    spend follows budget in proportion; soft_cap NaN: none). `fixed` units keep today's spend."""

    current: np.ndarray
    vmax: np.ndarray
    half: np.ndarray
    shape: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    budget: np.ndarray
    utilization: np.ndarray
    soft_cap: np.ndarray
    fixed: np.ndarray

    def revenue(self, spend: np.ndarray) -> np.ndarray:
        return hill_revenue(spend, self.vmax, self.half, self.shape)

    @property
    def measured(self) -> np.ndarray:
        return np.isfinite(self.utilization) & (self.utilization > 0)

    def _delivery(self):
        return np.where(self.measured, self.utilization, 1.0), np.where(
            self.measured, self.soft_cap, np.nan
        )

    def budget_of(self, spend: np.ndarray) -> np.ndarray:
        """The daily budget that buys `spend`: through the measured delivery, else today's
        budget in proportion to spend (spend itself where today's budget is unknown)."""
        utilization, cap = self._delivery()
        known = np.isfinite(self.budget) & (self.budget > 0) & (self.current > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            proportional = np.where(known, self.budget * spend / self.current, spend)
        return np.where(self.measured, budget_buying(spend, utilization, cap), proportional)

    def spend_of(self, budget: np.ndarray) -> np.ndarray:
        """The spend a daily budget buys (the inverse of `budget_of`)."""
        utilization, cap = self._delivery()
        known = np.isfinite(self.budget) & (self.budget > 0) & (self.current > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            proportional = np.where(known, budget * self.current / self.budget, budget)
        return np.where(self.measured, bought_spend(budget, utilization, cap), proportional)

    @property
    def today(self) -> np.ndarray:
        """Today's daily budget: as known, else the one that buys today's spend."""
        known = np.isfinite(self.budget) & (self.budget > 0)
        return np.where(known, self.budget, self.budget_of(self.current))

    def budget_change(self, spend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The £ change of each unit's daily budget from today's to buy `spend`, and its share."""
        today = self.today
        pounds = self.budget_of(spend) - today
        with np.errstate(invalid="ignore", divide="ignore"):
            return pounds, np.where(today > 0, pounds / today, 0.0)


@dataclass(frozen=True)
class Limits:
    max_daily_change: float
    min_move: float
    min_move_share: float
    max_moves: int | None


@dataclass(frozen=True)
class LimitedPlan:
    unlimited: np.ndarray
    """Spend per unit of the plan without limits."""
    marginal_value: float
    """λ of the unlimited plan (the target in target_roas): the price of a pound the moves are
    valued at."""
    move_value: np.ndarray
    """£ a day each unlimited move is worth (Δrevenue − λ·Δspend; 0 for no move)."""
    move_rank: np.ndarray
    """1 = most valuable unlimited move that passes the minimum; 0 for none."""
    kept: np.ndarray
    """Units whose budget the limited plan changes."""
    held: np.ndarray
    """Per unit: "" (not held), "min_move" or "max_moves": which limit held a move back."""
    max_moves: int
    """The count limit applied (the resolved N)."""
    path: np.ndarray
    """Units × ramp days: each day's spend, the last day the target (at least one day)."""
    ramp_days: np.ndarray
    """Days each unit's spend changes on (0: no move)."""
    value_unlimited: float
    value_limited: float
    """Σ move value of the target without and with the limits (same λ)."""
    unplaced: float = 0.0
    forced: float = 0.0
    revenue_shortfall: float = 0.0
    """Of the day-1 allocation (see planning.optimizer.Allocation)."""

    @property
    def target(self) -> np.ndarray:
        return self.path[:, -1]

    @property
    def kept_share(self) -> float:
        """Share of the unlimited plan's value the limited one keeps (1 when there is none)."""
        if self.value_unlimited <= PENNY:
            return 1.0
        return self.value_limited / self.value_unlimited


def value_of(units: Units, spend: np.ndarray, price: float) -> np.ndarray:
    """Each unit's move value: Δrevenue − price·Δspend against today's spend."""
    return units.revenue(spend) - units.revenue(units.current) - price * (spend - units.current)


def limited_plan(units: Units, allocate_for, limits: Limits) -> LimitedPlan:
    """The plan under `limits`. `allocate_for(free, lower, upper)` is the scenario's optimum over
    the `free` units within spend bounds (the other units keep today's spend and reduce a fixed
    total); it returns an `Allocation` over the free units."""
    n = len(units.current)
    free = ~units.fixed & (units.upper > units.lower + 1e-9)
    result = allocate_for(free, units.lower[free], units.upper[free])
    unlimited = units.current.copy()
    unlimited[free] = result.spend
    price = result.marginal_value if np.isfinite(result.marginal_value) else 0.0
    value = np.where(free, value_of(units, unlimited, price), 0.0)
    value_unlimited = float(value.sum())

    def big_enough(spend: np.ndarray) -> np.ndarray:
        pounds, share = units.budget_change(spend)
        return (np.abs(pounds) >= max(limits.min_move, PENNY)) & (
            np.abs(share) >= limits.min_move_share
        )

    moving = free & (np.abs(unlimited - units.current) > PENNY)
    passes = moving & big_enough(unlimited)
    order = np.flatnonzero(passes)[np.argsort(-value[passes], kind="stable")]
    rank = np.zeros(n, dtype=int)
    rank[order] = np.arange(1, len(order) + 1)

    def allocated(kept: np.ndarray):
        spend = units.current.copy()
        allocation = allocate_for(kept, units.lower[kept], units.upper[kept])
        spend[kept] = allocation.spend
        return spend, allocation

    def plan_with(count: int):
        """The target with the `count` most valuable moves free, moves fallen below the minimum
        dropped: (spend, kept, its Allocation over the kept units)."""
        kept = np.zeros(n, dtype=bool)
        kept[order[:count]] = True
        spend, allocation = allocated(kept)
        for _ in range(MIN_MOVE_ROUNDS):
            small = kept & ~big_enough(spend)
            if not small.any():
                break
            kept &= ~small
            spend, allocation = allocated(kept)
        return spend, kept & (np.abs(spend - units.current) > PENNY), allocation

    def worth(spend: np.ndarray) -> float:
        return float(value_of(units, spend, price)[free].sum())

    if limits.max_moves is not None:
        count = min(limits.max_moves, len(order))
    elif value_unlimited <= PENNY or not len(order):
        count = 0
    else:
        # The fewest moves keeping KEEP_SHARE of the value, to COUNT_TOLERANCE: bisection on the
        # count (the value of the best `count` moves grows with the count).
        low, high = 0, len(order)
        while high - low > int(COUNT_TOLERANCE * len(order)):
            middle = (low + high) // 2
            if worth(plan_with(middle)[0]) >= KEEP_SHARE * value_unlimited:
                high = middle
            else:
                low = middle + 1
        count = high
    target, kept, at_target = plan_with(count)
    held = np.full(n, "", dtype=object)
    held[moving & ~kept & (rank > count)] = "max_moves"
    held[moving & ~kept & (held == "")] = "min_move"
    path, first = ramp(units, kept, target, at_target, allocate_for, limits.max_daily_change)
    changes = np.abs(np.diff(np.column_stack([units.current, path]), axis=1)) > PENNY
    ramp_days = np.where(
        changes.any(axis=1), changes.shape[1] - np.argmax(changes[:, ::-1], axis=1), 0
    )
    return LimitedPlan(
        unlimited=unlimited,
        marginal_value=float(result.marginal_value),
        move_value=value,
        move_rank=rank,
        kept=kept,
        held=held,
        max_moves=int(count),
        path=path,
        ramp_days=ramp_days,
        value_unlimited=value_unlimited,
        value_limited=worth(path[:, -1]),
        unplaced=float(first.unplaced),
        forced=float(first.forced),
        revenue_shortfall=float(first.revenue_shortfall),
    )


def day_range(units: Units, budget: np.ndarray, change: float):
    """Spend a day may take when its budget stays within ±`change` of the previous day's."""
    return units.spend_of(budget * (1 - change)), units.spend_of(budget * (1 + change))


def ramp(units: Units, kept, target, at_target, allocate_for, change: float):
    """Day-by-day spend from today to `target` (`at_target` its Allocation), each day the best
    allocation of the `kept` units within its day range and the final bounds: (units × days,
    the first day's Allocation)."""
    days, previous, first = [], units.current.copy(), None
    budget = units.today
    for _ in range(MAX_RAMP_DAYS):
        low, high = day_range(units, budget, change)
        # A unit cut to nothing is paused at once: it has no learning phase left to protect.
        low = np.where(target <= PENNY, target, low)
        low = np.clip(np.minimum(low, high), units.lower, units.upper)
        high = np.clip(high, low, units.upper)
        inside = (target >= low - 1e-9) & (target <= high + 1e-9)
        if not kept.any() or inside[kept].all():
            spend, result = target.copy(), at_target
        else:
            result = allocate_for(kept, low[kept], high[kept])
            spend = units.current.copy()
            spend[kept] = result.spend
        first = first or result
        days.append(spend)
        if np.array_equal(spend, target) or np.max(np.abs(spend - previous)) <= PENNY:
            break
        previous, budget = spend, units.budget_of(spend)
    return np.column_stack(days), first
