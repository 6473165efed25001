"""Grounding against replies a model really sends: figures written the way people write them
(1.68x, 42%, £5.4k, £5,400, 0.42), from any part of the facts, and one action shown once.

The replies come over HTTP from a loopback OpenAI-compatible server (`ScriptedLMStudio`, the
tests' FakeLMStudio with a reply written per test from the facts it was sent, and an optional
delay before it answers)."""

import json
import time
from collections.abc import Callable

import pytest

from app import next_steps, queries
from app.overview import load_overview
from app.report import default_filters
from marketing_ml_tests.lm_server import FakeLMStudio, facts_from
from marketing_ml_tests.test_app import served_lakehouse

TIMEOUT = 5.0


class ScriptedLMStudio(FakeLMStudio):
    """FakeLMStudio whose chat replies are `script(facts)` (the facts it was sent), answered
    after `delay` seconds. Every request is recorded, as in FakeLMStudio."""

    def __init__(self, script: Callable[[dict], str], delay: float = 0.0, **options) -> None:
        self.script = script
        self.delay = delay
        super().__init__("grounded", **options)

    def _handler(self):
        server = self
        base = super()._handler()

        class Handler(base):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    super().do_POST()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(("POST", self.path, body))
                if server.delay:
                    time.sleep(server.delay)
                completion = {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": server.script(facts_from(body)),
                            },
                        }
                    ],
                }
                self._send(200, json.dumps(completion).encode())

        return Handler


def settings_for(server: FakeLMStudio) -> next_steps.LMSettings:
    return next_steps.LMSettings.from_env(
        {"LM_ENDPOINT": server.base_url, "LM_TIMEOUT": str(TIMEOUT)}
    )


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> dict:
    served = served_lakehouse(tmp_path_factory)
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
