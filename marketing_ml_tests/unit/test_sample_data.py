"""The generator writes the vendor's exact raw format, reproducibly, with learnable labels."""

import re
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_ml import sample_data
from marketing_ml.contract import (
    ATTRIBUTION_WINDOWS,
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    CONVERSION_TYPES,
    EXPERIMENTS,
    META_CAMPAIGN_PERFORMANCE,
    PACING_STATUSES,
    REQUIRED_RAW_FILES,
    is_hidden_character,
)
from marketing_ml.sample_data import planted_curves, write_sample_data

SEED_USER_SEGMENTS = {
    "premium_leisure",
    "premium_business",
    "family_leisure",
    "business_travel",
    "budget_adventure",
    "luxury_leisure",
    "luxury_business",
    "senior_leisure",
}
MONEY = re.compile(r"^\d+\.\d{2}$")


def read_raw(directory: Path, file_name: str) -> pd.DataFrame:
    """Every field as the text written, blanks kept as empty strings."""
    return pd.read_csv(
        directory / file_name, encoding="utf-8-sig", dtype=str, keep_default_na=False
    )


def valid_performance(performance: pd.DataFrame) -> pd.DataFrame:
    corrupt = performance.impressions.eq("") | performance.spend.str.startswith("-")
    return performance[~corrupt].drop_duplicates()


@pytest.fixture(scope="module")
def dirty_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 x 60 is the smallest size the contract's dirt rates are sure to show up in."""
    directory = tmp_path_factory.mktemp("dirty")
    write_sample_data(directory, ad_sets=50, days=60, seed=11)
    return directory


@pytest.fixture(scope="module")
def label_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("labels")
    write_sample_data(directory, ad_sets=40, days=120, seed=5)
    return directory


@pytest.fixture(scope="module")
def curve_days(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A year of 40 ad sets, one row per ad set and day: spend, planned spend, booking revenue
    (exact duplicate events dropped, blank values as 0) and the planted curve at that spend."""
    directory = tmp_path_factory.mktemp("curves")
    write_sample_data(directory, ad_sets=40, days=365, seed=8)
    performance = valid_performance(read_raw(directory, META_CAMPAIGN_PERFORMANCE.file_name))
    pacing = read_raw(directory, BUDGET_PACING.file_name)
    conversions = read_raw(directory, CONVERSION_EVENTS.file_name).drop_duplicates()
    bookings = conversions[conversions.conversion_type == "booking_completed"]
    revenue = (
        pd.to_numeric(bookings.value, errors="coerce")
        .fillna(0.0)
        .groupby([bookings.ad_set_id, bookings.date])
        .sum()
        .rename("revenue")
    )
    daily = (
        performance.merge(pacing, on=["date", "ad_set_id"], validate="one_to_one")
        .astype({"spend": float, "planned_spend": float})
        .set_index(["ad_set_id", "date"])[["spend", "planned_spend"]]
        .join(revenue)
        .fillna({"revenue": 0.0})
        .reset_index()
    )
    daily["day"] = pd.to_datetime(daily.date, format="%d/%m/%Y")
    curves = planted_curves(40, 8).set_index("ad_set_id")
    daily = daily.join(curves, on="ad_set_id").sort_values(["ad_set_id", "day"])
    daily["hill"] = hill(daily.spend, daily.vmax, daily.half_saturation, daily["shape"])
    return daily.reset_index(drop=True)


def hill(spend, vmax, half_saturation, shape):
    return vmax * spend**shape / (half_saturation**shape + spend**shape)


def spend_variation(daily: pd.DataFrame) -> pd.Series:
    by_ad_set = daily.groupby("ad_set_id").spend
    return by_ad_set.std() / by_ad_set.mean()


REALISED_SHARE = 1.0 - sample_data.BLANK_BOOKING_VALUE_RATE
"""Blank booking values (dirt) leave out about 2% of the planted revenue."""


def test_planted_curves_are_deterministic_concave_and_name_every_ad_set(tmp_path: Path) -> None:
    curves = planted_curves(30, 4)
    assert list(curves.columns) == ["ad_set_id", "vmax", "half_saturation", "shape"]
    write_sample_data(tmp_path, ad_sets=30, days=2, seed=4)
    assert list(curves.ad_set_id) == list(read_raw(tmp_path, AUDIENCE_SEGMENTS.file_name).ad_set_id)
    pd.testing.assert_frame_equal(curves, planted_curves(30, 4))
    assert not np.allclose(curves.vmax, planted_curves(30, 5).vmax)
    low, high = sample_data.CURVE_SHAPE_RANGE
    assert curves["shape"].between(low, high).all() and high <= 1.0
    assert (curves.vmax > 0).all() and (curves.half_saturation > 0).all()
    with pytest.raises(ValueError):
        planted_curves(0, 4)


def test_planted_curves_are_exactly_the_curves_the_generator_draws_bookings_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = []
    original = sample_data.Curves.expected_revenue

    def recording(curves: sample_data.Curves, spend: np.ndarray) -> np.ndarray:
        used.append(curves)
        return original(curves, spend)

    monkeypatch.setattr(sample_data.Curves, "expected_revenue", recording)
    write_sample_data(tmp_path, ad_sets=9, days=3, seed=6)
    assert len(used) == 3 and all(curves is used[0] for curves in used)
    truth = planted_curves(9, 6)
    for column in ("vmax", "half_saturation", "shape"):
        assert np.array_equal(truth[column].to_numpy(), getattr(used[0], column)), column


def test_expected_revenue_given_spend_is_the_planted_curve(curve_days: pd.DataFrame) -> None:
    """Honest planting: revenue / curve is flat across spend (a linear truth would rise with it);
    each ad set's daily revenue regressed on its curve has slope ~1, and its spend-bucket means
    lie on the curve."""
    overall = curve_days.revenue.sum() / curve_days.hill.sum()
    assert abs(overall - REALISED_SHARE) < 0.02

    relative = curve_days.spend / curve_days.groupby("ad_set_id").spend.transform("median")
    bucket = pd.cut(relative, [0, 0.7, 0.9, 1.1, 1.3, np.inf])
    by_bucket = curve_days.groupby(bucket, observed=True)[["revenue", "hill", "spend"]].sum()
    ratio = by_bucket.revenue / by_bucket.hill
    assert len(by_bucket) == 5
    assert (ratio - REALISED_SHARE).abs().max() < 0.04, ratio
    roas = by_bucket.revenue / by_bucket.spend
    assert roas.is_monotonic_decreasing and roas.iloc[0] > 1.3 * roas.iloc[-1], roas

    def fit(days: pd.DataFrame) -> pd.Series:
        slope = (days.revenue * days.hill).sum() / (days.hill**2).sum()
        deciles = days.groupby(pd.qcut(days.spend, 10, labels=False))[["revenue", "hill"]].mean()
        bucket_slope = (deciles.revenue * deciles.hill).sum() / (deciles.hill**2).sum()
        residual = deciles.revenue - bucket_slope * deciles.hill
        spread = deciles.revenue - deciles.revenue.mean()
        return pd.Series({"slope": slope, "r2": 1 - (residual**2).sum() / (spread**2).sum()})

    fits = curve_days.groupby("ad_set_id")[["spend", "revenue", "hill"]].apply(fit)
    assert abs(fits.slope.median() - REALISED_SHARE) < 0.03
    assert fits.slope.between(0.85, 1.15).mean() >= 0.9
    varied = spend_variation(curve_days) > 0.15
    assert fits.r2[varied].median() > 0.5


def test_marginal_roas_differs_between_ad_sets_and_average_roas_stays_near_4(
    curve_days: pd.DataFrame,
) -> None:
    """At each ad set's typical spend some curves are saturated (marginal well below average) and
    some have room to grow; the ad sets' median ROAS is about the design's 4."""
    typical = curve_days.groupby("ad_set_id").agg(
        spend=("spend", "median"),
        vmax=("vmax", "first"),
        half_saturation=("half_saturation", "first"),
        shape=("shape", "first"),
    )
    average = hill(typical.spend, typical.vmax, typical.half_saturation, typical["shape"])
    average /= typical.spend
    scaled = (typical.spend / typical.half_saturation) ** typical["shape"]
    marginal_share = typical["shape"] / (1.0 + scaled)  # marginal ROAS / average ROAS
    assert (marginal_share < 0.35).sum() >= 5 and (marginal_share > 0.6).sum() >= 5
    marginal = average * marginal_share
    assert marginal.max() > 3 * marginal.min()
    realised = curve_days.groupby("ad_set_id")[["revenue", "spend"]].sum()
    assert 3.5 < (realised.revenue / realised.spend).median() < 4.5
    assert 1500 < typical.spend.median() < 2500  # about £2k a day


def test_spend_moves_with_budget_steps_and_pacing_swings_but_a_few_ad_sets_stay_steady(
    curve_days: pd.DataFrame,
) -> None:
    variation = spend_variation(curve_days)
    steady = variation < 0.08
    assert 1 <= steady.sum() <= 0.15 * len(variation)
    assert (variation > 0.15).mean() >= 0.8
    step = np.log(curve_days.planned_spend).groupby(curve_days.ad_set_id).diff().abs() > 0.15
    budget_changes = step.groupby(curve_days.ad_set_id).sum()
    assert (budget_changes[~steady] >= 5).mean() >= 0.9  # every few weeks over a year
    assert (budget_changes[steady] <= 1).all()
    assert (budget_changes[~steady] <= 40).all()


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    write_sample_data(tmp_path / "a", ad_sets=12, days=30, seed=3)
    write_sample_data(tmp_path / "b", ad_sets=12, days=30, seed=3)
    for raw_file in REQUIRED_RAW_FILES:
        first = (tmp_path / "a" / raw_file.file_name).read_bytes()
        second = (tmp_path / "b" / raw_file.file_name).read_bytes()
        assert first == second, raw_file.file_name
    assert not (tmp_path / "a" / EXPERIMENTS.file_name).exists()


def test_different_seed_changes_every_file(tmp_path: Path) -> None:
    write_sample_data(tmp_path / "a", ad_sets=12, days=30, seed=3)
    write_sample_data(tmp_path / "b", ad_sets=12, days=30, seed=4)
    for raw_file in REQUIRED_RAW_FILES:
        first = (tmp_path / "a" / raw_file.file_name).read_bytes()
        second = (tmp_path / "b" / raw_file.file_name).read_bytes()
        assert first != second, raw_file.file_name


def test_files_have_bom_crlf_and_the_contract_header(tmp_path: Path) -> None:
    write_sample_data(tmp_path, ad_sets=5, days=7, seed=1)
    for raw_file in REQUIRED_RAW_FILES:
        content = (tmp_path / raw_file.file_name).read_bytes()
        assert content.startswith(b"\xef\xbb\xbf"), raw_file.file_name
        assert content.endswith(b"\r\n")
        assert content.count(b"\n") == content.count(b"\r\n"), "a bare LF line ending"
        header = content[3:].split(b"\r\n", 1)[0].decode("utf-8")
        assert tuple(header.split(",")) == raw_file.columns


def test_returned_row_counts_match_the_files(tmp_path: Path) -> None:
    rows = write_sample_data(tmp_path, ad_sets=6, days=9, seed=2)
    assert rows[AUDIENCE_SEGMENTS.file_name] == 6
    assert rows[BUDGET_PACING.file_name] == 6 * 9
    for raw_file in REQUIRED_RAW_FILES:
        assert len(read_raw(tmp_path, raw_file.file_name)) == rows[raw_file.file_name]


def test_dates_are_uk_format_and_cover_exactly_the_requested_days(tmp_path: Path) -> None:
    """A start after the 12th tells DD/MM from MM/DD; the range crosses a leap day."""
    start = date(2024, 2, 20)
    write_sample_data(tmp_path, ad_sets=3, days=14, seed=1, start_date=start)
    expected = {start + timedelta(days=offset) for offset in range(14)}
    for raw_file in (META_CAMPAIGN_PERFORMANCE, BUDGET_PACING, CONVERSION_EVENTS):
        texts = read_raw(tmp_path, raw_file.file_name)["date"]
        assert texts.str.fullmatch(r"\d{2}/\d{2}/\d{4}").all()
        days = {datetime.strptime(text, "%d/%m/%Y").date() for text in texts}
        assert days <= expected, raw_file.file_name
    pacing_days = read_raw(tmp_path, BUDGET_PACING.file_name)["date"]
    assert {datetime.strptime(text, "%d/%m/%Y").date() for text in pacing_days} == expected


def test_vocabularies_stay_within_the_contract_and_the_seed(dirty_sample: Path) -> None:
    pacing = read_raw(dirty_sample, BUDGET_PACING.file_name)
    conversions = read_raw(dirty_sample, CONVERSION_EVENTS.file_name)
    audience = read_raw(dirty_sample, AUDIENCE_SEGMENTS.file_name)
    assert set(pacing.pacing_status) <= set(PACING_STATUSES)
    assert set(conversions.conversion_type) == set(CONVERSION_TYPES)
    assert set(conversions.attribution_window) == set(ATTRIBUTION_WINDOWS)
    assert set(conversions.user_segment) <= SEED_USER_SEGMENTS
    assert audience.target_age.str.fullmatch(r"\d{2}-\d{2}|\d{2}\+").all()
    assert audience.target_interests.str.fullmatch(r"[a-z ]+(, [a-z ]+)+").all()
    assert audience.lookalike_source.str.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+").all()


def test_audience_file_quotes_the_interest_list(tmp_path: Path) -> None:
    write_sample_data(tmp_path, ad_sets=4, days=1, seed=1)
    lines = (tmp_path / AUDIENCE_SEGMENTS.file_name).read_text("utf-8-sig").splitlines()[1:]
    assert all(re.search(r',"[a-z ]+(, [a-z ]+)+",', line) for line in lines)


def test_ids_and_names_are_unique_and_zero_padded(dirty_sample: Path) -> None:
    audience = read_raw(dirty_sample, AUDIENCE_SEGMENTS.file_name)
    assert list(audience.ad_set_id) == [f"AS_{n:03d}" for n in range(1, 51)]
    assert audience.ad_set_name.is_unique
    assert audience.ad_set_name.str.fullmatch(r"[A-Za-z_]+_(\d{2}-\d{2}|\d{2}\+)_\d{3}").all()
    conversions = read_raw(dirty_sample, CONVERSION_EVENTS.file_name)
    assert conversions.conversion_id.str.fullmatch(r"CV_\d{6}").all()


def test_ad_set_ids_widen_to_four_digits_from_1000_ad_sets(tmp_path: Path) -> None:
    write_sample_data(tmp_path, ad_sets=1000, days=1, seed=1)
    audience = read_raw(tmp_path, AUDIENCE_SEGMENTS.file_name)
    assert audience.ad_set_id.iloc[0] == "AS_0001"
    assert audience.ad_set_id.iloc[-1] == "AS_1000"
    assert audience.ad_set_id.is_unique and audience.ad_set_name.is_unique


def test_money_is_written_with_two_decimals(dirty_sample: Path) -> None:
    audience = read_raw(dirty_sample, AUDIENCE_SEGMENTS.file_name)
    pacing = read_raw(dirty_sample, BUDGET_PACING.file_name)
    performance = valid_performance(read_raw(dirty_sample, META_CAMPAIGN_PERFORMANCE.file_name))
    values = read_raw(dirty_sample, CONVERSION_EVENTS.file_name)["value"]
    for column in (
        audience.daily_budget,
        pacing.planned_spend,
        pacing.actual_spend,
        performance.spend,
        values[values != ""],
    ):
        assert column.str.fullmatch(MONEY.pattern).all(), column.name


def test_meta_spend_equals_pacing_actual_spend_per_key(dirty_sample: Path) -> None:
    performance = valid_performance(read_raw(dirty_sample, META_CAMPAIGN_PERFORMANCE.file_name))
    pacing = read_raw(dirty_sample, BUDGET_PACING.file_name)
    joined = performance.merge(pacing, on=["date", "ad_set_id"], validate="one_to_one")
    assert len(joined) == len(pacing) == 50 * 60
    assert (joined.spend == joined.actual_spend).all()
    utilization = joined.actual_spend.astype(float) / joined.planned_spend.astype(float)
    assert (utilization.round(2) - joined.budget_utilization.astype(float)).abs().max() < 0.011


def test_reported_ctr_and_cpm_are_computed_from_the_row(dirty_sample: Path) -> None:
    performance = valid_performance(read_raw(dirty_sample, META_CAMPAIGN_PERFORMANCE.file_name))
    impressions = performance.impressions.astype(int)
    clicks = performance.clicks.astype(int)
    spend = performance.spend.astype(float)
    ctr_error = (clicks / impressions * 100).round(2) - performance.ctr.astype(float)
    cpm_error = (spend / impressions * 1000).round(2) - performance.cpm.astype(float)
    assert ctr_error.abs().max() < 0.006 and cpm_error.abs().max() < 0.006
    frequency = performance.frequency.astype(float)
    assert frequency.between(1.2, 3.5).all()


def test_pacing_status_mostly_follows_utilization_thresholds(dirty_sample: Path) -> None:
    pacing = read_raw(dirty_sample, BUDGET_PACING.file_name)
    utilization = pacing.budget_utilization.astype(float)
    rule = utilization.map(
        lambda u: "under_pacing" if u < 0.9 else ("over_pacing" if u > 1.1 else "on_pace")
    )
    agreement = (rule == pacing.pacing_status).mean()
    assert 0.8 < agreement < 1.0
    assert (pacing.pacing_status[utilization < 0.75] == "under_pacing").all()


def test_injected_dirt_is_present_and_every_corrupt_copy_follows_its_valid_twin(
    dirty_sample: Path,
) -> None:
    performance = read_raw(dirty_sample, META_CAMPAIGN_PERFORMANCE.file_name)
    negative = performance.spend.str.startswith("-")
    blank_impressions = performance.impressions.eq("")
    assert performance.duplicated(keep="first").any()
    assert negative.any() and blank_impressions.any()
    assert not (negative & blank_impressions).any()
    for position in performance.index[negative | blank_impressions]:
        corrupt, twin = performance.loc[position], performance.loc[position - 1]
        assert (twin.date, twin.ad_set_id) == (corrupt.date, corrupt.ad_set_id)
        assert twin.impressions != "" and not twin.spend.startswith("-")
        if negative[position]:
            assert corrupt.spend == "-" + twin.spend
        else:
            assert corrupt.drop("impressions").equals(twin.drop("impressions"))
    valid = valid_performance(performance)
    assert not valid.duplicated(["date", "ad_set_id"]).any()
    assert len(valid) == 50 * 60

    conversions = read_raw(dirty_sample, CONVERSION_EVENTS.file_name)
    bookings = conversions[conversions.conversion_type == "booking_completed"]
    blank_share = (bookings.value == "").mean()
    assert 0.005 < blank_share < 0.05
    assert (conversions.value[conversions.conversion_type != "booking_completed"] != "").all()


def test_conversion_ids_are_unique_except_exact_duplicate_rows(dirty_sample: Path) -> None:
    conversions = read_raw(dirty_sample, CONVERSION_EVENTS.file_name)
    duplicates = conversions.duplicated(keep="first")
    assert 0 < duplicates.sum() < 0.002 * len(conversions)
    assert conversions[~duplicates].conversion_id.is_unique
    repeated = conversions.index[duplicates]
    assert (
        conversions.loc[repeated - 1]
        .reset_index(drop=True)
        .equals(conversions.loc[repeated].reset_index(drop=True))
    ), "a duplicate conversion is not on the line right after its original"


def test_conversion_volume_is_about_15_events_per_ad_set_day(dirty_sample: Path) -> None:
    conversions = read_raw(dirty_sample, CONVERSION_EVENTS.file_name)
    per_ad_set_day = len(conversions) / (50 * 60)
    assert 10 < per_ad_set_day < 20
    type_counts = conversions.conversion_type.value_counts()
    assert type_counts.idxmax() == "booking_completed"
    assert type_counts["booking_completed"] > 0.4 * len(conversions)


def test_both_ml_labels_have_both_classes(label_sample: Path) -> None:
    pacing = read_raw(label_sample, BUDGET_PACING.file_name)
    pacing["day"] = pd.to_datetime(pacing.date, format="%d/%m/%Y")
    pacing = pacing.sort_values(["ad_set_id", "day"])
    next_status = pacing.groupby("ad_set_id").pacing_status.shift(-1).dropna()
    under_share = (next_status == "under_pacing").mean()
    assert 0.1 < under_share < 0.6

    performance = valid_performance(read_raw(label_sample, META_CAMPAIGN_PERFORMANCE.file_name))
    conversions = read_raw(label_sample, CONVERSION_EVENTS.file_name).drop_duplicates()
    bookings = conversions[conversions.conversion_type == "booking_completed"]
    revenue = (
        pd.to_numeric(bookings.value, errors="coerce")
        .fillna(0.0)
        .groupby([bookings.ad_set_id, bookings.date])
        .sum()
        .rename("revenue")
    )
    daily = performance.assign(spend=performance.spend.astype(float)).set_index(
        ["ad_set_id", "date"]
    )[["spend"]]
    daily = daily.join(revenue).fillna(0.0).reset_index()
    daily["day"] = pd.to_datetime(daily.date, format="%d/%m/%Y")
    daily = daily.sort_values(["ad_set_id", "day"])

    def next_7_days(series: pd.Series) -> pd.Series:
        return series[::-1].rolling(7).sum()[::-1].shift(-1)

    grouped = daily.groupby("ad_set_id")
    roas = (grouped.revenue.transform(next_7_days) / grouped.spend.transform(next_7_days)).dropna()
    on_target_share = (roas >= 4.0).mean()
    assert 0.15 < on_target_share < 0.85


def test_command_line_creates_the_folder_and_prints_rows_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "raw"
    argv = ["sample_data", "--out", str(out), "--ad-sets", "3", "--days", "4", "--seed", "9"]
    monkeypatch.setattr(sys, "argv", [*argv, "--start-date", "2024-03-01"])
    sample_data.main()
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(REQUIRED_RAW_FILES)
    assert any(f"{BUDGET_PACING.file_name}: 12 rows" in line for line in printed)
    pacing = read_raw(out, BUDGET_PACING.file_name)
    assert pacing.date.iloc[0] == "01/03/2024"


def test_no_value_holds_a_hidden_character(dirty_sample: Path) -> None:
    """The generator's ids, vocabularies and names never trip `invisible_character` or get
    escapes: its dirt is of other kinds."""
    for raw_file in REQUIRED_RAW_FILES:
        text = (dirty_sample / raw_file.file_name).read_text(encoding="utf-8-sig")
        hidden = {character for character in text if is_hidden_character(character)}
        assert hidden <= {"\r", "\n"}, (raw_file.file_name, hidden)


def test_a_few_campaigns_hold_campaign_budgets_over_two_to_four_ad_sets(dirty_sample: Path) -> None:
    """Every ad set has a campaign; a campaign has one level and one name; campaign-level
    budgets (CBO) are a minority, each over 2-4 ad sets of one audience."""
    audience = read_raw(dirty_sample, AUDIENCE_SEGMENTS.file_name)
    assert audience.campaign_id.str.fullmatch(r"CMP_\d{3}").all()
    assert set(audience.budget_level) == {"ad_set", "campaign"}
    campaigns = audience.groupby("campaign_id").agg(
        levels=("budget_level", "nunique"),
        names=("campaign_name", "nunique"),
        level=("budget_level", "first"),
        ad_sets=("ad_set_id", "size"),
    )
    assert (campaigns.levels == 1).all() and (campaigns.names == 1).all()
    persona = audience.campaign_name.str.rsplit("_", n=2).str[0]
    assert all(
        f"_{name}_" in ad_set for name, ad_set in zip(persona, audience.ad_set_name, strict=True)
    )
    at_campaign = campaigns[campaigns.level == "campaign"]
    assert len(at_campaign) >= 3
    assert at_campaign.ad_sets.between(2, 4).all()
    assert at_campaign.ad_sets.sum() < len(audience) / 2
    assert campaigns.ad_sets.between(1, 4).all()
