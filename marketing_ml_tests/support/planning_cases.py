"""Planning inputs with a known truth: random Hill curves and daily histories drawn from them."""

import numpy as np
import pandas as pd

from planning.curves import hill_revenue

NO_LIMITS = {"max_daily_change": 1.0, "min_move": 0.0, "min_move_share": 0.0, "max_moves": 10**6}
"""Limits that hold nothing back: the plan is its unlimited optimum, in one day."""


def random_case(seed: int, n: int, concave: bool):
    rng = np.random.default_rng(seed)
    current = rng.uniform(200, 2000, n)
    shape = rng.uniform(0.5, 1.0, n) if concave else rng.uniform(0.5, 2.5, n)
    half = current * rng.uniform(0.4, 3.0, n)
    vmax = rng.uniform(2, 8, n) * current / hill_revenue(current, 1.0, half, shape)
    return vmax, half, shape, current


def curves_frame(vmax, half, shape, current, **extra):
    n = len(vmax)
    return pd.DataFrame(
        {
            "ad_set_id": [f"AS_{i:03d}" for i in range(n)],
            "ad_set_name": [f"Ad set {i}" for i in range(n)],
            "fit": "own",
            "vmax": vmax,
            "half_saturation": half,
            "shape": shape,
            "current_spend": current,
            "daily_budget": extra.get("daily_budget", np.full(n, np.nan)),
            "max_spend": extra.get("max_spend", np.full(n, np.nan)),
        }
    )


def synthetic_daily(seed: int, ad_sets: int, days: int, varied: bool = True):
    rng = np.random.default_rng(seed)
    budget = rng.uniform(300, 3000, ad_sets)
    shape = rng.uniform(0.6, 1.0, ad_sets)
    half = budget * rng.uniform(0.8, 2.5, ad_sets)
    vmax = rng.uniform(3, 6, ad_sets) * budget / hill_revenue(budget, 1.0, half, shape)
    frames, level = [], np.ones(ad_sets)
    for day in range(days):
        if varied and day % 14 == 0:
            level = np.exp(0.3 * rng.standard_normal(ad_sets))
        spend = budget * level * np.exp((0.1 if varied else 0.01) * rng.standard_normal(ad_sets))
        revenue = hill_revenue(spend, vmax, half, shape) * np.exp(
            0.2 * rng.standard_normal(ad_sets) - 0.02
        )
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.Timestamp("2024-01-01") + pd.Timedelta(days=day),
                    "ad_set_id": [f"AS_{i:03d}" for i in range(ad_sets)],
                    "spend": spend,
                    "revenue": revenue,
                    "lookalike_source": ["group_a" if i % 2 else "group_b" for i in range(ad_sets)],
                }
            )
        )
    truth = pd.DataFrame({"vmax": vmax, "half_saturation": half, "shape": shape})
    return pd.concat(frames, ignore_index=True), truth


def drifting_daily(seed: int, ad_sets: int, days: int):
    """Budget steps every three weeks or so, day-to-day delivery swings, Poisson-like noise,
    and a slow multiplicative conversion drift (AR(1), persistence 0.95, spread 0.15) that is
    independent of spend but can line up with the budget steps by chance."""
    rng = np.random.default_rng(seed)
    budget = rng.uniform(500, 3000, ad_sets)
    shape = rng.uniform(0.6, 1.0, ad_sets)
    half = budget / np.exp(rng.uniform(np.log(0.15), np.log(3.0), ad_sets))
    vmax = rng.uniform(3, 5, ad_sets) * budget / hill_revenue(budget, 1.0, half, shape)
    level, drift, swing, frames = np.ones(ad_sets), 0.15 * rng.standard_normal(ad_sets), 0.0, []
    for day in range(days):
        step = rng.random(ad_sets) < 1 / 21
        level = np.where(step, np.exp(rng.uniform(np.log(0.6), np.log(1.6), ad_sets)), level)
        drift = 0.95 * drift + 0.15 * np.sqrt(1 - 0.95**2) * rng.standard_normal(ad_sets)
        swing = 0.75 * swing + 0.08 * rng.standard_normal(ad_sets)
        spend = budget * level * np.exp(swing)
        expected = hill_revenue(spend, vmax, half, shape) * np.exp(drift - 0.15**2 / 2)
        revenue = 300.0 * rng.poisson(expected / 300.0)
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.Timestamp("2024-01-01") + pd.Timedelta(days=day),
                    "ad_set_id": [f"AS_{i:03d}" for i in range(ad_sets)],
                    "spend": spend,
                    "revenue": revenue.astype(float),
                }
            )
        )
    truth = pd.DataFrame({"vmax": vmax, "half_saturation": half, "shape": shape})
    return pd.concat(frames, ignore_index=True), truth
