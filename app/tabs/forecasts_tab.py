"""The Forecasts tab: every ad set's latest scores and the plan's action for it."""

import pandas as pd
import streamlit as st

from app import evidence, narrative
from app.overview import Filters
from app.tabs.shared import NOT_AVAILABLE, so_what
from app.text import markdown_text
from serving_contract import (
    CONVERSION_MODEL,
    PACING_RISK_MODEL,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
)

# Each scored table's caption names the model that wrote it: older models say so. (A comment:
# Streamlit prints a bare string literal on the page.)
SCORE_LABELS = {
    SCORED_ADSETS: "Under-pacing risk",
    SCORED_CONVERSIONS: "ROAS on target",
}


# The model behind each scored table, and the score column it writes.
SCORING_MODELS = {
    SCORED_ADSETS: (PACING_RISK_MODEL, "under_pacing_risk"),
    SCORED_CONVERSIONS: (CONVERSION_MODEL, "roas_on_target_prob"),
}


def untrained_models(fetch, available: frozenset[str]) -> dict[str, str]:
    """Scored table → its model's status, for models too young to train ("not trained: …") and
    for labels nearly all one class ("uninformative: …", every ad set scored with the base rate:
    a column of one figure would read as a forecast per ad set, "100% risk")."""
    statuses = {}
    for table, (model_table, _) in SCORING_MODELS.items():
        status = (
            fetch("model_card", model_table).get("status") if model_table in available else None
        )
        if isinstance(status, str) and status.startswith(("not trained", "uninformative")):
            statuses[table] = status
    return statuses


def untrained_message(table: str, status: str) -> str:
    """Why a scored table's column is hidden, in words."""
    if status.startswith("uninformative: "):
        return (
            f"{SCORE_LABELS[table]}: no forecast per ad set. "
            f"{status.removeprefix('uninformative: ')}."
        )
    return (
        f"{SCORE_LABELS[table]} model {status}. Its forecasts appear after the weekly retrain "
        "once there is that much history."
    )


def forecasts_tab(
    every_forecast: pd.DataFrame | None, fetch, available: frozenset[str], filters: Filters
) -> None:
    if every_forecast is None:
        st.warning(f"Forecasts: {NOT_AVAILABLE}")
        return
    untrained = untrained_models(fetch, available)
    for table, status in untrained.items():
        st.info(markdown_text(untrained_message(table, status)), icon=":material/hourglass_empty:")
    scored = [table for table in SCORE_LABELS if table in available and table not in untrained]
    if not scored:
        return
    hidden = [SCORING_MODELS[table][1] for table in untrained]
    forecasts = (
        every_forecast
        if filters.ad_set_ids is None
        else every_forecast[every_forecast["ad_set_id"].isin(filters.ad_set_ids)]
    ).assign(**dict.fromkeys(hidden, float("nan")))
    model_target = (
        forecasts["roas_target"].dropna() if SCORED_CONVERSIONS in scored else pd.Series()
    )
    target = float(model_target.iloc[0]) if len(model_target) else None
    so_what(narrative.forecast_so_what(forecasts, target))
    if "plan_role" in forecasts and forecasts["plan_role"].notna().any():
        st.caption(
            "Suggested actions follow tomorrow's published budget plan (What-if tab) and these "
            "forecasts: an ad set likely to under-pace is told to check delivery, never to get "
            "more budget."
        )
    for table in scored:
        if provenance := fetch("score_provenance", table):
            st.caption(
                f"{SCORE_LABELS[table]}: model "
                f"{markdown_text(evidence.version_text(provenance['model_version']))}, "
                f"trained on data through {pd.Timestamp(provenance['trained_through']):%d %b %Y}; scores for "
                f"{pd.Timestamp(provenance['scored_date']):%d %b %Y}."
            )
    if target is not None and abs(target - filters.roas_target) > 1e-9:
        st.caption(
            f"The conversion model was trained for a {narrative.ratio(target)} target; the "
            f"sidebar target ({narrative.ratio(filters.roas_target)}) does not change its scores."
        )
    shown = forecasts[
        ["ad_set_name", "plan_role", "under_pacing_risk", "roas_on_target_prob", "action"]
    ]
    st.dataframe(
        shown.assign(  # whole percents: calibrated steps do not carry two decimals of meaning
            under_pacing_risk=(100 * shown["under_pacing_risk"]).round(),
            roas_on_target_prob=(100 * shown["roas_on_target_prob"]).round(),
        ).drop(columns=hidden),
        hide_index=True,
        width="stretch",
        column_config={
            "ad_set_name": st.column_config.TextColumn("Ad set"),
            "plan_role": st.column_config.TextColumn("Budget plan"),
            # red for bad news: a high risk of under-pacing is bad, a high chance of reaching
            # the ROAS target is good (green)
            "under_pacing_risk": st.column_config.ProgressColumn(
                "Risk tomorrow",
                help="The chance the ad set under-paces tomorrow (spends well under its budget).",
                format="%d%%",
                min_value=0,
                max_value=100,
                color="auto-inverse",
            ),
            "roas_on_target_prob": st.column_config.ProgressColumn(
                "On target, 7 days",
                help="The chance the ad set's ROAS over the next 7 days reaches the target.",
                format="%d%%",
                min_value=0,
                max_value=100,
                color="auto",
            ),
            "action": st.column_config.TextColumn("Suggested action", width="large"),
        },
    )
