"""Hostile data text: names and model cards built to break Markdown, HTML and spreadsheets,
and how a CommonMark renderer (as a browser would meet the text) shows them."""

import html
import re
import shutil
from pathlib import Path

import duckdb
from markdown_it import MarkdownIt

from app.text import WORD_JOINER
from marketing_ml_tests.support.lakehouse import Lakehouse

FORMULA_PREFIXES = ('=HYPERLINK("{base}/csv","x")', "+1", "-1+1", "@SUM(1+1)")


OTHER_PREFIXES = (
    "Plain",
    "Bold **b** __u__ `c`",
    ":red[x] $x$ ~~s~~ # h |",
    "www.example.invalid",
    "{base}/bare",
    "Set",
)


PAYLOAD = (
    "![p]({base}/img{i}.png) <img src={base}/tag{i}.png> [click]({base}/link{i}) "
    '<a href="{base}/a{i}">a</a> <b>bold</b>'
)


def hostile_names(base: str, count: int) -> list[str]:
    """One name per ad set: a formula or Markdown prefix, then an image, a raw <img>, a link, a
    raw <a href> and <b> pointing at `base` (every name carries them all, so whichever name a
    sentence quotes, it quotes them)."""
    prefixes = [*FORMULA_PREFIXES, *OTHER_PREFIXES]
    return [
        f"{prefixes[i % len(prefixes)]} {PAYLOAD} #{i}".format(base=base, i=i) for i in range(count)
    ]


def hostile_serving_file(served: Lakehouse, target: Path, base: str) -> dict[str, str]:
    """A copy of the served file whose ad sets carry hostile names and whose model cards and
    scores carry hostile text; returns ad_set_id -> name."""
    shutil.copy(served.serving, target)
    with duckdb.connect(str(target)) as connection:
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT ad_set_id FROM gold.daily_adset_metrics ORDER BY ad_set_id"
            ).fetchall()
        ]
        names = dict(zip(ids, hostile_names(base, len(ids)), strict=True))
        for ad_set_id, name in names.items():
            connection.execute(
                "UPDATE gold.daily_adset_metrics SET ad_set_name = ? WHERE ad_set_id = ?",
                [name, ad_set_id],
            )
        text = f"v1 ![m]({base}/model.png) <img src={base}/model-tag.png>"
        for table in ("models.pacing_risk_model", "models.conversion_model"):
            connection.execute(f"UPDATE {table} SET predicts = ?, model_version = ?", [text, text])
        for table in ("gold.scored_adsets", "gold.scored_conversions"):
            connection.execute(f"UPDATE {table} SET model_version = ?", [text])
    return names


MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


RAW_TAG = re.compile(r"<(img|a|b|s|del|table|h\d)\b", re.IGNORECASE)
"""Tags only data could make: the app itself writes bold, italics and code, never these."""


def rendered(markdown: str) -> str:
    """The HTML a CommonMark renderer (raw HTML allowed, as a browser would meet it) makes."""
    return MARKDOWN.render(markdown)


def rendered_text(markdown: str) -> str:
    """The text a reader sees (app.text's invisible word joiners left out)."""
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered(markdown)))
    return text.replace(WORD_JOINER, "")
