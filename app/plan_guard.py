"""Which way a sentence moves each ad set's budget, and whether that reverses the budget plan.

A model's bullet can give budget to an ad set the plan cuts, or take it from one the plan feeds,
in many words: "Move £12.7k from A and B to C", "Double C", "Pour every pound into C", "C's
budget should be tripled", "ignore the plan". A bullet is read clause by clause: verbs and
prepositions set a direction (more, less or none) and each ad set named takes the direction in
force where it is named; "from" names the side that gives, "to"/"into" after a move the side
that gets, and ad sets named before the first verb take that verb's direction. Reasons after a
colon or in brackets, conditions ("before", "if"), comparisons ("lower than") and negations ("do
not raise") give none. A false alarm costs one model bullet (replaced by a rule-based action);
a miss would show a reversal of the plan as advice, so the word lists lean to catching.
"""

import re
from collections.abc import Iterator

MORE, LESS = "more", "less"

_SUFFIX = r"(?:e|es|ed|d|s|ing|ting|ping|ped|y|ies|ied|ying)?"
MORE_VERB = re.compile(
    r"(?:increas|rais|boost|doubl|tripl|quadrupl|multipl|grow|grew|expand|add|pour|pump|invest"
    r"|fund|giv|gave|allocat|prioriti[sz]|favou?r|uncap|unpaus|resum|reactivat|restart|scal"
    r"|lift|receiv|deserv|concentrat|maximi[sz]|accelerat|push|inject)" + _SUFFIX
)
"""Verbs that give an ad set more budget ("scale up", "top up", "max out" are made `more`)."""
LESS_VERB = re.compile(
    r"(?:cut|reduc|lower|decreas|paus|stop|trim|halv|drop|slash|shrink|shrank|remov|withdr[ae]w"
    r"|kill|defund|depriori?ti[sz]|limit|cap|throttl|starv|pull|suspend|disabl|deactivat"
    r"|minimi[sz]|shav|curtail|scrap|sunset)" + _SUFFIX
)
"""Verbs that give an ad set less budget ("scale back", "wind down", "switch off" are made
`less`)."""
MOVE_VERB = re.compile(
    r"(?:mov|shift|reallocat|transfer|redirect|redistribut|divert|rebalanc|reassign|put|tak"
    r"|took|free|channel|rout|swap|switch|migrat|reinvest|recycl|repurpos)" + _SUFFIX
)
"""Verbs that move budget: what they name is the side that gives, until "to"/"into"."""
HOLD_VERB = re.compile(
    r"(?:keep|kept|hold|held|maintain|protect|leav|left|preserv|sustain|freez|froz|check|fix"
    r"|review|audit|monitor|watch|investigat|test|verif|confirm|track|compar|refresh|look"
    r"|inspect|diagnos|examin|ensur)" + _SUFFIX
)
"""Verbs that leave the budget where it is, or ask to look first: no direction."""
MORE_WORDS = frozenset({"more", "extra", "additional", "higher", "bigger", "larger", "greater"})
LESS_WORDS = frozenset({"less", "fewer", "smaller", "reduced"})
FROM_WORDS = frozenset({"from", "off"})
TO_WORDS = frozenset({"to", "into", "onto", "toward", "towards"})
BREAK_WORDS = frozenset(
    {
        "before", "until", "unless", "once", "after", "if", "when", "whenever", "while",
        "because", "since", "given", "so", "then", "but", "instead", "than", "therefore",
        "thus", "hence", "whereas", "although", "though", "which", "whose", "where", "except",
        "otherwise",
    }
)  # fmt: skip
"""Words that end what a verb governs: a condition, a reason, a comparison, a contrast."""
PHRASES = (
    (re.compile(r"[’‘]"), "'"),
    (re.compile(r"\b[a-z]+\s+than\b"), " than "),  # "lower than", "rather than": no action
    (re.compile(r"\bno\s+(?:more|extra|additional|further)\b"), " less "),
    (
        re.compile(
            r"\b(?:scal|ramp|dial|wind|turn|step|throttl|pull|cut|hold|draw|roll|eas|taper|switch"
            r"|shut)[a-z]*\s+(?:back|down|off)\b"
        ),
        " less ",
    ),
    (
        re.compile(r"\b(?:scal|ramp|dial|turn|step|top|ratchet|crank|bump|beef)[a-z]*\s+up\b"),
        " more ",
    ),
    (re.compile(r"\bmax(?:es|ed|ing)?\s+out\b"), " more "),
    (re.compile(r"\bin\s+favou?r\s+of\b|\bover\s+to\b"), " to "),
    (re.compile(r"\b(?:away|out)\s+(?:from|of)\b"), " from "),
    (
        re.compile(
            r"\b(?:do|does|did|should|must|could|would|will|can)\s+not\b|\b[a-z]+n't\b|\bnever\b"
            r"|\bavoid(?:ing)?\b|\bwithout\b|\brefrain\b|\bcannot\b|\bnot\b"
        ),
        " not ",
    ),
)
"""Phrases made one word before reading: the direction they stand for, a comparison, a
negation."""
TOKEN = re.compile(
    r"\x00(?P<name>\d+)\x00|(?P<figure>[£$€]?\d+(?:[.,]\d+)*[%a-z]*)|(?P<word>[a-z]+(?:'[a-z]+)?)"
    r"|(?P<comma>,)|(?P<stop>[.;:!?()\[\]{}|—–])|(?P<dash>\s-\s)"
)
IGNORE_PLAN = re.compile(
    r"\b(?:ignor|disregard|overrid|overrul|overturn|bypass|abandon|scrap|ditch|reject|forget"
    r"|skip|revers|undo|drop|contradict|deviat\w*\s+from|go\s+against|throw\s+out)\w*\b"
    r"[^.;:!?]{0,40}?\b(?:plan|planner|recommendations?|optimi[sz]\w*|allocation)\b"
    r"|\b(?:do\s+not|don'?t|never|stop)\s+follow\w*\b[^.;:!?]{0,40}?\b(?:plan|recommendations?)\b"
    r"|\b(?:against|contrary\s+to|despite|regardless\s+of|instead\s+of(?:\s+following)?)"
    r"\s+(?:what\s+)?(?:the|this|that|your|our)\s+(?:budget\s+)?(?:plan|recommendations?)\b",
    re.IGNORECASE,
)
"""A bullet that tells the reader to set the plan aside: whatever else it says, it is not
advice consistent with the plan."""
GROUPS = {
    "donor": "the donors",
    "donors": "the donors",
    "recipient": "the recipients",
    "recipients": "the recipients",
    "at-risk": "the ad sets at risk",
    "at risk": "the ad sets at risk",
}
"""Words that name a whole side of the plan ("give the donors more")."""


def name_forms(names: set[str]) -> dict[str, str]:
    """Each name as a bullet may write it (any case, `_` as a space), to the name."""
    forms = {}
    for name in names:
        for form in (name, name.replace("_", " ")):
            if len(form.strip()) >= 2:
                forms[form.lower()] = name
    return forms


def _joins(left: str, right: str) -> bool:
    """Two characters that would run a name into the word next to it."""
    return (left.isalnum() or left == "_") and (right.isalnum() or right == "_")


def mentions(text: str, forms: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, name) of each name in `text`, left to right, the longest at each place,
    never inside a longer word (`AS_1` is not named by `AS_12`)."""
    lowered = text.lower()
    lengths = sorted({len(form) for form in forms}, reverse=True)
    found, start = [], 0
    while start < len(lowered):
        for length in lengths:
            end = start + length
            form = lowered[start:end]
            if (
                form in forms
                and not (start and _joins(lowered[start - 1], form[0]))
                and not (end < len(lowered) and _joins(form[-1], lowered[end]))
            ):
                found.append((start, end, forms[form]))
                start = end
                break
        else:
            start += 1
    return found


def _clauses(text: str, forms: dict[str, str]) -> Iterator[list[tuple[str, str]]]:
    """The clauses of `text` as (kind, value) tokens, each ad set named as ("name", name)."""
    found = mentions(text, forms)
    names = [name for _, _, name in found]
    marked, last = [], 0
    for index, (start, end, _) in enumerate(found):
        marked += [text[last:start].lower(), f" \x00{index}\x00 "]
        last = end
    marked = "".join([*marked, text[last:].lower()])
    for pattern, replacement in PHRASES:
        marked = pattern.sub(replacement, marked)
    clause: list[tuple[str, str]] = []
    for match in TOKEN.finditer(marked):
        kind = match.lastgroup
        value = match.group(kind)
        if kind in ("stop", "dash") or (kind == "word" and value in BREAK_WORDS):
            yield clause
            clause = []
        elif kind == "name":
            clause.append((kind, names[int(value)]))
        else:
            clause.append((kind, value))
    yield clause


def _is_figure(token: tuple[str, str] | None) -> bool:
    return token is not None and token[0] == "figure"


def _gets(word: str, moving: bool, direction: str | None) -> bool:
    """The side that gets: what follows "to"/"into" after a move or a raise, or "for" after a
    move ("free budget for B")."""
    return (word in TO_WORDS and (moving or direction == MORE)) or (word == "for" and moving)


def _clause_moves(clause: list[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """(name, direction) for each ad set of one clause that a verb or preposition moves."""
    direction: str | None = None
    moving = False  # a move verb or "from" seen: "to"/"into" now names the side that gets
    leading: list[str] = []  # named before any verb: they take the first verb's direction
    before_verb, negated = True, False
    for index, (kind, value) in enumerate(clause):
        following = clause[index + 1] if index + 1 < len(clause) else None
        if kind == "name":
            if direction is not None:
                yield value, direction
            elif before_verb:
                leading.append(value)
            continue
        if kind == "comma" or value == "and":
            negated = False
            continue
        if value == "not":
            negated = True
            continue
        verb, new = True, None
        if HOLD_VERB.fullmatch(value):
            new = None
        elif MORE_VERB.fullmatch(value):
            new = MORE
        elif LESS_VERB.fullmatch(value):
            new = LESS
        elif MOVE_VERB.fullmatch(value):
            new, moving = LESS, True
        else:
            verb = False
            if value in MORE_WORDS:
                new = MORE
            elif value in LESS_WORDS:
                new = LESS
            elif value in FROM_WORDS and not _is_figure(following):
                new, moving = LESS, True
            elif _gets(value, moving, direction) and not _is_figure(following):
                new = MORE
            else:
                continue
        if negated:
            new = None  # "do not raise A", "never give A more": no direction till "and" or ","
        if verb and before_verb:
            if new is not None:
                yield from ((name, new) for name in leading)  # "A's budget should be doubled"
            before_verb, leading = False, []
        direction = new


def budget_moves(text: str, forms: dict[str, str]) -> list[tuple[str, str]]:
    """(name, "more" | "less") for every ad set named in `text` whose budget it moves."""
    return [move for clause in _clauses(text, forms) for move in _clause_moves(clause)]


def reverses_plan(text: str, no_more: set[str], no_less: set[str]) -> bool:
    """True when `text` tells the reader to set the plan aside, or moves budget against it for
    any ad set it names: more for one in `no_more` (cut, capped, at risk), less for one in
    `no_less` (given budget). "The donors", "the recipients" and "at risk" name their side."""
    if IGNORE_PLAN.search(text):
        return True
    forms = {**GROUPS, **name_forms(no_more | no_less)}
    no_more = no_more | {"the donors", "the ad sets at risk"}
    no_less = no_less | {"the recipients"}
    return any(
        (direction == MORE and name in no_more) or (direction == LESS and name in no_less)
        for name, direction in budget_moves(text, forms)
    )
