"""Untrusted text (ad-set names and every other string from the data, LM Studio's replies) shown
as text, written once.

Streamlit renders Markdown (and, through it, links, images and its own `:color[…]` directives)
in `st.markdown`, `st.info`, `st.caption`, `st.warning` and most element labels; Plotly renders
`<a href>`, `<b>` and a few other tags in labels, ticks and hover text; spreadsheets run a cell
that starts with `=`, `+`, `-` or `@` as a formula. Each helper here makes a string inert for one
of these sinks:

- `markdown_text(s)`: for anything Streamlit renders as Markdown (a whole sentence that quotes
  data, or just the data inside a sentence of ours);
- `markdown_code(s)`: data shown as inline code (a model version);
- `plain_label(s)`: for Plotly categories, tick text and hover text;
- `csv_text(frame)` / `csv_cell(value)`: every CSV the app offers for download.
"""

import html
import re

import pandas as pd

MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]()!#<>|~$&@:])")
"""Backslash-escaped: every character that starts a Markdown, GFM or Streamlit construct inside
a line (emphasis, code, links, images, raw HTML, entities, tables, strikethrough, math,
autolinks such as `http://…`, `www.…` and e-mail addresses, `:red[…]` directives)."""
WWW = re.compile(r"(www)\.", re.IGNORECASE)
WORD_JOINER = "\u2060"
AUTOLINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\\\.)|(?=\\@)", re.IGNORECASE)
"""Where a word joiner (invisible) goes to break what GFM links by itself after parsing, so
escapes cannot stop it: `http://…`, `www.…` and e-mail addresses."""
LINE_START = re.compile(r"^(\s*|\s*\d+)([-+=]|(?<=\d)\.(?=\s|$))")
"""Block markers that count only at the start of a line: a list item, a setext underline, a
quote, an ordered list (`1.`)."""
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(value: object) -> str:
    """The text of `value` on one line: newlines and other control characters become a space,
    so no value can start a block (a heading, a list, a table) of its own."""
    return CONTROL.sub(" ", "" if value is None else str(value))


def markdown_text(value: object) -> str:
    """`value` as literal text in Streamlit Markdown: what the reader sees is exactly the string
    (backslashes do not show; an invisible word joiner breaks `://`, `www.` and `@`, which GFM
    would otherwise turn into links), and no link, image, HTML tag or formatting comes out of
    it."""
    text = MARKDOWN_SPECIALS.sub(r"\\\1", one_line(value))
    text = WWW.sub(r"\1\\.", text)
    text = AUTOLINK.sub(WORD_JOINER, text)
    return LINE_START.sub(lambda match: match.group(1) + "\\" + match.group(2), text)


def markdown_code(value: object) -> str:
    """`value` as inline code: literal inside the backticks, which it cannot close."""
    text = one_line(value).replace("`", "'").strip()
    return f"`{text}`" if text else markdown_text("n/a")


def plain_label(value: object) -> str:
    """`value` as a Plotly label: the tags Plotly would render (`<a href>`, `<b>`, `<br>`…) are
    escaped as entities, which Plotly shows as the characters they stand for."""
    return html.escape(one_line(value), quote=False)


def unescape_markdown(text: str) -> str:
    """What a reader sees of `markdown_text(s)`, without the invisible word joiners: s on one
    line (for tests and logs)."""
    return re.sub(r"\\(.)", r"\1", text).replace(WORD_JOINER, "")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet treats a cell starting with one of these as a formula (OWASP, CSV injection)."""


def csv_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading `'`, which makes it
    text; numbers and every other value are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(frame: pd.DataFrame) -> str:
    """`frame` as CSV with its text cells neutralised by `csv_cell`: the one way the app writes a
    CSV. Numeric columns stay numbers, negative ones included; headers are the app's own."""
    text_columns = [
        column
        for column in frame.columns
        if pd.api.types.is_object_dtype(frame[column])
        or pd.api.types.is_string_dtype(frame[column])
    ]
    safe = frame.assign(**{column: frame[column].map(csv_cell) for column in text_columns})
    return safe.to_csv(index=False)
