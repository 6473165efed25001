"""Every cleaning rule, on rows written the way vendors write them."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from marketing_ml.cleaning import classified_rows_sql
from marketing_ml.contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
    RawFile,
    hidden_character_ranges,
    is_hidden_character,
)
from marketing_ml.ingest.incremental import load_bronze_table
from marketing_ml.ingest.profile import profile_raw_file
from marketing_ml_tests.support.lakehouse import performance_row, write_raw_csv


def classify(tmp_path: Path, raw_file: RawFile, rows) -> dict[int, tuple]:
    """Line → (rule, reason, typed row) for every distinct row of a file with these rows."""
    path = write_raw_csv(tmp_path / raw_file.file_name, raw_file.columns, rows)
    connection = duckdb.connect()
    load_bronze_table(connection, "main", "bronze_rows", profile_raw_file(path, raw_file))
    columns = ", ".join(raw_file.columns)
    classified = connection.execute(
        f"SELECT _source_line, rule, reason, {columns} "
        f"FROM ({classified_rows_sql(raw_file, 'bronze_rows')}) ORDER BY _source_line"
    ).fetchall()
    return {line: (rule, reason, tuple(values)) for line, rule, reason, *values in classified}


def kept_lines(classified: dict[int, tuple]) -> list[int]:
    return [line for line, (rule, _, _) in classified.items() if rule is None]


VALID = performance_row("09/08/2024", "AS_003", "43450", "934", "467.89")


def test_negative_spend_copy_loses_to_valid_copy(tmp_path):
    corrupt = performance_row("09/08/2024", "AS_003", "43450", "934", "-467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, corrupt])
    assert kept_lines(classified) == [2]
    rule, reason, _ = classified[3]
    assert rule == "negative_value"
    assert "spend is negative (-467.89)" in reason and "line 2 is kept" in reason


def test_valid_copy_wins_even_when_it_comes_second(tmp_path):
    corrupt = performance_row("09/08/2024", "AS_003", "43450", "934", "-467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [corrupt, VALID])
    assert kept_lines(classified) == [3]
    assert classified[2][0] == "negative_value"


def test_blank_impressions_copy_loses_to_valid_copy(tmp_path):
    blank = performance_row("09/08/2024", "AS_003", "", "934", "467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, blank])
    assert kept_lines(classified) == [2]
    assert classified[3][0] == "missing_required"
    assert "impressions is blank" in classified[3][1]


def test_identical_copies_collapse_to_the_first_line(tmp_path):
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, VALID, VALID])
    assert list(classified) == [2]
    assert classified[2][0] is None


def test_valid_copies_that_disagree_are_quarantined_together(tmp_path):
    other = performance_row("09/08/2024", "AS_003", "43450", "934", "500.00")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, other])
    assert kept_lines(classified) == []
    assert {classified[2][0], classified[3][0]} == {"conflicting_duplicate"}
    assert "disagree" in classified[2][1]


def test_iso_and_uk_dates_give_the_same_day(tmp_path):
    iso = performance_row("2024-08-10", "AS_003", "43450", "934", "467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, iso])
    assert classified[2][2][0] == date(2024, 8, 9)
    assert classified[3][2][0] == date(2024, 8, 10)
    assert kept_lines(classified) == [2, 3]


def test_same_row_written_with_an_iso_date_is_a_duplicate_copy(tmp_path):
    iso = performance_row("2024-08-09", "AS_003", "43450", "934", "467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, iso])
    assert kept_lines(classified) == [2]
    assert classified[3][0] == "duplicate_copy"
    assert "line 2" in classified[3][1]


@pytest.mark.parametrize("bad_date", ["31/02/2024", "08-09-2024", "yesterday"])
def test_unparseable_date_is_quarantined_naming_the_value(tmp_path, bad_date):
    row = performance_row(bad_date, "AS_003", "43450", "934", "467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [row])
    rule, reason, _ = classified[2]
    assert rule == "unparseable_date"
    assert bad_date in reason


def test_non_numeric_value_is_quarantined_naming_the_column(tmp_path):
    row = performance_row("09/08/2024", "AS_003", "n/a", "934", "467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [row])
    assert classified[2][0] == "non_numeric"
    assert "impressions 'n/a'" in classified[2][1]


def test_quoted_thousands_separators_are_numbers(tmp_path):
    row = performance_row("09/08/2024", "AS_003", '"43,450"', "934", '"1,467.89"')
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [row])
    rule, _, typed = classified[2]
    assert rule is None
    assert typed[3] == 43450 and typed[5] == pytest.approx(1467.89)


@pytest.mark.parametrize(
    "column, values",
    [
        ("impressions", ("-5", "0", "1.00")),
        ("clicks", ("100", "-3", "1.00")),
    ],
)
def test_negative_counts_are_quarantined(tmp_path, column, values):
    row = performance_row("09/08/2024", "AS_003", *values)
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [row])
    assert classified[2][0] == "negative_value"
    assert column in classified[2][1]


def test_clicks_above_impressions_are_quarantined(tmp_path):
    row = performance_row("09/08/2024", "AS_003", "100", "250", "12.00")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [row])
    assert classified[2][0] == "clicks_exceed_impressions"
    assert "clicks (250) exceed impressions (100)" in classified[2][1]


def conversion(conversion_id="CV_1", conversion_type="booking_completed", value="100"):
    return [conversion_id, "01/08/2024", "AS_001", conversion_type, value, "7_day_click", "x"]


def test_unknown_conversion_type_is_quarantined(tmp_path):
    classified = classify(tmp_path, CONVERSION_EVENTS, [conversion(conversion_type="purchase")])
    assert classified[2][0] == "unknown_vocabulary"
    assert "conversion_type 'purchase'" in classified[2][1]


def test_duplicate_conversion_id_with_different_values_is_conflicting(tmp_path):
    classified = classify(tmp_path, CONVERSION_EVENTS, [conversion(), conversion(value="250")])
    assert [classified[2][0], classified[3][0]] == ["conflicting_duplicate"] * 2


def test_booking_without_value_stays_a_booking(tmp_path):
    classified = classify(tmp_path, CONVERSION_EVENTS, [conversion(value="")])
    rule, _, typed = classified[2]
    assert rule is None and typed[4] is None


def test_an_ad_set_id_with_a_zero_width_space_is_quarantined_not_a_second_ad_set(tmp_path):
    look_alike = performance_row("10/08/2024", "AS_\u200b003", "43450", "934", "467.89")
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, look_alike])
    assert kept_lines(classified) == [2]
    rule, reason, _ = classified[3]
    assert rule == "invisible_character"
    assert reason.startswith(
        "ad_set_id holds U+200B ZERO WIDTH SPACE at position 4: 'AS_\\u200b003'"
    )


HIDDEN_CHARACTERS = {
    "\u00a0": "NO-BREAK SPACE",
    "\u202f": "NARROW NO-BREAK SPACE",
    "\u2007": "FIGURE SPACE",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE",
    "\u2060": "WORD JOINER",
    "\u00ad": "SOFT HYPHEN",
    "\x01": "(a control character)",
    "\x85": "(a control character)",
}


EXACT_COLUMNS = ("conversion_id", "ad_set_id", "conversion_type", "attribution_window")


@pytest.mark.parametrize(
    ("character", "column"),
    [
        (character, EXACT_COLUMNS[number % len(EXACT_COLUMNS)])
        for number, character in enumerate(HIDDEN_CHARACTERS)
    ],
)
def test_every_id_and_vocabulary_column_quarantines_a_hidden_character(tmp_path, column, character):
    """Inside the value (the ends of a value are trimmed of spaces): the reason names the
    character's code point, its name and where it is."""
    row = conversion()
    position = CONVERSION_EVENTS.columns.index(column)
    row[position] = row[position][:2] + character + row[position][2:]
    classified = classify(tmp_path, CONVERSION_EVENTS, [row])
    rule, reason, _ = classified[2]
    assert rule == "invisible_character"
    assert reason.startswith(
        f"{column} holds U+{ord(character):04X} {HIDDEN_CHARACTERS[character]} at position 3: "
        f"'{row[position][:2]}\\u{ord(character):04x}{row[position][3:]}'"
    )


def test_a_pacing_status_with_a_hidden_character_is_not_an_unknown_status(tmp_path):
    row = ["01/08/2024", "AS_001", "500", "450.00", "0.90", "on_pace\u200b"]
    classified = classify(tmp_path, BUDGET_PACING, [row])
    assert classified[2][0] == "invisible_character"
    assert "pacing_status holds U+200B ZERO WIDTH SPACE at position 8" in classified[2][1]


def test_names_keep_their_row_and_show_hidden_characters_as_escapes(tmp_path):
    """Free text is no identifier: the row stays, and what cannot be seen is written out; other
    non-ASCII text (an accent, an emoji) is left alone, and spaces at the ends are trimmed."""
    named = performance_row("10/08/2024", "AS_003", "43450", "934", "467.89")
    named[2] = "\u00a0Caf\u00e9 \U0001f600 \u202eelas\u202c Summer\u200bSale\u00a0"
    classified = classify(tmp_path, META_CAMPAIGN_PERFORMANCE, [VALID, named])
    assert kept_lines(classified) == [2, 3]
    assert classified[3][2][2] == "Caf\u00e9 \U0001f600 \\u202eelas\\u202c Summer\\u200bSale"


def test_the_hidden_characters_are_the_ones_the_issue_names_and_no_visible_one():
    def hidden(character: str) -> bool:
        return any(first <= ord(character) <= last for first, last in hidden_character_ranges())

    for character in [*HIDDEN_CHARACTERS, "\u200b", "\u200d", "\t", "\x7f", "\u2028", "\u3000"]:
        assert hidden(character) and is_hidden_character(character), repr(character)
    for character in [" ", "a", "_", "-", "\u00e9", "\u0416", "\U0001f600", "\u4e2d"]:
        assert not hidden(character), repr(character)


def audience(campaign_id: str, campaign_name: str, budget_level: str, ad_set_id="AS_001"):
    return [ad_set_id, "Premium_Travelers", "25-45", "luxury travel", "high_value", "500"] + [
        campaign_id,
        campaign_name,
        budget_level,
    ]


def test_a_budget_level_outside_the_vocabulary_is_quarantined_naming_the_levels(tmp_path):
    classified = classify(tmp_path, AUDIENCE_SEGMENTS, [audience("CMP_1", "Spring", "adset")])
    rule, reason, _ = classified[2]
    assert rule == "unknown_vocabulary"
    assert reason == "budget_level 'adset' is not one of ad_set, campaign"


def test_a_campaign_budget_without_its_campaign_is_quarantined_saying_so(tmp_path):
    rows = [audience("", "Spring", "campaign"), audience("", "", "ad_set", ad_set_id="AS_002")]
    classified = classify(tmp_path, AUDIENCE_SEGMENTS, rows)
    rule, reason, _ = classified[2]
    assert rule == "missing_required"
    assert reason.startswith("campaign_id is blank where budget_level is campaign")
    assert kept_lines(classified) == [3]


def test_a_blank_budget_level_is_an_ad_set_budget_and_the_campaign_is_kept(tmp_path):
    rows = [
        audience("CMP_1", "Spring CBO", "campaign"),
        audience("CMP_1", "Spring CBO", " ", ad_set_id="AS_002"),
    ]
    classified = classify(tmp_path, AUDIENCE_SEGMENTS, rows)
    assert kept_lines(classified) == [2, 3]
    columns = AUDIENCE_SEGMENTS.columns
    campaign, name, level = (columns.index(c) for c in AUDIENCE_SEGMENTS.optional_columns)
    assert [classified[line][2][level] for line in (2, 3)] == ["campaign", "ad_set"]
    assert classified[2][2][campaign] == "CMP_1" and classified[3][2][name] == "Spring CBO"


def test_a_campaign_id_with_a_hidden_character_is_quarantined(tmp_path):
    classified = classify(tmp_path, AUDIENCE_SEGMENTS, [audience("CMP\u200b_1", "", "campaign")])
    assert classified[2][0] == "invisible_character"
    assert classified[2][1].startswith("campaign_id holds U+200B ZERO WIDTH SPACE at position 4")


def test_an_audience_file_without_campaign_columns_reads_as_ad_set_budgets(tmp_path):
    """The seed's header: the optional columns are blank in bronze, the level ad_set in silver."""
    row = ["AS_001", "Premium_Travelers", "25-45", "luxury travel", "high_value", "500"]
    path = write_raw_csv(
        tmp_path / "audience_segments.csv", AUDIENCE_SEGMENTS.header_columns, [row]
    )
    connection = duckdb.connect()
    profile = profile_raw_file(path, AUDIENCE_SEGMENTS)
    assert profile.extra_columns == ()
    load_bronze_table(connection, "main", "bronze_rows", profile)
    typed = connection.execute(
        "SELECT rule, daily_budget, campaign_id, campaign_name, budget_level "
        f"FROM ({classified_rows_sql(AUDIENCE_SEGMENTS, 'bronze_rows')})"
    ).fetchall()
    assert typed == [(None, 500.0, None, None, "ad_set")]
