"""DuckDB SQL, as the pipeline writes it, turned into Spark SQL (Spark 4.3, ANSI mode) that gives
the same rows: `to_spark(duckdb_sql)`.

sqlglot does the grammar (`parse_one(read="duckdb")` ... `.sql("spark")`); it already turns
`$name` into `:name` (for `spark.sql(query, args={...})`; `?` stays `?` for `args=[...]`),
`list_contains` into `array_contains`, `* EXCLUDE` into `* EXCEPT`, `date_diff('day', a, b)` into
`datediff(DAY, a, b)`, `unnest` into `explode`, DuckDB's NULL-skipping `concat` into Spark's
`concat` of `coalesce(x, '')`, and adds `NULLS LAST` to ascending sort keys (DuckDB sorts NULLs last, Spark first; DESC puts them last in both). Spark
4.3 runs `ORDER BY ALL NULLS LAST`, `INSERT INTO t BY NAME`, `SEMI JOIN`/`ANTI JOIN`,
`FILTER (WHERE ...)`, window `RANGE BETWEEN INTERVAL n DAYS PRECEDING` on a DATE column, and
`bit_xor`, with the same results.

What sqlglot passes through unchanged but Spark would reject or read differently is rewritten
here, one small function per construct (the "named helpers" of the Spark dialect). Each says
why. Every rewrite is checked against DuckDB by running both engines on the same inputs in
marketing_ml_tests/spark/test_spark_sql.py.

Measured differences that remain (DuckDB 2.0.1 vs Spark 4.3.0 on Java 17):

- `hash(...)` becomes `xxhash64(...)`: different values (and DuckDB's is UBIGINT, Spark's a signed
  BIGINT), so stored `_row_hash`/`_key_hash` and fingerprints are only comparable within one
  engine. They are identities, never shown, so this is by design: rebuild when switching.
- `TRY_CAST(text AS BIGINT)` is passed through: DuckDB also reads '12.5' (as 13), '1e3', '0x10',
  '0b101', '1_000' and ' 12 ', Spark none of them. The pipeline only casts text that matched
  `[+-]?[0-9]+` (cleaning.parse_number_sql), where the two agree (overflow is NULL in both).
- Double → text (`||`, concat, CAST AS VARCHAR) is reformatted to DuckDB's layout ('1e+20',
  '1e-05', '10000000.0', 'nan', 'inf'), but the digits come from Java 17's Double.toString, which
  is not always the shortest: subnormals such as 5e-324 ('4.9e-324') and rare values with 16-17
  significant digits can show one digit more than DuckDB. The formatting is skipped for operands
  the statement itself shows to be text or whole numbers (see _Query.same_text): a table column
  of type DOUBLE that shares its name with a text projection elsewhere in the same statement
  would keep Java's form. Dates before year 0 keep Spark's form (try_strptime cannot make them).
- `json_object` values that are DOUBLE are written by Jackson (1e20 as 1.0E20, DuckDB
  100000000000000000000.0); strings (the pipeline's only values, quotes, backslashes, control
  characters and non-ASCII included), NULLs and integers give byte-identical text.
- DATE ± INTERVAL is cast to TIMESTAMP_NTZ (DuckDB's result type is TIMESTAMP); a TIMESTAMP
  with time zone operand would be shifted to session wall-clock time (the pipeline has none).
- `avg(DECIMAL)` and sums keep Spark's DECIMAL types (DuckDB: DOUBLE and DECIMAL(38, s)); the
  values agree and the pipeline casts them to DOUBLE.
- `round(double, n)` differs on halves: round(2.675, 2) is 2.68 in Spark, 2.67 in DuckDB;
  round(1.45, 1) 1.5 and 1.4. Not used by the pipeline's SQL; passed through.
- `upper`/`lower` follow Java (upper('ß') = 'SS', DuckDB 'ẞ'). Not used; passed through.
- Ties in ordered aggregates (`first(x ORDER BY k)` with equal k) pick an arbitrary row in both
  engines, not necessarily the same one.

DuckDB-only statements (CREATE OR REPLACE, COMMENT ON, ATTACH/DETACH, transactions, SET, PRAGMA,
CHECKPOINT, DESCRIBE, `read_csv`, `duckdb_tables()`, `rowid`, UPDATE ... FROM, ASOF joins)
raise ValueError: the engine layer handles them.
"""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp

__all__ = ["to_spark"]


@lru_cache(maxsize=4096)
def to_spark(duckdb_sql: str) -> str:
    """The Spark SQL for one DuckDB statement; same statement, same text (cached)."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    _refuse_duckdb_only(tree)
    query = _Query(tree)
    # Children before parents: every helper sees operands that are already Spark.
    for node in reversed(list(tree.walk())):
        replacement = _rewrite(node, query)
        if replacement is not node:
            node.replace(replacement)
    return tree.sql("spark")


class _Query:
    """What the helpers need to know about the whole statement."""

    def __init__(self, tree: exp.Expression) -> None:
        self.table_aliases = {a.name for a in tree.find_all(exp.TableAlias) if a.name} | {
            table.name for table in tree.find_all(exp.Table) if not table.alias
        }
        self.projections: dict[str, list[exp.Alias]] = {}
        for alias in tree.find_all(exp.Alias):
            self.projections.setdefault(alias.alias, []).append(alias)

    def same_text(self, value: exp.Expression, seen: frozenset[str] = frozenset()) -> bool:
        """True when DuckDB and Spark write `value` as the same text: text, whole numbers,
        booleans, and columns that every projection of that name in the statement defines so.
        A column of a table (not projected in the statement) is unknown: False."""
        while isinstance(value, exp.Paren):
            value = value.this
        if _is_text(value) or isinstance(value, (exp.Null, exp.Boolean, exp.Count)):
            return True
        if value.is_number:
            return "e" not in value.name.lower()
        if isinstance(value, (exp.Cast, exp.TryCast)) and value.to.this == exp.DataType.Type.DATE:
            # Only year 0 is written differently, and only try_strptime makes one.
            return not any(_is_generated(node) or _is_strptime(node) for node in value.walk())
        if isinstance(value, (exp.Cast, exp.TryCast)):
            return value.to.this in _TEXT_TYPES | _WHOLE_TYPES | {exp.DataType.Type.BOOLEAN}
        if isinstance(value, (exp.Nullif, exp.Coalesce)):
            return all(self.same_text(arg, seen) for arg in [value.this, *value.expressions])
        if isinstance(value, exp.Case):
            results = [branch.args["true"] for branch in value.args.get("ifs", [])]
            results.append(value.args.get("default") or exp.Null())
            return all(self.same_text(result, seen) for result in results)
        if isinstance(value, exp.Column) and value.name not in seen:
            aliases = self.projections.get(value.name)
            return bool(aliases) and all(
                self.same_text(alias.this, seen | {value.name}) for alias in aliases
            )
        return False


_WHOLE_TYPES = {
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.TINYINT,
}


# --- statements the engine layer owns --------------------------------------------------------

_DUCKDB_ONLY_COMMANDS = {"CHECKPOINT", "FORCE", "ATTACH", "DETACH", "VACUUM", "INSTALL", "LOAD"}
_DUCKDB_ONLY_FUNCTIONS = {"read_csv", "read_csv_auto", "duckdb_tables", "duckdb_columns"}


def _refuse_duckdb_only(tree: exp.Expression) -> None:
    """Raise for DuckDB-only statements, so that misuse is visible rather than half-translated."""
    kind = None
    if isinstance(tree, exp.Create) and tree.args.get("replace"):
        kind = "CREATE OR REPLACE"
    elif isinstance(tree, exp.Comment):
        kind = "COMMENT ON"
    elif isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
        kind = "a transaction statement"
    elif isinstance(tree, (exp.Attach, exp.Detach)):
        kind = "ATTACH/DETACH"
    elif isinstance(tree, (exp.Set, exp.Pragma)):
        kind = "SET/PRAGMA"
    elif isinstance(tree, exp.Describe):
        kind = "DESCRIBE"
    elif isinstance(tree, (exp.Command, exp.Column)) and tree.name.upper() in _DUCKDB_ONLY_COMMANDS:
        kind = tree.name.upper()
    elif isinstance(tree, exp.Update) and (tree.args.get("from_") or tree.args.get("from")):
        kind = "UPDATE ... FROM"
    else:
        for node in tree.walk():
            name = node.name.lower() if isinstance(node, (exp.Anonymous, exp.Table)) else ""
            if isinstance(node, exp.ReadCSV) or name in _DUCKDB_ONLY_FUNCTIONS:
                kind = "read_csv/duckdb_tables()" if name != "duckdb_tables" else "duckdb_tables()"
            elif isinstance(node, exp.Column) and node.name.lower() == "rowid":
                kind = "rowid"
            elif (
                isinstance(node, exp.Join) and "ASOF" in str(node.args.get("method") or "").upper()
            ):
                kind = "ASOF JOIN"
            if kind:
                break
    if kind:
        raise ValueError(f"{kind} is DuckDB-only: handled by the engine layer, not to_spark")


# --- expression rewrites ---------------------------------------------------------------------


def _rewrite(node: exp.Expression, query: _Query) -> exp.Expression:
    if isinstance(node, exp.CTE):
        return _drop_materialized_hint(node)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "try_strptime":
            return _try_strptime(node)
        if name == "isfinite":
            return _isfinite(node.expressions[0])
        if name == "hash":
            return _hash(node, query.table_aliases)
    if isinstance(node, exp.RegexpFullMatch):
        return _regexp_full_match(node.this, node.expression)
    if isinstance(node, exp.JSONObject):
        return _json_object(node)
    if isinstance(node, exp.Trim) and node.args.get("expression") is None:
        return _trim_spaces(node)
    if isinstance(node, (exp.First, exp.AnyValue)) and isinstance(node.this, exp.Order):
        return _ordered_aggregate(node)
    if isinstance(node, exp.IgnoreNulls) and _is_generated(node.this):
        return node.this  # any_value(x ORDER BY k) IGNORE NULLS: already skips NULLs
    if isinstance(node, (exp.ArgMax, exp.ArgMin)):
        return _arg_max_min(node)
    if isinstance(node, exp.TryCast) and node.to.this in _DOUBLE_TYPES:
        return _try_cast_double(node.this)
    if isinstance(node, exp.Cast) and node.to.this in _TEXT_TYPES:
        if query.same_text(node.this):
            return _mark_text(exp.cast(node.this, "STRING"))
        return _mark_text(_duckdb_text(node.this))
    if isinstance(node, (exp.DPipe, exp.Concat, exp.ConcatWs)):
        return _text_operands(node, query)
    if isinstance(node, exp.Div):
        return _divide(node.this, node.expression)
    if isinstance(node, exp.Extract) and node.name.upper() in ("DOW", "DAYOFWEEK"):
        return _day_of_week(node.expression)
    if isinstance(node, exp.DayOfWeek):
        return _day_of_week(node.this)
    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval):
        return _date_plus_interval(node)
    return node


def _template(spark_sql: str, **parts: exp.Expression) -> exp.Expression:
    """A Spark expression with `{name}` slots filled by (copies of) `parts`."""
    tree = _parsed_template(spark_sql).copy()
    for column in list(tree.find_all(exp.Column)):
        if column.name.startswith("__slot_") and not column.table:
            column.replace(parts[column.name[len("__slot_") :]].copy())
    tree.meta["spark_sql_generated"] = True
    return tree


@lru_cache(maxsize=64)
def _parsed_template(spark_sql: str) -> exp.Expression:
    return sqlglot.parse_one(spark_sql.replace("{", "__slot_").replace("}", ""), read="spark")


def _is_strptime(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime"


def _is_generated(node: exp.Expression) -> bool:
    return bool(node.meta.get("spark_sql_generated"))


def _string(text: str) -> exp.Literal:
    return exp.Literal.string(text)


# 1. CTE `AS [NOT] MATERIALIZED`: Spark cannot parse the hint; it only affects DuckDB's plan.
def _drop_materialized_hint(cte: exp.CTE) -> exp.CTE:
    cte.set("materialized", None)
    return cte


# 2. try_strptime. DuckDB's %d and %m read 1-2 digits and %Y 1-4 (so '1/8/2024' and '01/08/24',
# year 24, parse), with any ' \t\n\v\f\r' before and after, and the date must exist (year 0,
# 1 BC, included). Spark's to_timestamp patterns are stricter and throw under ANSI, so: capture the
# parts with a regular expression, write them as yyyy-MM-dd and let try_cast(AS DATE) check that
# the day exists. No match gives '0000-00-00', which is not a date: NULL, as in DuckDB.
_WS = r"[ \t\n\x0B\f\r]*"
_STRPTIME_PARTS = {
    # DuckDB format: (regular expression, group of year, month, day)
    "%d/%m/%Y": (rf"^{_WS}([0-9]{{1,2}})/([0-9]{{1,2}})/([0-9]{{1,4}}){_WS}\z", 3, 2, 1),
    "%Y-%m-%d": (rf"^{_WS}([0-9]{{1,4}})-([0-9]{{1,2}})-([0-9]{{1,2}}){_WS}\z", 1, 2, 3),
}


def _try_strptime(node: exp.Anonymous) -> exp.Expression:
    text, fmt = node.expressions
    if not (fmt.is_string and fmt.this in _STRPTIME_PARTS):
        raise ValueError(
            f"try_strptime format {fmt.sql('duckdb')} has no Spark equivalent here: "
            f"add it to spark.sql._STRPTIME_PARTS"
        )
    pattern, year, month, day = _STRPTIME_PARTS[fmt.this]

    def part(group: int, width: int) -> str:
        return f"LPAD(REGEXP_EXTRACT({{x}}, {{pattern}}, {group}), {width}, '0')"

    return _template(
        f"CAST(TRY_CAST({part(year, 4)} || '-' || {part(month, 2)} || '-' || {part(day, 2)} "
        "AS DATE) AS TIMESTAMP_NTZ)",
        x=text,
        pattern=_string(pattern),
    )


# 3. TRY_CAST(text AS DOUBLE). DuckDB reads '1_000' (an underscore between digits), '+-5' (as -5),
# '+nan', '-nan' and whitespace ' \t\n\v\f\r' around; Spark (Java's parseDouble) rejects those
# but reads '1d', '1f' and '0x1p3', which DuckDB rejects. So: accept DuckDB's grammar with a
# regular expression, then drop the underscores and let Spark convert. Text only: other types
# are cast as they are.
_DOUBLE_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_DIGITS = r"[0-9]+(?:_[0-9]+)*"
_DUCKDB_DOUBLE = rf"^\+?-?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?\z"
_DUCKDB_SPECIAL_DOUBLE = r"(?i)^\+?-?(?:nan|inf|infinity)\z"


def _try_cast_double(value: exp.Expression) -> exp.Expression:
    trimmed = _template("REGEXP_REPLACE(CAST({x} AS STRING), {ws}, '')", x=value, ws=_string(_TRIM))
    parsed = _template(
        "CASE"
        " WHEN {s} RLIKE {number} THEN"
        "  TRY_CAST(REGEXP_REPLACE(REPLACE({s}, '_', ''), '^[+]-', '-') AS DOUBLE)"
        " WHEN {s} RLIKE {special} THEN CASE"
        "  WHEN LOWER({s}) LIKE '%nan' THEN CAST('NaN' AS DOUBLE)"
        "  WHEN {s} LIKE '%-%' THEN CAST('-Infinity' AS DOUBLE)"
        "  ELSE CAST('Infinity' AS DOUBLE) END"
        " END",
        s=trimmed,
        number=_string(_DUCKDB_DOUBLE),
        special=_string(_DUCKDB_SPECIAL_DOUBLE),
    )
    if _is_text(value):
        return parsed
    return _template(
        "CASE TYPEOF({x}) WHEN 'string' THEN {parsed} ELSE TRY_CAST({x} AS DOUBLE) END",
        x=value,
        parsed=parsed,
    )


_TRIM = r"^[ \t\n\x0B\f\r]+|[ \t\n\x0B\f\r]+\z"


# 4. regexp_full_match: Spark has RLIKE (a partial match). Anchored with \A and \z, not ^ and $:
# Java's $ also matches before a final line terminator, so '12\n' would pass '[0-9]+'.
def _regexp_full_match(text: exp.Expression, pattern: exp.Expression) -> exp.Expression:
    if pattern.is_string:
        anchored: exp.Expression = _string(rf"\A(?:{pattern.this})\z")
    else:
        anchored = _template(r"CONCAT('\\A(?:', {p}, ')\\z')", p=pattern)
    return exp.RegexpLike(this=text, expression=anchored)


# 4b. trim(x): DuckDB strips every space separator (Unicode Zs: U+0020, the no-break spaces
# U+00A0, U+2007, U+202F, the ideographic space ...) from the ends, Spark only U+0020; tabs and
# line breaks neither. A name ending in U+00A0 was kept whole by Spark and trimmed by DuckDB.
_SPACE_SEPARATORS = r"[\x{20}\x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]"
_TRIM_ENDS = {
    None: rf"^{_SPACE_SEPARATORS}+|{_SPACE_SEPARATORS}+\z",
    "BOTH": rf"^{_SPACE_SEPARATORS}+|{_SPACE_SEPARATORS}+\z",
    "LEADING": rf"^{_SPACE_SEPARATORS}+",
    "TRAILING": rf"{_SPACE_SEPARATORS}+\z",
}


def _trim_spaces(node: exp.Trim) -> exp.Expression:
    pattern = _string(_TRIM_ENDS[node.args.get("position")])
    return _mark_text(_template("REGEXP_REPLACE({x}, {pattern}, '')", x=node.this, pattern=pattern))


# 5. isfinite: no such function in Spark. NULL stays NULL (isnan(NULL) is false, abs(NULL) NULL).
def _isfinite(value: exp.Expression) -> exp.Expression:
    return _template("(NOT (ISNAN({x}) OR ABS({x}) = CAST('Infinity' AS DOUBLE)))", x=value)


# 6. json_object: sqlglot writes JSON_OBJECT('k': v), which Spark cannot parse. to_json keeps NULL
# fields only with ignoreNullFields=false; its escaping of text matches DuckDB's byte for byte.
def _json_object(node: exp.JSONObject) -> exp.Expression:
    pairs: list[exp.Expression] = []
    for pair in node.expressions:
        pairs += [pair.this, pair.expression]
    named_struct = exp.Anonymous(this="NAMED_STRUCT", expressions=pairs)
    return _template("TO_JSON({fields}, MAP('ignoreNullFields', 'false'))", fields=named_struct)


# 7. hash: Spark's hash is 32-bit; xxhash64 is 64-bit like DuckDB's (values differ). A whole row,
# hash(alias), is xxhash64 of struct(alias.*).
def _hash(node: exp.Anonymous, table_aliases: set[str]) -> exp.Expression:
    args = node.expressions
    if (
        len(args) == 1
        and isinstance(args[0], exp.Column)
        and not args[0].table
        and args[0].name in table_aliases
    ):
        row = exp.Column(this=exp.Star(), table=exp.to_identifier(args[0].name))
        args = [exp.Anonymous(this="STRUCT", expressions=[row])]
    return exp.Anonymous(this="XXHASH64", expressions=[arg.copy() for arg in args])


# 8. Ordered aggregates: Spark has no first(x ORDER BY k); min_by/max_by over a key that sorts
# NULL keys where DuckDB does. first keeps a NULL x; any_value skips rows whose x is NULL.
def _ordered_aggregate(node: exp.First | exp.AnyValue) -> exp.Expression:
    order = node.this
    value = order.this
    keys = order.expressions
    descending = {bool(key.args.get("desc")) for key in keys}
    if len(descending) != 1:
        raise ValueError(f"mixed ASC/DESC in {node.sql('duckdb')}: no min_by/max_by equivalent")
    desc = descending.pop()
    fields: list[exp.Expression] = []
    for key in keys:
        nulls_first = bool(key.args.get("nulls_first"))
        # min_by wants the preferred rows smallest, max_by largest.
        null_flag = exp.Is(this=key.this.copy(), expression=exp.Null())
        if nulls_first != desc:
            null_flag = exp.Not(this=null_flag)
        fields += [exp.paren(null_flag), key.this.copy()]
    sort_key: exp.Expression = exp.Anonymous(this="STRUCT", expressions=fields)
    if isinstance(node, exp.AnyValue):
        sort_key = _template("CASE WHEN {x} IS NOT NULL THEN {k} END", x=value, k=sort_key)
    return _template(f"{'MAX_BY' if desc else 'MIN_BY'}({{x}}, {{k}})", x=value, k=sort_key)


# 8b. arg_max/arg_min: DuckDB skips rows whose value is NULL, Spark's max_by/min_by do not.
def _arg_max_min(node: exp.ArgMax | exp.ArgMin) -> exp.Expression:
    function = "MAX_BY" if isinstance(node, exp.ArgMax) else "MIN_BY"
    return _template(
        f"{function}({{x}}, CASE WHEN {{x}} IS NOT NULL THEN {{k}} END)",
        x=node.this,
        k=node.expression,
    )


# 13. Division: DuckDB's `/` is always DOUBLE division (Spark's gives DECIMAL for decimals, e.g.
# clicks * 100.0 / impressions rounded to 6-14 places) and x / 0 is inf, -inf or nan where Spark
# (ANSI) raises. The sign of a zero divisor does not matter in DuckDB (1 / -0.0 is inf); NaN is
# tested first because Spark orders NaN above every number. The zero guard is left out when the
# divisor is NULLIF(..., 0).
def _divide(numerator: exp.Expression, divisor: exp.Expression) -> exp.Expression:
    if _never_zero(divisor):
        return _template("CAST({n} AS DOUBLE) / CAST({d} AS DOUBLE)", n=numerator, d=divisor)
    return _template(
        "CASE WHEN CAST({d} AS DOUBLE) = 0 THEN CASE"
        "  WHEN {n} IS NULL THEN CAST(NULL AS DOUBLE)"
        "  WHEN ISNAN(CAST({n} AS DOUBLE)) OR CAST({n} AS DOUBLE) = 0 THEN CAST('NaN' AS DOUBLE)"
        "  WHEN CAST({n} AS DOUBLE) > 0 THEN CAST('Infinity' AS DOUBLE)"
        "  ELSE CAST('-Infinity' AS DOUBLE) END"
        " ELSE CAST({n} AS DOUBLE) / CAST({d} AS DOUBLE) END",
        n=numerator,
        d=divisor,
    )


def _never_zero(divisor: exp.Expression) -> bool:
    while isinstance(divisor, (exp.Cast, exp.Paren)):
        divisor = divisor.this
    return (
        isinstance(divisor, exp.Nullif)
        and isinstance(divisor.expression, exp.Literal)
        and not divisor.expression.is_string
        and float(divisor.expression.this) == 0
    )


# 14. Numbers and dates as text (`||`, concat, CAST AS VARCHAR). Spark writes doubles as Java does
# ('1.0E20', '1.0E7', 'NaN'), DuckDB as the shortest round trip ('1e+20', '10000000.0', 'nan');
# DuckDB writes year 0 as '0001-01-01 (BC)'. The type is only known to Spark, so the choice is a
# CASE on TYPEOF, which Spark folds while planning; each branch works on the text, so every branch
# is valid for every type.
_TEXT_TYPES = {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR}

# Java writes 1e-3 <= |x| < 1e7 plainly, as DuckDB does ('1234.5', '0.001', '100.0'), and the rest
# as d.dddE[-]n. DuckDB writes plainly down to 1e-4 and up to 1e16, and otherwise d.ddde±nn.
_DOUBLE_TEXT = """CASE
    WHEN {s} = 'NaN' THEN 'nan'
    WHEN {s} = 'Infinity' THEN 'inf'
    WHEN {s} = '-Infinity' THEN '-inf'
    WHEN NOT {s} LIKE '%E%' THEN {s}
    WHEN {e} BETWEEN 7 AND 15 THEN IF({s} LIKE '-%', '-', '')
        || RPAD({m}, {e} + 1, '0') || '.' || IF(LENGTH({m}) > {e} + 1, SUBSTR({m}, {e} + 2), '0')
    WHEN {e} = -4 THEN IF({s} LIKE '-%', '-', '') || '0.000' || REGEXP_REPLACE({m}, '0+$', '')
    ELSE REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE({s}, '[.]0E', 'E'),
        'E([0-9])', 'E+$1'), 'E([+-])([0-9])$', 'E$10$2'), 'E', 'e')
END"""

# DuckDB writes year 0 (1 BC, which try_strptime reads from '01/08/0') as '0001-08-01 (BC)'.
_DATE_TEXT = """CASE WHEN {s} LIKE '0000-%' THEN '0001' || SUBSTR({s}, 5) || ' (BC)' ELSE {s} END"""


def _duckdb_text(value: exp.Expression) -> exp.Expression:
    plain_number = value.is_number and "e" not in value.name.lower()  # DECIMAL or integer
    if value.is_string or plain_number or _is_text(value):
        return exp.cast(value, "STRING")
    text = exp.cast(value.copy(), "STRING")
    exponent = _template(r"CAST(REGEXP_EXTRACT({s}, 'E(-?[0-9]+)$', 1) AS INT)", s=text)
    mantissa = _template(
        r"REGEXP_REPLACE(REGEXP_EXTRACT({s}, '^-?([0-9.]+)E', 1), '[.]', '')", s=text
    )
    return _template(
        "CASE TYPEOF({x}) WHEN 'double' THEN {double} WHEN 'date' THEN {date} ELSE {s} END",
        x=value,
        s=text,
        double=_template(_DOUBLE_TEXT, s=text, e=exponent, m=mantissa),
        date=_template(_DATE_TEXT, s=text),
    )


def _is_text(value: exp.Expression) -> bool:
    """Known to be text without Spark's help: no formatting needed."""
    if isinstance(value, exp.Literal):
        return value.is_string
    if isinstance(value, exp.Cast) and value.to.this in _TEXT_TYPES | {exp.DataType.Type.TEXT}:
        return True
    if _is_generated(value) and value.meta.get("text"):
        return True
    return isinstance(
        value,
        (
            exp.DPipe,
            exp.Concat,
            exp.ConcatWs,
            exp.Trim,
            exp.Upper,
            exp.Lower,
            exp.Left,
            exp.Substring,
            exp.MD5,
            exp.Chr,
            exp.RegexpReplace,
            exp.RegexpExtract,
            exp.Replace,
        ),
    ) or (isinstance(value, exp.Anonymous) and value.name.upper() in {"REPLACE", "TO_JSON"})


def _text_operands(node: exp.Expression, query: _Query) -> exp.Expression:
    """Operands whose text may differ are formatted; the CASE on TYPEOF is costly for Spark to
    analyse (seconds for the cleaning SQL), so operands known to agree are left alone."""
    if isinstance(node, exp.DPipe):
        for side in ("this", "expression"):
            operand = node.args[side]
            if not query.same_text(operand):
                node.set(side, _mark_text(_duckdb_text(operand)))
    else:
        node.set(
            "expressions",
            [
                arg if query.same_text(arg) else _mark_text(_duckdb_text(arg))
                for arg in node.expressions
            ],
        )
    return node


def _mark_text(node: exp.Expression) -> exp.Expression:
    node.meta["text"] = True
    return node


# 12a. EXTRACT(DOW): DuckDB counts Sunday = 0 ... Saturday = 6, Spark Sunday = 1 ... Saturday = 7.
def _day_of_week(day: exp.Expression) -> exp.Expression:
    return _template("CAST(DAYOFWEEK({d}) - 1 AS BIGINT)", d=day)


# 12b. DATE ± INTERVAL is a TIMESTAMP in DuckDB and a DATE in Spark: cast, so that the column types
# (plan_date, for one) agree. Inside a CAST(... AS DATE) the cast is left out.
def _date_plus_interval(node: exp.Add | exp.Sub) -> exp.Expression:
    parent = node.parent
    if isinstance(parent, exp.Cast) and parent.to.this == exp.DataType.Type.DATE:
        return node
    if isinstance(parent, exp.Paren) and isinstance(parent.parent, exp.Cast):
        return node
    return _template("CAST({x} AS TIMESTAMP_NTZ)", x=node)
