"""Three "Next steps" from LM Studio, grounded in the figures on screen, with a rule-based fallback.

The facts go to the model as JSON data (ad set names are data, never instructions). A bullet is
kept only when it cites at least one figure and every number in it matches a fact within the
rounding it was written with; anything else is replaced by a rule-based action from the same
facts. Offline, slow, failing or unparseable replies give three rule-based actions, labelled so.
No two bullets shown ask for the same action (the same words, or the same kind of action on the
same ad sets).

The dashboard asks in the background (`Requests`): once per serving file, facts and settings for
the whole process, the rule-based actions shown (labelled) until the answer arrives.

A reply is untrusted text: control characters (whole ANSI escape sequences included) and
invisible or bidi format characters are removed, then Markdown images and links, HTML tags and
URLs are stripped from each bullet before it is grounded (what is left must still cite the
facts); a bullet longer than `MAX_BULLET_CHARS` is not "one line" and is replaced, and so is one
that reverses the budget plan for any ad set it names (`contradicts_plan`). The exchange itself
(`app.lm_http`) ends at one deadline, follows no redirect and stops reading a body past
`MAX_RESPONSE_BYTES`; a reply longer than `MAX_REPLY_CHARS` is not parsed, and any failure (HTTP
errors, a body that is not JSON or not a chat completion, a timeout, a refused reply) falls back
to the rule-based actions. The dashboard escapes what is left (`app.text.markdown_text`).

The package, by step: `facts` (what is on screen, as JSON), `grounding` (may a bullet be shown),
`actions` (the rule-based actions and the plan guard), `client` (one exchange with LM Studio) and
`background` (asking without holding a page up). This module re-exports what the dashboard, the
report and the tests use, so `from app import next_steps; next_steps.build_facts(...)` works.
"""

from app.next_steps.actions import (
    contradicts_plan,
    plan_delivery_action,
    plan_move_action,
    rule_based_actions,
)
from app.next_steps.background import MAX_IN_FLIGHT, Requests, pending, request_key, status_line
from app.next_steps.client import (
    MAX_RESPONSE_BYTES,
    Bullet,
    LMSettings,
    NextSteps,
    ask,
    base_url,
    fallback,
    ground,
    messages,
    refused,
)
from app.next_steps.facts import (
    ALL_ROLES,
    PLAN_NAMED,
    build_facts,
    facts_json,
    plan_facts,
    prompt_facts,
)
from app.next_steps.grounding import (
    MAX_BULLET_CHARS,
    action_key,
    is_grounded,
    normalised,
    parse_bullets,
    same_action,
    shorten,
    strip_invisible,
)

__all__ = [
    "ALL_ROLES",
    "Bullet",
    "LMSettings",
    "MAX_BULLET_CHARS",
    "MAX_IN_FLIGHT",
    "MAX_RESPONSE_BYTES",
    "NextSteps",
    "PLAN_NAMED",
    "Requests",
    "action_key",
    "ask",
    "base_url",
    "build_facts",
    "contradicts_plan",
    "facts_json",
    "fallback",
    "ground",
    "is_grounded",
    "messages",
    "normalised",
    "parse_bullets",
    "pending",
    "plan_delivery_action",
    "plan_facts",
    "plan_move_action",
    "prompt_facts",
    "refused",
    "request_key",
    "rule_based_actions",
    "same_action",
    "shorten",
    "status_line",
    "strip_invisible",
]
