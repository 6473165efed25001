"""The Models tab: each model's card, drift verdict and the response curves' backtest."""

import streamlit as st

from app import charts, evidence, narrative
from app.budget_plan import CURVES_CANNOT_SEE
from app.tabs.quality_tab import people_table
from app.tabs.shared import NOT_AVAILABLE, PLOTLY_CONFIG, so_what
from app.text import markdown_text
from serving_contract import RESPONSE_CURVE_BACKTEST


def drift_verdict(container, card: dict) -> None:
    """The drift verdict beside the scores: a sentence, what is left out and why, the features
    with the highest PSI."""
    drift = evidence.drift(card)
    container.markdown("**Feature drift**")
    (container.success if drift["passed"] else container.warning)(
        markdown_text(drift["verdict"]),
        icon=":material/check_circle:" if drift["passed"] else ":material/warning:",
    )
    container.caption(markdown_text(drift["note"]))
    container.caption(markdown_text(evidence.PSI_TEXT.format(limit=evidence.DRIFT_LIMIT)))
    if len(drift["table"]):
        people_table(container, drift["table"].head(5), evidence.DRIFT_COLUMNS)


def curves_section(fetch, available: frozenset[str]) -> None:
    """How well the response curves the budget plan rests on predicted weeks they had not seen."""
    st.subheader("Response curves (the budget plan's)")
    if RESPONSE_CURVE_BACKTEST not in available:
        st.warning(NOT_AVAILABLE)
        return
    found = evidence.curve_backtest(fetch("response_curve_backtest"))
    so_what(found["verdict"])
    st.caption(markdown_text(CURVES_CANNOT_SEE))
    if len(found["folds"]):
        st.markdown("**Walk-forward backtest of the curves**")
        st.dataframe(found["folds"], hide_index=True)
        st.markdown(
            "**Latest period per ad set: expected vs actual revenue (biggest misses first)**"
        )
        people_table(st, found["latest"], evidence.CURVE_BACKTEST_COLUMNS)


def models_tab(fetch, available: frozenset[str]) -> None:
    curves_section(fetch, available)
    st.divider()
    for table, title in evidence.MODEL_TABLES.items():
        st.subheader(title)
        if table not in available:
            st.warning(NOT_AVAILABLE)
            continue
        card = fetch("model_card", table)
        st.markdown(
            f"{markdown_text(card.get('predicts') or '')}  \n"
            f"{markdown_text(evidence.model_intro(card))}"
        )
        so_what(narrative.model_so_what(card))
        if str(card.get("status") or "").startswith("uninformative"):
            label = (card.get("metrics") or {}).get("label") or {}
            share, rows = label.get("min_minority_share", 0.02), label.get("min_minority_rows", 50)
            st.caption(
                f"A label nearly all one class (the rarer outcome under {share:.0%} of days, or "
                f"fewer than {rows} days) leaves a model nothing to learn: no model is fitted, "
                "and every ad set gets the base rate."
            )
            st.divider()
            continue
        left, middle, right = st.columns([2, 3, 3])
        left.markdown("**Windows**")
        left.dataframe(evidence.windows(card), hide_index=True)
        middle.markdown("**Validation scores beside the baselines**")
        middle.dataframe(evidence.scores_table(evidence.validation(card)), hide_index=True)
        heuristic = (card.get("metrics") or {}).get("heuristic") or "n/a"
        middle.caption(markdown_text(evidence.GLOSSARY.format(heuristic=heuristic)))
        drift_verdict(right, card)
        left, right = st.columns(2)
        if card.get("reliability"):
            left.plotly_chart(charts.reliability(card["reliability"]), config=PLOTLY_CONFIG)
        if card.get("importances"):
            right.plotly_chart(charts.importances(card["importances"]), config=PLOTLY_CONFIG)
        st.markdown("**Walk-forward backtest**")
        st.dataframe(evidence.backtest_table(card), hide_index=True)
        if len(evidence.drift(card)["table"]) > 5:
            with st.expander("Every feature's drift (PSI, training vs latest 28 days)"):
                people_table(st, evidence.drift(card)["table"], evidence.DRIFT_COLUMNS)
        st.divider()
