"""The raw-file contract, written once: bronze, silver, quality, check-raw and sample_data read it."""

from dataclasses import dataclass

DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d")
"""UK dates first (the vendor's format); ISO dates are accepted too."""

CONVERSION_TYPES = (
    "booking_completed",
    "newsletter_signup",
    "event_registration",
    "hotel_inquiry",
    "flight_search",
    "destination_guide_download",
)
ATTRIBUTION_WINDOWS = ("7_day_click", "1_day_view", "1_day_click")
PACING_STATUSES = ("under_pacing", "on_pace", "over_pacing")


@dataclass(frozen=True)
class RawFile:
    """One raw CSV: its columns in order, key, and how each column is typed in silver."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    dates: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    vocabularies: tuple[tuple[str, tuple[str, ...]], ...] = ()
    non_negative: tuple[str, ...] = ()
    ordered: tuple[tuple[str, ...], ...] = ()
    """Columns whose values must not decrease left to right (a start before its end)."""
    optional: bool = False
    """An optional file may be absent: it then reads as its header alone (no rows)."""

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def numeric(self) -> tuple[str, ...]:
        return self.integers + self.decimals


AUDIENCE_SEGMENTS = RawFile(
    name="audience_segments",
    columns=(
        "ad_set_id",
        "ad_set_name",
        "target_age",
        "target_interests",
        "lookalike_source",
        "daily_budget",
    ),
    key=("ad_set_id",),
    decimals=("daily_budget",),
    required=("ad_set_id", "ad_set_name"),
    non_negative=("daily_budget",),
)

META_CAMPAIGN_PERFORMANCE = RawFile(
    name="meta_campaign_performance",
    columns=(
        "date",
        "ad_set_id",
        "ad_set_name",
        "impressions",
        "clicks",
        "spend",
        "ctr",
        "cpm",
        "frequency",
    ),
    key=("date", "ad_set_id"),
    dates=("date",),
    integers=("impressions", "clicks"),
    decimals=("spend", "ctr", "cpm", "frequency"),
    required=("date", "ad_set_id", "impressions", "clicks", "spend"),
    non_negative=("impressions", "clicks", "spend"),
)

BUDGET_PACING = RawFile(
    name="budget_pacing",
    columns=(
        "date",
        "ad_set_id",
        "planned_spend",
        "actual_spend",
        "budget_utilization",
        "pacing_status",
    ),
    key=("date", "ad_set_id"),
    dates=("date",),
    decimals=("planned_spend", "actual_spend", "budget_utilization"),
    required=("date", "ad_set_id", "planned_spend", "actual_spend", "pacing_status"),
    vocabularies=(("pacing_status", PACING_STATUSES),),
    non_negative=("planned_spend", "actual_spend", "budget_utilization"),
)

CONVERSION_EVENTS = RawFile(
    name="conversion_events",
    columns=(
        "conversion_id",
        "date",
        "ad_set_id",
        "conversion_type",
        "value",
        "attribution_window",
        "user_segment",
    ),
    key=("conversion_id",),
    dates=("date",),
    decimals=("value",),
    required=("conversion_id", "date", "ad_set_id", "conversion_type"),
    vocabularies=(
        ("conversion_type", CONVERSION_TYPES),
        ("attribution_window", ATTRIBUTION_WINDOWS),
    ),
    non_negative=("value",),
)

EXPERIMENTS = RawFile(
    name="experiments",
    columns=(
        "experiment_id",
        "ad_set_id",
        "start_date",
        "end_date",
        "budget_change",
        "incremental_revenue",
        "incremental_revenue_low",
        "incremental_revenue_high",
    ),
    key=("experiment_id",),
    dates=("start_date", "end_date"),
    decimals=(
        "budget_change",
        "incremental_revenue",
        "incremental_revenue_low",
        "incremental_revenue_high",
    ),
    required=(
        "experiment_id",
        "ad_set_id",
        "start_date",
        "end_date",
        "budget_change",
        "incremental_revenue",
        "incremental_revenue_low",
        "incremental_revenue_high",
    ),
    ordered=(
        ("start_date", "end_date"),
        ("incremental_revenue_low", "incremental_revenue", "incremental_revenue_high"),
    ),
    optional=True,
)
"""Lift tests: one ad set's daily spend moved by `budget_change` (£ a day, negative for a cut)
from `start_date` to `end_date` (inclusive), and the incremental revenue it measured over the
whole test (£) with its 90% interval. Optional; the plan calibrates the curves it covers."""

REQUIRED_RAW_FILES = (
    AUDIENCE_SEGMENTS,
    META_CAMPAIGN_PERFORMANCE,
    BUDGET_PACING,
    CONVERSION_EVENTS,
)
RAW_FILES = (*REQUIRED_RAW_FILES, EXPERIMENTS)
RAW_FILES_BY_NAME = {raw_file.name: raw_file for raw_file in RAW_FILES}
