"""Whether a reply's bullet may be shown: every number it cites matches a fact, no two
bullets ask for the same action, and the untrusted text is cleaned (control and invisible
characters, links, HTML) and cut to one line first."""

import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from app.next_steps.facts import prompt_facts

MAX_REPLY_CHARS = 16_000
"""Ten times what `max_tokens=400` lets a model write: anything longer is not a reply to us."""


MAX_BULLET_CHARS = 300
"""A bullet is one sentence: a model's longer one is replaced; a rule-based one (a long ad-set
name) is cut at a word boundary."""


NUMBER = re.compile(
    r"(?<![\w.])[-+−]?(?>(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?)"
    r"(?:\s?(k|m|bn|thousand|million|billion)(?![a-z]))?"
    r"(\s?(?:%|per\s?cent\b|percent\b|pct\b|pp\b|percentage points?\b))?",
    re.IGNORECASE,
)
"""A figure as people write it: `5,417`, `5417.5`, `£5.4k`, `£0.34m`, `1.68x`, `1.68×`, `42%`,
`−3.2 per cent`. The digits are read atomically, so `1.68x` is 1.68 (never 1.6 followed by a
letter); k/m/bn multiply, and a percent sign says it may be a share written ×100."""
MULTIPLIERS = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "million": 1e6,
    "bn": 1e9,
    "billion": 1e9,
}
ROUND_THOUSANDS_FROM = 1_000
"""A whole number of at least this size written with trailing zeros (`£5,400`) is taken as
rounded to them; smaller ones (`100 days`) are exact."""


def _leaves(value) -> Iterator:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        yield len(value)  # "the 3 weakest ad sets": a list's length is a figure of the facts
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def fact_numbers(facts: dict) -> list[float]:
    """Every number in the facts (whatever its key: totals, forecasts, a plan's figures), and the
    length of every list, as magnitudes: a sign is written as "fell" or "−" alike."""
    return sorted(
        {
            abs(float(leaf))
            for leaf in _leaves(facts)
            if not isinstance(leaf, bool)
            and isinstance(leaf, int | float)
            and math.isfinite(float(leaf))
        }
    )


def _date_forms(text: str) -> set[str]:
    """An ISO date in the facts as people write it: `14 Mar 2024`, `14 March`, `14/03/2024`…"""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return set()
    forms = set()
    for number in {f"{day.day}", f"{day.day:02d}"}:
        for month in (f"{day:%b}", f"{day:%B}"):
            forms |= {f"{number} {month} {day.year}", f"{number} {month}", f"{month} {number}"}
        forms |= {f"{number}/{day.month:02d}/{day.year}", f"{number}/{day.month}/{day.year}"}
    return forms


def fact_strings(facts: dict) -> list[str]:
    """Names, ids and dates (also as people write dates): removed from a bullet before its
    numbers are read (an ad set called `Travelers_25-45` cites no figure)."""
    strings = {leaf for leaf in _leaves(facts) if isinstance(leaf, str) and len(leaf) >= 3}
    strings |= {text.replace("_", " ") for text in strings}
    strings |= {form for text in list(strings) for form in _date_forms(text)}
    return sorted(strings, key=len, reverse=True)


@dataclass(frozen=True)
class Cited:
    """A figure in a bullet: its value, how far it may be from a fact given the precision it was
    written with, and whether it was written as a percentage."""

    value: float
    tolerance: float
    percent: bool


def cited_numbers(text: str, strings: list[str]) -> list[Cited]:
    """Each number in `text`: the tolerance is half a unit of the last digit it was written with
    (of the last non-zero digit for a whole number from a thousand up), times its multiplier."""
    for string in strings:
        text = re.sub(re.escape(string), " ", text, flags=re.IGNORECASE)
    cited = []
    for match in NUMBER.finditer(text):
        whole, decimals, suffix, percent = match.groups()
        multiplier = MULTIPLIERS[suffix.lower()] if suffix else 1.0
        digits = whole.replace(",", "")
        value = float(digits + (decimals or "")) * multiplier
        if decimals:
            step = 10.0 ** -(len(decimals) - 1)
        elif not suffix and float(digits) >= ROUND_THOUSANDS_FROM:
            step = 10.0 ** (len(digits) - len(digits.rstrip("0")))
        else:
            step = 1.0
        cited.append(Cited(value, step * multiplier / 2, bool(percent)))
    return cited


def _forms(number: float, percent: bool) -> tuple[float, ...]:
    """What a fact may be written as: itself; a share (0.42) as a percentage (42%); a percentage
    (42.0) as a share (0.42)."""
    return (number, number * 100) if percent else (number, number / 100)


def matches_a_fact(cited: Cited, numbers: list[float]) -> bool:
    slack = cited.tolerance + 1e-9 + abs(cited.value) * 1e-9
    return any(
        abs(cited.value - form) <= slack
        for number in numbers
        for form in _forms(number, cited.percent)
    )


def is_grounded(text: str, facts: dict) -> bool:
    """At least one figure, and every figure equal to a fact the model was sent within its
    written rounding (every ad set's name and id, sent or not, is a name, not figures)."""
    numbers = fact_numbers(prompt_facts(facts))
    cited = cited_numbers(text, fact_strings(facts))
    return bool(cited) and all(matches_a_fact(figure, numbers) for figure in cited)


# --- one action once -------------------------------------------------------------------------

ACTION_KINDS = (
    ("less budget", r"\b(shift|move|reallocat\w*|cut|reduc\w*|lower|pause|trim|pull)\b"),
    ("more budget", r"\b(rais\w*|increas\w*|scale|boost|higher|add)\b.*\bbudget\b"),
    ("delivery", r"\b(deliver\w*|pacing|under-?pac\w*|unspent)\b"),
    ("bids and creative", r"\b(bids?|creatives?)\b"),
    ("hold", r"\b(keep|hold|maintain|protect)\b"),
    ("cpa", r"\bcpa\b"),
    ("target", r"\bto target\b|\bbelow\b.*\btarget\b"),
)
"""What a bullet asks for, first match wins: two bullets asking for the same kind of action on
the same ad sets (or both on none) are one action."""


def normalised(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def action_key(text: str, facts: dict) -> tuple[str, frozenset[str]]:
    """(kind of action, ad sets named) of a bullet, among the ad sets the facts name."""
    lowered = text.lower()
    names = set()
    for name in _ad_set_names(facts):
        for form in {name, name.replace("_", " ")}:
            if form.lower() in lowered:
                names.add(name)
    kind = next(
        (label for label, pattern in ACTION_KINDS if re.search(pattern, lowered)), normalised(text)
    )
    return kind, frozenset(names)


def _ad_set_names(facts) -> set[str]:
    if isinstance(facts, dict):
        found = {facts["ad_set"]} if isinstance(facts.get("ad_set"), str) else set()
        for value in facts.values():
            found |= _ad_set_names(value)
        return found
    if isinstance(facts, list):
        return set().union(*(_ad_set_names(item) for item in facts)) if facts else set()
    return set()


def same_action(first: str, second: str, facts: dict) -> bool:
    """The same words, or the same kind of action on overlapping ad sets (or both on none)."""
    if normalised(first) == normalised(second):
        return True
    (kind, names), (other_kind, other_names) = action_key(first, facts), action_key(second, facts)
    return kind == other_kind and (names & other_names or not (names or other_names))


LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
"""What `str.splitlines` ends a line at: one newline each, before control characters go."""
ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI: \x1b[2J, \x1b[31m, parameters and all
    # OSC, DCS, SOS, PM, APC: a string up to BEL or ST (or the end of its line)
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"  # any other escape
)
"""A terminal escape sequence, whole: its parameters (the `2` of `\\x1b[2J`) are no figures."""
INVISIBLE = frozenset({"Cc", "Cf", "Cs"})
"""Unicode categories removed from a reply: controls, format characters (zero-width spaces and
joiners, bidi embeddings, overrides and isolates, the BOM, soft hyphens, tags) and lone
surrogates."""


def strip_invisible(text: str) -> str:
    """`text` without terminal escape sequences, control characters (newlines and tabs stay)
    or invisible format characters: what is grounded is what a reader sees, in the order they
    see it."""
    text = ESCAPE_SEQUENCE.sub("", LINE_BREAKS.sub("\n", text))
    return "".join(
        char for char in text if char in "\n\t" or unicodedata.category(char) not in INVISIBLE
    )


BULLET = re.compile(r"^\s*(?:[-*•–]|\d{1,2}[.)])\s+(.+?)\s*$")
STRIPPED = (
    (re.compile(r"!\[[^\]]*\]\([^)]*\)?"), " "),  # ![alt](url): the image goes entirely
    (re.compile(r"!\[[^\]]*\]\[[^\]]*\]"), " "),  # ![alt][ref]
    (re.compile(r"\[([^\]]*)\]\([^)]*\)?"), r"\1"),  # [text](url): the text stays
    (re.compile(r"\[([^\]]*)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"^\s*\[[^\]]*\]:\s*\S+.*$"), " "),  # [ref]: url
    (re.compile(r"<[a-z][a-z0-9+.-]*:[^>\s]*>", re.IGNORECASE), " "),  # <http://…> autolinks
    (re.compile(r"<[^>]*>?"), " "),  # any HTML tag, closed or not
    (re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*", re.IGNORECASE), " "),  # bare URLs
)


def strip_links(text: str) -> str:
    """A model's bullet without images, links (their text stays), HTML tags or URLs, on one line:
    only what is left is grounded and shown."""
    for pattern, replacement in STRIPPED:
        text = pattern.sub(replacement, text)
    return re.sub(r"\s+", " ", text).strip()


def shorten(text: str, limit: int = MAX_BULLET_CHARS) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:.-–") + "…"


def parse_bullets(reply: str | None) -> list[str] | None:
    """The first three bullet lines of the reply (its visible text, a reasoning model's <think>
    block removed), bold markers, images, links, tags and URLs stripped; None when there are
    fewer than three or the reply is not text of a reply's size."""
    if not reply or not isinstance(reply, str) or len(reply) > MAX_REPLY_CHARS:
        return None
    reply = strip_invisible(reply)
    reply = re.sub(r"<think>.*?</think>", "", reply, flags=re.DOTALL | re.IGNORECASE)
    bullets = [match.group(1) for line in reply.splitlines() if (match := BULLET.match(line))]
    bullets = [strip_links(re.sub(r"\*\*(.+?)\*\*", r"\1", bullet)) for bullet in bullets]
    return bullets[:3] if len(bullets) >= 3 else None
