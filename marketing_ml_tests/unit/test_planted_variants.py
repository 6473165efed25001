"""Each generator variant plants what it says, its truth describes it, and the default is as was."""

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ml.contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
)
from marketing_ml.sample_data import (
    LEVEL_STEP_DAYS_BEFORE_END,
    VARIANTS,
    WEEKDAY_REVENUE,
    planted_curves,
    planted_truth,
    write_sample_data,
)

AD_SETS, DAYS, SEED = 30, 150, 4
START = date(2024, 8, 1)
DEFAULT_SAMPLE_SHA256 = "5cc04f83f9dbb73f41b3ed90541f2e8974e2bfee2ebde6d355f66c22cda70c02"
"""The four files of write_sample_data(out, 7, 45, 3) before the variants existed."""


def without_campaign_columns(audience: bytes) -> bytes:
    """The audience file as it was before its optional campaign columns (its last three; no
    campaign field holds a comma or a quote)."""
    optional = len(AUDIENCE_SEGMENTS.optional_columns)
    assert AUDIENCE_SEGMENTS.columns[-optional:] == AUDIENCE_SEGMENTS.optional_columns
    lines = audience.split(b"\r\n")
    return b"\r\n".join(line.rsplit(b",", optional)[0] if line else line for line in lines)


def files_digest(directory: Path) -> str:
    """The four files' digest, the audience file's campaign columns left out: they came after
    the pinned digest, from a stream of their own, and every other byte must be as it was."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode())
        content = path.read_bytes()
        if path.name == AUDIENCE_SEGMENTS.file_name:
            content = without_campaign_columns(content)
        digest.update(content)
    return digest.hexdigest()


def daily_rows(directory: Path) -> pd.DataFrame:
    """One row per ad set and day: planned and actual spend, and booking revenue (blank = 0)."""
    pacing = pd.read_csv(directory / BUDGET_PACING.file_name, encoding="utf-8-sig")
    events = pd.read_csv(directory / CONVERSION_EVENTS.file_name, encoding="utf-8-sig")
    bookings = events[events.conversion_type == "booking_completed"].drop_duplicates()
    revenue = bookings.groupby(["ad_set_id", "date"])["value"].sum().rename("revenue")
    days = pacing.join(revenue, on=["ad_set_id", "date"]).fillna({"revenue": 0.0})
    days["day"] = pd.to_datetime(days["date"], format="%d/%m/%Y")
    return days


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    frames = {}
    for variant in VARIANTS:
        directory = tmp_path_factory.mktemp(variant)
        write_sample_data(directory, AD_SETS, DAYS, SEED, START, variant)
        frames[variant] = daily_rows(directory)
    return frames


def truth(variant: str) -> pd.DataFrame:
    return planted_truth(AD_SETS, DAYS, SEED, variant, START).set_index("ad_set_id")


def test_default_sample_is_byte_for_byte_what_it_was(tmp_path: Path):
    write_sample_data(tmp_path / "default", 7, 45, 3)
    write_sample_data(tmp_path / "baseline", 7, 45, 3, variant="baseline")
    assert files_digest(tmp_path / "default") == DEFAULT_SAMPLE_SHA256
    assert files_digest(tmp_path / "baseline") == DEFAULT_SAMPLE_SHA256


def test_delivery_cap_spend_never_exceeds_the_cap_and_reaches_it(samples):
    capacity = truth("delivery_cap")["capacity"]
    capped = capacity[np.isfinite(capacity)]
    assert 5 <= len(capped) <= 12
    days = samples["delivery_cap"]
    spend = days[days.ad_set_id.isin(capped.index)]
    assert (spend.actual_spend <= spend.ad_set_id.map(capped) + 0.005).all()
    at_cap = spend.actual_spend >= spend.ad_set_id.map(capped) - 0.005
    assert at_cap.groupby(spend.ad_set_id).sum().median() >= 10
    assert (spend.planned_spend > spend.ad_set_id.map(capped) * 1.1).any()


def test_level_step_moves_revenue_per_pound_by_its_factor_from_its_day(samples):
    """Revenue over the planted curve at the day's spend, after the step day over before: the
    step's factor for stepped ad sets (the drift's noise aside), one for the others."""
    planted = truth("level_step")
    assert sorted(planted["level"].value_counts().items()) == [(0.5, 4), (1.0, 22), (1.7, 4)]
    days = samples["level_step"].copy()
    curve = planted_curves(AD_SETS, SEED).set_index("ad_set_id").loc[days.ad_set_id]
    scaled = days.actual_spend.to_numpy() ** curve["shape"].to_numpy()
    days["curve"] = (
        curve.vmax.to_numpy()
        * scaled
        / (curve.half_saturation.to_numpy() ** curve["shape"].to_numpy() + scaled)
    )
    days["after"] = days.day >= pd.Timestamp(
        START + timedelta(days=DAYS - LEVEL_STEP_DAYS_BEFORE_END)
    )
    sums = days.groupby(["ad_set_id", "after"])[["revenue", "curve"]].sum()
    per_curve = (sums.revenue / sums.curve).unstack()
    moved = (per_curve[True] / per_curve[False]) / planted["level"]
    stepped = planted["level"] != 1.0
    assert moved[stepped].median() == pytest.approx(1.0, abs=0.15)
    assert moved[~stepped].median() == pytest.approx(1.0, abs=0.1)
    assert (moved[planted["level"] == 0.5] * 0.5).max() < 0.75


def test_flat_budget_ad_sets_planned_budget_never_moves(samples):
    planted = truth("flat_budget")
    flat = planted.index[planted["flat_budget"]]
    assert len(flat) >= 8
    days = samples["flat_budget"]
    weekly = days.groupby(["ad_set_id", days.day.dt.isocalendar().week]).planned_spend.mean()
    spread = weekly.groupby(level=0).agg(lambda w: w.std() / w.mean())
    assert spread[flat].max() < 0.02
    assert spread.drop(flat).median() > 0.1
    utilization = days.actual_spend / days.planned_spend
    assert utilization[days.ad_set_id.isin(flat)].std() > 0.05


def test_new_ad_sets_have_no_rows_before_their_first_day(samples, tmp_path: Path):
    planted = truth("new_ad_sets")
    late = planted[planted["first_day"] > START]
    assert len(late) == round(0.2 * AD_SETS)
    days = samples["new_ad_sets"]
    first_seen = days.groupby("ad_set_id").day.min()
    assert (first_seen[late.index] == pd.to_datetime(late["first_day"])).all()
    write_sample_data(tmp_path, AD_SETS, DAYS, SEED, START, "new_ad_sets")
    performance = pd.read_csv(tmp_path / META_CAMPAIGN_PERFORMANCE.file_name, encoding="utf-8-sig")
    events = pd.read_csv(tmp_path / CONVERSION_EVENTS.file_name, encoding="utf-8-sig")
    for frame in (performance, events):
        seen = pd.to_datetime(frame.date, format="%d/%m/%Y").groupby(frame.ad_set_id).min()
        assert (seen[late.index] >= pd.to_datetime(late["first_day"])).all()


def test_weekday_variant_lifts_revenue_per_pound_by_its_weekday_factor(samples):
    def per_pound_by_weekday(frame):
        grouped = frame.groupby(frame.day.dt.weekday)
        return grouped.revenue.sum() / grouped.actual_spend.sum()

    ratio = per_pound_by_weekday(samples["weekday"]) / per_pound_by_weekday(samples["baseline"])
    assert np.allclose(ratio.to_numpy(), WEEKDAY_REVENUE, rtol=0.06)
    plan_day = START + timedelta(days=DAYS)
    assert (truth("weekday")["weekday_factor"] == WEEKDAY_REVENUE[plan_day.weekday()]).all()


def test_seasonal_demand_budgets_follow_demand_and_truth_prices_the_plan_day(samples):
    """The steady ad sets' budgets never change by hand: their planned spend is the base budget
    times the day's demand (2% noise aside)."""
    days = samples["seasonal_demand"]
    steady = truth("baseline").index[truth("baseline")["flat_budget"]]
    rows = days[days.ad_set_id.isin(steady)]
    demand = 1 + 0.3 * np.cos(2 * np.pi * (rows.day.dt.dayofyear - 196) / 365.25)
    per_demand = (rows.planned_spend / demand).groupby(rows.ad_set_id)
    assert (per_demand.std() / per_demand.mean()).max() < 0.03
    assert demand.max() / demand.min() > 1.5
    planted = truth("seasonal_demand")
    assert not planted["flat_budget"].any()
    assert (planted["vmax"] / truth("baseline")["vmax"]).to_numpy() == pytest.approx(
        planted["season"].to_numpy()
    )


def test_carryover_revenue_follows_yesterdays_spend(samples):
    """With theta 0.6 today's revenue leans on yesterday's spend; in the default it does not."""

    def lag_effect(frame):
        frame = frame.sort_values(["ad_set_id", "day"]).copy()
        frame["yesterday"] = frame.groupby("ad_set_id").actual_spend.shift()
        frame = frame.dropna()
        per_ad_set = frame.groupby("ad_set_id")
        residual = frame.revenue / per_ad_set.revenue.transform("mean")
        lagged = frame.yesterday / per_ad_set.yesterday.transform("mean")
        today = frame.actual_spend / per_ad_set.actual_spend.transform("mean")
        design = np.column_stack([np.ones(len(frame)), today - 1, lagged - 1])
        return np.linalg.lstsq(design, residual, rcond=None)[0]

    _, today, yesterday = lag_effect(samples["carryover"])
    _, base_today, base_yesterday = lag_effect(samples["baseline"])
    assert yesterday > 0.15 and yesterday > base_yesterday + 0.1
    assert today < base_today
