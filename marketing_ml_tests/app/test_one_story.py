"""One story everywhere (issue 12, item 4): the What-if's plan, the Forecasts' actions, the
rule-based Next steps, the facts sent to LM Studio, the Overview's headline and the report all
name the same donors and recipients, on a lakehouse where the old rules disagreed.

The lakehouse is the served one of test_app (generated data, the whole graph materialized in
process), copied, with the pacing and conversion models' latest scores for one of the plan's
donors set to a 99% risk of under-pacing and a 4% chance of reaching the ROAS target (what the
issue saw on the default sample); the plan is then re-made from those scores by the real
`gold__budget_plan` asset and published by the real `publish` asset. The old rules disagreed
there: the Forecasts told that donor to "raise bids or widen the audience", and the naive
quartile rule's recipients are not the plan's.
"""

import io
import json
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app import narrative, next_steps, queries, whatif
from app.budget_plan import PublishedPlan, load_curves, naive_value, plan_csv, replan
from app.html_report import build_report, default_filters
from app.overview import load_overview
from app.plan_headline import headline
from app.text import plain_label, unescape_markdown
from marketing_ml.defs.planning.plan_assets import BUDGET_PLAN, BUDGET_PLAN_SUMMARY
from marketing_ml_tests.support.dashboard_harness import CLOSED_PORT_ENDPOINT, DASHBOARD
from marketing_ml_tests.support.lakehouse import Lakehouse, check_outcomes
from marketing_ml_tests.support.lm_server import FakeLMStudio, facts_from
from planning import PlanSettings, build_plan, on_current_state

RISKY = 0.99
UNLIKELY = 0.04


def serving_frame(serving: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(serving), read_only=True) as connection:
        return connection.execute(sql).df()


@pytest.fixture(scope="module")
def story(tmp_path_factory, served_lakehouse) -> Lakehouse:
    served = served_lakehouse
    root = tmp_path_factory.mktemp("story")
    shutil.copytree(served.raw_dir, root / "raw")
    shutil.copy(served.database, root / "lakehouse.duckdb")
    lakehouse = Lakehouse(root / "raw", root / "lakehouse.duckdb", root / "serving.duckdb")
    plan = serving_frame(served.serving, "SELECT * FROM gold.budget_plan")
    donor = plan[plan["role"] == "donor"].sort_values("change")["ad_set_id"].iloc[0]
    with duckdb.connect(str(lakehouse.database)) as connection:
        for table, column, value in (
            ("gold.scored_adsets", "under_pacing_risk", RISKY),
            ("gold.scored_conversions", "roas_on_target_prob", UNLIKELY),
        ):
            connection.execute(
                f"UPDATE {table} SET {column} = ? WHERE ad_set_id = ? "
                f"AND date = (SELECT max(date) FROM {table})",
                [value, donor],
            )
    selection = dg.AssetSelection.assets(
        BUDGET_PLAN, BUDGET_PLAN_SUMMARY, dg.AssetKey(["publish"]), dg.AssetKey(["report"])
    )
    result = lakehouse.materialize(selection=selection)
    assert result.success
    assert all(check_outcomes(result).values()), check_outcomes(result)
    return lakehouse


@pytest.fixture
def story_env(story: Lakehouse, monkeypatch) -> Lakehouse:
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(story.serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    monkeypatch.delenv("LM_MODEL", raising=False)
    st.cache_data.clear()
    yield story
    st.cache_data.clear()


def render(tab: str | None = None) -> AppTest:
    """The dashboard's first run; with `tab`, with that tab open (only the open tab runs)."""
    app = AppTest.from_file(DASHBOARD, default_timeout=60)
    if tab is not None:
        app.session_state["tab"] = tab
    app.run()
    assert not app.exception, [exception.message for exception in app.exception]
    return app


def published(serving: Path) -> tuple[pd.DataFrame, dict]:
    plan = serving_frame(serving, "SELECT * FROM gold.budget_plan ORDER BY ad_set_id")
    summary = serving_frame(serving, "SELECT * FROM gold.budget_plan_summary").iloc[0].to_dict()
    return plan, summary


def names_of(plan: pd.DataFrame, role: str) -> set[str]:
    return set(plan.loc[plan["role"] == role, "ad_set_name"])


def named(text: str, plan: pd.DataFrame, role: str) -> set[str]:
    """The ad sets a bullet's list names ("A, B and C" or "A, B and 4 more"), checked to be the
    largest moves of that role; all of that role when the count of the rest adds up."""
    more = re.search(r" and (\d+) more$", text)
    listed = re.split(r", | and ", text[: more.start()] if more else text)
    moves = plan[plan["role"] == role].copy()
    moves["size"] = moves["change"].abs()
    largest = moves.sort_values(["size", "ad_set_id"], ascending=[False, True])["ad_set_name"]
    assert listed == list(largest.head(len(listed))), (listed, list(largest))
    assert len(listed) + (int(more.group(1)) if more else 0) == len(moves)
    return set(moves["ad_set_name"])


def whatif_plan_table(app: AppTest) -> pd.DataFrame:
    [table] = [frame.value for frame in app.tabs[4].get("dataframe") if "role" in frame.value]
    return table


def test_every_view_names_the_same_donors_and_recipients(story_env):
    serving = story_env.serving
    plan, summary = published(serving)
    donors, recipients = names_of(plan, "donor"), names_of(plan, "recipient")
    assert donors and recipients
    scores = serving_frame(
        serving,
        "SELECT a.ad_set_id, under_pacing_risk, roas_on_target_prob "
        "FROM gold.scored_adsets a JOIN gold.scored_conversions c USING (ad_set_id, date) "
        "WHERE date = (SELECT max(date) FROM gold.scored_adsets)",
    ).merge(plan[["ad_set_id", "ad_set_name", "role"]], on="ad_set_id")
    # the scenario where the old rules disagreed: a donor the pacing model says will under-pace
    # and the conversion model says will miss the target, and plan recipients the naive rule
    # would not pick
    [risky_donor] = scores.loc[
        (scores["role"] == "donor")
        & (scores["under_pacing_risk"] >= 0.5)
        & (scores["roas_on_target_prob"] < 0.3),
        "ad_set_name",
    ]
    overview = load_overview(queries.fetcher(serving), default_filters(serving))
    naive = whatif.reallocate(overview.by_ad_set, 0.2, (0.5, 0.8)).plan
    naive_recipients = set(naive.loc[naive["group"] == "receives budget", "ad_set_name"])
    assert recipients - naive_recipients

    app = render("What-if")

    # the What-if's plan (re-planned in the app at the published settings)
    table = whatif_plan_table(app)
    assert set(table.loc[table["role"] == "gives budget", "ad_set_name"]) == donors
    assert set(table.loc[table["role"] == "receives budget", "ad_set_name"]) == recipients

    # the Forecasts' actions
    app.session_state["tab"] = "Forecasts"
    app.run()
    [forecasts] = [frame.value for frame in app.tabs[1].get("dataframe") if "action" in frame.value]
    actions = dict(zip(forecasts["ad_set_name"], forecasts["action"], strict=True))
    assert {name for name, action in actions.items() if action.startswith("Move £")} == donors
    assert {name for name, action in actions.items() if action.startswith("Add £")} == recipients
    assert "under-pace" in actions[risky_donor] and "check delivery" in actions[risky_donor]
    assert "raise bids or widen the audience" not in actions[risky_donor]
    for name in donors:
        assert "more budget" not in actions[name] and "Add" not in actions[name]
    # a high pacing risk informs: an ad set whose spend has followed its budget (delivery
    # measured from the pacing rows) can still receive budget, and says the risk; the others
    # are told to check delivery
    at_risk = set(scores.loc[scores["under_pacing_risk"] >= 0.5, "ad_set_name"])
    for name in at_risk - recipients:
        assert "delivery" in actions[name].lower() and not actions[name].startswith("Add")
    reasons = plan.set_index("ad_set_name")["reason"]
    for name in at_risk & recipients:
        assert "risk of under-pacing tomorrow, but its spend has followed" in actions[name]
        assert "risk of under-pacing tomorrow, but its spend has followed" in reasons[name]

    # the rule-based Next steps (LM Studio offline): the plan's move, naming its largest
    # donors and recipients (as many as fit in one bullet) and how many more there are
    bullets = [unescape_markdown(markdown.value) for markdown in app.sidebar.markdown]
    bullets = [bullet.removeprefix("- ").removesuffix(" *(rule-based)*") for bullet in bullets]
    [move] = [bullet for bullet in bullets if bullet.startswith("Move £")]
    found = re.match(r"Move £[\d,.k]+ a day from (.+?) to (.+?): ", move)
    assert found, move
    assert named(found.group(1), plan, "donor") == donors
    assert named(found.group(2), plan, "recipient") == recipients
    [delivery] = [bullet for bullet in bullets if bullet.startswith("Check delivery")]
    assert delivery.startswith(f"Check delivery on {risky_donor}: 99% risk of under-pacing")
    assert "takes £" in delivery
    for bullet in bullets:
        for name in donors | (at_risk - recipients):
            assert not (name in bullet and "more budget" in bullet and "before" not in bullet)

    # the Overview's headline (and the presenter view's) is the published plan's, worded from
    # the figures the run stored
    worded = headline(plan, summary)
    [shown] = app.main.children[1].get("success")  # the keyed container under the title
    assert unescape_markdown(shown.value).endswith(worded)

    # the report quotes the same plan
    report = build_report(serving)
    for name in donors:  # £ and × as the dashboard writes them, a cut as −£…
        assert re.search(
            rf"<td[^>]*>{re.escape(name)}</td>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>gives budget</td>\s*"
            rf"<td[^>]*>£[\d,.]+k?</td>\s*<td[^>]*>£[\d,.]+k?</td>\s*<td[^>]*>−£[\d,.]+k?</td>",
            report,
        )
    for name in recipients:
        assert re.search(
            rf"<td[^>]*>{re.escape(name)}</td>\s*<td[^>]*>[^<]*</td>\s*"
            rf"<td[^>]*>receives budget</td>",
            report,
        )
    assert worded in report


def test_the_facts_sent_to_lm_studio_carry_the_plan_and_ground_its_figures(story_env, monkeypatch):
    serving = story_env.serving
    plan, summary = published(serving)
    with FakeLMStudio("grounded") as server:
        monkeypatch.setenv("LM_ENDPOINT", server.base_url)
        render()
        facts = facts_from(server.wait_for_chat_requests()[0])
    budget = facts["budget_plan"]
    for role, key in (("donor", "donors"), ("recipient", "recipients")):
        largest = plan[plan["role"] == role].sort_values("change", key=abs, ascending=False)
        expected = largest["ad_set_name"].head(next_steps.PLAN_NAMED)
        assert [item["ad_set"] for item in budget[key]] == expected.tolist()
    assert budget["donor_count"] == summary["donors"]
    assert budget["recipient_count"] == summary["recipients"]
    assert budget["uplift_per_day"] == pytest.approx(summary["uplift"], abs=0.01)
    assert budget["uplift_low"] == pytest.approx(summary["uplift_low"], abs=0.01)
    assert budget["uplift_high"] == pytest.approx(summary["uplift_high"], abs=0.01)
    assert budget["moved_per_day"] == pytest.approx(summary["cut"], abs=0.01)
    # the headline's money, written as the plan writes it, and the plan's action are grounded
    for figure in re.findall(r"[+\-−]?£[\d,]+(?:\.\d+)?[km]?", headline(plan, summary)):
        assert next_steps.is_grounded(figure, facts), figure
    assert next_steps.is_grounded(next_steps.plan_move_action(budget), facts)
    # a reply that gives a donor more budget or takes it from a recipient alone is replaced
    donor = budget["donors"][0]
    recipient = budget["recipients"][0]
    proposed = [
        f"Increase the budget on {donor['ad_set']} by £{abs(donor['change']):,.0f} a day.",
        f"Cut spend on {recipient['ad_set']} to £{recipient['current_spend']:,.0f} a day.",
        f"Move £{budget['moved_per_day']:,.0f} a day from {donor['ad_set']} to "
        f"{recipient['ad_set']}.",
    ]
    assert all(next_steps.is_grounded(text, facts) for text in proposed)
    bullets, replaced = next_steps.ground(proposed, facts)
    assert replaced == 2
    assert [bullet.source for bullet in bullets][2] == "lm"
    assert not any(donor["ad_set"] in b.text and "Increase" in b.text for b in bullets)


def test_whatif_replans_on_scenario_bounds_locks_and_total(story_env):
    serving = story_env.serving
    plan, summary = published(serving)
    curves = load_curves(queries.response_curves(serving), served_plan(serving))
    app = render("What-if")
    whatif_tab = app.tabs[4]
    [shown] = [
        info.value
        for info in whatif_tab.info
        if "expected revenue a day" in info.value and "naive rule" not in info.value
    ]
    assert unescape_markdown(shown) == headline(plan, summary)
    assert any("published plan's settings" in caption.value for caption in whatif_tab.caption)

    app.radio(key="plan_scenario").set_value("same_revenue")
    app.slider(key="plan_upper").set_value(1.3)
    app.run()
    state, _ = on_current_state(plan, curves.frame)  # the published delivery and spend
    expected = build_plan(
        state,
        plan[["ad_set_id", "under_pacing_risk"]],
        PlanSettings(scenario="same_revenue", upper_factor=1.3),
        draws=curves.draws,
        plan_date=curves.plan_date,
    )
    table = whatif_plan_table(app).set_index("ad_set_id").loc[plan["ad_set_id"]]
    np.testing.assert_allclose(
        table["recommended_spend"], expected.ad_sets["recommended_spend"], atol=0.01
    )
    assert (table["upper_bound"] <= 1.3 * table["current_spend"] + 0.005).all()
    assert any(
        unescape_markdown(info.value) == headline(expected.ad_sets, expected.summary)
        for info in app.tabs[4].info
    )
    assert any("Exploring other settings" in caption.value for caption in app.tabs[4].caption)

    recipient = plan.loc[plan["role"] == "recipient"].sort_values("change")["ad_set_id"].iloc[-1]
    app.radio(key="plan_scenario").set_value("same_budget")
    app.multiselect(key="plan_locked").set_value([recipient])
    app.run()  # the fixed total applies to the same-budget scenario only
    app.number_input(key="plan_total").set_value(10 * summary["total_current"])
    app.run()
    table = whatif_plan_table(app).set_index("ad_set_id")
    assert table.loc[recipient, "recommended_spend"] == pytest.approx(
        table.loc[recipient, "current_spend"]
    )
    assert table.loc[recipient, "role"] == "fixed"
    assert (table["recommended_spend"] <= table["upper_bound"] + 0.005).all()
    unplaced = [
        warning.value for warning in app.tabs[4].warning if "cannot be placed" in warning.value
    ]
    assert len(unplaced) == 1, [warning.value for warning in app.tabs[4].warning]


def test_the_curves_someone_chose_stay_chosen_when_the_scenario_changes(story_env):
    plan, _ = published(story_env.serving)
    app = render("What-if")
    mine = [plan["ad_set_id"].iloc[-1], plan["ad_set_id"].iloc[0]]
    assert sorted(mine) != sorted(app.multiselect(key="plan_curves").value)
    app.multiselect(key="plan_curves").set_value(mine).run()
    for scenario in ("same_revenue", "target_roas", "same_budget"):
        app.radio(key="plan_scenario").set_value(scenario).run()
        assert not app.exception
        assert app.multiselect(key="plan_curves").value == mine, scenario


def test_whatif_draws_curves_with_bands_and_compares_the_naive_rule_on_the_same_curves(story_env):
    serving = story_env.serving
    plan, summary = published(serving)
    app = render("What-if")
    charts = [chart.proto.spec for chart in app.tabs[4].get("plotly_chart")]
    [curves_chart] = [spec for spec in charts if "Response curves" in spec]
    chosen = app.multiselect(key="plan_curves").value
    assert len(chosen) >= 2
    traces = json.loads(curves_chart)["data"]
    rows = plan.set_index("ad_set_id")
    for ad_set_id in chosen:
        name = plain_label(rows.loc[ad_set_id, "ad_set_name"])
        assert any(trace.get("name") == name and trace["mode"] == "lines" for trace in traces)
        points = {
            trace["name"]: trace["x"][0]
            for trace in traces
            if trace.get("mode") == "markers" and trace["name"].startswith(name + ":")
        }
        assert points[f"{name}: current"] == pytest.approx(rows.loc[ad_set_id, "current_spend"])
        assert points[f"{name}: recommended"] == pytest.approx(
            rows.loc[ad_set_id, "recommended_spend"], abs=0.01
        )
    assert sum(trace.get("fill") == "toself" for trace in traces) == len(chosen)

    metrics = {metric.label: metric.value for metric in app.tabs[4].metric}
    overview = load_overview(queries.fetcher(serving), default_filters(serving))
    naive = whatif.reallocate(overview.by_ad_set, 0.2, (0.5, 0.8))
    curves = load_curves(queries.response_curves(serving), served_plan(serving))
    valued = naive_value(curves, naive.plan)
    assert metrics["Naive rule: expected uplift (same curves)"] == (
        f"{narrative.signed_money(valued.uplift)} a day"
    )
    assert valued.valued == len(valued.donors) + len(valued.recipients)
    assert metrics["Plan: expected uplift"] == f"{narrative.signed_money(summary['uplift'])} a day"


def served_plan(serving: Path) -> PublishedPlan:
    """The published plan as the What-if reads it: its curves are priced for the plan's day."""
    return PublishedPlan.from_tables(queries.published_plan(serving))


@pytest.fixture(scope="module")
def big_serving(story: Lakehouse, tmp_path_factory) -> Path:
    """The story's serving file with its curves and plan repeated to 2,000 ad sets (new ids,
    the same fitted curves, draws and capacity): what the What-if re-plans at full scale."""
    path = tmp_path_factory.mktemp("big") / "serving.duckdb"
    shutil.copy(story.serving, path)
    with duckdb.connect(str(path)) as connection:
        for table in ("gold.response_curves", "gold.budget_plan"):
            connection.execute(
                f"CREATE OR REPLACE TABLE {table} AS "
                f"SELECT * REPLACE (ad_set_id || '_' || lpad(copy::VARCHAR, 3, '0') AS ad_set_id,"
                f" ad_set_name || '_' || lpad(copy::VARCHAR, 3, '0') AS ad_set_name) "
                f"FROM {table}, range(200) AS copies(copy)"
            )
        assert connection.execute("SELECT count(*) FROM gold.response_curves").fetchone()[0] == 2000
    return path


def test_scenario_and_bound_changes_replan_all_2000_ad_sets(big_serving, monkeypatch):
    """The time each change takes is printed here and measured by `make bench` (target 0.3 s):
    a timed assertion would fail on a loaded CI machine, not on a slow plan."""
    monkeypatch.setenv("MARKETING_ML_SERVING_DB", str(big_serving))
    monkeypatch.setenv("LM_ENDPOINT", CLOSED_PORT_ENDPOINT)
    st.cache_data.clear()
    app = render("What-if")
    assert len(whatif_plan_table(app)) == 2000
    seconds = []
    changes = [
        ("plan_scenario", "target_roas"),
        ("plan_lower", 0.6),
        ("plan_scenario", "same_revenue"),
        ("plan_upper", 1.8),
        ("plan_scenario", "same_budget"),
        ("plan_lower", 0.4),
        ("plan_upper", 1.2),
        ("plan_scenario", "target_roas"),
        ("plan_upper", 2.0),
        ("plan_scenario", "same_budget"),
    ]
    for key, value in changes:
        widget = app.radio(key=key) if key == "plan_scenario" else app.slider(key=key)
        widget.set_value(value)
        app.run()
        assert not app.exception
        assert len(whatif_plan_table(app)) == 2000
        seconds.append(app.session_state["whatif_seconds"])
    print(f"What-if at 2,000 ad sets: median {np.median(seconds):.3f} s, max {max(seconds):.3f} s")
    st.cache_data.clear()


def test_the_whatif_at_the_published_settings_is_the_published_plan(story):
    plan, summary = published(story.serving)
    found = PublishedPlan.from_tables(queries.published_plan(story.serving))
    curves = load_curves(queries.response_curves(story.serving), found)
    assert curves.settings == PlanSettings()
    again = replan(curves, curves.settings)
    assert again.headline == headline(plan, summary) == found.headline
    assert list(again.ad_sets["role"]) == list(plan["role"])
    np.testing.assert_allclose(
        again.ad_sets["recommended_spend"], plan["recommended_spend"], atol=0.01
    )
    assert again.revenue_low <= again.summary["revenue_recommended"] <= again.revenue_high


def test_the_whatif_plans_within_the_limits_it_is_given(story_env):
    app = render("What-if")
    for key, value in (("plan_step", 10.0), ("plan_moves", 2), ("plan_period", 28)):
        app.number_input(key=key).set_value(value)
        app.run()
    assert not app.tabs[4].error
    shown = " ".join(info.value for info in app.tabs[4].info)
    assert "in 2 moves worth" in shown and "Over the next 28 days" in shown, shown
    table = whatif_plan_table(app)
    moved = table[table["ramp_days"] > 0]
    assert 0 < len(moved) <= 2, "at most the two moves asked for"
    share = (moved["new_daily_budget"] / moved["current_daily_budget"] - 1).abs()
    assert (share <= 0.10 + 1e-9).all(), "no budget moves more than 10% on the plan date"


def test_the_plan_csv_neutralises_formulas_and_keeps_the_numbers(story):
    found = PublishedPlan.from_tables(queries.published_plan(story.serving))
    frame, draws = queries.response_curve_draws(story.serving)
    hostile = '=HYPERLINK("http://127.0.0.1:9/x")'
    found.ad_sets.loc[0, "ad_set_name"] = hostile  # the plan names ad sets as of its day
    curves = load_curves(frame, found, draws)
    result = replan(curves, curves.settings)
    exported = pd.read_csv(io.StringIO(plan_csv(result.ad_sets, curves.settings, curves.plan_date)))
    assert "'" + hostile in set(exported["ad_set_name"])
    assert set(exported["scenario"]) == {"same_budget"}
    assert set(exported["plan_date"]) == {curves.plan_date.isoformat()}
    assert exported["expected_spend"].sum() == pytest.approx(
        result.summary["total_recommended"], abs=0.05
    )
    ad_set_budgets = exported[exported["budget_level"] == "ad_set"]
    campaign_budgets = exported[exported["budget_level"] == "campaign"]
    assert ad_set_budgets["ad_set_id"].notna().all() and ad_set_budgets["ad_set_id"].is_unique
    assert campaign_budgets["ad_set_id"].isna().all(), "a campaign budget is set on the campaign"
    assert campaign_budgets["campaign_id"].is_unique
    members = result.ad_sets["budget_level"].eq("campaign").sum()
    assert len(exported) == len(frame) - members + len(campaign_budgets)
    moved = exported[exported["budget_change"].abs() > 0.005]
    np.testing.assert_allclose(
        moved["new_daily_budget"] - moved["current_daily_budget"], moved["budget_change"], atol=0.02
    )


def test_a_reply_giving_budget_to_a_donor_the_facts_do_not_name_is_still_replaced(story_env):
    """The facts name the plan's PLAN_NAMED largest moves; the guard knows every ad set's role,
    so more budget for the sixth donor (here: a donor taken off the named list) is caught too,
    and the model is not sent the every-ad-set lists."""
    serving = story_env.serving
    overview = load_overview(queries.fetcher(serving), default_filters(serving))
    facts = next_steps.build_facts(overview)
    budget = facts["budget_plan"]
    unnamed = budget["donors"].pop()  # as if it were the sixth
    assert unnamed["ad_set"] in budget[next_steps.ALL_ROLES]["donor"]
    bullet = f"Increase the budget on {unnamed['ad_set']} by £{abs(unnamed['change']):,.0f} a day."
    budget["donors"].append(unnamed)
    assert next_steps.is_grounded(bullet, facts)
    budget["donors"].pop()
    assert next_steps.contradicts_plan(bullet, facts)
    prompt = next_steps.messages(facts)[1]["content"]
    assert next_steps.ALL_ROLES not in prompt and "donor_count" in prompt
