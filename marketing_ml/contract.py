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

RAW_FILES = (AUDIENCE_SEGMENTS, META_CAMPAIGN_PERFORMANCE, BUDGET_PACING, CONVERSION_EVENTS)
RAW_FILES_BY_NAME = {raw_file.name: raw_file for raw_file in RAW_FILES}
