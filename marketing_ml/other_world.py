"""A second world for the calibration study, built apart from `sample_data`'s: the plan's authors
tuned against that one, so its figures could be the generator agreeing with itself.

The four CSVs follow the same raw contract (sample_data's writers: BOM, CRLF, DD/MM/YYYY, the
vendor's vocabularies; the audience file's personas, without the optional campaign columns, so
every budget is an ad set's), but the world behind them is another model:
- response: expected booking revenue is `ceiling * (1 - exp(-spend / scale))` (exponential
  saturation, not Hill), times a conversion level that follows a random walk (a martingale, not a
  mean-reverting AR(1)): tomorrow's expected level is today's;
- noise: bookings negative binomial (overdispersed, size 4), booking values gamma (shape 2);
- budgets chase performance: once a week, on its own weekday, an ad set's budget goes up 20% when
  its last seven days' ROAS beat 4.0 and down 20% when it fell below 3.0 (revenue noise and the
  conversion walk move budgets: a confounder), now and then a marketer tries a new level, and 15%
  of ad sets are never touched;
- delivery: spend is budget times a daily utilization, no carried-over pacing state.

Settings (`--setting`): `plain` is that world; `soft_cap` adds a soft delivery cap for 30% of ad
sets (spend = cap * tanh(budget * utilization / cap): more budget buys less and less spend, and
never more than the cap); `messy` adds pauses (20% of ad sets stop spending for 4-12 days with
their budget still set) and a level shift (25% of ad sets earn x0.55 or x1.6 per pound from a day
30-100 days before the end). Every setting plants exact duplicate performance rows (0.2%), which
collapse; nothing it writes is meant for the quarantine.

`write_other_world` returns the truth for the plan's day (the day after the data) in the shape the
study scores (`marketing_ml.simulation`): family `exponential` with ceiling and scale (level after
any shift and the conversion walk's last state inside the ceiling), capacity (the soft cap: no
budget spends beyond it), flat_budget (its planned budget never moved) and first_day.
"""

import argparse
import csv
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

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
    REQUIRED_RAW_FILES,
)
from marketing_ml.sample_data import (
    ATTRIBUTION_SHARES,
    BOOKING,
    EVENT_REGISTRATION,
    NEWLINE,
    OTHER_EVENTS_PER_BOOKING,
    SECONDARY_SEGMENT_SHARE,
    USER_SEGMENTS,
    AdSets,
    days_from,
    make_ad_sets,
    money,
    open_raw_csv,
    pacing_status,
    uk_date,
)

SETTINGS = ("plain", "soft_cap", "messy")
WORLD_KEY = 2
"""Mixed into the seed: this world's streams are not sample_data's for the same seed."""

ROAS_AT_REFERENCE = (4.2, 0.35)
"""Average ROAS at an ad set's reference spend: median and log spread."""
SATURATION_RANGE = (0.2, 2.5)
"""Reference spend / scale, log-uniform: marginal over average ROAS at reference from 0.90 to 0.22."""
UTILIZATION_MEAN, UTILIZATION_MEAN_SPREAD, UTILIZATION_MEAN_RANGE = 0.95, 0.08, (0.6, 1.2)
UTILIZATION_DAILY_LOG_SPREAD = 0.06
"""Utilization swings around the ad set's mean independently day to day (no pacing state)."""
START_LEVEL_RANGE = (0.7, 1.4)
CHASE_UP_ROAS, CHASE_DOWN_ROAS, CHASE_STEP = 4.0, 3.0, 0.2
LEVEL_RANGE = (0.35, 3.0)
"""A budget's multiple of the audience file's daily budget stays within this range."""
MANUAL_CHANGE_EVERY_DAYS = 30
MANUAL_CHANGE_RANGE = (0.75, 1.35)
UNTOUCHED_SHARE = 0.15
CONVERSION_WALK_SPREAD = 0.012
BOOKINGS_SIZE = 4.0
"""Negative binomial size: variance = mean + mean**2 / 4."""
BOOKING_VALUE_SHAPE = 2.0
SOFT_CAP_SHARE = 0.3
SOFT_CAP_RANGE = (1.0, 1.5)
"""The cap as a multiple of reference spend."""
PAUSED_SHARE = 0.2
PAUSE_DAYS = (4, 12)
PAUSE_CLEAR_OF_END_DAYS = 10
SHIFTED_SHARE = 0.25
SHIFT_FACTORS = (0.55, 1.6)
SHIFT_DAYS_BEFORE_END = (30, 100)
DUPLICATE_ROW_RATE = 0.002


@dataclass(frozen=True)
class World:
    """Per ad set: the curve, its delivery and what a setting plants (neutral where untouched)."""

    ceiling: np.ndarray
    scale: np.ndarray
    utilization_mean: np.ndarray
    review_weekday: np.ndarray
    untouched: np.ndarray
    soft_cap: np.ndarray
    """inf: no cap."""
    pause_start: np.ndarray
    pause_end: np.ndarray
    """Day numbers [start, end) of a pause; equal where none."""
    shift_day: np.ndarray
    shift: np.ndarray

    def expected_revenue(self, spend: np.ndarray) -> np.ndarray:
        return self.ceiling * -np.expm1(-spend / self.scale)


def make_world(
    rng: np.random.Generator, daily_budget: np.ndarray, setting: str, days: int
) -> World:
    count = len(daily_budget)
    utilization_mean = np.clip(
        UTILIZATION_MEAN + UTILIZATION_MEAN_SPREAD * rng.standard_normal(count),
        *UTILIZATION_MEAN_RANGE,
    )
    reference = daily_budget * utilization_mean
    roas = ROAS_AT_REFERENCE[0] * np.exp(ROAS_AT_REFERENCE[1] * rng.standard_normal(count))
    saturation = np.exp(rng.uniform(*np.log(SATURATION_RANGE), size=count))
    untouched = rng.random(count) < UNTOUCHED_SHARE

    def chosen(share: float) -> np.ndarray:
        picked = np.zeros(count, dtype=bool)
        picked[rng.choice(count, size=int(round(share * count)), replace=False)] = True
        return picked

    soft_cap = np.full(count, np.inf)
    pause_start = np.zeros(count, dtype=np.int64)
    pause_end = np.zeros(count, dtype=np.int64)
    shift_day = np.full(count, days, dtype=np.int64)
    shift = np.ones(count)
    if setting == "soft_cap":
        capped = chosen(SOFT_CAP_SHARE)
        soft_cap[capped] = (rng.uniform(*SOFT_CAP_RANGE, size=count) * reference)[capped]
    elif setting == "messy":
        paused = chosen(PAUSED_SHARE)
        length = rng.integers(PAUSE_DAYS[0], PAUSE_DAYS[1] + 1, size=count)
        latest = max(days - PAUSE_CLEAR_OF_END_DAYS - PAUSE_DAYS[1], 1)
        start = rng.integers(0, latest, size=count)
        pause_start[paused], pause_end[paused] = start[paused], (start + length)[paused]
        shifted = chosen(SHIFTED_SHARE)
        before_end = rng.integers(SHIFT_DAYS_BEFORE_END[0], SHIFT_DAYS_BEFORE_END[1] + 1, count)
        shift_day[shifted] = np.maximum(days - before_end, 1)[shifted]
        shift[shifted] = rng.permutation(np.resize(SHIFT_FACTORS, int(shifted.sum())))
    elif setting != "plain":
        raise ValueError(f"setting {setting!r}: choose one of {', '.join(SETTINGS)}")
    return World(
        ceiling=roas * reference / -np.expm1(-saturation),
        scale=reference / saturation,
        utilization_mean=utilization_mean,
        review_weekday=rng.integers(0, 7, size=count),
        untouched=untouched,
        soft_cap=soft_cap,
        pause_start=pause_start,
        pause_end=pause_end,
        shift_day=shift_day,
        shift=shift,
    )


def chase(
    rng: np.random.Generator,
    world: World,
    level: np.ndarray,
    day_number: int,
    spend_week: np.ndarray,
    revenue_week: np.ndarray,
) -> np.ndarray:
    """Tomorrow's budget levels: the weekly rule on last week's ROAS, and a marketer's occasional
    new level; never for an untouched ad set."""
    count = len(level)
    roas = np.divide(revenue_week, spend_week, out=np.full(count, np.nan), where=spend_week > 0)
    review = (day_number % 7 == world.review_weekday) & (day_number >= 7)
    factor = np.where(review & (roas > CHASE_UP_ROAS), 1.0 + CHASE_STEP, 1.0)
    factor = np.where(review & (roas < CHASE_DOWN_ROAS), 1.0 - CHASE_STEP, factor)
    manual = rng.random(count) < 1.0 / MANUAL_CHANGE_EVERY_DAYS
    factor = np.where(manual, rng.uniform(*MANUAL_CHANGE_RANGE, size=count), factor)
    return np.where(world.untouched, level, np.clip(level * factor, *LEVEL_RANGE))


def simulate(
    ad_sets: int, days: int, seed: int, setting: str, start_date: date, streams: dict | None
) -> pd.DataFrame:
    """Run the world day by day, writing each day's rows to `streams` (file name -> open raw
    CSV) when given; the truth for the day after the last."""
    if ad_sets < 1 or days < 1:
        raise ValueError(f"need at least one ad set and one day, got {ad_sets} x {days}")
    seeds = np.random.default_rng([seed, WORLD_KEY]).spawn(4)
    profile_rng, world_rng, daily_rng, event_rng = seeds
    population = make_ad_sets(profile_rng, ad_sets)
    world = make_world(world_rng, population.daily_budget, setting, days)
    if streams is not None:
        writer = csv.writer(streams[AUDIENCE_SEGMENTS.file_name], lineterminator=NEWLINE)
        writer.writerows(population.audience_rows)
    level = np.exp(daily_rng.uniform(*np.log(START_LEVEL_RANGE), size=ad_sets))
    first_level = level.copy()
    moved = np.zeros(ad_sets, dtype=bool)
    conversion_level = np.zeros(ad_sets)
    capped = np.isfinite(world.soft_cap)
    cap = np.where(capped, world.soft_cap, 1.0)
    spend_days, revenue_days = [], []
    next_conversion = 1
    for day_number, day in enumerate(days_from(start_date, days)):
        if day_number:
            week_spend = np.sum(spend_days[-7:], axis=0)
            week_revenue = np.sum(revenue_days[-7:], axis=0)
            level = chase(daily_rng, world, level, day_number, week_spend, week_revenue)
            moved |= ~np.isclose(level, first_level)
            walk = CONVERSION_WALK_SPREAD * daily_rng.standard_normal(ad_sets)
            conversion_level += walk - CONVERSION_WALK_SPREAD**2 / 2.0
        planned = np.round(population.daily_budget * level, 2)
        utilization = world.utilization_mean * np.exp(
            UTILIZATION_DAILY_LOG_SPREAD * daily_rng.standard_normal(ad_sets)
        )
        asked = planned * utilization
        delivered = np.where(capped, cap * np.tanh(asked / cap), asked)
        paused = (day_number >= world.pause_start) & (day_number < world.pause_end)
        spend = np.where(paused, 0.0, np.round(delivered, 2))
        per_pound = np.where(day_number >= world.shift_day, world.shift, 1.0)
        expected = world.expected_revenue(spend) * per_pound * np.exp(conversion_level)
        rows = day_rows(event_rng, population, day, planned, spend, expected, next_conversion)
        revenue_days.append(rows.booking_revenue)
        spend_days.append(spend)
        next_conversion += rows.events
        if streams is not None:
            streams[META_CAMPAIGN_PERFORMANCE.file_name].write(rows.performance)
            streams[BUDGET_PACING.file_name].write(rows.pacing)
            streams[CONVERSION_EVENTS.file_name].write(rows.conversions)
    shift_now = np.where(days >= world.shift_day, world.shift, 1.0)
    return pd.DataFrame(
        {
            "ad_set_id": population.ids,
            "family": "exponential",
            "ceiling": world.ceiling * shift_now * np.exp(conversion_level),
            "scale": world.scale,
            "capacity": world.soft_cap,
            "flat_budget": ~moved,
            "first_day": start_date,
        }
    )


@dataclass(frozen=True)
class DayRows:
    """One day's formatted rows per file, and the booking revenue each ad set saw."""

    performance: str
    pacing: str
    conversions: str
    events: int
    booking_revenue: np.ndarray


def day_rows(
    rng: np.random.Generator,
    population: AdSets,
    day: date,
    planned: np.ndarray,
    spend: np.ndarray,
    expected_revenue: np.ndarray,
    first_conversion: int,
) -> DayRows:
    """Delivery, the pacing file, and conversions whose bookings (negative binomial counts, gamma
    values) have expected revenue `expected_revenue`; the other conversion types are Poisson."""
    count = len(spend)
    day_text = uk_date(day)
    cpm = population.cpm * np.exp(0.07 * rng.standard_normal(count))
    impressions = np.rint(spend / cpm * 1000.0).astype(np.int64)
    clicks = rng.binomial(impressions, np.minimum(population.ctr, 1.0))
    frequency = np.clip(population.frequency_mean * np.exp(0.1 * rng.standard_normal(count)), 1, 4)
    copies = 1 + (rng.random(count) < DUPLICATE_ROW_RATE)
    shown = np.maximum(impressions, 1)
    ctr = np.where(impressions > 0, clicks / shown * 100.0, 0.0)
    cpm_paid = np.where(impressions > 0, spend / shown * 1000.0, 0.0)
    performance = "".join(
        f"{day_text},{population.ids[i]},{population.names[i]},{impressions[i]},{clicks[i]},"
        f"{money(spend[i])},{ctr[i]:.2f},{cpm_paid[i]:.2f},{frequency[i]:.2f}{NEWLINE}" * copies[i]
        for i in range(count)
    )
    utilization = np.round(spend / planned, 2)
    status = pacing_status(rng, utilization)
    pacing = "".join(
        f"{day_text},{population.ids[i]},{money(planned[i])},{money(spend[i])},"
        f"{utilization[i]:.2f},{PACING_STATUSES[status[i]]}{NEWLINE}"
        for i in range(count)
    )

    mean_bookings = expected_revenue / population.booking_value_mean
    rates = np.zeros((count, len(CONVERSION_TYPES)))
    for name, per_booking in OTHER_EVENTS_PER_BOOKING.items():
        rates[:, CONVERSION_TYPES.index(name)] = mean_bookings * per_booking
    counts = rng.poisson(rates)
    counts[:, BOOKING] = rng.negative_binomial(
        BOOKINGS_SIZE, BOOKINGS_SIZE / (BOOKINGS_SIZE + mean_bookings)
    )
    ad_set_of = np.repeat(np.repeat(np.arange(count), len(CONVERSION_TYPES)), counts.ravel())
    type_of = np.repeat(np.tile(np.arange(len(CONVERSION_TYPES)), count), counts.ravel())
    shuffle = rng.permutation(len(ad_set_of))
    ad_set_of, type_of = ad_set_of[shuffle], type_of[shuffle]
    is_booking = type_of == BOOKING
    values = np.zeros(len(ad_set_of))
    mean_value = population.booking_value_mean[ad_set_of[is_booking]]
    values[is_booking] = rng.gamma(BOOKING_VALUE_SHAPE, mean_value / BOOKING_VALUE_SHAPE)
    is_registration = type_of == EVENT_REGISTRATION
    values[is_registration] = 5.0 * rng.integers(5, 25, size=int(is_registration.sum()))
    attribution = rng.choice(
        len(ATTRIBUTION_WINDOWS),
        size=len(ad_set_of),
        p=[ATTRIBUTION_SHARES[w] for w in ATTRIBUTION_WINDOWS],
    )
    segment = population.segment_codes[
        ad_set_of, (rng.random(len(ad_set_of)) < SECONDARY_SEGMENT_SHARE).astype(np.int64)
    ]
    conversions = "".join(
        f"CW_{first_conversion + offset:09d},{day_text},{population.ids[a]},"
        f"{CONVERSION_TYPES[t]},{money(v)},{ATTRIBUTION_WINDOWS[w]},{USER_SEGMENTS[g]}{NEWLINE}"
        for offset, (a, t, v, w, g) in enumerate(
            zip(
                ad_set_of.tolist(),
                type_of.tolist(),
                values.tolist(),
                attribution.tolist(),
                segment.tolist(),
                strict=True,
            )
        )
    )
    revenue = np.bincount(ad_set_of[is_booking], weights=values[is_booking], minlength=count)
    return DayRows(performance, pacing, conversions, len(ad_set_of), revenue)


def write_other_world(
    out_dir: Path,
    ad_sets: int,
    days: int,
    seed: int,
    setting: str = "plain",
    start_date: date = date(2024, 8, 1),
) -> pd.DataFrame:
    """Write the four raw CSVs into out_dir; the truth for the plan's day (see the module)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        streams = {
            raw_file.file_name: stack.enter_context(
                open_raw_csv(out_dir / raw_file.file_name, raw_file.header_columns)
            )
            for raw_file in REQUIRED_RAW_FILES
        }
        return simulate(ad_sets, days, seed, setting, start_date, streams)


def other_world_truth(
    ad_sets: int, days: int, seed: int, setting: str = "plain", start_date: date = date(2024, 8, 1)
) -> pd.DataFrame:
    """The truth `write_other_world` returns, without writing the files."""
    return simulate(ad_sets, days, seed, setting, start_date, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the four CSVs")
    parser.add_argument("--ad-sets", type=int, default=20)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--setting", choices=SETTINGS, default="plain")
    args = parser.parse_args()
    truth = write_other_world(args.out, args.ad_sets, args.days, args.seed, args.setting)
    print(f"{args.out}: {len(truth)} ad sets x {args.days} days, setting {args.setting}")


if __name__ == "__main__":
    main()
