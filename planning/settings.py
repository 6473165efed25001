"""What the planner is asked, and the one place its values are checked.

The pipeline's run config (marketing_ml.defs.planning.plan_assets.BudgetPlanConfig) and the dashboard's What-if both
build a `PlanSettings`, so a value outside its range is refused with the same message wherever it
comes from, before anything is planned. Ad set ids in locks and caps need the data: checked by
`PlanSettings.check_ad_sets` once the ad sets being planned are known.
"""

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SCENARIOS = ("same_budget", "target_roas", "same_revenue")
RISK_LIMIT = 0.5
TARGET_ROAS_RANGE = (0.1, 50.0)
"""Target marginal ROAS (×): below 0.1 the plan would buy pounds that return pennies."""
LOWER_FACTOR_RANGE = (0.0, 1.0)
"""Lower bound, × current spend: 0 lets the plan cut an ad set to nothing, 1 forbids cuts."""
UPPER_FACTOR_RANGE = (1.0, 3.0)
"""Upper bound, × current spend: 1 forbids increases. Three times today's spend in a day is past
what the delivery history (the most an ad set spent in a day) usually allows, and it is the
What-if slider's end: a published plan must be one the What-if can show."""
MARGIN_RANGE = (0.01, 1.0)
"""Contribution margin, profit per £ of revenue before ad spend: 1% to all of it."""
MAX_DAILY_CHANGE_RANGE = (0.01, 1.0)
"""The most a daily budget moves from one day to the next, as a share: below 1% nothing moves,
above 100% a day's move is no limit a learning phase notices."""
PERIOD_DAYS_RANGE = (1, 91)
"""Days a plan covers: one day to a quarter."""
KEEP_SHARE = 0.90
"""max_moves unset: the fewest moves that keep this share of the uplift of the plan without a
count limit."""
MIN_TOTAL = 1.0
"""The least fixed total, £ a day."""
SHOWN = 5
"""Offending ad sets named in a message; the rest are counted."""


@dataclass(frozen=True)
class SettingProblem:
    field: str
    """As the run config spells it (`fixed_total`, not PlanSettings' `total`)."""
    text: str
    """What was found and the range to choose from."""

    def __str__(self) -> str:
        return f"{self.field}: {self.text}"


class PlanSettingsError(ValueError):
    """Settings the planner refuses: one line per problem, each naming its field and range."""

    def __init__(self, problems: Sequence[SettingProblem]):
        self.problems = tuple(problems)
        super().__init__(self.lines())

    @property
    def fields(self) -> list[str]:
        return [problem.field for problem in self.problems]

    def lines(self, prefix: str = "") -> str:
        """The message, each field prefixed (the run config's path, e.g. `ops.….config.`)."""
        return "\n".join(f"{prefix}{problem}" for problem in self.problems)


def not_a_number(value: object) -> str | None:
    """Why `value` is not a finite number, in words; None when it is one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"{value!r} is not a number"
    if math.isnan(value):
        return "NaN is not a number"
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}infinity is not a finite number"
    return None


def shown(value: object) -> str:
    """A value as a message quotes it: 1500, NaN, -infinity, 'abc'."""
    if not_a_number(value) is None:
        return f"{float(value):g}"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}infinity"
    return repr(value)


def range_problem(
    field: str, value: object, low: float, high: float | None, wanted: str
) -> SettingProblem | None:
    """A problem when `value` is not a finite number from `low` to `high` (None: no maximum)."""
    found = not_a_number(value)
    if found is None and value < low:
        found = f"{shown(value)} is below {low:g}"
    if found is None and high is not None and value > high:
        found = f"{shown(value)} is above {high:g}"
    return None if found is None else SettingProblem(field, f"{found}; {wanted}")


def listed(items: Sequence[str]) -> str:
    """At most SHOWN items, then how many more."""
    text = ", ".join(items[:SHOWN])
    return f"{text} and {len(items) - SHOWN} more" if len(items) > SHOWN else text


@dataclass(frozen=True)
class PlanSettings:
    """What the planner is asked; the dashboard changes these and calls `build_plan` again.
    Refuses a value outside its range (PlanSettingsError), so no plan is made from one."""

    scenario: str = "same_budget"
    target_marginal_roas: float | None = None
    """Scenario target_roas: spend while the last pound still returns at least this. None: the
    break-even marginal ROAS (1 / margin), past which the last pound loses money (`target`)."""
    lower_factor: float = 0.5
    upper_factor: float = 1.5
    locked: tuple[str, ...] = ()
    total: float | None = None
    """A fixed total for same_budget (default: the current total)."""
    budget_caps: tuple[tuple[str, float], ...] = ()
    """(ad_set_id, £ a day): the most an ad set may spend a day, whatever the plan finds."""
    risk_limit: float = RISK_LIMIT
    margin: float = 0.40
    """Contribution margin: profit per £ of revenue before ad spend."""
    max_daily_change: float = 0.20
    """The most a daily budget changes from one day to the next (share): a bigger move is a ramp
    over days, so the ad set does not go back into its learning phase."""
    min_move: float = 50.0
    """£ a day: a budget change below this is not made."""
    min_move_share: float = 0.05
    """A budget change below this share of today's budget is not made."""
    max_moves: int | None = None
    """At most this many budgets change, the most valuable first; None: the fewest that keep
    KEEP_SHARE of the uplift without a count limit."""
    period_days: int = 7
    """The plan covers this many days from the plan date."""

    def __post_init__(self):
        if problems := self.problems():
            raise PlanSettingsError(problems)

    def problems(self) -> list[SettingProblem]:
        """Every value outside its range, by the run config's field names."""
        found = []
        if self.scenario not in SCENARIOS:
            found.append(
                SettingProblem(
                    "scenario",
                    f"{self.scenario!r} is not a scenario; choose one of {', '.join(SCENARIOS)}",
                )
            )
        ranges = (
            (
                "target_marginal_roas",
                TARGET_ROAS_RANGE[0]
                if self.target_marginal_roas is None
                else self.target_marginal_roas,  # unset: break-even
                *TARGET_ROAS_RANGE,
                f"set the marginal ROAS the last pound must return, from "
                f"{TARGET_ROAS_RANGE[0]:g}× to {TARGET_ROAS_RANGE[1]:g}×, or leave it unset for "
                "break-even (1 / margin)",
            ),
            (
                "margin",
                self.margin,
                *MARGIN_RANGE,
                f"set the contribution margin (profit per £ of revenue before ad spend) from "
                f"{MARGIN_RANGE[0]:g} to {MARGIN_RANGE[1]:g} (0.4: 40p of each £)",
            ),
            (
                "max_daily_change",
                self.max_daily_change,
                *MAX_DAILY_CHANGE_RANGE,
                f"set the most a daily budget changes in a day as a share from "
                f"{MAX_DAILY_CHANGE_RANGE[0]:g} to {MAX_DAILY_CHANGE_RANGE[1]:g} (0.2: ±20%)",
            ),
            ("min_move", self.min_move, 0.0, None, "set the least move in £ per day, 0 or more"),
            (
                "min_move_share",
                self.min_move_share,
                0.0,
                1.0,
                "set the least move as a share of today's budget from 0 to 1 (0.05: 5%)",
            ),
            (
                "lower_factor",
                self.lower_factor,
                *LOWER_FACTOR_RANGE,
                "set the lower bound as a factor of current spend from 0 to 1, at most the upper "
                "bound (0.5: an ad set may be cut to half; 1: no cuts)",
            ),
            (
                "upper_factor",
                self.upper_factor,
                *UPPER_FACTOR_RANGE,
                f"set the upper bound as a factor of current spend from 1 to "
                f"{UPPER_FACTOR_RANGE[1]:g}, at least the lower bound (1.5: an ad set may rise "
                "by half; 1: no increases)",
            ),
            ("risk_limit", self.risk_limit, 0.0, 1.0, "set an under-pacing risk from 0 to 1"),
            (
                "fixed_total",
                MIN_TOTAL if self.total is None else self.total,  # unset: today's total
                MIN_TOTAL,
                None,
                f"set a total in £ per day of at least £{MIN_TOTAL:g}, or leave it unset for "
                "today's total",
            ),
        )
        found.extend(filter(None, (range_problem(*args) for args in ranges)))
        counts = (
            (
                "max_moves",
                self.max_moves,
                1,
                None,
                "set the most budgets to change as a whole number of 1 or more, or leave it "
                f"unset for the fewest moves that keep {KEEP_SHARE:.0%} of the uplift",
            ),
            (
                "period_days",
                self.period_days,
                *PERIOD_DAYS_RANGE,
                f"set the days the plan covers as a whole number from {PERIOD_DAYS_RANGE[0]} to "
                f"{PERIOD_DAYS_RANGE[1]} (7: a week, 28: four weeks)",
            ),
        )
        for field, value, low, high, wanted in counts:
            if value is None and field == "max_moves":
                continue
            if not_a_number(value) is None and float(value) != int(value):
                found.append(
                    SettingProblem(field, f"{shown(value)} is not a whole number; {wanted}")
                )
            elif problem := range_problem(field, value, low, high, wanted):
                found.append(problem)
        bad_caps = [
            f"{ad_set_id!r}: {shown(cap)}"
            for ad_set_id, cap in self.budget_caps
            if not_a_number(cap) is not None or cap < 0
        ]
        if bad_caps:
            found.append(
                SettingProblem(
                    "daily_budget_caps",
                    f"{len(bad_caps)} cap{'s are' if len(bad_caps) > 1 else ' is'} not a finite "
                    f"number of £0 or more ({listed(bad_caps)}); set each cap in £ per day, 0 or "
                    "more, or leave its ad set out",
                )
            )
        return found

    @property
    def break_even_roas(self) -> float:
        """The marginal ROAS at which the last pound's profit is zero: 1 / margin."""
        return 1.0 / self.margin if not_a_number(self.margin) is None and self.margin > 0 else 0.0

    @property
    def target(self) -> float:
        """The target marginal ROAS of scenario target_roas: as set, else break-even."""
        return (
            self.break_even_roas if self.target_marginal_roas is None else self.target_marginal_roas
        )

    def check_ad_sets(self, ad_set_ids: Iterable[str], planned: str) -> None:
        """Refuse locks and caps naming ad sets that are not among `ad_set_ids`, the ad sets
        being planned (`planned` says which: "with spend in the last 180 days of …")."""
        known = set(ad_set_ids)
        named = (
            ("locked_ad_sets", self.locked),
            ("daily_budget_caps", [ad_set_id for ad_set_id, _ in self.budget_caps]),
        )
        found = []
        for field, ids in named:
            unknown = sorted({str(ad_set_id) for ad_set_id in ids} - known)
            if not unknown:
                continue
            example = f" (e.g. {min(known)!r})" if known else ""
            found.append(
                SettingProblem(
                    field,
                    f"{len(unknown)} ad set{'s are' if len(unknown) > 1 else ' is'} not among the "
                    f"{len(known)} ad sets {planned}: {listed([repr(i) for i in unknown])}; name "
                    f"ad sets by their ad_set_id{example}, or remove these",
                )
            )
        if found:
            raise PlanSettingsError(found)
