"""Campaign budgets: a campaign-level budget (CBO / Advantage+) planned as one unit.

Where the budget lives on the campaign, a buyer sets one number and the platform splits it among
the campaign's ad sets; the plan cannot give one of them more. So such a campaign is one budget
unit: its spend S goes to its ad sets at today's split (ad set i spends w_i · S, w_i its share
of the campaign's current spend) and its response curve is the sum of theirs,
R(S) = Σ_i Hill_i(w_i · S), refitted as one Hill curve so that the optimizer treats a campaign
like an ad set. Every other ad set is a unit of its own. The split is an assumption: the
platform moves it as budgets change, but today's split is the one thing measured.

An ad set of such a campaign without a curve (new since the curves were fitted) is left out of
the unit: it keeps its current spend (share 0, `fixed`), as the optimizer keeps an ad set
without a curve, and the unit's spend and curve are its other ad sets'. A campaign none of whose
ad sets has a curve stays one unit with no curve (NaN), which the optimizer keeps at its spend.

Pure numpy (scipy for the fit): the pipeline's plan and the dashboard's What-if both call it.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from planning.curves import hill_revenue

CAMPAIGN = "campaign"
AD_SET = "ad_set"
FIT_GRID = (0.25, 3.0)
"""The spend range a campaign's curve is fitted over, as multiples of its current spend: the
plan's bounds sit well inside it."""
FIT_POINTS = 64


@dataclass(frozen=True)
class BudgetUnits:
    """Which budget each ad set's spend comes from. Arrays per ad set (in the order given):
    `unit_of` (its unit's index), `shares` (w_i: its share of its unit's spend; 1 for an ad set
    that is a unit of its own, 0 for a `fixed` one), `fixed` (kept at `current` outside its
    campaign's unit), `current` (its current spend). Arrays per unit: `unit_ids` (the campaign id,
    or the ad set's id), `unit_names`, `unit_levels` (`campaign` or `ad_set`)."""

    ad_set_ids: np.ndarray
    unit_of: np.ndarray
    shares: np.ndarray
    fixed: np.ndarray
    current: np.ndarray
    unit_ids: np.ndarray
    unit_names: np.ndarray
    unit_levels: np.ndarray

    @property
    def count(self) -> int:
        return len(self.unit_ids)

    @property
    def is_campaign(self) -> np.ndarray:
        return self.unit_levels == CAMPAIGN

    @property
    def unit_current(self) -> np.ndarray:
        """Each unit's current spend (its ad sets' but the fixed ones)."""
        return unit_spend(self, self.current)

    def members(self, unit: int) -> np.ndarray:
        """Positions of the ad sets whose spend the unit sets (fixed ones excluded)."""
        return np.flatnonzero((self.unit_of == unit) & ~self.fixed)


def _text(value) -> str | None:
    """A stripped string, or None for a blank or missing value (NaN, None, pd.NA)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def budget_units(
    ad_set_ids,
    campaign_id,
    budget_level,
    current,
    *,
    ad_set_name=None,
    campaign_name=None,
    has_curve=None,
) -> BudgetUnits:
    """The budget units of a plan: one per campaign whose ad sets have budget_level `campaign`
    and a campaign_id, one per other ad set. Units come in the order of their first ad set.

    `current`: each ad set's current spend (NaN read as 0); shares split a campaign by it, and
    equally when the campaign spent nothing. `has_curve` (default all): an ad set of a campaign
    unit without one is fixed at its current spend when another ad set of its campaign has one.
    Names: the campaign's name (its id when blank) or the ad set's (its id when blank)."""
    ids = np.asarray(ad_set_ids, dtype=object)
    count = len(ids)
    campaigns = [_text(value) for value in np.asarray(campaign_id, dtype=object)]
    levels = [_text(value) for value in np.asarray(budget_level, dtype=object)]
    names = [None] * count if ad_set_name is None else [_text(v) for v in ad_set_name]
    campaign_names = [None] * count if campaign_name is None else [_text(v) for v in campaign_name]
    spend = np.nan_to_num(np.asarray(current, dtype=float), nan=0.0)
    curved = np.ones(count, dtype=bool) if has_curve is None else np.asarray(has_curve, bool)

    unit_of = np.empty(count, dtype=np.int64)
    unit_ids, unit_names, unit_levels = [], [], []
    campaign_unit: dict[str, int] = {}
    for position in range(count):
        campaign = campaigns[position]
        if levels[position] == CAMPAIGN and campaign is not None:
            if campaign not in campaign_unit:
                campaign_unit[campaign] = len(unit_ids)
                unit_ids.append(campaign)
                unit_names.append(campaign_names[position] or campaign)
                unit_levels.append(CAMPAIGN)
            unit_of[position] = campaign_unit[campaign]
        else:
            unit_of[position] = len(unit_ids)
            unit_ids.append(ids[position])
            unit_names.append(names[position] or ids[position])
            unit_levels.append(AD_SET)

    levels_of_units = np.asarray(unit_levels, dtype=object)
    in_campaign = levels_of_units[unit_of] == CAMPAIGN
    curved_in_unit = np.bincount(unit_of, weights=curved, minlength=len(unit_ids)) > 0
    fixed = in_campaign & ~curved & curved_in_unit[unit_of]
    counted = np.where(fixed, 0.0, spend)
    unit_total = np.bincount(unit_of, weights=counted, minlength=len(unit_ids))
    members = np.bincount(unit_of, weights=~fixed, minlength=len(unit_ids))
    shares = np.where(
        unit_total[unit_of] > 0,
        counted / np.where(unit_total[unit_of] > 0, unit_total[unit_of], 1.0),
        1.0 / np.maximum(members[unit_of], 1.0),
    )
    shares = np.where(fixed, 0.0, shares)
    return BudgetUnits(
        ad_set_ids=ids,
        unit_of=unit_of,
        shares=shares,
        fixed=fixed,
        current=spend,
        unit_ids=np.asarray(unit_ids, dtype=object),
        unit_names=np.asarray(unit_names, dtype=object),
        unit_levels=levels_of_units,
    )


def ad_set_spend(units: BudgetUnits, unit_spend) -> np.ndarray:
    """Each ad set's spend when each unit spends `unit_spend`: w_i × S, the fixed ones their
    current spend."""
    spend = np.asarray(unit_spend, dtype=float)[units.unit_of] * units.shares
    return np.where(units.fixed, units.current, spend)


def unit_spend(units: BudgetUnits, ad_set_spend) -> np.ndarray:
    """Each unit's spend: the sum of its ad sets' (the fixed ones left out)."""
    spend = np.where(units.fixed, 0.0, np.asarray(ad_set_spend, dtype=float))
    return np.bincount(units.unit_of, weights=spend, minlength=units.count)


class UnitCurves(NamedTuple):
    """Each unit's Hill curve, and for a campaign unit the fit's worst relative error over its
    grid (0 for an ad set's own curve, NaN for a unit without a curve)."""

    vmax: np.ndarray
    half_saturation: np.ndarray
    shape: np.ndarray
    fit_error: np.ndarray


def campaign_revenue(spend, shares, vmax, half_saturation, shape) -> np.ndarray:
    """R(S) = Σ_i Hill_i(w_i · S) at each spend S of `spend` (the campaign's summed curve)."""
    spend = np.asarray(spend, dtype=float)[:, None]
    return hill_revenue(spend * shares, vmax, half_saturation, shape).sum(axis=1)


def fit_campaign_curve(
    shares: np.ndarray,
    vmax: np.ndarray,
    half_saturation: np.ndarray,
    shape: np.ndarray,
    current: float,
) -> tuple[float, float, float, float]:
    """One Hill curve (vmax, half_saturation, shape) through the summed curve of a campaign's
    ad sets on a log grid from 0.25× to 3× its current spend, by least squares on relative
    errors (deterministic: a fixed start); returns it and its worst relative error on the grid.
    One ad set is its own curve, rescaled exactly (Hill(w·S) has half-saturation K / w)."""
    if len(shares) == 1:
        return float(vmax[0]), float(half_saturation[0] / shares[0]), float(shape[0]), 0.0
    reference = current if current > 0 else float(np.sum(half_saturation))
    grid = reference * np.geomspace(*FIT_GRID, FIT_POINTS)
    target = campaign_revenue(grid, shares, vmax, half_saturation, shape)
    weights = vmax / vmax.sum()
    start = np.array(
        [
            np.log(vmax.sum()),
            np.log(np.sum(weights * half_saturation / shares)),
            float(np.sum(weights * shape)),
        ]
    )

    def relative_errors(parameters: np.ndarray) -> np.ndarray:
        log_vmax, log_half, power = parameters
        fitted = hill_revenue(grid, np.exp(log_vmax), np.exp(log_half), power)
        return fitted / target - 1.0

    # imported here: every process that imports planning (the dashboard's among them) paid for
    # scipy.optimize (0.9-1 s at a load average of 12 here), though only this fit needs it
    from scipy.optimize import least_squares

    fit = least_squares(
        relative_errors,
        start,
        bounds=([-np.inf, -np.inf, 0.05], [np.inf, np.inf, 5.0]),
        method="trf",
        x_scale=[1.0, 1.0, 0.1],
    )
    log_vmax, log_half, power = fit.x
    error = float(np.max(np.abs(relative_errors(fit.x))))
    return float(np.exp(log_vmax)), float(np.exp(log_half)), float(power), error


def unit_curves(units: BudgetUnits, vmax, half_saturation, shape) -> UnitCurves:
    """Each unit's curve from its ad sets' (arrays per ad set, NaN for an ad set without one):
    an ad-set unit's own; a campaign's the Hill curve fitted to the sum of its ad sets' at its
    split (`fit_campaign_curve`), over the ad sets with a curve (the fixed ones are outside it)."""
    vmax = np.asarray(vmax, dtype=float)
    half_saturation = np.asarray(half_saturation, dtype=float)
    shape = np.asarray(shape, dtype=float)
    curved = np.isfinite(vmax) & np.isfinite(half_saturation) & np.isfinite(shape)
    unit_current = units.unit_current
    result = np.full((4, units.count), np.nan)
    for unit in range(units.count):
        members = units.members(unit)
        if not units.is_campaign[unit]:
            member = members[0]
            result[:, unit] = vmax[member], half_saturation[member], shape[member], 0.0
            continue
        members = members[curved[members]]
        if len(members) == 0:
            continue
        result[:, unit] = fit_campaign_curve(
            units.shares[members],
            vmax[members],
            half_saturation[members],
            shape[members],
            unit_current[unit],
        )
    no_curve = ~np.isfinite(result[0])
    result[3, no_curve] = np.nan
    return UnitCurves(*result)


def unit_bounds(units: BudgetUnits, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's spend bounds from its ad sets': a campaign moves its ad sets together at
    today's split, so it is bounded by the first of them to reach its own bound, below
    (max_i lower_i / w_i) and above (min_i upper_i / w_i); an ad-set unit keeps its own. Fixed
    ad sets do not bound the unit."""
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    counted = ~units.fixed & (units.shares > 0)
    share = np.where(counted, units.shares, 1.0)
    unit_lower = np.zeros(units.count)
    np.maximum.at(unit_lower, units.unit_of, np.where(counted, lower / share, 0.0))
    unit_upper = np.full(units.count, np.inf)
    np.minimum.at(unit_upper, units.unit_of, np.where(counted, upper / share, np.inf))
    return unit_lower, unit_upper
