"""The raw-file contract, written once: bronze, silver, quality, check-raw and sample_data read it."""

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

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
UTILIZATION_SANE_MAX = 3.0
"""Spending over three times the plan is possible but almost always an export error."""
BUDGET_LEVELS = ("ad_set", "campaign")
"""Where an ad set's daily budget lives: on the ad set, or on its campaign (campaign budget
optimisation / Advantage+), which then splits it among its ad sets."""

VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
PLANES_WITH_HIDDEN_CHARACTERS = ((0x0, 0x1FFFF), (0xE0000, 0xE01FF))
"""Every control, format and space character Unicode assigns lies in these planes."""


def is_hidden_character(character: str) -> bool:
    """A character that shows nothing or shows as a plain space, so that two values differing
    by it look the same: controls (C0, DEL, C1), format characters (zero-width space and
    joiners, bidi marks, embeddings and isolates, BOM, word joiner, soft hyphen), line and
    paragraph separators, spaces other than U+0020 (no-break and the rest), variation
    selectors."""
    code_point = ord(character)
    category = unicodedata.category(character)
    return (
        category in ("Cc", "Cf", "Zl", "Zp")
        or (category == "Zs" and character != " ")
        or any(first <= code_point <= last for first, last in VARIATION_SELECTORS)
    )


@lru_cache(maxsize=1)
def hidden_character_ranges() -> tuple[tuple[int, int], ...]:
    """The hidden characters as ranges of code points (by this Python's Unicode tables, so the
    same for both engines)."""
    ranges: list[list[int]] = []
    for first, last in PLANES_WITH_HIDDEN_CHARACTERS:
        for code_point in range(first, last + 1):
            if not is_hidden_character(chr(code_point)):
                continue
            if ranges and ranges[-1][1] == code_point - 1:
                ranges[-1][1] = code_point
            else:
                ranges.append([code_point, code_point])
    return tuple((first, last) for first, last in ranges)


def hidden_character_name(code_point: int) -> str:
    """Its Unicode name; controls have none."""
    return unicodedata.name(chr(code_point), "(a control character)")


@dataclass(frozen=True)
class Expectation:
    """A warning on a file's silver table: the rows where `broken` (SQL over its columns) holds
    stay, and are counted by the check of that name."""

    name: str
    description: str
    broken: str


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
    identifiers: tuple[str, ...] = ()
    """Text matched by its exact value (keys, and ids that join the files): a character that
    does not show would make a second value that looks like the first."""
    ordered: tuple[tuple[str, ...], ...] = ()
    """Columns whose values must not decrease left to right (a start before its end)."""
    optional: bool = False
    """An optional file may be absent: it then reads as its header alone (no rows)."""
    optional_columns: tuple[str, ...] = ()
    """Columns a file may lack: bronze then holds them as blank (NULL) on every row."""
    defaults: tuple[tuple[str, str], ...] = ()
    """(column, value): silver's value where the field is blank."""
    required_when: tuple[tuple[str, str, str], ...] = ()
    """(column, other column, value): the column is required on rows where the other column
    holds that value (a campaign budget needs its campaign)."""

    row_rules: tuple[tuple[str, str, str], ...] = ()
    """(condition, rule, reason as SQL): a row whose typed values meet the condition is
    quarantined under the rule, beyond the checks every file gets (types, ranges, keys)."""
    silver_columns: tuple[str, ...] = ()
    """Silver's columns as SQL where they differ from the file's (derived ones); empty: the
    file's columns."""
    silver_note: str = ""
    """What silver does to this file beyond typing and cleaning (the asset's description)."""
    expectations: tuple[Expectation, ...] = ()

    @property
    def silver_select(self) -> tuple[str, ...]:
        return self.silver_columns or self.columns

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def exact_text(self) -> tuple[str, ...]:
        """Identifiers and vocabulary values: a row where one holds a hidden character is
        quarantined (`invisible_character`)."""
        return self.identifiers + tuple(column for column, _ in self.vocabularies)

    @property
    def free_text(self) -> tuple[str, ...]:
        """Names and descriptions (every column that is no identifier, vocabulary, date or
        number): kept, with hidden characters shown as escapes such as `\\u200b`."""
        typed = set(self.exact_text + self.dates + self.numeric)
        return tuple(column for column in self.columns if column not in typed)

    @property
    def numeric(self) -> tuple[str, ...]:
        return self.integers + self.decimals

    @property
    def header_columns(self) -> tuple[str, ...]:
        """The columns every export must have (all but the optional ones)."""
        return tuple(column for column in self.columns if column not in self.optional_columns)


AUDIENCE_SEGMENTS = RawFile(
    name="audience_segments",
    columns=(
        "ad_set_id",
        "ad_set_name",
        "target_age",
        "target_interests",
        "lookalike_source",
        "daily_budget",
        "campaign_id",
        "campaign_name",
        "budget_level",
    ),
    key=("ad_set_id",),
    decimals=("daily_budget",),
    required=("ad_set_id", "ad_set_name"),
    vocabularies=(("budget_level", BUDGET_LEVELS),),
    non_negative=("daily_budget",),
    identifiers=("ad_set_id", "campaign_id"),
    optional_columns=("campaign_id", "campaign_name", "budget_level"),
    defaults=(("budget_level", "ad_set"),),
    required_when=(("campaign_id", "budget_level", "campaign"),),
)
"""One row per ad set. The campaign columns are optional (a file without them reads as ad-set
budgets with no campaign): `budget_level` says where the daily budget lives (blank = `ad_set`);
for an ad set of a campaign-level budget, `daily_budget` is its part of the campaign's budget
(the campaign's budget is their sum) and `campaign_id` is required."""

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
    identifiers=("ad_set_id",),
    row_rules=(
        (
            "clicks > impressions",
            "clicks_exceed_impressions",
            "'clicks (' || clicks || ') exceed impressions (' || impressions || ')'",
        ),
    ),
    silver_columns=(
        "date",
        "ad_set_id",
        "ad_set_name",
        "impressions",
        "clicks",
        "spend",
        "frequency",
        "CASE WHEN impressions > 0 THEN clicks * 100.0 / impressions END AS ctr",
        "CASE WHEN impressions > 0 THEN spend * 1000.0 / impressions END AS cpm",
        "ctr AS ctr_reported",
        "cpm AS cpm_reported",
    ),
    silver_note=" ctr (percent) and cpm are recomputed from clicks, impressions and spend; the "
    "file's own values are kept as ctr_reported and cpm_reported.",
    expectations=(
        Expectation(
            name="ctr_cpm_match_reported",
            description="The file's CTR and CPM agree with clicks ÷ impressions and spend ÷ "
            "impressions within rounding (0.01 + 1%).",
            broken="abs(ctr - ctr_reported) > 0.01 + 0.01 * abs(ctr_reported)\n"
            "   OR abs(cpm - cpm_reported) > 0.01 + 0.01 * abs(cpm_reported)",
        ),
    ),
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
    identifiers=("ad_set_id",),
    expectations=(
        Expectation(
            name="budget_utilization_sane",
            description=f"budget_utilization is at most {UTILIZATION_SANE_MAX:g} (more is usually "
            "an export error).",
            broken=f"budget_utilization > {UTILIZATION_SANE_MAX}",
        ),
    ),
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
    identifiers=("conversion_id", "ad_set_id"),
    expectations=(
        Expectation(
            name="bookings_have_value",
            description="Every booking_completed event has a value (bookings without one count "
            "as bookings; their revenue is unknown).",
            broken="conversion_type = 'booking_completed' AND value IS NULL",
        ),
    ),
)

EXPERIMENT_COLUMNS = (
    "experiment_id",
    "ad_set_id",
    "start_date",
    "end_date",
    "budget_change",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
)
EXPERIMENTS = RawFile(
    name="experiments",
    columns=EXPERIMENT_COLUMNS,
    key=("experiment_id",),
    dates=("start_date", "end_date"),
    decimals=(
        "budget_change",
        "incremental_revenue",
        "incremental_revenue_low",
        "incremental_revenue_high",
    ),
    required=EXPERIMENT_COLUMNS,
    ordered=(
        ("start_date", "end_date"),
        ("incremental_revenue_low", "incremental_revenue", "incremental_revenue_high"),
    ),
    optional=True,
    identifiers=("experiment_id", "ad_set_id"),
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
DAILY_FACT_FILES = tuple(raw_file for raw_file in RAW_FILES if "date" in raw_file.dates)
"""The files with a row per day: they should end on the same day (`fact_files_fresh`)."""
AD_SET_FILES = tuple(
    raw_file
    for raw_file in RAW_FILES
    if raw_file is not AUDIENCE_SEGMENTS and "ad_set_id" in raw_file.columns
)
"""The files whose ad sets should be in the audience file (`<file>_ad_sets_known`)."""
