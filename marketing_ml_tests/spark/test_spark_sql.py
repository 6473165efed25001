"""to_spark parity: each construct runs on DuckDB as written and on Spark as translated, on the same
inputs chosen to expose the engines' differences, and the rows must be equal."""

from __future__ import annotations

import datetime
import decimal
import math
import shutil
import tempfile

import duckdb
import pytest
from pyspark.sql import SparkSession

from marketing_ml.storage.spark.spark_sql import to_spark


@pytest.fixture(scope="module")
def spark():
    warehouse = tempfile.mkdtemp(prefix="spark-warehouse-")
    session = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", warehouse)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    assert session.conf.get("spark.sql.ansi.enabled") == "true"
    yield session
    session.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


@pytest.fixture
def engines(spark):
    """A fresh DuckDB connection and the shared Spark session; `load` puts a table in both."""
    connection = duckdb.connect()

    def load(name: str, schema: str, rows: list[tuple]) -> None:
        connection.execute(f"CREATE TABLE {name} ({schema})")
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            connection.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
        spark.createDataFrame(rows, schema=schema).createOrReplaceTempView(name)

    yield connection, spark, load
    connection.close()
    for view in spark.catalog.listTables():
        if view.isTemporary:
            spark.catalog.dropTempView(view.name)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0) and math.copysign(
            1, a
        ) == math.copysign(1, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_parity(engines, duckdb_sql: str, params=None, spark_args=None) -> list[tuple]:
    """Run on both; equal rows (in order) and equal values, types included. DuckDB's rows."""
    connection, spark, _ = engines
    expected = [tuple(row) for row in connection.execute(duckdb_sql, params or []).fetchall()]
    spark_sql = to_spark(duckdb_sql)
    actual = [tuple(row) for row in spark.sql(spark_sql, args=spark_args).collect()]
    assert _same(expected, actual), (
        f"\nDuckDB: {expected}\nSpark:  {actual}\nSpark SQL: {spark_sql[:2000]}"
    )
    return expected


# --- 2. try_strptime ----------------------------------------------------------------------------

DATE_TEXTS = [
    "01/08/2024",
    "1/8/2024",
    "01/08/2024 ",
    " 01/08/2024",
    "01/08/24",
    "31/02/2024",
    "29/02/2023",
    "29/02/2024",
    "2024-1-5",
    "2024-01-05",
    "2024-01-05 ",
    "0001-01-01",
    "10000-01-01",
    "01-08-2024",
    "",
    None,
    "1/13/2024",
    "00/01/2024",
    "+1/08/2024",
    "01/08/0",
    "29/02/0",
    "01/08/2024\t",
    "\n01/08/2024\r",
    "01/08/2024\x0b\x0c",
    "01/08/2024\u0085",
    "01/08/2024\n\n",
    "01/08/2024\xa0",
    "01 /08/2024",
    "001/08/2024",
    "01/08/02024",
    "１/08/2024",
    "29/02/1900",
    "31/12/9999",
    "9999-12-31",
    "0000-02-29",
    "2024-02-30",
    " 2024-01-05",
    "-2024-01-05",
    "2024-01-05T00:00",
    "1-1-1",
    "24-01-05",
]


def test_try_strptime_matches_duckdb_verdicts(engines):
    _, _, load = engines
    load("raw", "id BIGINT, text STRING", list(enumerate(DATE_TEXTS)))
    rows = assert_parity(
        engines,
        "SELECT id, date_diff('day', DATE '1970-01-01', try_strptime(text, '%d/%m/%Y')), "
        "date_diff('day', DATE '1970-01-01', try_strptime(text, '%Y-%m-%d')), "
        "date_diff('day', DATE '1970-01-01', CAST(coalesce(try_strptime(text, '%d/%m/%Y'), "
        "try_strptime(text, '%Y-%m-%d')) AS DATE)) FROM raw ORDER BY id",
    )
    parsed = {DATE_TEXTS[row[0]] for row in rows if row[3] is not None}
    assert {"1/8/2024", "01/08/24", "01/08/0", " 01/08/2024", "2024-1-5"} <= parsed
    assert not {"31/02/2024", "01/08/2024\u0085", "01/08/02024", "10000-01-01"} & parsed


def test_try_strptime_gives_a_timestamp(engines):
    _, _, load = engines
    load("raw", "text STRING", [("29/02/2024",), ("2024-01-05",)])
    assert_parity(
        engines,
        "SELECT try_strptime(text, '%d/%m/%Y'), try_strptime(text, '%Y-%m-%d') FROM raw ORDER BY text",
    )


# --- 3. TRY_CAST ---------------------------------------------------------------------------------

NUMBER_TEXTS = [
    " 12.5 ",
    "1_000",
    "1e3",
    "0x10",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "Infinity",
    "1e309",
    "12.",
    ".5",
    "+3",
    "",
    "n/a",
    "１２",
    "1 000",
    "_1",
    "1_",
    "1__0",
    "1._5",
    "1_.5",
    "1.5_0",
    "1e1_0",
    "1_e10",
    "\t12\n",
    "12\x0b",
    "1d",
    "1f",
    "0x1p3",
    "+-5",
    "-+5",
    "+-inf",
    "-nan",
    "+nan",
    "INF",
    "infinit",
    "1e-400",
    "-0",
    "1.7976931348623157e308",
    "1,234.50",
    "1e",
    ".",
    "-",
    "12\xa0",
    "00012",
    "99999999999999999999",
    "-12",
    None,
]


def test_try_cast_double_accepts_what_duckdb_accepts(engines):
    _, _, load = engines
    load("raw", "id BIGINT, text STRING", list(enumerate(NUMBER_TEXTS)))
    rows = assert_parity(
        engines,
        "SELECT id, TRY_CAST(replace(text, ',', '') AS DOUBLE) FROM raw ORDER BY id",
    )
    assert rows[NUMBER_TEXTS.index("1_000")][1] == 1000.0


def test_try_cast_double_of_numbers_is_unchanged(engines):
    _, _, load = engines
    load(
        "numbers",
        "i BIGINT, d DECIMAL(18, 6), x DOUBLE",
        [(3, decimal.Decimal("1.5"), 2.5), (None, None, None)],
    )
    assert_parity(
        engines,
        "SELECT TRY_CAST(i AS DOUBLE), TRY_CAST(d AS DOUBLE), TRY_CAST(x AS DOUBLE) FROM numbers ORDER BY i",
    )


def test_guarded_bigint_cast(engines):
    """cleaning.parse_number_sql: only text matching [+-]?[0-9]+ reaches TRY_CAST AS BIGINT."""
    _, _, load = engines
    load("raw", "id BIGINT, text STRING", list(enumerate(NUMBER_TEXTS + ["12\n", "\n12"])))
    assert_parity(
        engines,
        "SELECT id, CASE WHEN regexp_full_match(replace(text, ',', ''), '[+-]?[0-9]+') "
        "THEN TRY_CAST(replace(text, ',', '') AS BIGINT) END FROM raw ORDER BY id",
    )


# --- 4-6. regexp_full_match, isfinite, json_object ------------------------------------------------


def test_regexp_full_match_is_anchored_like_re2(engines):
    _, _, load = engines
    load(
        "raw",
        "id BIGINT, text STRING",
        list(enumerate(["12", "12\n", "a12", "12a", "", None, "+7"])),
    )
    assert_parity(
        engines,
        "SELECT id, regexp_full_match(text, '[+-]?[0-9]+'), regexp_full_match(text, '1|12') "
        "FROM raw ORDER BY id",
    )


def test_isfinite(engines):
    _, _, load = engines
    values = [1.5, -0.0, float("nan"), float("inf"), float("-inf"), None, 1e308]
    load("numbers", "id BIGINT, x DOUBLE", list(enumerate(values)))
    assert_parity(engines, "SELECT id, isfinite(x), NOT isfinite(x) FROM numbers ORDER BY id")


def test_json_object_text_is_byte_identical(engines):
    _, _, load = engines
    texts = [
        'a"b',
        "back\\slash",
        "new\nline",
        "tab\tx",
        "\x01\x1f\x7f",
        "\u2028é€😀",
        "/<>&'",
        "\b\f\r",
        "",
        None,
        "x" * 30,
        "ab😀cd",
    ]
    load(
        "raw",
        "id BIGINT, a STRING, n BIGINT",
        [(i, t, i if i % 3 else None) for i, t in enumerate(texts)],
    )
    assert_parity(
        engines,
        "SELECT id, json_object('a', a, 'n', n, 'left', left(a, 3), 'k\"ey', a) FROM raw ORDER BY id",
    )


# --- 7. hash ----------------------------------------------------------------------------------


def test_hash_is_a_64_bit_fingerprint_in_spark(engines):
    """Values differ by design: only that equal rows hash equal and different rows differently."""
    connection, spark, load = engines
    load("rows_", "a BIGINT, b STRING", [(1, "x"), (1, "x"), (2, "x"), (1, None)])
    sql = (
        "SELECT count(DISTINCT h), count(DISTINCT r) FROM (SELECT hash(a, b) AS h, "
        "hash(input_rows) AS r FROM rows_ AS input_rows)"
    )
    assert_parity(engines, sql)
    spark.sql(to_spark("SELECT CAST(bit_xor(hash(t)) AS VARCHAR) FROM rows_ AS t")).collect()


# --- 8. ordered aggregates ------------------------------------------------------------------------


def test_ordered_aggregates_and_arg_max(engines):
    _, _, load = engines
    load(
        "events",
        "g BIGINT, x STRING, k BIGINT",
        [
            (1, "a", None),
            (1, None, 5),
            (1, "c", 3),  # NULL key last, NULL value
            (2, "p", None),
            (2, "q", None),  # only NULL keys
            (3, None, 1),
            (3, "s", 2),  # smallest key has a NULL value
            (4, None, None),
        ],
    )
    assert_parity(
        engines,
        "SELECT g, first(x ORDER BY k NULLS LAST) IS NOT NULL OR g = 3, "
        "any_value(x ORDER BY k DESC), any_value(x ORDER BY k), arg_max(x, k), arg_min(x, k), "
        "first(x ORDER BY k DESC NULLS FIRST) IS NULL "
        "FROM events WHERE g <> 2 GROUP BY g ORDER BY g",
    )
    assert_parity(
        engines,
        "SELECT g, first(x ORDER BY k NULLS LAST) IN ('p', 'q'), any_value(x ORDER BY k DESC) "
        "IN ('p', 'q') FROM events WHERE g = 2 GROUP BY g",
    )
    assert_parity(
        engines,
        "SELECT g, first(x ORDER BY k NULLS LAST) FROM events WHERE g IN (1, 3) GROUP BY g ORDER BY g",
    )


# --- 9. parameters --------------------------------------------------------------------------------


def test_named_list_parameter_and_positional_parameters(engines):
    connection, spark, load = engines
    load(
        "daily",
        "ad_set_id STRING, date DATE, spend DOUBLE",
        [
            ("a", datetime.date(2024, 8, 1), 1.0),
            ("b", datetime.date(2024, 8, 2), 2.0),
            ("c", datetime.date(2024, 8, 9), 4.0),
        ],
    )
    sql = "SELECT ad_set_id FROM daily WHERE list_contains($ids, ad_set_id) ORDER BY ALL"
    assert_parity(engines, sql, params={"ids": ["a", "c"]}, spark_args={"ids": ["a", "c"]})
    sql = (
        "SELECT ad_set_id, spend FROM daily WHERE ad_set_id IN (SELECT unnest(?)) "
        "AND date BETWEEN ? - INTERVAL 6 DAY AND ? ORDER BY ad_set_id"
    )
    args = [["a", "b", "c"], datetime.date(2024, 8, 8), datetime.date(2024, 8, 9)]
    assert_parity(engines, sql, params=args, spark_args=args)


# --- 10-11, 17. EXCLUDE, ORDER BY ALL, SEMI/ANTI, USING, BY NAME, NULL order ---------------------


def test_select_shapes_and_null_order(engines):
    _, _, load = engines
    load(
        "left_",
        "k BIGINT, v STRING, booster STRING",
        [(1, "x", "b"), (2, None, None), (None, "z", "q"), (3, "w", None)],
    )
    load("right_", "k BIGINT", [(1,), (3,), (None,)])
    assert_parity(
        engines, "SELECT * EXCLUDE (booster), booster IS NULL AS b FROM left_ ORDER BY ALL"
    )
    assert_parity(engines, "SELECT DISTINCT v FROM left_ ORDER BY ALL")
    assert_parity(engines, "SELECT k, v FROM left_ ORDER BY v DESC, k")
    assert_parity(engines, "SELECT * FROM left_ SEMI JOIN right_ USING (k) ORDER BY k")
    assert_parity(engines, "SELECT * FROM left_ ANTI JOIN right_ USING (k) ORDER BY k")
    assert_parity(engines, "SELECT k, row_number() OVER (ORDER BY v) AS n FROM left_ ORDER BY n")
    assert_parity(
        engines,
        "WITH a AS NOT MATERIALIZED (SELECT k FROM left_), b AS MATERIALIZED (SELECT k FROM right_) "
        "SELECT count(*) FILTER (WHERE a.k IS DISTINCT FROM 2), count(*) FROM a JOIN b USING (k)",
    )
    assert_parity(engines, "SELECT k FROM left_ EXCEPT SELECT k FROM right_ ORDER BY k")


def test_insert_by_name(engines):
    connection, spark, _ = engines
    connection.execute("CREATE TABLE target (a BIGINT, b VARCHAR)")
    spark.sql("DROP TABLE IF EXISTS target")
    spark.sql("CREATE TABLE target (a BIGINT, b STRING) USING parquet")
    try:
        sql = "INSERT INTO target BY NAME SELECT 'x' AS b, 1 AS a"
        connection.execute(sql)
        spark.sql(to_spark(sql))
        assert_parity(engines, "SELECT a, b FROM target")
    finally:
        spark.sql("DROP TABLE IF EXISTS target")


# --- 12. dates ------------------------------------------------------------------------------------


def test_date_arithmetic_and_windows(engines):
    _, _, load = engines
    days = [datetime.date(2024, 2, 26) + datetime.timedelta(days=n) for n in (0, 1, 3, 4, 8, 9)]
    load(
        "daily",
        "ad_set_id STRING, date DATE, spend DECIMAL(18, 6)",
        [("a", d, decimal.Decimal(i + 1) / 4) for i, d in enumerate(days)] + [("b", days[0], None)],
    )
    assert_parity(
        engines,
        "SELECT ad_set_id, date, "
        "SUM(spend) OVER (PARTITION BY ad_set_id ORDER BY date RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW), "
        "CASE WHEN LAG(date) OVER (PARTITION BY ad_set_id ORDER BY date) = date - INTERVAL 1 DAY THEN LAG(spend) OVER (PARTITION BY ad_set_id ORDER BY date) END, "
        "date_diff('day', DATE '2024-02-01', date), CAST(EXTRACT(DOW FROM date) AS INTEGER), "
        "date - INTERVAL 1 DAY, CAST(date + INTERVAL 1 YEAR AS DATE) "
        "FROM daily ORDER BY ad_set_id, date",
    )
    assert_parity(
        engines,
        "SELECT ad_set_id, any_value(date) + INTERVAL 1 DAY, arg_max(spend, date) "
        "FROM daily WHERE ad_set_id = 'a' GROUP BY ad_set_id",
    )
    assert_parity(
        engines, "SELECT CAST(current_date + INTERVAL 1 YEAR AS DATE) > current_date, current_date"
    )


# --- 13. division ---------------------------------------------------------------------------------


def test_division_is_double_division_and_zero_is_not_an_error(engines):
    _, _, load = engines
    load(
        "ratios",
        "id BIGINT, clicks BIGINT, impressions BIGINT, spend DOUBLE, revenue DECIMAL(18, 6)",
        [
            (0, 1, 3, 7.0, decimal.Decimal("7")),
            (1, 2, 0, 0.0, decimal.Decimal("0")),
            (2, 0, 0, -1.5, decimal.Decimal("-2.5")),
            (3, None, 0, None, None),
            (4, 12345678901, 7, float("nan"), decimal.Decimal("0.000001")),
            (5, -3, 0, float("inf"), decimal.Decimal("3")),
        ],
    )
    assert_parity(
        engines,
        "SELECT id, clicks * 100.0 / impressions, clicks / impressions, spend / impressions, "
        "revenue / revenue, revenue / 3, revenue / nullif(spend, 0), "
        "CAST(revenue AS DOUBLE) * 1.0 / CAST(NULLIF(spend, 0) AS DOUBLE), spend / -0.0 "
        "FROM ratios ORDER BY id",
    )


# --- 14. numbers and dates as text ------------------------------------------------------------------


DOUBLES = [
    1e20,
    1234.5,
    0.1,
    1.0,
    1e7,
    123456789.0,
    1e15,
    1e16,
    1e-3,
    1e-4,
    1e-5,
    0.00012345,
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    0.0,
    1.7976931348623157e308,
    2e22,
    1.5e300,
    1.2345678901234568e16,
    -12345000000000.0,
    0.3,
    2.675,
    100.0,
    -1e-7,
    123.456e-10,
    1 / 3,
]


def test_number_and_date_text(engines):
    _, _, load = engines
    load(
        "quarantine",
        "id BIGINT, x DOUBLE, n BIGINT, d DATE, m DECIMAL(18, 6), raw STRING",
        [
            (
                i,
                x,
                i * 10**9,
                datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
                decimal.Decimal(i) / 8,
                f"r{i}",
            )
            for i, x in enumerate(DOUBLES)
        ]
        + [(len(DOUBLES), None, None, None, None, None)],
    )
    assert_parity(
        engines,
        "SELECT id, 'x ' || x || ' / ' || n || ' on ' || d || ' m ' || m || ' ' || raw, "
        "CAST(x AS VARCHAR), CAST(d AS VARCHAR), concat_ws('|', raw, CAST(n AS VARCHAR), CAST(m AS VARCHAR)), "
        "'clicks (' || n || ') exceed ' || 1.5 FROM quarantine ORDER BY id",
    )


def test_year_zero_date_text(engines):
    _, _, load = engines
    load("raw", "id BIGINT, text STRING", [(0, "01/08/0"), (1, "01/08/24"), (2, "29/02/0")])
    assert_parity(
        engines,
        "SELECT id, 'reads as ' || CAST(try_strptime(text, '%d/%m/%Y') AS DATE) "
        "FROM raw ORDER BY id",
    )


# --- 15. the rest of the pipeline's functions ---------------------------------------------------------


def test_everyday_functions(engines):
    _, _, load = engines
    load(
        "mixed",
        "id BIGINT, s STRING, a DOUBLE, b DOUBLE, v DOUBLE",
        [
            (0, "  x  ", 1.0, None, 0.30000000000000004),
            (1, "\tx\t", None, None, 2.0000005),
            (2, "", -1.0, 2.0, 0.0000005),
            (3, None, 5.0, 3.0, 1.0000015),
            (4, "ab,c", 0.0, -0.0, -2.5e-6),
        ],
    )
    assert_parity(
        engines,
        "SELECT id, nullif(trim(s), ''), replace(s, ',', ''), greatest(a - b, 0), least(a, b), "
        "coalesce(a, b, 0), a IS DISTINCT FROM b, md5(concat_ws(chr(31), s, CAST(a AS VARCHAR))), "
        "CAST(v AS DECIMAL(18, 6)), abs(a - b) > 0.01 + 0.01 * abs(b), length(s), left(s, 2) "
        "FROM mixed ORDER BY id",
    )
    assert_parity(
        engines,
        "SELECT count(*) FILTER (WHERE a > 0), coalesce(sum(greatest(a - b, 0)), 0), "
        "CAST(sum(CAST(v AS DECIMAL(18, 6))) AS DOUBLE), count(DISTINCT md5(CAST(a AS VARCHAR))) "
        "FROM mixed",
    )


# --- 16. statements the engine layer owns -------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE OR REPLACE TABLE bronze.x AS SELECT 1 AS a",
        "COMMENT ON TABLE bronze.x IS '{}'",
        "ATTACH 'serving.duckdb' AS serving",
        "BEGIN TRANSACTION",
        "COMMIT",
        "CHECKPOINT",
        "SELECT comment FROM duckdb_tables() WHERE schema_name = ?",
        "SELECT * FROM read_csv('x.csv', header = true)",
        "UPDATE t SET line = rowid + 2",
    ],
)
def test_duckdb_only_statements_are_refused(sql):
    with pytest.raises(ValueError, match="DuckDB-only"):
        to_spark(sql)


def test_translation_is_cached():
    sql = "SELECT isfinite(x) FROM t"
    assert to_spark(sql) is to_spark(sql)


# --- the pipeline's own SQL: silver classification of bronze rows ---------------------------------


def load_keyed_bronze(engines, raw_file, bronze: list[tuple]) -> None:
    """`bronze` rows (the file's columns, then file, line, row hash, malformed, reason, record)
    as the view `bronze_rows` in both engines, each with the key hash the engine computes."""
    from marketing_ml.cleaning import key_hash_sql

    connection, spark, load = engines
    schema = ", ".join(f"{column} STRING" for column in raw_file.columns)
    load(
        "bronze_raw",
        f"{schema}, _source_file STRING, _source_line BIGINT, _row_hash BIGINT, "
        "_malformed STRING, _malformed_reason STRING, _raw_record STRING",
        bronze,
    )
    keyed = f"SELECT *, {key_hash_sql(raw_file)} AS _key_hash FROM bronze_raw"
    connection.execute(f"CREATE VIEW bronze_rows AS {keyed}")
    spark.sql(to_spark(keyed)).createOrReplaceTempView("bronze_rows")


def test_trim_strips_the_space_separators_duckdb_strips(engines):
    """DuckDB's trim strips every Unicode space separator from the ends (no-break spaces
    included), Spark's only U+0020: the rewrite strips DuckDB's set, and neither touches tabs,
    zero-width spaces or spaces inside."""
    _, _, load = engines
    ends = [
        " ",
        "\u00a0",
        "\u2007",
        "\u202f",
        "\u3000",
        "\u1680",
        "\u205f",
        "\t",
        "\u200b",
        "\ufeff",
    ]
    texts = [(number, f"{end}a\u00a0b{end}") for number, end in enumerate(ends)]
    load("texts", "id BIGINT, s STRING", [*texts, (len(ends), None), (len(ends) + 1, "\u00a0")])
    rows = assert_parity(engines, "SELECT id, trim(s), ltrim(s), rtrim(s) FROM texts ORDER BY id")
    assert rows[1][1] == "a\u00a0b" and rows[7][1] == "\ta\u00a0b\t"


def test_look_alike_ids_are_quarantined_and_names_show_hidden_characters(engines):
    """The invisible_character rule and the escapes in names (a regular expression of code
    point ranges, unicode/printf/strpos, a lambda over the characters) give the same verdicts,
    reasons and names in both engines, astral characters included."""
    from marketing_ml.cleaning import classified_rows_sql
    from marketing_ml.contract import META_CAMPAIGN_PERFORMANCE as raw_file

    counts = ["100", "10", "5.00", "", "", ""]
    rows = [
        ["01/08/2024", "AS_001", "Real", *counts],
        ["01/08/2024", "AS_\u200b001", "Zero-width space", *counts],
        ["02/08/2024", "AS\u00a0001", "No-break space inside", *counts],
        ["03/08/2024", "AS_001\u2067", "Bidi isolate", *counts],
        ["04/08/2024", "AS_001\t", "Tab", *counts],
        ["05/08/2024", "\U000e0041AS_001", "Tag character", *counts],
        ["06/08/2024", "AS_001\ufe0f", "Variation selector", *counts],
        ["07/08/2024", "\u3000AS_001\u00a0", "Spaces around\u00a0", *counts],
        ["08/08/2024", "AS_001", "\u202eevil\u202c \U000e0041 caf\u00e9\u00ad\u0085", *counts],
    ]
    bronze = [
        (*row, "meta.csv", line, line * 7919, None, None, ",".join(row))
        for line, row in enumerate(rows, start=2)
    ]
    load_keyed_bronze(engines, raw_file, bronze)
    classified = classified_rows_sql(raw_file, "bronze_rows")
    result = assert_parity(
        engines,
        f"SELECT _source_line, ad_set_id, ad_set_name, rule, reason "
        f"FROM ({classified}) AS classified ORDER BY _source_line",
    )
    by_line = {line: (ad_set, name, rule, reason) for line, ad_set, name, rule, reason in result}
    quarantined = [line for line, (*_, rule, _) in by_line.items() if rule]
    assert quarantined == [3, 4, 5, 6, 7, 8]
    assert by_line[3][3].startswith(
        "ad_set_id holds U+200B ZERO WIDTH SPACE at position 4: 'AS_\\u200b001'"
    )
    assert by_line[7][3].startswith(
        "ad_set_id holds U+E0041 TAG LATIN CAPITAL LETTER A at position 1"
    )
    assert by_line[9][:3] == ("AS_001", "Spaces around", None)
    assert by_line[10][1] == "\\u202eevil\\u202c \\U000e0041 caf\u00e9\\u00ad\\u0085"


def test_silver_classification_of_tricky_bronze_rows(engines):
    """cleaning.classified_rows_sql as the pipeline builds it (CTE hints, SEMI/ANTI joins,
    try_strptime, TRY_CAST, regexp_full_match, isfinite, hash, json_object, reasons built with
    ||), on rows that move between silver and quarantine if any helper is off."""
    from marketing_ml.cleaning import classified_rows_sql
    from marketing_ml.contract import META_CAMPAIGN_PERFORMANCE as raw_file

    good = ["a1", "Ad one", "1,000", "10", "12.50", "1.0", "12.5", "1.1"]
    rows = [
        ["01/08/2024", *good],
        ["1/8/2024", *good],  # the same key, the same values: a later copy
        ["2024-08-02", "a1", "Ad one", "1000", "10", "1_000", "", "", ""],
        ["2024-08-02", "a1", "Ad one", "1000", "11", "99", "", "", ""],  # conflicting version
        ["01/08/24", *good],  # year 24: implausible, reason shows the date
        ["01/08/0", *good],  # year 0
        ["31/02/2024", *good],
        [" 03/08/2024\t", "a1", "Ad one", "12\n", "1", "5", "", "", ""],
        ["04/08/2024", "a1", "Ad one", "5", "6", "5", "", "", ""],  # clicks > impressions
        ["05/08/2024", "a1", "Ad one", "5", "1", "nan", "", "", ""],
        ["06/08/2024", "a1", "Ad one", "5", "1", "-Infinity", "", "", ""],
        ["07/08/2024", "a1", "Ad one", "5", "1", "1d", "", "", ""],
        ["08/08/2024", "a1", "Ad one", "１２", "1", "0x10", "", "", ""],
        ["09/08/2024", "", "Ad one", "5", "1", "-2", "", "", ""],
        ["10/08/2024", "a2", 'quote " and \\ and\nnewline', "+5", "-1", "1e309", "", "", ""],
    ]
    bronze = [
        (*row, "meta.csv", line, line * 7919, None, None, ",".join(row))
        for line, row in enumerate(rows, start=2)
    ] + [
        (
            *[None] * len(raw_file.columns),
            "meta.csv",
            40,
            1,
            "too_many_columns",
            "18 > 9",
            'a\tb\n"c',
        )
    ]
    load_keyed_bronze(engines, raw_file, bronze)
    classified = classified_rows_sql(raw_file, "bronze_rows")
    result = assert_parity(
        engines,
        "SELECT _source_line, rule, reason, raw_row, "
        "date_diff('day', DATE '1970-01-01', date), impressions, clicks, spend, ctr "
        f"FROM ({classified}) AS classified ORDER BY _source_line",
    )
    rules = {line: rule for line, rule, *_ in result}
    assert rules[2] is None and rules[3] == "duplicate_copy" and rules[6] == "implausible_date"
    assert rules[4] == rules[5] == "conflicting_duplicate"
    assert rules[11] == "non_finite" and rules[13] == "non_numeric"
