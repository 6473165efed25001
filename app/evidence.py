"""A model card (one row of models.*) as the tables a marketer can read: windows, scores beside
the baselines, backtest folds. Pure functions over the decoded JSON."""

import pandas as pd

MODEL_TABLES = {
    "models.pacing_risk_model": "Under-pacing risk (tomorrow)",
    "models.conversion_model": "ROAS on target (next 7 days)",
}
METRICS = (
    ("auc", "AUC (higher is better)"),
    ("brier", "Brier (lower is better)"),
    ("log_loss", "Log loss (lower is better)"),
)


def _day(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%d %b %Y}"


def windows(card: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            ["Training", _day(card.get("training_start")), _day(card.get("training_end"))],
            ["Validation", _day(card.get("validation_start")), _day(card.get("validation_end"))],
        ],
        columns=["window", "from", "to"],
    )


def scores_table(report: dict | None) -> pd.DataFrame:
    """The model's scores beside the base rate and the heuristic on the same rows."""
    report = report or {}
    rows = []
    for key, label in METRICS:
        rows.append(
            [label]
            + [
                (report.get(column) or {}).get(key)
                for column in ("model", "base_rate", "heuristic")
            ]
        )
    return pd.DataFrame(rows, columns=["metric", "model", "base rate", "heuristic"])


def validation(card: dict) -> dict:
    return ((card.get("metrics") or {}).get("validation")) or {}


def backtest_table(card: dict) -> pd.DataFrame:
    folds = (card.get("backtest") or {}).get("folds") or []
    return pd.DataFrame(
        [
            {
                "cutoff": fold.get("cutoff"),
                "evaluated": f"{fold.get('evaluation_start')} → {fold.get('evaluation_end')}",
                "rows": fold.get("rows"),
                "AUC": (fold.get("model") or {}).get("auc"),
                "heuristic AUC": (fold.get("heuristic") or {}).get("auc"),
                "Brier": (fold.get("model") or {}).get("brier"),
                "base-rate Brier": (fold.get("base_rate") or {}).get("brier"),
                "status": fold.get("status"),
            }
            for fold in folds
        ]
    )
