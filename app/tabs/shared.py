"""What every tab shows the same way: the "not built yet" words, the Plotly toolbar and
the "so what" box under a chart."""

import streamlit as st

from app.text import markdown_text

NOT_AVAILABLE = "Not available yet: run `make run` to build it."
PLOTLY_CONFIG = {"displaylogo": False}


def so_what(text: str) -> None:
    """A sentence computed from the data: it quotes ad-set names, so it is shown as text."""
    st.info(markdown_text(text), icon=":material/lightbulb:")
