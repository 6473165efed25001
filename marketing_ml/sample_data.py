"""Synthetic raw exports in the vendor's exact format, at any scale, for demos, tests and load runs.

The four CSVs follow the raw contract byte for byte (BOM, CRLF, DD/MM/YYYY, the vendor's
vocabularies) and carry the seed's kinds of dirt at low rates. Behind them is a small model with
enough structure for the two classifiers to learn: a latent quality per ad set (CTR, ROAS, booking
value), weekly seasonality, AR(1) budget utilization (today's pacing predicts tomorrow's) and an
AR(1) conversion drift (trailing weeks predict next week's ROAS). Days are generated and written one
at a time, vectorised across ad sets, so memory stays flat however many days are asked for.

Planted response curves: each ad set's expected booking revenue on a day is a Hill function of that
day's actual spend, `vmax * s**shape / (half_saturation**shape + s**shape)`, with parameters drawn
per ad set and returned by `planted_curves`. Spend moves enough for the curves to be identified:
planned budgets change in steps every few weeks and utilization swings day to day; a few "steady"
ad sets keep a nearly constant spend (a fitter has to pool them). Revenue realises the curve through
the number of booking_completed events (Poisson) and their values (lognormal), so that the expected
revenue of a day given its spend is exactly the curve, times a mean-one drift that is independent of
spend; blank booking values and duplicated events (the dirt) come on top.

Campaigns: each persona's ad sets are grouped into campaigns of one to four; about a third of the
campaigns with two or more hold a campaign-level budget (`budget_level` campaign, CBO), the rest
ad-set budgets. An ad set's daily_budget is its part of its campaign's budget, so every figure
but the three campaign columns is what it was.

Variants (`--variant`, opt-in) plant what real accounts do on top of that world, each drawn from a
stream of its own so that the default sample is byte for byte what it was: a hidden delivery cap,
a step in revenue per pound, budgets that never move, carry-over, a weekday effect, a yearly demand
cycle that budgets follow, and ad sets that start late. `planted_truth` gives, per ad set, the
truth a plan for the day after the data should be judged against.
"""

import argparse
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from marketing_ml.contract import (
    ATTRIBUTION_WINDOWS,
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    CONVERSION_TYPES,
    META_CAMPAIGN_PERFORMANCE,
    PACING_STATUSES,
)

NEWLINE = "\r\n"
WRITE_BUFFER_BYTES = 4 * 1024 * 1024

BOOKING = CONVERSION_TYPES.index("booking_completed")
EVENT_REGISTRATION = CONVERSION_TYPES.index("event_registration")
OTHER_EVENTS_PER_BOOKING = {
    "newsletter_signup": 0.30,
    "flight_search": 0.16,
    "hotel_inquiry": 0.14,
    "destination_guide_download": 0.11,
    "event_registration": 0.06,
}
"""Each other conversion type is rarer than a booking, as in the seed; 0.77 extra per booking."""
ATTRIBUTION_SHARES = {"7_day_click": 0.5, "1_day_click": 0.3, "1_day_view": 0.2}
SECONDARY_SEGMENT_SHARE = 0.3

BOOKINGS_PER_DAY = 7.8
"""At reference spend, before quality moves it (ROAS_CENTRE over BUDGET_ROAS adds 4%): ~15 events
per ad set per day, 11M rows at 2000 x 365."""
BUDGET_ROAS = 3.9
"""The ROAS a base budget is sized for: about £2k a day, and BOOKINGS_PER_DAY at ROAS_CENTRE."""
ROAS_CENTRE = 4.05
"""Average ROAS at an ad set's reference spend (its base budget x mean utilization); with budget
steps on concave curves and 2% of booking values blank, a 7-day window's median ROAS is about the
4.0 target: both labels common."""
ROAS_QUALITY_SPREAD = 0.3
ROAS_IDIOSYNCRATIC_SPREAD = 0.15
BOOKING_VALUE_SIGMA = 0.55

UTILIZATION_MEAN = 0.97
UTILIZATION_MEAN_SPREAD = 0.1
UTILIZATION_PERSISTENCE = 0.75
UTILIZATION_DAILY_SPREAD = 0.12
UTILIZATION_RANGE = (0.15, 1.6)
PACING_THRESHOLDS = (0.9, 1.1)
PACING_NOISE = 0.03
"""The vendor's status uses its own intraday measure: near a threshold it can disagree with ours."""
PLANNED_SPEND_NOISE = 0.02

CVR_PERSISTENCE = 0.95
CVR_DRIFT_SPREAD = 0.15
"""The conversion drift multiplies a day's expected bookings by exp(drift - spread**2 / 2): mean one
and independent of spend, so the curve stays the expectation given spend."""

CURVE_SHAPE_RANGE = (0.6, 1.0)
"""Hill exponent, uniform: below 1 the curve is concave from the first pound (no S-shape)."""
CURVE_SATURATION_RANGE = (0.15, 3.0)
"""Reference spend / half_saturation, log-uniform: from room to grow (marginal ROAS up to ~0.85x
the average at reference spend) to saturated (down to ~0.2x)."""
BUDGET_CHANGE_EVERY_DAYS = 21
"""Mean days between a marketer's budget changes (a daily chance of 1 in 21)."""
BUDGET_LEVEL_RANGE = (0.6, 1.6)
"""A new planned budget, as a multiple of the ad set's base daily budget, log-uniform."""
STEADY_SHARE = 0.08
"""Ad sets whose budget never changes and whose delivery barely swings: nearly constant spend."""
STEADY_UTILIZATION_SCALE = 0.15
FREQUENCY_PERSISTENCE = 0.9
FREQUENCY_DAILY_SPREAD = 0.25
FREQUENCY_RANGE = (1.2, 3.5)

WEEKDAY_CTR = (1.0, 1.0, 1.0, 1.0, 1.02, 1.06, 1.06)
WEEKDAY_CPM = (1.02, 1.0, 1.0, 1.0, 1.02, 0.92, 0.9)
WEEKDAY_UTILIZATION_SHIFT = (0.0, 0.0, 0.0, 0.0, 0.0, -0.06, -0.06)
"""Monday first: leisure travellers browse at weekends, when Meta also under-delivers. No weekday
lift on bookings: with weekend spend lower it would tie revenue per pound to spend, and the
expected revenue given spend would no longer be the planted curve."""

BASELINE = "baseline"
VARIANTS = (
    BASELINE,
    "delivery_cap",
    "level_step",
    "flat_budget",
    "carryover",
    "weekday",
    "seasonal_demand",
    "new_ad_sets",
)
VARIANT_STREAM = 4
"""The child of the seed a variant draws from: the default's four streams are children 0-3."""
VARIANT_SHARE = 0.3
"""Ad sets a variant touches (delivery_cap, level_step, flat_budget)."""
DELIVERY_CAP_RANGE = (0.9, 1.2)
"""A hidden cap on daily spend, x reference spend, uniform: budgets of 0.6-1.6x base make it bind
on a good share of days, as a saturated audience would."""
LEVEL_STEP_DAYS_BEFORE_END = 60
LEVEL_STEP_FACTORS = (0.5, 1.7)
"""Revenue per pound from the step's day on: -50% for half the stepped ad sets, +70% for the rest."""
CARRYOVER_THETA = 0.6
"""Geometric adstock: the spend that drives a day's revenue is theta x yesterday's + (1 - theta) x
today's, so a spend held for good drives exactly itself (the curve is the steady state)."""
WEEKDAY_REVENUE = (0.9, 0.9, 0.95, 1.0, 1.05, 1.15, 1.05)
"""Monday first, mean one: weekend travellers book more per pound while Meta under-delivers."""
SEASON_AMPLITUDE = 0.3
SEASON_PEAK_DAY_OF_YEAR = 196
"""Demand, 1 + 0.3 cos(yearly phase), peaks mid-July; budgets and revenue per pound follow it."""
NEW_AD_SET_SHARE = 0.2
NEW_AD_SET_AGE_DAYS = (20, 90)
"""A new ad set's first day is this many days before the end, uniform (never before day one)."""

DUPLICATE_ROW_RATE = 0.003
NEGATIVE_SPEND_COPY_RATE = 0.001
BLANK_IMPRESSIONS_COPY_RATE = 0.001
BLANK_BOOKING_VALUE_RATE = 0.02
DUPLICATE_CONVERSION_RATE = 0.0005

NO_DIRT, DUPLICATE_ROW, NEGATIVE_SPEND_COPY, BLANK_IMPRESSIONS_COPY = range(4)
MAX_EVENTS_PER_AD_SET_DAY = 100
"""Sizes the conversion_id padding up front; a rare overflow only makes later ids wider."""


@dataclass(frozen=True)
class Persona:
    """One kind of audience, with the seed's words and its economics."""

    qualifiers: tuple[str, ...]
    audience: str
    ages: tuple[str, ...]
    interests: tuple[str, ...]
    lookalike_sources: tuple[str, ...]
    user_segments: tuple[str, str]
    booking_value_median: tuple[float, float]
    cpm: float
    ctr_percent: float


PERSONAS = (
    Persona(
        qualifiers=("Premium", "Elite", "Frequent"),
        audience="Travelers",
        ages=("25-45", "30-50", "35-55"),
        interests=(
            "luxury travel",
            "business class",
            "premium hotels",
            "airport lounges",
            "city breaks",
        ),
        lookalike_sources=("high_value_customers", "repeat_bookers"),
        user_segments=("premium_leisure", "premium_business"),
        booking_value_median=(900.0, 1400.0),
        cpm=7.0,
        ctr_percent=1.95,
    ),
    Persona(
        qualifiers=("Budget_Conscious", "Value_Seeking", "Holiday"),
        audience="Families",
        ages=("28-50", "30-45", "25-50"),
        interests=(
            "family travel",
            "budget flights",
            "vacation deals",
            "theme parks",
            "kids clubs",
        ),
        lookalike_sources=("family_bookers", "past_purchasers"),
        user_segments=("family_leisure", "family_leisure"),
        booking_value_median=(450.0, 800.0),
        cpm=3.3,
        ctr_percent=1.9,
    ),
    Persona(
        qualifiers=("Business_Travel", "Corporate", "Executive"),
        audience="Professionals",
        ages=("30-55", "28-50", "35-60"),
        interests=(
            "business travel",
            "corporate hotels",
            "frequent flyer",
            "conferences",
            "airport lounges",
        ),
        lookalike_sources=("business_customers", "corporate_accounts"),
        user_segments=("business_travel", "business_travel"),
        booking_value_median=(600.0, 1000.0),
        cpm=10.5,
        ctr_percent=2.15,
    ),
    Persona(
        qualifiers=("Young", "Student", "Backpacking"),
        audience="Adventure_Seekers",
        ages=("18-30", "18-25", "21-35"),
        interests=(
            "adventure travel",
            "backpacking",
            "hostels",
            "budget airlines",
            "trekking",
        ),
        lookalike_sources=("adventure_travelers", "website_visitors"),
        user_segments=("budget_adventure", "budget_adventure"),
        booking_value_median=(300.0, 500.0),
        cpm=3.5,
        ctr_percent=2.05,
    ),
    Persona(
        qualifiers=("Luxury", "Romantic", "Exclusive"),
        audience="Honeymoon_Couples",
        ages=("25-40", "25-35", "30-45"),
        interests=(
            "romantic destinations",
            "luxury resorts",
            "honeymoon packages",
            "spa retreats",
            "fine dining",
        ),
        lookalike_sources=("luxury_couples", "high_value_customers"),
        user_segments=("luxury_leisure", "luxury_business"),
        booking_value_median=(1100.0, 1500.0),
        cpm=12.5,
        ctr_percent=1.95,
    ),
    Persona(
        qualifiers=("Senior", "Retired", "Active"),
        audience="Leisure_Travelers",
        ages=("55+", "60+", "50-70"),
        interests=(
            "cruise travel",
            "guided tours",
            "leisure destinations",
            "river cruises",
            "heritage sites",
        ),
        lookalike_sources=("senior_travelers", "newsletter_subscribers"),
        user_segments=("senior_leisure", "senior_leisure"),
        booking_value_median=(700.0, 1200.0),
        cpm=6.2,
        ctr_percent=1.85,
    ),
)
USER_SEGMENTS = tuple(dict.fromkeys(s for p in PERSONAS for s in p.user_segments))


@dataclass(frozen=True)
class AdSets:
    """The fixed side of every ad set: what the audience file says and its latent economics."""

    ids: list[str]
    names: list[str]
    audience_rows: list[tuple[str, ...]]
    persona: np.ndarray
    daily_budget: np.ndarray
    utilization_mean: np.ndarray
    cpm: np.ndarray
    ctr: np.ndarray
    roas: np.ndarray
    booking_value_median: np.ndarray
    booking_value_mean: np.ndarray
    frequency_mean: np.ndarray
    segment_codes: np.ndarray
    campaigns: list[tuple[str, str, str]] = field(default_factory=list)
    """(campaign_id, campaign_name, budget_level) per ad set, the audience file's last columns."""

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class DailyState:
    """The AR(1) deviations carried from one day to the next."""

    utilization: np.ndarray
    cvr: np.ndarray
    frequency: np.ndarray
    budget_level: np.ndarray
    """Today's planned budget as a multiple of the base daily budget (steps, not AR(1))."""
    adstock: np.ndarray | None = None
    """carryover: the carried-over spend that drives revenue (None until the first day)."""


@dataclass(frozen=True)
class Curves:
    """The planted response curve of every ad set, and whether its spend is kept steady."""

    vmax: np.ndarray
    half_saturation: np.ndarray
    shape: np.ndarray
    steady: np.ndarray

    def expected_revenue(self, spend: np.ndarray) -> np.ndarray:
        """The Hill function at each ad set's spend: expected booking revenue of the day."""
        scaled = spend**self.shape
        return self.vmax * scaled / (self.half_saturation**self.shape + scaled)


@dataclass(frozen=True)
class Planted:
    """What a variant plants on top of the default world, per ad set (neutral where untouched)."""

    variant: str
    capacity: np.ndarray
    """The most an ad set can spend in a day, whatever its budget (inf: no cap)."""
    step_day: int
    """Day number from which `step` multiplies revenue per pound."""
    step: np.ndarray
    flat: np.ndarray
    """Planned budget never moves (the default's steady ad sets included)."""
    carryover: float
    weekday_revenue: tuple[float, ...]
    season_amplitude: float
    first_day: np.ndarray
    """Day number of an ad set's first row."""

    def demand(self, day: date) -> float:
        """The yearly demand cycle on a day: scales budgets and revenue per pound alike."""
        phase = 2.0 * np.pi * (day.timetuple().tm_yday - SEASON_PEAK_DAY_OF_YEAR) / 365.25
        return 1.0 + self.season_amplitude * float(np.cos(phase))

    def revenue_factor(self, day: date, day_number: int) -> np.ndarray:
        """Revenue per pound on a day, relative to the planted curve: level x weekday x season."""
        level = np.where(day_number >= self.step_day, self.step, 1.0)
        return level * self.weekday_revenue[day.weekday()] * self.demand(day)


def plant(variant: str, seed: int, curves: Curves, reference: np.ndarray, days: int) -> Planted:
    """A variant's planted truth for a seed: which ad sets it touches and how, from the seed's
    variant stream (the default's streams are not drawn from)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(VARIANT_STREAM + 1)[-1])
    count = len(reference)
    movable = np.flatnonzero(~curves.steady)
    chosen = rng.choice(movable, size=int(round(VARIANT_SHARE * len(movable))), replace=False)
    touched = np.isin(np.arange(count), chosen)
    capacity = np.full(count, np.inf)
    step = np.ones(count)
    flat = curves.steady.copy()
    first_day = np.zeros(count, dtype=np.int64)
    if variant == "delivery_cap":
        levels = rng.uniform(*DELIVERY_CAP_RANGE, size=count)
        capacity[touched] = np.round(levels * reference, 2)[touched]
    elif variant == "level_step":
        stepped = rng.permutation(np.flatnonzero(touched))
        step[stepped] = np.resize(LEVEL_STEP_FACTORS, len(stepped))
    elif variant == "flat_budget":
        flat |= touched
    elif variant == "seasonal_demand":
        flat[:] = False
    elif variant == "new_ad_sets":
        new = rng.choice(count, size=int(round(NEW_AD_SET_SHARE * count)), replace=False)
        ages = rng.integers(NEW_AD_SET_AGE_DAYS[0], NEW_AD_SET_AGE_DAYS[1] + 1, size=len(new))
        first_day[new] = np.maximum(days - ages, 0)
    return Planted(
        variant=variant,
        capacity=capacity,
        step_day=days - LEVEL_STEP_DAYS_BEFORE_END,
        step=step,
        flat=flat,
        carryover=CARRYOVER_THETA if variant == "carryover" else 0.0,
        weekday_revenue=WEEKDAY_REVENUE if variant == "weekday" else (1.0,) * 7,
        season_amplitude=SEASON_AMPLITUDE if variant == "seasonal_demand" else 0.0,
        first_day=first_day,
    )


def money(value: float) -> str:
    return f"{value:.2f}"


def uk_date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def ar1_innovation_spread(stationary_spread: float, persistence: float) -> float:
    """The daily shock that keeps an AR(1) at the given stationary spread."""
    return stationary_spread * float(np.sqrt(1.0 - persistence**2))


def make_ad_sets(rng: np.random.Generator, count: int) -> AdSets:
    """Draw each ad set's persona, quality and budget; quality moves CTR, CVR and value together."""
    id_width = max(3, len(str(count)))
    persona = rng.integers(0, len(PERSONAS), size=count)
    quality = rng.standard_normal(count)
    cpm = np.array([PERSONAS[p].cpm for p in persona]) * np.exp(0.1 * rng.standard_normal(count))
    ctr = (
        np.array([PERSONAS[p].ctr_percent for p in persona])
        / 100.0
        * np.exp(0.12 * quality + 0.08 * rng.standard_normal(count))
    )
    value_low = np.array([PERSONAS[p].booking_value_median[0] for p in persona])
    value_high = np.array([PERSONAS[p].booking_value_median[1] for p in persona])
    value_median = (value_low + (value_high - value_low) * rng.random(count)) * np.exp(
        0.1 * quality
    )
    value_mean = value_median * np.exp(BOOKING_VALUE_SIGMA**2 / 2)
    roas = ROAS_CENTRE * np.exp(
        ROAS_QUALITY_SPREAD * quality + ROAS_IDIOSYNCRATIC_SPREAD * rng.standard_normal(count)
    )
    persona_value_mean = (value_low + value_high) / 2 * np.exp(BOOKING_VALUE_SIGMA**2 / 2)
    daily_budget = np.maximum(
        50.0,
        np.round(
            BOOKINGS_PER_DAY
            * persona_value_mean
            / BUDGET_ROAS
            * np.exp(0.25 * rng.standard_normal(count))
            / 10.0
        )
        * 10.0,
    )
    utilization_mean = UTILIZATION_MEAN + UTILIZATION_MEAN_SPREAD * rng.standard_normal(count)
    frequency_mean = rng.uniform(1.4, 2.6, size=count)

    segment_index = {segment: code for code, segment in enumerate(USER_SEGMENTS)}
    segment_codes = np.array(
        [[segment_index[s] for s in PERSONAS[p].user_segments] for p in persona], dtype=np.int64
    )

    ids, names, audience_rows = [], [], []
    for number, p in enumerate(persona.tolist(), start=1):
        spec = PERSONAS[p]
        ad_set_id = f"AS_{number:0{id_width}d}"
        qualifier = spec.qualifiers[int(rng.integers(len(spec.qualifiers)))]
        age = spec.ages[int(rng.integers(len(spec.ages)))]
        picked = np.sort(
            rng.choice(len(spec.interests), size=int(rng.integers(3, 5)), replace=False)
        )
        interests = ", ".join(spec.interests[i] for i in picked)
        lookalike = spec.lookalike_sources[int(rng.integers(len(spec.lookalike_sources)))]
        name = f"{qualifier}_{spec.audience}_{age}_{number:0{id_width}d}"
        ids.append(ad_set_id)
        names.append(name)
        audience_rows.append(
            (ad_set_id, name, age, interests, lookalike, money(daily_budget[number - 1]))
        )
    return AdSets(
        ids=ids,
        names=names,
        audience_rows=audience_rows,
        persona=persona,
        daily_budget=daily_budget,
        utilization_mean=utilization_mean,
        cpm=cpm,
        ctr=ctr,
        roas=roas,
        booking_value_median=value_median,
        booking_value_mean=value_mean,
        frequency_mean=frequency_mean,
        segment_codes=segment_codes,
    )


def reference_spend(ad_sets: AdSets) -> np.ndarray:
    """Typical daily spend: the base budget at the ad set's mean utilization."""
    return ad_sets.daily_budget * np.clip(ad_sets.utilization_mean, *UTILIZATION_RANGE)


def make_curves(rng: np.random.Generator, ad_sets: AdSets) -> Curves:
    """Draw shape and saturation; vmax puts the average ROAS at reference spend at the ad set's ROAS.

    With x = reference spend / half_saturation, hill(reference) = vmax * x**shape / (1 + x**shape)
    and the marginal ROAS there is the average times shape / (1 + x**shape).
    """
    count = ad_sets.count
    shape = rng.uniform(*CURVE_SHAPE_RANGE, size=count)
    low, high = np.log(CURVE_SATURATION_RANGE)
    saturation = np.exp(rng.uniform(low, high, size=count))
    steady = np.zeros(count, dtype=bool)
    steady[rng.choice(count, size=int(round(STEADY_SHARE * count)), replace=False)] = True
    reference = reference_spend(ad_sets)
    scaled = saturation**shape
    return Curves(
        vmax=ad_sets.roas * reference * (1.0 + scaled) / scaled,
        half_saturation=reference / saturation,
        shape=shape,
        steady=steady,
    )


CAMPAIGN_SIZES = (1, 4)
"""Ad sets per campaign: each persona's ad sets, in id order, in campaigns of one to four."""
CAMPAIGN_BUDGET_SHARE = 0.3
"""Chance that a campaign of two or more ad sets has a campaign-level budget (CBO)."""


def assign_campaigns(rng: np.random.Generator, ad_sets: AdSets) -> list[tuple[str, str, str]]:
    """Group each persona's ad sets into campaigns; a few of those with two to four ad sets hold
    the budget at campaign level. Drawn from a stream of its own, so nothing else changes."""
    members: list[list[int]] = []
    for persona in range(len(PERSONAS)):
        ad_set_numbers = np.flatnonzero(ad_sets.persona == persona).tolist()
        while ad_set_numbers:
            size = int(rng.integers(CAMPAIGN_SIZES[0], CAMPAIGN_SIZES[1] + 1))
            members.append(ad_set_numbers[:size])
            ad_set_numbers = ad_set_numbers[size:]
    members.sort(key=lambda numbers: numbers[0])
    width = max(3, len(str(len(members))))
    campaigns: list[tuple[str, str, str]] = [("", "", "")] * ad_sets.count
    for number, numbers in enumerate(members, start=1):
        at_campaign = len(numbers) >= 2 and rng.random() < CAMPAIGN_BUDGET_SHARE
        level = "campaign" if at_campaign else "ad_set"
        audience = PERSONAS[int(ad_sets.persona[numbers[0]])].audience
        name = f"{audience}_{'CBO' if at_campaign else 'Prospecting'}_{number:0{width}d}"
        for ad_set in numbers:
            campaigns[ad_set] = (f"CMP_{number:0{width}d}", name, level)
    return campaigns


Generators = tuple[np.random.Generator, np.random.Generator, np.random.Generator]


def make_population(seed: int, ad_sets: int) -> tuple[AdSets, Curves, Generators]:
    """The ad sets and their curves for a seed, and the generators (profile, daily, dirt) the
    rest draws from. The curves and the campaigns have a stream each: the rest is as before."""
    generators = np.random.default_rng(seed).spawn(5)
    profile_rng, daily_rng, dirt_rng, curve_rng, campaign_rng = generators
    population = make_ad_sets(profile_rng, ad_sets)
    population = replace(population, campaigns=assign_campaigns(campaign_rng, population))
    curves = make_curves(curve_rng, population)
    return population, curves, (profile_rng, daily_rng, dirt_rng)


def planted_curves(ad_sets: int, seed: int) -> pd.DataFrame:
    """The response curve each ad set was generated with, for `write_sample_data(ad_sets, seed)`.

    Columns ad_set_id, vmax, half_saturation, shape: the expected booking revenue of a day given
    that day's realised spend s (the file's spend) is exactly
    `vmax * s**shape / (half_saturation**shape + s**shape)`, before noise (Poisson bookings,
    lognormal values, a mean-one drift independent of spend) and before dirt (about 2% of booking
    values blank, exact duplicate events). Independent of the number of days and the start date.
    """
    if ad_sets < 1:
        raise ValueError(f"need at least one ad set, got {ad_sets}")
    population, curves, _ = make_population(seed, ad_sets)
    return pd.DataFrame(
        {
            "ad_set_id": population.ids,
            "vmax": curves.vmax,
            "half_saturation": curves.half_saturation,
            "shape": curves.shape,
        }
    )


def planted_truth(
    ad_sets: int,
    days: int,
    seed: int,
    variant: str = BASELINE,
    start_date: date = date(2024, 8, 1),
) -> pd.DataFrame:
    """The truth for the plan's day (the day after the data ends) of
    `write_sample_data(out, ad_sets, days, seed, start_date, variant)`, one row per ad set.

    vmax, half_saturation, shape: the expected revenue of that day at a spend s held there, before
    the mean-one drift, is `vmax * s**shape / (half_saturation**shape + s**shape)`, with the level
    after any step, the plan day's weekday factor and its season inside vmax (carryover: the
    steady state, spend held at s). capacity: the most the ad set can spend (inf: no cap), so the
    revenue at a budget above it is the curve at the capacity. flat_budget: its planned budget
    never moved (no identifying budget move). first_day: its first row's date.
    """
    if ad_sets < 1 or days < 1:
        raise ValueError(f"need at least one ad set and one day, got {ad_sets} x {days}")
    population, curves, _ = make_population(seed, ad_sets)
    planted = plant(variant, seed, curves, reference_spend(population), days)
    plan_day = start_date + timedelta(days=days)
    level = np.where(days >= planted.step_day, planted.step, 1.0)
    return pd.DataFrame(
        {
            "ad_set_id": population.ids,
            "vmax": curves.vmax * planted.revenue_factor(plan_day, days),
            "half_saturation": curves.half_saturation,
            "shape": curves.shape,
            "level": level,
            "weekday_factor": planted.weekday_revenue[plan_day.weekday()],
            "season": planted.demand(plan_day),
            "carryover": planted.carryover,
            "capacity": planted.capacity,
            "flat_budget": planted.flat,
            "first_day": [start_date + timedelta(days=int(d)) for d in planted.first_day],
        }
    )


def budget_levels(rng: np.random.Generator, count: int) -> np.ndarray:
    low, high = np.log(BUDGET_LEVEL_RANGE)
    return np.exp(rng.uniform(low, high, size=count))


def initial_state(rng: np.random.Generator, curves: Curves) -> DailyState:
    """Start each AR(1) in its stationary distribution, so day one looks like any other day."""
    count = len(curves.shape)
    return DailyState(
        utilization=UTILIZATION_DAILY_SPREAD * rng.standard_normal(count),
        cvr=CVR_DRIFT_SPREAD * rng.standard_normal(count),
        frequency=FREQUENCY_DAILY_SPREAD * rng.standard_normal(count),
        budget_level=np.where(curves.steady, 1.0, budget_levels(rng, count)),
    )


def advance(
    rng: np.random.Generator, state: DailyState, curves: Curves, planted: Planted | None = None
) -> None:
    """Move every AR(1) one day on (persistence keeps yesterday's level, a shock adds news), and
    let the marketer change some budgets: a new level, drawn afresh, for a few non-steady ad sets
    (never for a variant's flat-budget ones)."""
    count = len(state.utilization)
    changed = (rng.random(count) < 1.0 / BUDGET_CHANGE_EVERY_DAYS) & ~curves.steady
    if planted is not None:
        changed &= ~planted.flat
    state.budget_level = np.where(changed, budget_levels(rng, count), state.budget_level)
    for name, persistence, spread in (
        ("utilization", UTILIZATION_PERSISTENCE, UTILIZATION_DAILY_SPREAD),
        ("cvr", CVR_PERSISTENCE, CVR_DRIFT_SPREAD),
        ("frequency", FREQUENCY_PERSISTENCE, FREQUENCY_DAILY_SPREAD),
    ):
        shock = ar1_innovation_spread(spread, persistence) * rng.standard_normal(count)
        setattr(state, name, persistence * getattr(state, name) + shock)


def meta_dirt_plan(rng: np.random.Generator, ad_sets: int, days: int) -> np.ndarray:
    """Which (day, ad set) rows get an extra copy, and of which kind: exact counts, no overlaps."""
    rows = ad_sets * days
    counts = [
        round(rate * rows)
        for rate in (DUPLICATE_ROW_RATE, NEGATIVE_SPEND_COPY_RATE, BLANK_IMPRESSIONS_COPY_RATE)
    ]
    plan = np.full(rows, NO_DIRT, dtype=np.int8)
    chosen = rng.choice(rows, size=sum(counts), replace=False)
    kinds = np.repeat([DUPLICATE_ROW, NEGATIVE_SPEND_COPY, BLANK_IMPRESSIONS_COPY], counts)
    plan[chosen] = kinds
    return plan.reshape(days, ad_sets)


def pacing_status(rng: np.random.Generator, utilization: np.ndarray) -> np.ndarray:
    """Thresholds on a noisy view of utilization: mostly the rule, not always near a boundary."""
    seen = utilization + PACING_NOISE * rng.standard_normal(len(utilization))
    under, over = PACING_THRESHOLDS
    return np.where(seen < under, 0, np.where(seen > over, 2, 1))


@dataclass(frozen=True)
class DayBlock:
    """One day's rows, already formatted, ready for one write per file."""

    performance: str
    performance_rows: int
    pacing: str
    pacing_rows: int
    conversions: str
    conversion_rows: int
    conversion_ids_used: int


def simulate_day(
    rng: np.random.Generator,
    ad_sets: AdSets,
    curves: Curves,
    state: DailyState,
    day: date,
    dirt: np.ndarray,
    first_conversion_number: int,
    conversion_id_width: int,
    planted: Planted | None = None,
    day_number: int = 0,
) -> DayBlock:
    """Spend from budget x utilization, then impressions, clicks, and the conversions the
    planted curve gives that spend; a variant's plant on top (it draws nothing more, so the
    random stream stays the default's)."""
    count = ad_sets.count
    weekday = day.weekday()
    day_text = uk_date(day)

    swing = np.where(curves.steady, STEADY_UTILIZATION_SCALE, 1.0) * state.utilization
    utilization = np.clip(
        ad_sets.utilization_mean + WEEKDAY_UTILIZATION_SHIFT[weekday] + swing,
        *UTILIZATION_RANGE,
    )
    budget = ad_sets.daily_budget * state.budget_level
    if planted is not None:
        budget = budget * planted.demand(day)
    planned = np.round(budget * (1.0 + PLANNED_SPEND_NOISE * rng.standard_normal(count)), 2)
    spend = np.round(planned * utilization, 2)
    active = np.ones(count, dtype=bool)
    if planted is not None:
        spend = np.minimum(spend, planted.capacity)
        active = day_number >= planted.first_day
    reported_utilization = np.round(spend / planned, 2)
    status = pacing_status(rng, reported_utilization)

    cpm_today = ad_sets.cpm * WEEKDAY_CPM[weekday] * np.exp(0.05 * rng.standard_normal(count))
    impressions = np.maximum(np.rint(spend / cpm_today * 1000.0).astype(np.int64), 1)
    clicks = rng.binomial(impressions, np.minimum(ad_sets.ctr * WEEKDAY_CTR[weekday], 1.0))
    frequency = np.clip(ad_sets.frequency_mean + state.frequency, *FREQUENCY_RANGE)

    spend_text = [money(s) for s in spend.tolist()]
    performance_lines = []
    for i, (shown, clicked, freq, spent) in enumerate(
        zip(impressions.tolist(), clicks.tolist(), frequency.tolist(), spend.tolist(), strict=True)
    ):
        if not active[i]:
            continue
        head = f"{day_text},{ad_sets.ids[i]},{ad_sets.names[i]},"
        ctr = clicked / shown * 100.0
        cpm = spent / shown * 1000.0
        tail = f",{clicked},{spend_text[i]},{ctr:.2f},{cpm:.2f},{freq:.2f}{NEWLINE}"
        line = f"{head}{shown}{tail}"
        performance_lines.append(line)
        kind = dirt[i]
        if kind == DUPLICATE_ROW:
            performance_lines.append(line)
        elif kind == NEGATIVE_SPEND_COPY:
            negative_tail = f",{clicked},-{spend_text[i]},{ctr:.2f},{cpm:.2f},{freq:.2f}{NEWLINE}"
            performance_lines.append(f"{head}{shown}{negative_tail}")
        elif kind == BLANK_IMPRESSIONS_COPY:
            performance_lines.append(f"{head}{tail}")

    pacing_lines = [
        f"{day_text},{ad_sets.ids[i]},{money(p)},{spend_text[i]},{u:.2f},"
        f"{PACING_STATUSES[s]}{NEWLINE}"
        for i, (p, u, s) in enumerate(
            zip(planned.tolist(), reported_utilization.tolist(), status.tolist(), strict=True)
        )
        if active[i]
    ]

    expected_revenue = curves.expected_revenue(spend)
    if planted is not None:
        driving = spend
        if planted.carryover:
            carried = spend if state.adstock is None else state.adstock
            state.adstock = planted.carryover * carried + (1.0 - planted.carryover) * spend
            driving = state.adstock
        factor = planted.revenue_factor(day, day_number)
        expected_revenue = np.where(active, curves.expected_revenue(driving) * factor, 0.0)
    baseline_bookings = expected_revenue / ad_sets.booking_value_mean
    drift = np.exp(state.cvr - CVR_DRIFT_SPREAD**2 / 2.0)
    rates = np.zeros((count, len(CONVERSION_TYPES)))
    rates[:, BOOKING] = baseline_bookings * drift
    for name, per_booking in OTHER_EVENTS_PER_BOOKING.items():
        rates[:, CONVERSION_TYPES.index(name)] = baseline_bookings * per_booking
    counts = rng.poisson(rates).ravel()
    total = int(counts.sum())
    ad_set_of = np.repeat(np.repeat(np.arange(count), len(CONVERSION_TYPES)), counts)
    type_of = np.repeat(np.tile(np.arange(len(CONVERSION_TYPES)), count), counts)
    shuffle = rng.permutation(total)
    ad_set_of, type_of = ad_set_of[shuffle], type_of[shuffle]

    is_booking = type_of == BOOKING
    values = np.zeros(total)
    values[is_booking] = ad_sets.booking_value_median[ad_set_of[is_booking]] * np.exp(
        BOOKING_VALUE_SIGMA * rng.standard_normal(int(is_booking.sum()))
    )
    is_registration = type_of == EVENT_REGISTRATION
    values[is_registration] = 5.0 * rng.integers(5, 25, size=int(is_registration.sum()))
    value_text = [money(v) for v in values.tolist()]
    for index in np.flatnonzero(is_booking & (rng.random(total) < BLANK_BOOKING_VALUE_RATE)):
        value_text[index] = ""
    attribution = rng.choice(
        len(ATTRIBUTION_WINDOWS),
        size=total,
        p=[ATTRIBUTION_SHARES[w] for w in ATTRIBUTION_WINDOWS],
    )
    segment = ad_sets.segment_codes[
        ad_set_of, (rng.random(total) < SECONDARY_SEGMENT_SHARE).astype(np.int64)
    ]
    copies = 1 + (rng.random(total) < DUPLICATE_CONVERSION_RATE)

    conversion_lines = []
    for offset, (a, t, w, s, n) in enumerate(
        zip(
            ad_set_of.tolist(),
            type_of.tolist(),
            attribution.tolist(),
            segment.tolist(),
            copies.tolist(),
            strict=True,
        )
    ):
        line = (
            f"CV_{first_conversion_number + offset:0{conversion_id_width}d},{day_text},"
            f"{ad_sets.ids[a]},{CONVERSION_TYPES[t]},{value_text[offset]},"
            f"{ATTRIBUTION_WINDOWS[w]},{USER_SEGMENTS[s]}{NEWLINE}"
        )
        conversion_lines.extend([line] * n)

    return DayBlock(
        performance="".join(performance_lines),
        performance_rows=len(performance_lines),
        pacing="".join(pacing_lines),
        pacing_rows=len(pacing_lines),
        conversions="".join(conversion_lines),
        conversion_rows=len(conversion_lines),
        conversion_ids_used=total,
    )


def open_raw_csv(path: Path, columns: tuple[str, ...]) -> TextIO:
    """UTF-8 with BOM and CRLF, header first: the way the vendor's exports arrive."""
    stream = path.open("w", encoding="utf-8-sig", newline="", buffering=WRITE_BUFFER_BYTES)
    stream.write(",".join(columns) + NEWLINE)
    return stream


def days_from(start_date: date, days: int) -> Iterator[date]:
    return (start_date + timedelta(days=offset) for offset in range(days))


def write_sample_data(
    out_dir: Path,
    ad_sets: int,
    days: int,
    seed: int,
    start_date: date = date(2024, 8, 1),
    variant: str = BASELINE,
) -> dict[str, int]:
    """Write the four raw CSVs into out_dir; returns data rows written per file name. A variant
    other than baseline plants its truth on top (see `planted_truth`)."""
    if ad_sets < 1 or days < 1:
        raise ValueError(f"need at least one ad set and one day, got {ad_sets} x {days}")
    population, curves, (profile_rng, daily_rng, dirt_rng) = make_population(seed, ad_sets)
    planted = (
        None
        if variant == BASELINE
        else plant(variant, seed, curves, reference_spend(population), days)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    state = initial_state(profile_rng, curves)
    dirt = meta_dirt_plan(dirt_rng, ad_sets, days)
    conversion_id_width = max(6, len(str(ad_sets * days * MAX_EVENTS_PER_AD_SET_DAY)))

    with open_raw_csv(out_dir / AUDIENCE_SEGMENTS.file_name, AUDIENCE_SEGMENTS.columns) as stream:
        csv.writer(stream, lineterminator=NEWLINE).writerows(
            row + campaign
            for row, campaign in zip(population.audience_rows, population.campaigns, strict=True)
        )
    rows = {
        AUDIENCE_SEGMENTS.file_name: ad_sets,
        META_CAMPAIGN_PERFORMANCE.file_name: 0,
        BUDGET_PACING.file_name: 0,
        CONVERSION_EVENTS.file_name: 0,
    }
    next_conversion_number = 1
    with (
        open_raw_csv(
            out_dir / META_CAMPAIGN_PERFORMANCE.file_name, META_CAMPAIGN_PERFORMANCE.columns
        ) as performance,
        open_raw_csv(out_dir / BUDGET_PACING.file_name, BUDGET_PACING.columns) as pacing,
        open_raw_csv(out_dir / CONVERSION_EVENTS.file_name, CONVERSION_EVENTS.columns) as events,
    ):
        for day_number, day in enumerate(days_from(start_date, days)):
            if day_number:
                advance(daily_rng, state, curves, planted)
            block = simulate_day(
                daily_rng,
                population,
                curves,
                state,
                day,
                dirt[day_number],
                next_conversion_number,
                conversion_id_width,
                planted,
                day_number,
            )
            performance.write(block.performance)
            pacing.write(block.pacing)
            events.write(block.conversions)
            rows[META_CAMPAIGN_PERFORMANCE.file_name] += block.performance_rows
            rows[BUDGET_PACING.file_name] += block.pacing_rows
            rows[CONVERSION_EVENTS.file_name] += block.conversion_rows
            next_conversion_number += block.conversion_ids_used
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the four CSVs")
    parser.add_argument("--ad-sets", type=int, default=20)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--start-date", type=date.fromisoformat, default=date(2024, 8, 1), help="YYYY-MM-DD"
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default=BASELINE,
        help="plant what real accounts do on top (see planted_truth); baseline: the default world",
    )
    args = parser.parse_args()
    rows = write_sample_data(
        args.out, args.ad_sets, args.days, args.seed, args.start_date, args.variant
    )
    for file_name, count in rows.items():
        print(f"{args.out / file_name}: {count} rows")


if __name__ == "__main__":
    main()
