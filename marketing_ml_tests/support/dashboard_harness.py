"""The dashboard as the tests drive it: its file, the texts it shows, and a served lakehouse."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.text import unescape_markdown
from marketing_ml.defs.serving.presenter_report import report
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support import REPOSITORY
from marketing_ml_tests.support.lakehouse import Lakehouse

DASHBOARD = str(REPOSITORY / "app" / "dashboard.py")
SERVER = str(REPOSITORY / "app" / "serve.py")
"""What `make app` starts: the dashboard, served once the first render's caches are warm."""
KPI_LABELS = ["Spend", "Revenue", "Bookings", "ROAS", "CPA"]
FOOTER = "Generated locally with DuckDB | v1.0"
"""The footer of a page whose Next steps are rule-based (LM Studio offline, and every report)."""
FOOTER_WITH_LM = "Generated locally with DuckDB + LM Studio | v1.0"
"""The footer when LM Studio wrote Next steps on the page."""
CLOSED_PORT_ENDPOINT = "http://127.0.0.1:9/v1"
"""Nothing listens on port 9: LM Studio is offline, answered at once with a refused connection."""
TABS = ["Overview", "Forecasts", "Data quality", "Models", "What-if"]
ASKING = "Asking LM Studio…"


def build_served_lakehouse(root: Path) -> Lakehouse:
    """The whole graph (and the report) materialized from generated data under `root`; the
    session fixture `served_lakehouse` (conftest.py) builds it once for every tier."""
    lakehouse = Lakehouse(root / "raw", root / "lakehouse.duckdb", root / "serving.duckdb")
    write_sample_data(lakehouse.raw_dir, ad_sets=10, days=90, seed=3)
    definitions = lakehouse.definitions
    wired = any(report.key in getattr(asset, "keys", ()) for asset in definitions.assets)
    result = lakehouse.materialize(extra_checks=() if wired else (report,))
    assert result.success, "the graph failed to materialize"
    return lakehouse


def sidebar_text(app: AppTest) -> str:
    """What the sidebar reads (the app escapes the text it did not write as Markdown)."""
    return "\n".join(
        unescape_markdown(str(element.value))
        for kind in ("markdown", "caption", "success", "info", "warning")
        for element in app.sidebar.get(kind)
    )


def next_step_bullets(app: AppTest) -> list[str]:
    return [item.value for item in app.sidebar.markdown if item.value.startswith("- ")]
