"""The dashboard's server: `streamlit run app/serve.py` (`make app`, `make up`, the image).

It serves app/dashboard.py as `streamlit run app/dashboard.py` would, but first warms the
process (app.warmup: the page's imports and the caches of its first render), so the first
visitor of a fresh server waits no longer than later ones. Streamlit runs the lifespan before it
listens: the health check answers once the warm-up is done.
"""

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

from app.warmup import warm_caches

PAGE = Path(__file__).with_name("dashboard.py")
"""The page beside this file (not beside an installed copy of the app package)."""

NO_SCRIPT_RUN_WARNING = "streamlit.runtime.scriptrunner_utils.script_run_context"
"""The logger that warns of "missing ScriptRunContext" on each cached call outside a script run:
expected here, so not written to the server's log."""


@asynccontextmanager
async def warmed(_app):
    quiet = logging.getLogger(NO_SCRIPT_RUN_WARNING)
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        await asyncio.to_thread(warm_caches, PAGE)
    except Exception:  # the page shows the same failure, with its context, to whoever opens it
        logging.getLogger(__name__).warning(
            "Could not prepare the first render (the dashboard still starts; its page will "
            "show the error):",
            exc_info=True,
        )
    finally:
        quiet.setLevel(level)
    yield


app = st.App(PAGE, lifespan=warmed)
