"""Grounding against replies a model really sends: figures written the way people write them
(1.68x, 42%, £5.4k, £5,400, 0.42), from any part of the facts, and one action shown once.

The replies come over HTTP from a loopback OpenAI-compatible server (`ScriptedLMStudio`, the
tests' FakeLMStudio with a reply written per test from the facts it was sent, and an optional
delay before it answers)."""

import json
import time
from collections.abc import Callable

import pandas as pd
import pytest

from app import next_steps, queries
from app.budget_plan import PublishedPlan
from app.html_report import default_filters
from app.overview import load_overview
from marketing_ml_tests.support.lm_server import (
    FakeLMStudio,
    ScriptedLMStudio,
    facts_from,
    grounded_bullets,
)

TIMEOUT = 5.0


def settings_for(server: FakeLMStudio) -> next_steps.LMSettings:
    return next_steps.LMSettings.from_env(
        {"LM_ENDPOINT": server.base_url, "LM_TIMEOUT": str(TIMEOUT)}
    )


@pytest.fixture(scope="module")
def facts(served_lakehouse) -> dict:
    served = served_lakehouse
    overview = load_overview(queries.fetcher(served.serving), default_filters(served.serving))
    return next_steps.build_facts(overview)


def asked(facts: dict, script: Callable[[dict], str]) -> next_steps.NextSteps:
    with ScriptedLMStudio(script) as server:
        result = next_steps.ask(facts, settings_for(server))
        assert facts_from(server.chat_requests()[0]) == next_steps.prompt_facts(facts)
    assert result.status == "online", result
    return result


def sources(result: next_steps.NextSteps) -> list[str]:
    return [bullet.source for bullet in result.bullets]


def test_ratios_written_with_a_plain_x_are_grounded(facts):
    """`1.68x` is how most people type ×: the figure is 1.68, not 1.6 followed by a letter
    (which, read as 1.6 ± 0.05, missed the fact 1.68)."""
    low = facts["lowest_roas"][0]
    with_plan = {**facts, "plan": {"marginal_roas_at_current_spend": 1.68, "recipients": 2}}

    def script(sent: dict) -> str:
        plan = sent["plan"]
        return "\n".join(
            [
                f"- Cut spend on {low['ad_set']}: ROAS {low['roas']:.2f}x against a "
                f"{sent['roas_target']:g}x target.",
                f"- Stop adding budget where marginal ROAS is down to "
                f"{plan['marginal_roas_at_current_spend']:.2f}x.",
                f"- Give the freed budget to the {plan['recipients']} recipients in the plan.",
            ]
        )

    result = asked(with_plan, script)
    assert sources(result) == ["lm", "lm", "lm"], result.bullets
    assert result.replaced == 0


def test_every_figure_of_the_facts_counts_in_the_forms_people_write_it(facts):
    """Figures from any part of the facts (here a budget plan's, added to what the dashboard
    sends) as percentages of shares, shares of percentages, thousands rounded to hundreds,
    per cent in words, signed money."""
    with_plan = {
        **facts,
        "plan": {
            "share_of_budget_moved": 0.4234,
            "expected_uplift": 5417.25,
            "uplift_percent_of_revenue": 3.8,
            "marginal_roas_recipients": 2.4367,
        },
    }

    def script(sent: dict) -> str:
        plan = sent["plan"]
        share = sent["under_pacing"]["share_percent"]
        return "\n".join(
            [
                f"- Move {plan['share_of_budget_moved'] * 100:.0f}% of the budget as planned: "
                f"+£{round(plan['expected_uplift'], -2):,.0f} expected revenue.",
                f"- The uplift is {plan['uplift_percent_of_revenue']:.1f} per cent of revenue, "
                f"at a marginal ROAS of {plan['marginal_roas_recipients']:.2f}x.",
                f"- Under-pacing: a share of {share / 100:.2f} of ad-set days "
                f"({sent['under_pacing']['ad_set_days']:,} days) to fix.",
            ]
        )

    result = asked(with_plan, script)
    assert sources(result) == ["lm", "lm", "lm"], result.bullets

    def invented(sent: dict) -> str:
        """The same forms, with figures that are in none of the facts."""
        return "\n".join(
            [
                f"- Overall ROAS {sent['totals']['roas'] + 0.5:.2f}x: hold the mix.",
                "- Move 73% of the budget for +£98,700 expected revenue.",
                f"- Fix pacing on {sent['under_pacing']['ad_set_days'] + 7} ad-set days.",
            ]
        )

    result = asked(with_plan, invented)
    assert sources(result) == ["rules", "rules", "rules"]
    assert result.replaced == 3


def test_a_replacement_never_repeats_an_action_already_shown(facts):
    """The model's first bullet cuts the weakest ad set; the first rule-based action moves
    budget away from the same ad set: the replacement for the ungrounded bullets must be
    another action, and no action is shown twice."""
    low = facts["lowest_roas"][0]

    def script(sent: dict) -> str:
        return "\n".join(
            [
                f"- Cut spend on {low['ad_set']}: ROAS {low['roas']:.2f}× is below the "
                f"{sent['roas_target']:.1f}× target.",
                "- Raise bids by 37.5% everywhere.",
                "- Expect £987.65k more revenue.",
            ]
        )

    result = asked(facts, script)
    assert sources(result) == ["lm", "rules", "rules"]
    texts = [bullet.text for bullet in result.bullets]
    assert not any(text.startswith(f"Shift budget from {low['ad_set']}") for text in texts), texts
    keys = [next_steps.action_key(text, facts) for text in texts]
    assert len(set(keys)) == 3, keys


def test_a_model_repeating_itself_shows_the_action_once(facts):
    low = facts["lowest_roas"][0]

    def script(sent: dict) -> str:
        bullet = (
            f"- Cut spend on {low['ad_set']}: ROAS {low['roas']:.2f}× is below the "
            f"{sent['roas_target']:.1f}× target."
        )
        return "\n".join([bullet, bullet.replace("Cut spend on", "Reduce the budget of"), bullet])

    result = asked(facts, script)
    assert sources(result) == ["lm", "rules", "rules"]
    texts = [next_steps.normalised(bullet.text) for bullet in result.bullets]
    assert len(set(texts)) == 3


def test_the_rule_based_fallback_names_three_different_actions(facts):
    result = next_steps.fallback(facts, "offline", "not reachable", time.monotonic())
    keys = [next_steps.action_key(bullet.text, facts) for bullet in result.bullets]
    assert len(result.bullets) == 3 and len(set(keys)) == 3


# --- what a reader sees --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        ("ROAS \x1b[1;31m2.1x\x1b[0m", "ROAS 2.1x"),  # colour codes: CSI with parameters
        ("\x1b[2J\x1b[H", ""),  # clear the screen: its 2 is no figure
        ("Cut \x1b]0;title 42\x07A", "Cut A"),  # OSC window title, ended by BEL
        ("Cut \x1b]8;;http://x.invalid/9\x1b\\A", "Cut A"),  # OSC 8 hyperlink, ended by ST
        ("Cut \x9b31mA", "Cut A"),  # the one-byte C1 CSI
        ("Cut \x90q1;2\x9cA", "Cut A"),  # a C1 DCS string to its C1 ST
        ("Cut A \x1b[12", "Cut A "),  # a sequence cut off at the end
        ("\u202eCut A\u202c", "Cut A"),  # right-to-left override
        ("\u2066Cut\u2069 A\u200f", "Cut A"),  # bidi isolates, a right-to-left mark
        ("Cut\u200b A\u200d\ufeff\u2060", "Cut A"),  # zero-width space and joiner, BOM, joiner
        ("1\u00ad234", "1234"),  # a soft hyphen inside a figure
        ("Cut A\x00\x07\x7f\x81", "Cut A"),  # C0, DEL and C1 controls
        ("lone \ud800surrogate", "lone surrogate"),
        ("a\u2028b\x85c\r\nd\re", "a\nb\nc\nd\ne"),  # line ends as str.splitlines sees them
    ],
)
def test_strip_invisible_drops_escape_sequences_controls_and_invisible_characters(raw, seen):
    assert next_steps.strip_invisible(raw) == seen


def test_escape_codes_are_removed_before_a_bullet_is_grounded():
    """`\\x1b[2J` once cited 2 (a fact here): the codes go whole before figures are read, and a
    line of codes alone is no bullet."""
    facts = {"totals": {"ad_sets": 2, "days": 1, "spend": 400.0}}
    reply = "- Clear \x1b[2J\x1b[1;1H\n- \x1b[2J\x1b[0m\n- Cut spend by £400\n- Hold 2 ad sets"
    bullets = next_steps.parse_bullets(reply)
    assert bullets == ["Clear", "Cut spend by £400", "Hold 2 ad sets"]
    assert [next_steps.is_grounded(bullet, facts) for bullet in bullets] == [False, True, True]


# --- the contradiction guard, every ad set of the plan, every direction ----------------------------


def planned(ad_sets: list[tuple[str, str, str, float, float]]) -> PublishedPlan:
    """A published plan from (id, name, role, change, under-pacing risk) rows."""
    frame = pd.DataFrame(
        [
            {
                "ad_set_id": ad_set_id,
                "ad_set_name": name,
                "role": role,
                "change": change,
                "current_spend": 500.0,
                "recommended_spend": 500.0 + change,
                "marginal_roas_current": 1.5,
                "under_pacing_risk": risk,
            }
            for ad_set_id, name, role, change, risk in ad_sets
        ]
    )
    summary = {
        "scenario": "same_budget",
        "moved": 1080.0,
        "uplift": 210.0,
        "uplift_low": 120.0,
        "uplift_high": 300.0,
        "interval": 0.9,
        "total_current": 14_500.0,
        "total_recommended": 14_500.0,
    }
    return PublishedPlan(summary, frame)


PLAN = planned(
    [(f"AS_{i:03d}", f"Donor_{i}", "donor", -10.0 * i, 0.1) for i in range(1, 13)]
    + [(f"AS_{100 + i}", f"Recipient_{i}", "recipient", 10.0 * i, 0.1) for i in range(1, 13)]
    + [
        ("AS_201", "Brand Search", "donor", -300.0, 0.1),
        ("AS_202", "Brand", "recipient", 300.0, 0.1),
        ("AS_301", "Capped_1", "capped", 0.0, 0.1),
        ("AS_401", "Risky_1", "unchanged", 0.0, 0.8),
        ("AS_402", "Steady_1", "unchanged", 0.0, 0.1),
    ]
)
"""13 donors and 13 recipients (the facts name the five largest of each: Brand Search, Donor_12
to Donor_9; Brand, Recipient_12 to Recipient_9), one capped ad set and one at risk."""


def plan_only_facts() -> dict:
    """The plan's facts as the background thread gets them: through JSON."""
    return json.loads(next_steps.facts_json({"budget_plan": next_steps.plan_facts(PLAN)}))


@pytest.mark.parametrize(
    "bullet",
    [
        "Move £1,080 a day from Recipient_3 and Recipient_4 to Donor_2: +£210 expected revenue.",
        "Double Risky_1's budget: 80% is only a risk.",
        "Double the budget of AS_301.",
        "Pour every pound into Donor_3 and ignore the plan.",
        "Scale up AS_002 to £600 a day.",
        "Shift £500 into Donor_4.",
        "Take £500 from Recipient_5 and give it to Donor_6.",
        "Donor_7's budget should be tripled.",
        "Boost Donor_8 from £420 to £600 a day.",
        "Double Brand Search.",
        "Give the donors more budget.",
        "Pause Recipient_2 until ROAS recovers.",
        "Cut AS_103's budget by 20%.",
        "Scale back Recipient_6 by 10%.",
        "Override the optimiser's recommendation this week.",
        "Disregard the budget plan: spend £14,500 as before.",
    ],
)
def test_a_bullet_reversing_the_plan_for_any_ad_set_it_names_is_caught(bullet):
    """More budget for a donor, a capped ad set or one at risk, less for a recipient, or "set
    the plan aside": for ad sets beyond the five the facts name, by name or id, in the words a
    model uses ("move … from … to …", "double", "pour into", "should be tripled", "scale back")."""
    assert next_steps.contradicts_plan(bullet, plan_only_facts())


def test_bullets_that_follow_the_plan_are_kept():
    """The plan's own actions, moves in its direction, comparisons and reasons naming the other
    side, negations, and names inside longer names (Brand is a recipient, Brand Search a
    donor) are no reversal."""
    facts = plan_only_facts()
    plan = facts["budget_plan"]
    consistent = [
        next_steps.plan_move_action(plan),
        next_steps.plan_delivery_action(plan, {"under_pacing": {"worst": []}}),
        "Move £1,080 a day from Donor_2 and Donor_3 to Recipient_3 and Recipient_4.",
        "Cut Donor_3 by 20% (ROAS 0.8x, lower than Recipient_2's 2.1x).",
        "Raise Recipient_2: its marginal ROAS is higher than Donor_2's.",
        "Check delivery on Risky_1 before it gets more budget: 80% risk.",
        "Do not increase Donor_4's budget: ROAS 0.9x.",
        "Double Brand: ROAS 3x.",
        "Cut Brand Search by £300 a day.",
        "Keep Steady_1 at £500 a day.",
        "Cut AS_005 to free budget for AS_105.",
        "Given Donor_5's ROAS of 0.7x, cut it by £50.",
        "Hold total spend at the plan's £14,500 a day until the next refresh.",
    ]
    assert [text for text in consistent if next_steps.contradicts_plan(text, facts)] == []


def test_every_ad_set_of_the_plan_reaches_the_guard_by_name_and_id_but_not_the_prompt():
    facts = plan_only_facts()
    roles = facts["budget_plan"][next_steps.ALL_ROLES]
    assert {"Donor_1", "AS_001", "Brand Search", "AS_201"} <= set(roles["donor"])
    assert {"Recipient_1", "AS_101"} <= set(roles["recipient"])
    assert set(roles["capped"]) == {"Capped_1", "AS_301"}
    assert set(roles["at_risk"]) == {"Risky_1", "AS_401"}
    prompt = next_steps.messages(facts)[1]["content"]
    assert '"Donor_1"' not in prompt and "AS_0" not in prompt, "the role lists were sent"
    assert '"Donor_12"' in prompt, "the five largest moves are still named"


def test_a_models_reversal_of_the_plan_is_replaced_over_http(facts):
    """End to end: the facts the dashboard sends (here with the 29-ad-set plan), a reply moving
    budget from a sixth recipient to a sixth donor: replaced; the grounded bullets stay."""
    with_plan = {**facts, "budget_plan": plan_only_facts()["budget_plan"]}

    def script(sent: dict) -> str:
        grounded = grounded_bullets(sent)
        reversal = "Move £1,080 a day from Recipient_3 to Donor_2: +£210 expected revenue a day."
        return "\n".join(f"- {bullet}" for bullet in [reversal, *grounded[1:]])

    result = asked(with_plan, script)
    assert sources(result) == ["rules", "lm", "lm"], result.bullets
    assert not any("Recipient_3 to Donor_2" in bullet.text for bullet in result.bullets)


@pytest.mark.parametrize(
    ("counts", "reason"),
    [
        (
            {"ad_sets_without_curve": 6, "held_moves": 0},
            "no ad set has a response curve yet, so the budget plan cannot price a move.",
        ),
        (
            {"ad_sets_without_curve": 0, "held_moves": 3},
            "the 3 moves the budget plan found are below its minimum move of £50.00 a day.",
        ),
        (
            {"ad_sets_without_curve": 0, "held_moves": 0},
            "the budget plan finds no move within its limits that is expected to earn more.",
        ),
    ],
)
def test_a_plan_that_moves_nothing_says_why_as_its_headline_does(counts, reason):
    """On the original sample no ad set has a curve: "no move would earn more" was untrue."""
    plan = {
        **plan_only_facts()["budget_plan"],
        "donors": [],
        "recipients": [],
        "ad_sets_planned": 6,
        "min_move": 50.0,
        "spend_current_per_day": 1810.0,
        **counts,
    }
    action = next_steps.plan_move_action(plan)
    assert action == f"Keep today's £1.81k a day where it is: {reason}"
    assert next_steps.is_grounded(action, {"budget_plan": plan})
