"""Response curves: daily booking revenue against daily spend, one saturating curve per ad set.

The curve is the Hill form `revenue(s) = vmax * s**shape / (half_saturation**shape + s**shape)`,
shape bounded to [0.3, 1] (concave from the first pound). It is fitted on a trailing window of
days in parameters that keep the problem well conditioned: the log revenue at the ad set's mean
spend in the window, the log of half_saturation / mean spend, and the shape.

Observational data, so the fit has to keep two things apart from the effect of spend:

- A slow drift in revenue per pound (conversion rates wander for weeks) that can line up with a
  budget change by chance. A first, ordinary least-squares fit per ad set gives residuals whose
  autocovariance, pooled over ad sets, gives the drift's persistence and size; the curves are then
  refitted by generalised least squares under that drift (a Kalman filter whitens each ad set's
  residuals into one-step prediction errors). A budget step then counts through the days around
  it, where the drift has barely moved, more than through levels weeks apart.
- Noise: 180 days of a few bookings a day pin an ad set's level well but its elasticity poorly.
  Each curve is shrunk toward the population of curves (empirical Bayes): a normal prior on
  (elasticity at mean spend, shape), its mean and spread estimated from all ad sets' fits by
  marginal maximum likelihood, added to each fit's least squares.

The fits are a projected Levenberg-Marquardt run on every ad set at once (vectorised numpy),
not scipy's least_squares per ad set: those calls alone took about 3 s for 2,000 ad sets before
any whitening, and the whole fit now takes about 3 s.

A lasting step in an ad set's revenue per pound (planning.shifts: a change point on observed over
fitted revenue, large and well beyond the noise and the drift) would leave a curve fitted across it
priced at the average of the two levels: the ad set's curve is fitted on the days since the step
only (`fit = 'shifted'`, `shifted_on`, `level_shift` = after / before), so fewer days and a wider
interval, and the drift is re-read without the steps.

Revenue per pound by day of the week (planning.calendar): seven factors shared by every ad set,
read from the first fits' residuals, and the curves fitted to revenue over its day's factor, so
they are the average day's; the plan multiplies a day's revenue by its weekday's factor
(`weekday_factor_monday` ... `weekday_factor_sunday`, the same on every row). Likewise a demand
level shared by every ad set per day (planning.calendar.demand_level: the season, net of each ad
set's own spend), so budgets that follow demand do not read as a steeper curve; tomorrow is priced
at the last two weeks' level (`demand_level`).

An ad set whose planned budget barely moved in the window (`MIN_DAYS`,
`planning.delivery.MIN_BUDGET_CV` on weekly means of its planned budget; the spend's
`MIN_SPEND_CV` only where no planned budget is known) cannot identify a curve from its own days:
delivery noise moves spend without a budget move, and a curve fitted on it is confidently wrong.
For such an ad set, its own days (which pin its level) are fitted under the population prior
centred on its audience group's curves, and it says so (`fit = 'pooled'`, `pooled_from` the
group, or all ad sets when no ad set of its group has a curve of its own). With too few ad sets for a population
(`PRIOR_MIN_AD_SETS`), it takes its group's pooled curve at its own level; with no group that can
identify one either, it gets no curve (`fit = 'none'`) and the plan leaves it where it is.

Uncertainty is a bootstrap by day of the whitened rows (nearly independent, unlike raw days under
a drift): the same resampled days for every ad set, and the prior redrawn with them, so the
spread is the posterior's rather than the shrunk estimate's; every curve is re-estimated by one
damped Gauss-Newton step from its fit (exact for the linearised model; 200 draws of 2,000 curves
in about a second). That spread takes every other estimate as known, and its 90% intervals held
the planted truth for only 72-89% of ad sets: each step is scaled by `DRAW_SPREAD`, a factor
calibrated on planted truth (see there for what it was chosen on and how it does elsewhere).

Carry-over: a day's revenue answers to geometric ad-stock of spend (`carried_spend`, normalised
so that a steady spend is its own ad-stock), one decay pooled over ad sets, chosen on a grid by the
generalised least-squares cost of the first ad sets' fits (a profile likelihood). A curve of the
day's own spend under carry-over reads the smoothed response as a flatter curve (marginal ROAS
0.81-0.85 of the truth at a carry-over of 0.6 on planted data); the curve of ad-stock is the
revenue a day once a budget has run a while, so the plan prices a pound with the part it returns
on later days. Stored as `carryover`, the same on every row.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from planning.calendar import (
    WEEKDAY_COLUMNS,
    demand_level,
    latest_demand,
    weekday_factors,
    weekday_of,
)
from planning.delivery import MIN_BUDGET_CV, budget_cv
from planning.shifts import LevelShifts, find_level_shifts

WINDOW_DAYS = 180
"""Trailing days a curve is fitted on. Longer than the 90 days first planned: revenue per pound
drifts slowly (conversion rates wander for weeks), and over 90 days that drift lines up with a
few budget changes by chance. On generated data with planted curves (30 ad sets × 180 days,
seeds 1-3) the plan captures 95%, 87% and 96% of the true optimum's uplift (88%, 71%, 89% before
the drift and the population prior were modelled; the naive quartile rule: 66%, 60%, 71%)."""
CURRENT_DAYS = 7
"""Current spend = the mean of the last 7 days of the window (a week, so weekdays weigh equally)."""
MIN_DAYS = 28
"""Fewer days with spend than this in the window: not enough to fit an ad set's own curve."""
MIN_SPEND_CV = 0.10
"""Where no planned budget is known: spend whose coefficient of variation (sd / mean) over the
window is below this moved too little to tell a curve from noise (pooled with its group)."""
SHAPE_BOUNDS = (0.3, 1.0)
HALF_SATURATION_RATIO_BOUNDS = (0.02, 50.0)
"""half_saturation / mean spend: from deeply saturated to almost linear over the observed range."""
BOOTSTRAP_DRAWS = 200
INTERVAL = 0.9
"""Bootstrap intervals are central 90% intervals (the 5th and 95th percentiles of the draws)."""
DRAW_SPREAD = 1.5
"""Each bootstrap step is scaled by this. The one-step draws take as known what the fit
estimated before them: the drift's persistence and size, the weekday, demand and carry-over
terms, the change point, the population prior's spread, and the linearisation. Unscaled, the 90%
intervals held the planted truth for 72-83% of ad sets (marginal ROAS) and 73-89% (revenue) per
variant of the calibration study; a block bootstrap of whitened days (7 or 14) moved nothing (the
rows are close to independent), and the drift's level added to every draw put the revenue
intervals at 99%. Chosen on sample_data's variants (`make calibrate`: 89-95% and 81-98% at 1.5),
one factor for every fit type: pooled over the variants, own curves then held the truth for 92%
(marginal ROAS) and 92% (revenue), pooled ones 92% and 96% (shifted: 9 ad sets, 8 and 7). On the
other generator, which it was not chosen on, coverage rose from 47-58% to 69-77%, still short
(its curves are not Hill curves, its level a random walk whose last state is the truth)."""
SEED = 20240801
DAMPING = 0.05
"""Marquardt damping of the bootstrap step: the saturation ratio is flat when the curve is
almost linear over the observed spend, and an undamped step would wander along that ridge."""
GLOBAL_GROUP = "all ad sets"
FIRST_STEPS = 15
GLS_STEPS = 20
PRIOR_STEPS = 15
POOLED_STEPS = 30
"""Levenberg-Marquardt iterations of each stage (converged: doubling them moves no plan share
on the planted data by 0.1 point)."""
CARRYOVER_GRID = np.round(np.arange(0.0, 0.81, 0.1), 2)
"""Carry-over (the share of a day's ad-stock left the next day) tried: none up to 0.8 (half of
a pound's effect after three days)."""
CARRYOVER_AD_SETS = 150
"""Ad sets with a curve of their own the carry-over is chosen on (the first by id): one shared
decay is pinned by a hundred or so (40 recover a planted 0.6 exactly), and the grid costs a fit
of them per point (about 0.4 s for the nine points)."""
CARRYOVER_STEPS = 8
DRIFT_MAX_LAG = 30
"""Lags of the residual autocovariance the drift's persistence and variance are fitted on."""
DRIFT_MAX_SHARE = 0.5
"""The drift is at most this share of the residual variance: the rest is day-to-day noise."""
DRIFT_MAX_PERSISTENCE = 0.98
"""Beyond this a drift cannot be told from a constant offset in 30 lags (the estimate runs off
to 1 with a drift as large as the cap)."""
NOISE_FLOOR = 0.1
"""An ad set's day-to-day noise variance is at least this share of its residual variance."""
PRIOR_MIN_AD_SETS = 8
"""Fewer ad sets with a curve of their own than this: no population prior (too few to estimate
its spread); curves are then plain generalised least squares."""
PRIOR_EM_STEPS = 200
GROUP_PRIOR_WEIGHT = 2.0
"""A pooled ad set's prior is centred on its group's curves, weighted n / (n + 2) against the
population's for a group of n ad sets with their own curve."""
PRIOR_SD_FLOOR = np.array([0.02, 0.02])
"""The population's spread is at least this (elasticity, shape): never a single curve for all."""


def hill_revenue(spend, vmax, half_saturation, shape):
    """Expected daily revenue at `spend` (arrays broadcast)."""
    spend = np.maximum(np.asarray(spend, dtype=float), 0.0)
    powered = spend**shape
    return vmax * powered / (half_saturation**shape + powered)


def hill_marginal(spend, vmax, half_saturation, shape):
    """d revenue / d spend: the marginal ROAS at `spend` (spend > 0)."""
    spend = np.maximum(np.asarray(spend, dtype=float), 1e-12)
    powered = (spend / half_saturation) ** shape
    return vmax * shape * powered / (spend * (1.0 + powered) ** 2)


@dataclass(frozen=True)
class CurveFits:
    """One row per ad set (see `CURVE_COLUMNS`) and the bootstrap draws of each curve."""

    curves: pd.DataFrame
    draws: dict[str, np.ndarray]
    """vmax, half_saturation, shape: arrays of (ad sets × draws) in the order of `curves`; NaN
    rows for ad sets without a curve."""


def audience_group(lookalike_source, target_age) -> str:
    """An ad set's group for pooling: its lookalike source, else its target age band."""
    for value in (lookalike_source, target_age):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return GLOBAL_GROUP


def _values(theta: np.ndarray, log_x: np.ndarray, jacobian: bool = False):
    """Many curves at once on normalised axes: theta (n × 3) = (a, z, shape) with exp(a) the
    revenue at x = 1 and exp(z) = half_saturation / reference spend; log_x (n × days) the log of
    spend / reference spend → values (n × days) and, if asked, the Jacobian (n × days × 3)."""
    a, z, k = (theta[:, i : i + 1] for i in range(3))
    rho_k = np.exp(k * z)
    x_k = np.exp(k * log_x)
    value = np.exp(a) * (1.0 + rho_k) * x_k / (rho_k + x_k)
    if not jacobian:
        return value, None
    jac = np.empty((*log_x.shape, 3))
    jac[..., 0] = value
    jac[..., 1] = value * (k * rho_k * (1.0 / (1.0 + rho_k) - 1.0 / (rho_k + x_k)))
    jac[..., 2] = value * (
        rho_k * z / (1.0 + rho_k) + log_x - (rho_k * z + x_k * log_x) / (rho_k + x_k)
    )
    return value, jac


def _log(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, 1e-9))


def _bounds() -> tuple[np.ndarray, np.ndarray]:
    z_low, z_high = np.log(HALF_SATURATION_RATIO_BOUNDS)
    return (
        np.array([-np.inf, z_low, SHAPE_BOUNDS[0]]),
        np.array([np.inf, z_high, SHAPE_BOUNDS[1]]),
    )


def _starts(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shape 1, the mean revenue as the level, and the log-log slope of revenue on spend as the
    elasticity at x = 1 (one start per row; y is revenue over its mean)."""
    positive = mask & (x > 0) & (y > 0)
    count = positive.sum(axis=1)
    lx = np.where(positive, np.log(np.where(positive, x, 1.0)), 0.0)
    ly = np.where(positive, np.log(np.where(positive, y, 1.0)), 0.0)
    safe = np.maximum(count, 1)
    cx = np.where(positive, lx - (lx.sum(axis=1) / safe)[:, None], 0.0)
    cy = np.where(positive, ly - (ly.sum(axis=1) / safe)[:, None], 0.0)
    sxx, sxy = (cx**2).sum(axis=1), (cx * cy).sum(axis=1)
    slope = np.where((count >= 3) & (sxx > 0), sxy / np.where(sxx > 0, sxx, 1.0), 0.5)
    elasticity = np.clip(slope, 0.05, 0.95)
    level = np.maximum((y * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1), 1e-9)
    z = np.clip(np.log(elasticity / (1 - elasticity)), *np.log(HALF_SATURATION_RATIO_BOUNDS))
    return np.column_stack([np.log(level), z, np.ones_like(z)])


class _Whitener:
    """The drift model's whitening filter, for many series at once.

    A series' residual (revenue minus the curve, over the ad set's mean revenue) is read as a
    slow AR(1) level drift (persistence `phi`, stationary variance `drift`, the same for every
    ad set) plus day-to-day noise of the ad set's own variance. A Kalman filter turns the
    residuals into one-step prediction errors over their standard deviations: uncorrelated,
    unit-variance rows, one per day. Least squares on them is generalised least squares under
    that covariance, and resampling them by day is a fair bootstrap. A missing day gives a zero
    row and only lets the drift move on."""

    def __init__(self, mask: np.ndarray, noise: np.ndarray, phi: float, drift: float):
        n, days = mask.shape
        self.phi = phi
        self.gain = np.zeros((days, n))
        self.scale = np.zeros((days, n))
        variance = np.full(n, drift)
        innovation = drift * (1.0 - phi**2)
        for t in range(days):
            predicted = phi**2 * variance + innovation
            total = predicted + noise
            gain = np.where(mask[:, t], predicted / total, 0.0)
            self.gain[t] = gain
            self.scale[t] = np.where(mask[:, t], 1.0 / np.sqrt(total), 0.0)
            variance = predicted * (1.0 - gain)

    def __call__(self, series: np.ndarray) -> np.ndarray:
        """(n × days × columns) residuals or Jacobian columns → whitened, same shape."""
        by_day = np.ascontiguousarray(np.moveaxis(series, 1, 0))
        out = np.empty_like(by_day)
        level = np.zeros(by_day.shape[1:])
        for t in range(len(by_day)):
            level *= self.phi
            error = by_day[t] - level
            out[t] = error * self.scale[t][:, None]
            level += self.gain[t][:, None] * error
        return np.moveaxis(out, 0, 1)


@dataclass(frozen=True)
class _Prior:
    """A normal prior on g(theta) = (elasticity of revenue to spend at the ad set's mean spend,
    shape): the population of ad sets' curves, estimated from the ad sets themselves (empirical
    Bayes). `mean` is (2,) or one row per unit; `sd` is (2,)."""

    mean: np.ndarray
    sd: np.ndarray

    @staticmethod
    def pieces(theta: np.ndarray):
        """g(theta) = (elasticity at the mean spend, shape) (n × 2) and dg/dtheta (n × 2 × 3)."""
        _, z, k = theta.T
        share = 1.0 / (1.0 + np.exp(-k * z))
        g = np.column_stack([k * share, k])
        dg = np.zeros((len(theta), 2, 3))
        slope = share * (1.0 - share)
        dg[:, 0, 1], dg[:, 0, 2], dg[:, 1, 2] = k * k * slope, share + k * z * slope, 1.0
        return g, dg

    def terms(self, theta: np.ndarray):
        """Residual rows (n × 2) and their Jacobian (n × 2 × 3), in the least-squares sense
        (residual = prior mean - g, Jacobian = dg/dtheta, both over the prior sd)."""
        g, dg = self.pieces(theta)
        return (self.mean - g) / self.sd, dg / self.sd[None, :, None]


def _normal_equations(jac, residual, unit, units):
    """Per unit: J'J (units × 3 × 3) and J'r (units × 3), summed over its series."""
    normal = np.matmul(np.swapaxes(jac, 1, 2), jac)
    gradient = np.matmul(np.swapaxes(jac, 1, 2), residual[..., None])[..., 0]
    cost = (residual**2).sum(axis=1)
    if unit is None:
        return normal, gradient, cost
    return (
        np.stack(
            [np.bincount(unit, normal[:, i, j], units) for i in range(3) for j in range(3)], -1
        ).reshape(units, 3, 3),
        np.stack([np.bincount(unit, gradient[:, i], units) for i in range(3)], -1),
        np.bincount(unit, cost, units),
    )


def _batch_fit(log_x, y, mask, theta, unit=None, whiten=None, prior=None, iterations=20):
    """Projected Levenberg-Marquardt for many curves at once: bounded least squares of y
    (revenue over its mean, series × days, masked) on log_x, one theta per unit (series belong
    to `unit`; by default one unit per series), on the whitened residuals when a whitener is
    given, with the prior's rows when one is given. A parameter that would step across a bound
    is held there for that step. → theta, and per unit J'J at it (whitened data only)."""
    low, high = _bounds()
    theta = np.clip(theta, low, high)
    units = len(theta)
    per_series = (lambda t: t) if unit is None else (lambda t: t[unit])
    damping = np.full(units, 1e-2)
    eye = np.eye(3)

    def evaluate(theta):
        value, jac = _values(per_series(theta), log_x, jacobian=True)
        residual = (y - value) * mask
        jac *= mask[..., None]
        if whiten is not None:
            both = whiten(np.concatenate([residual[..., None], jac], axis=-1))
            residual, jac = both[..., 0], both[..., 1:]
        normal, gradient, cost = _normal_equations(jac, residual, unit, units)
        data_normal = normal
        if prior is not None:
            p_residual, p_jac = prior.terms(theta)
            normal = normal + np.matmul(np.swapaxes(p_jac, 1, 2), p_jac)
            gradient = gradient + np.matmul(np.swapaxes(p_jac, 1, 2), p_residual[..., None])[..., 0]
            cost = cost + (p_residual**2).sum(axis=1)
        return normal, gradient, cost, data_normal

    normal, gradient, cost, data_normal = evaluate(theta)
    for _ in range(iterations):
        diagonal = np.maximum(np.diagonal(normal, axis1=1, axis2=2), 1e-12)
        system = normal + damping[:, None, None] * diagonal[:, None, :] * eye
        step = np.linalg.solve(system, gradient[..., None])[..., 0]
        blocked = ((theta <= low) & (step < 0)) | ((theta >= high) & (step > 0))
        if blocked.any():
            free = (~blocked).astype(float)
            held = system * free[:, :, None] * free[:, None, :] + (1.0 - free)[:, None, :] * eye
            step = np.linalg.solve(held, (gradient * free)[..., None])[..., 0]
        trial = np.clip(theta + step, low, high)
        t_normal, t_gradient, t_cost, t_data = evaluate(trial)
        better = t_cost < cost
        theta = np.where(better[:, None], trial, theta)
        normal = np.where(better[:, None, None], t_normal, normal)
        data_normal = np.where(better[:, None, None], t_data, data_normal)
        gradient = np.where(better[:, None], t_gradient, gradient)
        cost = np.where(better, t_cost, cost)
        damping = np.clip(np.where(better, damping / 3, damping * 4), 1e-7, 1e7)
    return theta, data_normal


def _estimate_drift(residual: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Persistence and variance of the drift shared by every ad set, from the autocovariance of
    the residuals of the first fits (pooled over ad sets, lags 1..DRIFT_MAX_LAG): gamma(k) =
    drift × phi**k + c, the constant taking what the fitted level took out of the drift. The
    drift is at most DRIFT_MAX_SHARE of the residual variance."""
    days = residual.shape[1]
    lags = np.arange(1, min(DRIFT_MAX_LAG, days // 3) + 1)
    if len(lags) < 3 or len(residual) < 1:
        return 0.0, 0.0
    seen = mask.astype(float)
    variance = float((residual**2).sum() / max(seen.sum(), 1))
    gamma, weight = np.zeros(len(lags)), np.zeros(len(lags))
    for index, lag in enumerate(lags):
        pairs = seen[:, :-lag] * seen[:, lag:]
        weight[index] = pairs.sum()
        gamma[index] = (residual[:, :-lag] * residual[:, lag:]).sum() / max(weight[index], 1)
    if weight.min() <= 0:
        return 0.0, 0.0
    weight = np.sqrt(weight)
    best = (np.inf, 0.0, 0.0)
    for phi in np.linspace(0.5, DRIFT_MAX_PERSISTENCE, 97):
        design = np.column_stack([phi**lags, np.ones(len(lags))]) * weight[:, None]
        coef, *_ = np.linalg.lstsq(design, gamma * weight, rcond=None)
        error = float(((design @ coef - gamma * weight) ** 2).sum())
        if error < best[0]:
            best = (error, float(phi), float(np.clip(coef[0], 0.0, DRIFT_MAX_SHARE * variance)))
    return best[1], best[2]


def _noise(residual: np.ndarray, mask: np.ndarray, drift: float) -> np.ndarray:
    """Each series' day-to-day noise variance: its residual variance less the drift's."""
    variance = (residual**2 * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
    return np.maximum(variance - drift, np.maximum(NOISE_FLOOR * variance, 1e-6))


def _identifiable(x: np.ndarray, days: int) -> bool:
    mean = float(np.mean(x)) if len(x) else 0.0
    return days >= MIN_DAYS and mean > 0 and float(np.std(x)) / mean >= MIN_SPEND_CV


_PAIRS = ([0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2])


def _day_moments(theta, log_x, y, mask, whiten, unit=None, units=None):
    """Per unit and day, the whitened Gauss-Newton pieces J'J (6 unique entries) and J'r:
    (units × days × 6), (units × days × 3)."""
    per_series = theta if unit is None else theta[unit]
    value, jac = _values(per_series, log_x, jacobian=True)
    both = whiten(np.concatenate([((y - value) * mask)[..., None], jac * mask[..., None]], -1))
    residual, jac = both[..., 0], both[..., 1:]
    jj = jac[..., _PAIRS[0]] * jac[..., _PAIRS[1]]
    jr = jac * residual[..., None]
    if unit is None:
        return jj, jr
    out_jj = np.zeros((units, *jj.shape[1:]))
    out_jr = np.zeros((units, *jr.shape[1:]))
    np.add.at(out_jj, unit, jj)
    np.add.at(out_jr, unit, jr)
    return out_jj, out_jr


def _one_step_draws(theta_hat, jj, jr, weights, prior_residual, prior_jac, rng) -> np.ndarray:
    """(units × 3) fits, (units × days × 6) and (units × days × 3) moments, (draws × days)
    resampling counts, the prior's rows at the fit (units × 2, units × 2 × 3; zero without a
    prior) → (units × draws × 3) parameter draws: one damped Gauss-Newton step on each resample.

    The prior is redrawn with the days (its mean moved by one of its own sds, at random): days
    resampled alone would give the spread of the shrunk estimate around itself, narrower than
    what is known about the curve; with the prior redrawn too the step's spread is the
    posterior's (exactly, for the linearised model)."""
    unique = np.matmul(weights, jj)
    noise = rng.standard_normal((len(theta_hat), len(weights), prior_residual.shape[1]))
    drawn_residual = prior_residual[:, None, :] + noise
    prior_normal = np.matmul(np.swapaxes(prior_jac, 1, 2), prior_jac)
    gradient = np.matmul(weights, jr) + np.einsum("upk,ubp->ubk", prior_jac, drawn_residual)
    full = jj.sum(axis=1)
    matrix = np.empty((*unique.shape[:2], 3, 3))
    for column, (i, j) in enumerate(zip(*_PAIRS, strict=True)):
        matrix[..., i, j] = unique[..., column]
        matrix[..., j, i] = unique[..., column]
    matrix += prior_normal[:, None]
    diagonal = np.maximum(full[:, [0, 3, 5]] + np.diagonal(prior_normal, axis1=1, axis2=2), 1e-12)
    matrix[..., [0, 1, 2], [0, 1, 2]] += DAMPING * diagonal[:, None, :]
    low, high = _bounds()
    # A parameter the fit left at a bound stays there: its gradient is not zero at the fit, and
    # a free step would move every draw off the fit even without resampling.
    span = np.where(np.isfinite(high - low), high - low, 1.0)
    active = (theta_hat <= low + 1e-6 * span) | (theta_hat >= high - 1e-6 * span)
    free = (~active).astype(float)[:, None, :]
    matrix = matrix * free[..., :, None] * free[..., None, :]
    matrix[..., [0, 1, 2], [0, 1, 2]] += 1.0 - free
    step = np.linalg.solve(matrix, (gradient * free)[..., None])[..., 0]
    return np.clip(theta_hat[:, None, :] + DRAW_SPREAD * step, low, high)


def _to_hill(theta, reference_spend, level=1.0):
    """(a, z, shape) on normalised axes → vmax, half_saturation, shape in pounds."""
    a, z, k = np.moveaxis(np.asarray(theta, dtype=float), -1, 0)
    vmax = level * np.exp(a) * (1.0 + np.exp(k * z))
    return vmax, np.exp(z) * reference_spend, k


def _empirical_prior(theta, data_normal) -> _Prior:
    """The population of curves, a normal distribution of g(theta) (see `_Prior`), by
    marginal maximum likelihood (EM) over the ad sets' fits, each read as a normal likelihood
    around its fit with the precision of its whitened Gauss-Newton matrix (level profiled
    out)."""
    h = data_normal + 1e-9 * np.eye(3)
    # precision of (z, shape) with the level profiled out, then in g
    schur = h[:, 1:, 1:] - h[:, 1:, :1] * h[:, :1, 1:] / h[:, :1, :1]
    g, dg = _Prior.pieces(theta)
    inverse_a = np.linalg.inv(dg[:, :, 1:] + 1e-12 * np.eye(2))  # d(z, shape) / d(g)
    precision = np.swapaxes(inverse_a, 1, 2) @ schur @ inverse_a
    mean = np.median(g, axis=0)
    variance = np.maximum(g.var(axis=0), PRIOR_SD_FLOOR**2)
    for _ in range(PRIOR_EM_STEPS):
        posterior = np.linalg.inv(precision + np.diag(1.0 / variance))
        centre = posterior @ (precision @ g[..., None] + (mean / variance)[None, :, None])
        centre = centre[..., 0]
        mean = centre.mean(axis=0)
        spread = (centre - mean) ** 2 + np.diagonal(posterior, axis1=1, axis2=2)
        variance = np.maximum(spread.mean(axis=0), PRIOR_SD_FLOOR**2)
    return _Prior(mean, np.sqrt(variance))


class _Days:
    """The window's days as the fit reads them (ad sets × days; a masked day is zero): spend
    over the ad set's mean spend (x), revenue over its mean revenue (y), and which ad sets can
    identify a curve of their own."""

    def __init__(self, spend, revenue, mask, carried: np.ndarray | None = None, planned=None):
        """`carried`: the spend each day's revenue answers to (ad-stock, see `carried_spend`);
        the day's own spend when not given. `planned`: (planned budgets, which days have one),
        ad sets × days: an ad set identifies its own curve where its budget moved over its days
        (planning.delivery.budget_cv), by its spend's variation only where no budget is known."""
        self.mask, self.seen = mask, mask.astype(float)
        self.count = mask.sum(axis=1)
        safe_count = np.maximum(self.count, 1)
        self.mean_spend = spend.sum(axis=1) / safe_count
        self.mean_revenue = revenue.sum(axis=1) / safe_count
        spread = np.sqrt(
            ((spend - self.mean_spend[:, None]) ** 2 * self.seen).sum(axis=1) / safe_count
        )
        positive_spend = np.where(self.mean_spend > 0, self.mean_spend, 1.0)
        self.spend_cv = np.where(self.mean_spend > 0, spread / positive_spend, 0.0)
        self.usable = (self.mean_spend > 0) & (self.mean_revenue > 0)
        carried = spend if carried is None else carried
        self.x = np.where(mask, np.maximum(carried, 0.0) / positive_spend[:, None], 1.0)
        self.y = revenue / np.where(self.usable, self.mean_revenue, 1.0)[:, None] * self.seen
        self.log_x = _log(self.x)
        self.budget_cv = np.full(len(mask), np.nan)
        if planned is not None:
            self.budget_cv = budget_cv(planned[0], planned[1] & mask)
        moved = np.where(
            np.isfinite(self.budget_cv),
            self.budget_cv >= MIN_BUDGET_CV,
            self.spend_cv >= MIN_SPEND_CV,
        )
        self.own = np.flatnonzero(self.usable & (self.count >= MIN_DAYS) & moved)


def carried_spend(spend: np.ndarray, carryover: float) -> np.ndarray:
    """Geometric ad-stock, normalised: a_t = (1 - carryover) spend_t + carryover a_(t-1), from
    a_0 = spend_0 (as if the first day's spend had run before the window). At a steady spend it is
    that spend, so a curve of it is the revenue per day once a budget has run a while: tomorrow's
    pound is priced with the part it returns on later days."""
    if carryover <= 0:
        return spend
    out = np.empty_like(spend)
    out[:, 0] = spend[:, 0]
    for t in range(1, spend.shape[1]):
        out[:, t] = (1.0 - carryover) * spend[:, t] + carryover * out[:, t - 1]
    return out


def _gls_cost(theta, log_x, y, seen, whiten) -> float:
    value, _ = _values(theta, log_x)
    return float((whiten(((y - value) * seen)[..., None]) ** 2).sum())


def _choose_carryover(spend, revenue, mask, own, theta_own, whitener_of) -> float:
    """The pooled carry-over on `CARRYOVER_GRID` with the least generalised least-squares cost
    of the own-curve ad sets' fits (the first `CARRYOVER_AD_SETS` by id, each grid point's fits
    started from the one before): a profile likelihood of the carry-over under the drift."""
    rows = own[:CARRYOVER_AD_SETS]
    if len(rows) < 2:
        return 0.0
    whiten = whitener_of(rows)
    theta = theta_own[: len(rows)]
    best = (np.inf, 0.0)
    for carryover in CARRYOVER_GRID:
        days = _Days(spend[rows], revenue[rows], mask[rows], carried_spend(spend[rows], carryover))
        args = (days.log_x, days.y, days.seen)
        theta, _ = _batch_fit(*args, theta, whiten=whiten, iterations=CARRYOVER_STEPS)
        cost = _gls_cost(theta, *args, whiten)
        if cost < best[0]:
            best = (cost, float(carryover))
    return best[1]


def _first_fits(days: _Days, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ordinary least squares of the ad sets with a curve of their own → their theta, and every
    ad set's residuals (against its mean where it has no curve of its own). `known` (ad sets ×
    3, NaN rows to fit): fits kept from a first pass whose days have not changed."""
    own, seen = days.own, days.seen
    residual = (days.y - 1.0) * seen
    if known is None:
        known = np.full((len(seen), 3), np.nan)
    theta = known[own]
    fresh = np.flatnonzero(np.isnan(theta).any(axis=1))
    if len(fresh):
        rows = own[fresh]
        start = _starts(days.x[rows], days.y[rows], days.mask[rows])
        theta[fresh], _ = _batch_fit(
            days.log_x[rows], days.y[rows], seen[rows], start, iterations=FIRST_STEPS
        )
    if len(own):
        residual[own] = (days.y[own] - _values(theta, days.log_x[own])[0]) * seen[own]
    return theta, residual


def _fitted_ratio(days: _Days, theta_own: np.ndarray) -> np.ndarray:
    """Observed over fitted revenue per day (over its mean where an ad set has no curve of its
    own yet)."""
    fitted = np.ones_like(days.y)
    if len(days.own):
        fitted[days.own] = _values(theta_own, days.log_x[days.own])[0]
    return days.y / np.maximum(fitted, 1e-9)


def _level_shifts(days: _Days, theta_own: np.ndarray, phi: float, drift: float) -> LevelShifts:
    """Steps in observed over fitted revenue for every ad set with data enough on both sides
    (planning.shifts)."""
    ratio = _fitted_ratio(days, theta_own)
    return find_level_shifts(ratio, days.mask & days.usable[:, None], phi, drift, days.log_x)


def fit_response_curves(
    daily: pd.DataFrame,
    window_days: int = WINDOW_DAYS,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = SEED,
) -> CurveFits:
    """Fit one curve per ad set on the last `window_days` dates of `daily` (columns: date,
    ad_set_id, spend, revenue, and optionally ad_set_name, lookalike_source, target_age,
    daily_budget, planned_spend). Rows without spend are ignored. Ad sets are ordered by id."""
    frame = daily.copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame[frame["spend"].notna()]
    for column in ("ad_set_name", "lookalike_source", "target_age"):
        if column not in frame:
            frame[column] = None
    for column in ("daily_budget", "planned_spend"):
        if column not in frame:
            frame[column] = np.nan
    if frame.empty:
        return CurveFits(pd.DataFrame(columns=CURVE_COLUMNS), _empty_draws(0, draws))
    window_end = frame["date"].max()
    window_start = window_end - pd.Timedelta(days=window_days - 1)
    frame = frame[frame["date"] >= window_start].copy()
    frame["revenue"] = frame["revenue"].fillna(0.0).astype(float)
    frame["spend"] = frame["spend"].astype(float)
    frame["day"] = (frame["date"] - window_start).dt.days.astype(int)
    frame = frame.sort_values(["ad_set_id", "day"], kind="stable")

    # (ad sets × days) matrices; a day without a row is masked out
    last = frame.drop_duplicates("ad_set_id", keep="last").reset_index(drop=True)
    n, days = len(last), window_days
    row = np.searchsorted(last["ad_set_id"].to_numpy(), frame["ad_set_id"].to_numpy())
    day = frame["day"].to_numpy()
    spend, revenue = np.zeros((n, days)), np.zeros((n, days))
    np.add.at(spend, (row, day), frame["spend"].to_numpy())
    np.add.at(revenue, (row, day), frame["revenue"].to_numpy())
    planned = np.zeros((n, days))
    planned_known = np.zeros((n, days), dtype=bool)
    budgeted = frame["planned_spend"].notna().to_numpy()
    planned[row[budgeted], day[budgeted]] = frame["planned_spend"].to_numpy(float)[budgeted]
    planned_known[row[budgeted], day[budgeted]] = True
    planned_days = (planned, planned_known)
    mask = np.zeros((n, days), dtype=bool)
    mask[row, day] = True
    max_spend = np.where(mask, spend, -np.inf).max(axis=1)
    recent = mask[:, days - CURRENT_DAYS :]
    current = spend[:, days - CURRENT_DAYS :].sum(axis=1) / np.maximum(recent.sum(axis=1), 1)
    groups = np.array(
        [
            audience_group(source, age)
            for source, age in zip(last["lookalike_source"], last["target_age"], strict=True)
        ],
        dtype=object,
    )

    # 1. Ordinary least squares per ad set: its residuals tell the weekdays (planning.calendar)
    # and the slow drift from the noise. Curves are fitted to revenue over its day's factor.
    weekday = weekday_of(window_start, days)
    days_of = _Days(spend, revenue, mask, planned=planned_days)
    theta_own, residual = _first_fits(days_of)
    observed = days_of.mask & days_of.usable[:, None]
    factors = weekday_factors(_fitted_ratio(days_of, theta_own), observed, weekday)
    own_days = days_of.mask & np.isin(np.arange(n), days_of.own)[:, None]
    # each ad set's own drift, read before the demand level is taken out (so if anything too
    # large: the level's test is then cautious)
    first_drift = _estimate_drift(residual[days_of.own], mask[days_of.own])
    season = demand_level(days_of.y / factors[weekday], days_of.x, own_days, *first_drift)
    day_factor = factors[weekday] * np.exp(season)
    known = np.full((n, 3), np.nan)
    known[days_of.own] = theta_own
    days_of = _Days(spend, revenue / day_factor, mask, planned=planned_days)
    theta_own, residual = _first_fits(days_of, known)
    phi, drift = _estimate_drift(residual[days_of.own], mask[days_of.own])

    # Carry-over: revenue answers to ad-stocked spend, its decay pooled over ad sets.
    noise = _noise(residual, days_of.seen, drift)
    carryover = _choose_carryover(
        spend,
        revenue / day_factor,
        mask,
        days_of.own,
        theta_own,
        lambda rows: _Whitener(mask[rows], noise[rows], phi, drift),
    )
    carried = carried_spend(spend, carryover)
    if carryover > 0:
        days_of = _Days(spend, revenue / day_factor, mask, carried, planned_days)
        theta_own, residual = _first_fits(days_of)
        phi, drift = _estimate_drift(residual[days_of.own], mask[days_of.own])

    # A lasting step in revenue per pound: the curve is fitted on the days since (fewer days,
    # a wider interval), and the drift re-read without the steps.
    shifts = _level_shifts(days_of, theta_own, phi, drift)
    shifted = np.flatnonzero(shifts.day >= 0)
    if len(shifted):
        known = np.full((n, 3), np.nan)
        known[days_of.own] = theta_own
        known[shifted] = np.nan
        mask = mask.copy()
        for i in shifted:
            mask[i, : shifts.day[i]] = False
        spend, revenue = spend * mask, revenue * mask
        days_of = _Days(spend, revenue / day_factor, mask, carried, planned_days)
        theta_own, residual = _first_fits(days_of, known)
        phi, drift = _estimate_drift(residual[days_of.own], mask[days_of.own])
    seen, count, own = days_of.seen, days_of.count, days_of.own
    mean_spend, mean_revenue, spend_cv = days_of.mean_spend, days_of.mean_revenue, days_of.spend_cv
    usable, x, y, log_x = days_of.usable, days_of.x, days_of.y, days_of.log_x
    noise = _noise(residual, seen, drift)

    # 2. Generalised least squares under the drift, then shrunk toward the population of curves.
    unit_theta, unit_jj, unit_jr, unit_prior = [], [], [], []
    unit_of = np.full(n, -1)
    prior = None
    if len(own):
        whiten = _Whitener(mask[own], noise[own], phi, drift)
        args = (log_x[own], y[own], seen[own])
        theta_own, normal = _batch_fit(*args, theta_own, whiten=whiten, iterations=GLS_STEPS)
        if len(own) >= PRIOR_MIN_AD_SETS:
            prior = _empirical_prior(theta_own, normal)
            theta_own, _ = _batch_fit(
                *args, theta_own, whiten=whiten, prior=prior, iterations=PRIOR_STEPS
            )
        jj, jr = _day_moments(theta_own, *args, whiten)
        unit_of[own] = np.arange(len(own))
        unit_theta.extend(theta_own)
        unit_jj.extend(jj)
        unit_jr.extend(jr)
        if prior is not None:
            unit_prior.extend(zip(*prior.terms(theta_own), strict=True))
        else:
            unit_prior.extend([(np.zeros(2), np.zeros((2, 3)))] * len(own))

    # 3. Ad sets whose spend barely moved take their audience group's curve at their own level.
    pooled_units: dict[str, int | None] = {}

    def pooled_unit(group: str, members: np.ndarray) -> int | None:
        if group not in pooled_units:
            pooled_units[group] = None
            xm, mm = x[members], mask[members]
            if len(members) and _identifiable(xm[mm], int(mm.any(axis=0).sum())):
                whiten = _Whitener(mm, noise[members], phi, drift)
                args = (log_x[members], y[members], seen[members])
                start = _starts(xm.reshape(1, -1), y[members].reshape(1, -1), mm.reshape(1, -1))
                unit = np.zeros(len(members), dtype=int)
                fitted, _ = _batch_fit(*args, start, unit, whiten, iterations=POOLED_STEPS)
                jj, jr = _day_moments(fitted, *args, whiten, unit, 1)
                pooled_units[group] = len(unit_theta)
                unit_theta.append(fitted[0])
                unit_jj.append(jj[0])
                unit_jr.append(jr[0])
                unit_prior.append((np.zeros(2), np.zeros((2, 3))))
        return pooled_units[group]

    pooled_from = np.full(n, None, dtype=object)
    everyone = np.flatnonzero(usable)
    flat = np.setdiff1d(everyone, own)
    if prior is not None and len(flat):
        # With a population of curves, an ad set whose spend barely moved is its own data (which
        # pins its level) under the population prior, centred on its group's curves: the
        # posterior mean of its shape given what its group shows.
        own_g, _ = _Prior.pieces(theta_own)
        centre = np.tile(prior.mean, (len(flat), 1))
        for index, i in enumerate(flat):
            members = groups[own] == groups[i]
            weight = members.sum() / (members.sum() + GROUP_PRIOR_WEIGHT)
            if members.any():
                centre[index] = weight * own_g[members].mean(axis=0) + (1 - weight) * prior.mean
                pooled_from[i] = groups[i]
            else:
                pooled_from[i] = GLOBAL_GROUP
        flat_prior = _Prior(centre, prior.sd)
        whiten = _Whitener(mask[flat], noise[flat], phi, drift)
        args = (log_x[flat], y[flat], seen[flat])
        ratio = np.clip(centre[:, 0] / centre[:, 1], 0.01, 0.99)
        z_start = np.log(ratio / (1.0 - ratio)) / centre[:, 1]
        start = np.column_stack([np.zeros(len(flat)), z_start, centre[:, 1]])
        theta_flat, _ = _batch_fit(
            *args, start, whiten=whiten, prior=flat_prior, iterations=GLS_STEPS
        )
        jj, jr = _day_moments(theta_flat, *args, whiten)
        unit_of[flat] = len(unit_theta) + np.arange(len(flat))
        unit_theta.extend(theta_flat)
        unit_jj.extend(jj)
        unit_jr.extend(jr)
        unit_prior.extend(zip(*flat_prior.terms(theta_flat), strict=True))
        flat = flat[:0]
    for i in flat:
        unit = pooled_unit(groups[i], everyone[groups[everyone] == groups[i]])
        source = groups[i]
        if unit is None:
            unit, source = pooled_unit(GLOBAL_GROUP, everyone), GLOBAL_GROUP
        if unit is not None:
            unit_of[i], pooled_from[i] = unit, source

    is_own = np.zeros(n, dtype=bool)
    is_own[own] = True
    is_shifted = shifts.day >= 0
    shifted_on = [
        (window_start + pd.Timedelta(days=int(d))).date() if d >= 0 else None for d in shifts.day
    ]
    curves = pd.DataFrame(
        {
            "ad_set_id": last["ad_set_id"],
            "ad_set_name": last["ad_set_name"],
            "audience_group": groups,
            "fit": np.where(
                unit_of < 0,
                "none",
                np.where(is_own, np.where(is_shifted, "shifted", "own"), "pooled"),
            ),
            "pooled_from": np.where((unit_of >= 0) & ~is_own, pooled_from, None),
            "vmax": np.nan,
            "half_saturation": np.nan,
            "shape": np.nan,
            "r_squared": np.nan,
            "window_start": window_start.date(),
            "window_end": window_end.date(),
            "days": count,
            "mean_spend": mean_spend,
            "spend_cv": spend_cv,
            "budget_cv": days_of.budget_cv,
            "max_spend": max_spend,
            "daily_budget": pd.to_numeric(last["daily_budget"], errors="coerce").astype(float),
            "current_spend": current,
            "marginal_roas": np.nan,
            "marginal_roas_low": np.nan,
            "marginal_roas_high": np.nan,
            "shifted_on": pd.Series(shifted_on, dtype="object"),
            "level_shift": shifts.ratio,
            **{column: factor for column, factor in zip(WEEKDAY_COLUMNS, factors, strict=True)},
            "carryover": carryover,
            "demand_level": latest_demand(season),
        }
    )
    draw_arrays = _empty_draws(n, draws)
    fitted = np.flatnonzero(unit_of >= 0)
    if len(fitted):
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(days, np.full(days, 1.0 / days), size=draws).astype(float)
        unit_draws = _one_step_draws(
            np.stack(unit_theta),
            np.stack(unit_jj),
            np.stack(unit_jr),
            weights,
            np.stack([p[0] for p in unit_prior]),
            np.stack([p[1] for p in unit_prior]),
            rng,
        )
        units = unit_of[fitted]
        level = mean_revenue[fitted]
        vmax, half, shape = _to_hill(np.stack(unit_theta)[units], mean_spend[fitted], level)
        d_vmax, d_half, d_shape = _to_hill(
            unit_draws[units], mean_spend[fitted][:, None], level[:, None]
        )
        draw_arrays["vmax"][fitted] = d_vmax
        draw_arrays["half_saturation"][fitted] = d_half
        draw_arrays["shape"][fitted] = d_shape
        curves.loc[fitted, "vmax"] = vmax
        curves.loc[fitted, "half_saturation"] = half
        curves.loc[fitted, "shape"] = shape
        predicted = (
            hill_revenue(carried[fitted], vmax[:, None], half[:, None], shape[:, None]) * day_factor
        )
        observed, weight = revenue[fitted], seen[fitted]
        centred = observed - (observed * weight).sum(axis=1, keepdims=True) / count[fitted, None]
        total = (centred**2 * weight).sum(axis=1)
        error = ((observed - predicted) ** 2 * weight).sum(axis=1)
        curves.loc[fitted, "r_squared"] = np.where(
            (count[fitted] >= 2) & (total > 0),
            1.0 - error / np.where(total > 0, total, 1.0),
            np.nan,
        )
        spending = current[fitted] > 0
        at = fitted[spending]
        curves.loc[at, "marginal_roas"] = hill_marginal(
            current[at], vmax[spending], half[spending], shape[spending]
        )
        if spending.any():
            drawn = hill_marginal(
                current[at][:, None], d_vmax[spending], d_half[spending], d_shape[spending]
            )
            low, high = interval(drawn, axis=1)
            curves.loc[at, "marginal_roas_low"] = low
            curves.loc[at, "marginal_roas_high"] = high
    return CurveFits(curves[list(CURVE_COLUMNS)], draw_arrays)


def interval(draws: np.ndarray, axis: int = -1) -> tuple:
    """The central INTERVAL of bootstrap draws (floats, or arrays along `axis`)."""
    tail = (1 - INTERVAL) / 2 * 100
    draws = np.asarray(draws, dtype=float)
    finite = np.isfinite(draws).all()
    percentile = np.percentile if finite else np.nanpercentile  # nanpercentile loops over rows
    low, high = percentile(draws, [tail, 100 - tail], axis=axis)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def interval_around(point: float, draws: np.ndarray) -> tuple[float, float]:
    """The INTERVAL of bootstrap draws moved to sit around `point`: the draws' spread on each
    side of their median, from the point estimate. Draws under a redrawn prior are centred away
    from the fitted curves, and a range that leaves out its own point estimate reads as nonsense
    ("+£495,812, range +£451,247 to +£483,029")."""
    low, high = interval(draws)
    middle = float(np.nanmedian(np.asarray(draws, dtype=float)))
    return point - (middle - low), point + (high - middle)


def _empty_draws(n: int, draws: int) -> dict[str, np.ndarray]:
    return {name: np.full((n, draws), np.nan) for name in ("vmax", "half_saturation", "shape")}


CURVE_COLUMNS = (
    "ad_set_id",
    "ad_set_name",
    "audience_group",
    "fit",
    "pooled_from",
    "vmax",
    "half_saturation",
    "shape",
    "r_squared",
    "window_start",
    "window_end",
    "days",
    "mean_spend",
    "spend_cv",
    "budget_cv",
    "max_spend",
    "daily_budget",
    "current_spend",
    "marginal_roas",
    "marginal_roas_low",
    "marginal_roas_high",
    "shifted_on",
    "level_shift",
    *WEEKDAY_COLUMNS,
    "carryover",
    "demand_level",
)
