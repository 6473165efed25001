"""Quoting, written once: every identifier or literal built from data or configuration goes
through these two helpers, so no file header, ad-set name or path can end a quote and add SQL."""


def quote_identifier(name: str) -> str:
    """A DuckDB identifier for any text: wrapped in double quotes, embedded ones doubled."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A DuckDB string literal for any text: wrapped in single quotes, embedded ones doubled."""
    return "'" + value.replace("'", "''") + "'"
