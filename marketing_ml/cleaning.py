"""Cleaning rules, written once as SQL built from the contract: silver, quarantine and check-raw use them.

Every distinct bronze row gets a verdict:
0. a record the CSV reader could not split into the header's columns (bronze marks it
   `_malformed`) is quarantined as it is, never typed;
1. exact copies (the same text in every column) collapse to the first line: counted as
   duplicates dropped;
2. a row that breaks a row rule (blank required field, bad date, non-numeric, negative, clicks
   above impressions, unknown vocabulary) is quarantined with that rule and a reason;
3. among the valid rows of one key: if their typed values disagree, every copy is quarantined as
   `conflicting_duplicate`; if they agree (the same row written differently, e.g. an ISO date),
   the first line is kept and the others are quarantined as `duplicate_copy`.
So a valid copy always beats an invalid one, and the outcome never depends on read order.
"""

import os
from dataclasses import dataclass
from datetime import date

from marketing_ml.contract import (
    DATE_FORMATS,
    RawFile,
    hidden_character_name,
    hidden_character_ranges,
)
from marketing_ml.sql import quote_identifier, sql_string

EARLIEST_DATE_ENV = "MARKETING_ML_EARLIEST_DATE"
LATEST_DATE_ENV = "MARKETING_ML_LATEST_DATE"
DEFAULT_EARLIEST_DATE = "2000-01-01"


@dataclass(frozen=True)
class RowRule:
    name: str
    description: str


ROW_RULES = (
    RowRule(
        "wrong_field_count",
        "A record with more or fewer fields than the header (an unquoted 1,234.50 adds one): "
        "kept as its raw text, never typed with shifted values.",
    ),
    RowRule(
        "malformed_record",
        "A record the CSV reader cannot split: a stray quote, or longer than 2 MB.",
    ),
    RowRule(
        "invisible_character",
        "An id or vocabulary value (ad_set_id, campaign_id, conversion_id, pacing_status, "
        "conversion_type, attribution_window, budget_level) holds a character that does not show: a zero-width space, a "
        "no-break space, a bidi control, another format or control character. It would be a "
        "second ad set (or an unknown status) that looks like the real one.",
    ),
    RowRule(
        "missing_required",
        "A required field is blank (campaign_id too, on a row whose budget_level is campaign).",
    ),
    RowRule("unparseable_date", "A date is neither DD/MM/YYYY nor YYYY-MM-DD."),
    RowRule(
        "implausible_date",
        f"A date outside the plausible window ({EARLIEST_DATE_ENV}, default "
        f"{DEFAULT_EARLIEST_DATE}, to {LATEST_DATE_ENV}, default a year after today), such as "
        "02/08/24 read as the year 24.",
    ),
    RowRule(
        "non_numeric",
        "A numeric field is not a number, or a count is not a whole number (thousands "
        "separators are accepted).",
    ),
    RowRule("non_finite", "A number that is NaN or infinite (NaN, inf, 1e309)."),
    RowRule("negative_value", "Spend, impressions, clicks, budgets or values below zero."),
    RowRule("clicks_exceed_impressions", "More clicks than impressions on one row."),
    RowRule(
        "out_of_order",
        "A range that runs backwards: a lift test that ends before it starts, or an interval "
        "whose low end is above its estimate (or its estimate above its high end).",
    ),
    RowRule(
        "unknown_vocabulary",
        "A status, type, window or budget level outside the contract's vocabulary.",
    ),
)
KEY_RULES = (
    RowRule("conflicting_duplicate", "Valid copies of one key disagree: all copies held back."),
    RowRule("duplicate_copy", "Same values as a kept row of the key, written differently."),
)
QUARANTINE_RULES = ROW_RULES + KEY_RULES
RAW_RECORD_SHOWN = 2000
"""Characters of a malformed record's text kept in the quarantine; bronze keeps it whole."""


def _text(column: str) -> str:
    return f"nullif(trim({quote_identifier(column)}), '')"


LAYOUT_CHARACTERS = (0x09, 0x0A, 0x0D)
"""Tab and line breaks: free text keeps them (a quoted value may span lines); an id may not."""


def hidden_character_pattern(kept: tuple[int, ...] = ()) -> str:
    """A regular expression (RE2 and Java alike) matching one hidden character, except `kept`."""
    ranges = []
    for first, last in hidden_character_ranges():
        for code_point in sorted(point for point in kept if first <= point <= last):
            if first < code_point:
                ranges.append((first, code_point - 1))
            first = code_point + 1
        if first <= last:
            ranges.append((first, last))
    return (
        "["
        + "".join(
            rf"\x{{{first:X}}}" if first == last else rf"\x{{{first:X}}}-\x{{{last:X}}}"
            for first, last in ranges
        )
        + "]"
    )


def visible_text_sql(text: str, kept: tuple[int, ...] = ()) -> str:
    r"""`text` with each hidden character (but `kept`) written as its escape (`\u200b`,
    `\U000e0041`), so that a name cannot hide one; any other text as it is."""
    pattern = sql_string(hidden_character_pattern(kept))
    escape = (
        r"CASE WHEN unicode(ch) > 65535 THEN printf('\U%08x', unicode(ch)) "
        r"ELSE printf('\u%04x', unicode(ch)) END"
    )
    return (
        f"CASE WHEN regexp_matches({text}, {pattern}) THEN array_to_string(list_transform("
        f"regexp_extract_all({text}, '(?s).', 0), lambda ch: CASE WHEN regexp_matches(ch, "
        f"{pattern}) THEN {escape} ELSE ch END), '') ELSE {text} END"
    )


def hidden_character_sql(text: str) -> str:
    """The first hidden character of `text`: its code point, its name and its position."""
    character = f"regexp_extract({text}, {sql_string(hidden_character_pattern())}, 0)"
    code_point = f"unicode({character})"
    names = " ".join(
        f"WHEN {code_point_named} THEN {sql_string(name)}"
        for first, last in hidden_character_ranges()
        for code_point_named in range(first, last + 1)
        if not (name := hidden_character_name(code_point_named)).startswith(("(", "VARIATION"))
    )
    name = (
        f"CASE WHEN {code_point} BETWEEN 65024 AND 65039 THEN 'VARIATION SELECTOR-' "
        f"|| CAST({code_point} - 65023 AS VARCHAR) "
        f"WHEN {code_point} >= 917760 THEN 'VARIATION SELECTOR-' "
        f"|| CAST({code_point} - 917743 AS VARCHAR) "
        f"ELSE CASE {code_point} {names} ELSE '(a control character)' END END"
    )
    return (
        f"printf('U+%04X ', {code_point}) || {name} || ' at position ' "
        f"|| CAST(strpos({text}, {character}) AS VARCHAR)"
    )


def _hidden_in_sql(raw_file: RawFile) -> str:
    """The first identifier or vocabulary column of a row that holds a hidden character."""
    pattern = sql_string(hidden_character_pattern())
    found = " ".join(
        f"WHEN regexp_matches(raw_{column}, {pattern}) THEN {sql_string(column)}"
        for column in raw_file.exact_text
    )
    return f"CASE {found} END AS hidden_in"


def _hidden_character_branch(raw_file: RawFile) -> tuple[str, str, str]:
    """invisible_character: every raw file has an identifier (ad_set_id at least)."""
    value = (
        "CASE hidden_in "
        + " ".join(f"WHEN {sql_string(column)} THEN raw_{column}" for column in raw_file.exact_text)
        + " END"
    )
    reason = (
        f"hidden_in || ' holds ' || {hidden_character_sql(value)} || ': ''' || "
        f"{visible_text_sql(value)} || ''' looks like a value without it; remove it in the "
        "export'"
    )
    return "hidden_in IS NOT NULL", "invisible_character", reason


def plausible_dates_sql() -> tuple[str, str]:
    """The window a date must fall in, as SQL: from MARKETING_ML_EARLIEST_DATE (default
    2000-01-01) to MARKETING_ML_LATEST_DATE (default a year after the day the run cleans, as
    `current_date`, so the query and the tables' recorded state do not change every day)."""
    earliest = os.environ.get(EARLIEST_DATE_ENV) or DEFAULT_EARLIEST_DATE
    latest = os.environ.get(LATEST_DATE_ENV) or ""
    for name, value in ((EARLIEST_DATE_ENV, earliest), (LATEST_DATE_ENV, latest)):
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    f"{name}={value!r} is not a date: write it as YYYY-MM-DD."
                ) from None
    latest_sql = (
        f"DATE {sql_string(latest)}" if latest else "CAST(current_date + INTERVAL 1 YEAR AS DATE)"
    )
    return f"DATE {sql_string(earliest)}", latest_sql


def parse_date_sql(expression: str) -> str:
    """DuckDB's strptime, confined here: the one dialect-specific piece of cleaning."""
    attempts = ", ".join(f"try_strptime({expression}, '{fmt}')" for fmt in DATE_FORMATS)
    return f"CAST(coalesce({attempts}) AS DATE)"


def parse_number_sql(expression: str, sql_type: str) -> str:
    """Numbers as exported by spreadsheets: '1,234' and ' 1234.50 ' are fine; 'n/a' is not.
    A whole number must be written as one: DuckDB would round '445229.7' and read '0x10' as 16."""
    digits = f"replace({expression}, ',', '')"
    if sql_type == "BIGINT":
        return (
            f"CASE WHEN regexp_full_match({digits}, '[+-]?[0-9]+') "
            f"THEN TRY_CAST({digits} AS BIGINT) END"
        )
    return f"TRY_CAST({digits} AS {sql_type})"


def typed_columns_sql(raw_file: RawFile) -> list[str]:
    typed = []
    defaults = dict(raw_file.defaults)
    for column in raw_file.columns:
        text = f"raw_{column}"
        if column in defaults:
            text = f"coalesce({text}, {sql_string(defaults[column])})"
        if column in raw_file.dates:
            typed.append(f"{parse_date_sql(text)} AS {column}")
        elif column in raw_file.integers:
            typed.append(f"{parse_number_sql(text, 'BIGINT')} AS {column}")
        elif column in raw_file.decimals:
            typed.append(f"{parse_number_sql(text, 'DOUBLE')} AS {column}")
        elif column in raw_file.free_text:
            typed.append(f"{visible_text_sql(text, LAYOUT_CHARACTERS)} AS {column}")
        else:
            typed.append(f"{text} AS {column}")
    return typed


def key_hash_sql(raw_file: RawFile) -> str:
    """A 64-bit hash of a raw row's key typed as silver types it: bronze stores it as
    `_key_hash`, so finding the rows of a key never types millions of rows again."""
    return f"hash({', '.join(typed_key_expressions(raw_file))})"


def typed_key_expressions(raw_file: RawFile) -> list[str]:
    """The key columns of a bronze row typed as silver types them."""
    typed = []
    for column in raw_file.key:
        if column in raw_file.dates:
            typed.append(parse_date_sql(_text(column)))
        elif column in raw_file.integers:
            typed.append(parse_number_sql(_text(column), "BIGINT"))
        elif column in raw_file.decimals:
            typed.append(parse_number_sql(_text(column), "DOUBLE"))
        else:
            typed.append(_text(column))
    return typed


def _first_failing_rule_sql(raw_file: RawFile) -> tuple[str, str]:
    """CASE expressions giving the first row rule a row breaks, and a reason naming the column."""
    branches: list[tuple[str, str, str]] = [_hidden_character_branch(raw_file)]
    for column in raw_file.required:
        branches.append(
            (f"raw_{column} IS NULL", "missing_required", f"'{column} is blank (required)'")
        )
    for column, other, value in raw_file.required_when:
        branches.append(
            (
                f"raw_{column} IS NULL AND {other} = {sql_string(value)}",
                "missing_required",
                f"'{column} is blank where {other} is {value} (required there: "
                f"a {value}-level budget is planned with the {column} it belongs to)'",
            )
        )
    for column in raw_file.dates:
        branches.append(
            (
                f"raw_{column} IS NOT NULL AND {column} IS NULL",
                "unparseable_date",
                f"'{column} ''' || raw_{column} || ''' is not DD/MM/YYYY or YYYY-MM-DD'",
            )
        )
    earliest, latest = plausible_dates_sql()
    for column in raw_file.dates:
        branches.append(
            (
                f"{column} < {earliest} OR {column} > {latest}",
                "implausible_date",
                f"'{column} ''' || raw_{column} || ''' reads as ' || {column} || ', outside ' || "
                f"{earliest} || ' to ' || {latest} || ' (write the year with four digits)'",
            )
        )
    for column in raw_file.numeric:
        kind = "a whole number" if column in raw_file.integers else "a number"
        branches.append(
            (
                f"raw_{column} IS NOT NULL AND {column} IS NULL",
                "non_numeric",
                f"'{column} ''' || raw_{column} || ''' is not {kind}'",
            )
        )
    for column in raw_file.decimals:
        branches.append(
            (
                f"NOT isfinite({column})",
                "non_finite",
                f"'{column} ''' || raw_{column} || ''' is not a finite number'",
            )
        )
    for column in raw_file.non_negative:
        branches.append(
            (
                f"{column} < 0",
                "negative_value",
                f"'{column} is negative (' || raw_{column} || ')'",
            )
        )
    branches.extend(raw_file.row_rules)
    for columns in raw_file.ordered:
        for low, high in zip(columns, columns[1:], strict=False):
            branches.append(
                (
                    f"{low} > {high}",
                    "out_of_order",
                    f"'{low} (' || raw_{low} || ') comes after {high} (' || raw_{high} || ')'",
                )
            )
    for column, vocabulary in raw_file.vocabularies:
        allowed = ", ".join(sql_string(value) for value in vocabulary)
        branches.append(
            (
                f"{column} IS NOT NULL AND {column} NOT IN ({allowed})",
                "unknown_vocabulary",
                f"'{column} ''' || {column} || ''' is not one of {', '.join(vocabulary)}'",
            )
        )
    rule = "CASE WHEN _malformed IS NOT NULL THEN _malformed " + " ".join(
        f"WHEN {when} THEN {sql_string(name)}" for when, name, _ in branches
    )
    reason = "CASE WHEN _malformed IS NOT NULL THEN _malformed_reason " + " ".join(
        f"WHEN {when} THEN {text}" for when, _, text in branches
    )
    return rule + " END", reason + " END"


def _row_checked_sql(raw_file: RawFile, rows: str) -> str:
    """`rows` (bronze columns) typed, with the first row rule each breaks and its reason."""
    raw_columns = ", ".join(f"{_text(column)} AS raw_{column}" for column in raw_file.columns)
    typed_columns = ",\n            ".join([*typed_columns_sql(raw_file), _hidden_in_sql(raw_file)])
    row_rule, row_reason = _first_failing_rule_sql(raw_file)
    return f"""
    SELECT *, {row_rule} AS row_rule, {row_reason} AS row_reason
    FROM (
        SELECT
            _source_file, _source_line, _row_hash, _key_hash,
            _malformed, _malformed_reason, _raw_record,
            {raw_json_columns(raw_file)},
            {typed_columns}
        FROM (
            SELECT
                _source_file, _source_line, _row_hash, _key_hash,
                _malformed, _malformed_reason, _raw_record, {raw_columns}
            FROM {rows}
        ) AS raw_rows
    ) AS typed_rows"""


def classified_rows_sql(raw_file: RawFile, bronze_table: str) -> str:
    """Every distinct bronze row, typed, with `rule`/`reason` NULL when it belongs in silver.

    Only rows whose typed key occurs more than once can be copies or conflicts, and they are few:
    they go through the duplicate rules, every other row only through the row rules. Keys are
    grouped by their 64-bit hash, which bronze stores (`_key_hash`); rows that merely share a
    hash are told apart by their key and text, so a collision costs time, never a row.
    """
    key = ", ".join(raw_file.key)
    bronze_columns = ", ".join(quote_identifier(column) for column in raw_file.columns)
    content = ", ".join(f"CAST({column} AS VARCHAR)" for column in raw_file.columns)
    raw_json = ", ".join(f"{sql_string(column)}, raw_{column}" for column in raw_file.columns)
    key_match = " AND ".join(
        f"key_versions.{column} = shared_checked.{column}" for column in raw_file.key
    )
    return f"""
WITH keyed_rows AS NOT MATERIALIZED (
    SELECT
        {bronze_columns}, _source_file, _source_line, _row_hash, _key_hash,
        _malformed, _malformed_reason, _raw_record
    FROM {bronze_table}
),
shared_keys AS (
    SELECT _key_hash FROM keyed_rows
    WHERE _malformed IS NULL
    GROUP BY _key_hash HAVING count(*) > 1
),
keys_shared AS (
    SELECT * FROM keyed_rows SEMI JOIN shared_keys USING (_key_hash)
),
later_copies AS (
    SELECT _source_line FROM (
        SELECT
            _source_line,
            row_number() OVER (PARTITION BY {bronze_columns} ORDER BY _source_line) AS copy
        FROM keys_shared
    ) AS numbered_copies
    WHERE copy > 1
),
alone_checked AS NOT MATERIALIZED ({_row_checked_sql(raw_file, "keyed_rows ANTI JOIN shared_keys USING (_key_hash)")}
),
shared_checked AS ({_row_checked_sql(raw_file, "keys_shared ANTI JOIN later_copies USING (_source_line)")}
),
key_versions AS (
    SELECT
        {key},
        count(DISTINCT md5(concat_ws(chr(31), {content}))) FILTER (WHERE row_rule IS NULL)
            AS valid_versions,
        min(_source_line) FILTER (WHERE row_rule IS NULL) AS first_valid_line
    FROM shared_checked
    GROUP BY {key}
),
key_checked AS (
    SELECT
        alone_checked.*,
        CAST(NULL AS BIGINT) AS valid_versions,
        CAST(NULL AS BIGINT) AS first_valid_line
    FROM alone_checked
    UNION ALL
    SELECT shared_checked.*, key_versions.valid_versions, key_versions.first_valid_line
    FROM shared_checked
    LEFT JOIN key_versions ON {key_match}
)
SELECT
    *,
    CASE
        WHEN row_rule IS NOT NULL THEN row_rule
        WHEN valid_versions > 1 THEN 'conflicting_duplicate'
        WHEN _source_line > first_valid_line THEN 'duplicate_copy'
    END AS rule,
    CASE
        WHEN row_rule IS NOT NULL AND first_valid_line IS NOT NULL THEN
            row_reason || '; the valid copy on line ' || first_valid_line || ' is kept'
        WHEN row_rule IS NOT NULL THEN row_reason
        WHEN valid_versions > 1 THEN
            'valid copies of {key} = ' || concat_ws(' / ', {key_text(raw_file)})
            || ' disagree (' || valid_versions || ' versions); fix the export and re-run'
        WHEN _source_line > first_valid_line THEN
            'same values as line ' || first_valid_line || ', which is kept'
    END AS reason,
    CASE
        WHEN _malformed IS NULL THEN json_object({raw_json})
        ELSE json_object('record', left(_raw_record, {RAW_RECORD_SHOWN}))
    END AS raw_row
FROM key_checked"""


def raw_json_columns(raw_file: RawFile) -> str:
    return ", ".join(f"raw_{column}" for column in raw_file.columns)


def key_text(raw_file: RawFile) -> str:
    return ", ".join(f"raw_{column}" for column in raw_file.key)
