"""The Data quality tab: checks, quarantine and row accounting, as tables people read."""

import pandas as pd
import streamlit as st

from app import evidence, narrative
from app.tabs.shared import NOT_AVAILABLE, so_what
from serving_contract import (
    DATA_QUALITY,
    QUARANTINE,
    ROW_ACCOUNTING,
)

# Streamlit's printf formats for the kinds of figure in app.narrative.FORMATS.
NUMBER_FORMATS = {
    "money": "£%,.0f",
    "ratio": "%.2f×",
    "count": "%,d",
    "number": "%,.3f",
    "percent": "percent",
}


def people_columns(columns: dict[str, tuple[str, str]]) -> dict:
    """A st.dataframe column_config from (header, kind) per column: headers in words, numbers
    with thousands separators, £ and × (the numbers stay numbers, so columns still sort)."""
    config = {}
    for name, (header, kind) in columns.items():
        if kind in NUMBER_FORMATS:
            config[name] = st.column_config.NumberColumn(header, format=NUMBER_FORMATS[kind])
        elif kind == "yes/no":
            config[name] = st.column_config.CheckboxColumn(header)
        else:
            config[name] = st.column_config.TextColumn(header)
    return config


def people_table(container, frame: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> None:
    container.dataframe(
        frame[[name for name in columns if name in frame]],
        hide_index=True,
        column_config=people_columns(columns),
    )


def quality_tab(fetch, available: frozenset[str]) -> None:
    if DATA_QUALITY not in available:
        st.warning(f"Data quality report: {NOT_AVAILABLE}")
        return
    rules = fetch("quality_rules")
    quarantine = (
        fetch("quarantine_counts")
        if QUARANTINE in available
        else (pd.DataFrame(columns=["reason", "source_file", "rows"]))
    )
    accounting = (
        fetch("row_accounting")
        if ROW_ACCOUNTING in available
        else (pd.DataFrame(columns=["source_file", "balanced"]))
    )
    so_what(narrative.quality_so_what(rules, quarantine, accounting))
    st.subheader("Rules")
    people_table(st, rules, evidence.RULE_COLUMNS)
    left, right = st.columns(2)
    left.subheader("Quarantined rows by reason and file")
    people_table(left, quarantine, evidence.QUARANTINE_COLUMNS)
    right.subheader("Row accounting per file")
    people_table(right, accounting, evidence.ACCOUNTING_COLUMNS)
