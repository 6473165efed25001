"""A model card (one row of models.*) as the tables a marketer can read: windows, scores beside
the baselines, backtest folds; and the response curves' backtest in words. Pure functions."""

import pandas as pd

from planning.backtest import HORIZON_DAYS, fold_summaries
from serving_contract import CONVERSION_MODEL, PACING_RISK_MODEL

MODEL_TABLES = {
    PACING_RISK_MODEL: "Under-pacing risk (tomorrow)",
    CONVERSION_MODEL: "ROAS on target (next 7 days)",
}
METRICS = (
    ("auc", "AUC (higher is better)"),
    ("brier", "Brier (lower is better)"),
    ("log_loss", "Log loss (lower is better)"),
    ("ece", "ECE (lower is better)"),
)
GLOSSARY = (
    "AUC: how often the model ranks a random ad set that had the outcome above one that did "
    "not (0.5 is a coin toss, 1 is always right). Brier: the mean squared gap between the "
    "probability and what happened (0 is perfect). Log loss: like Brier, but punishes a "
    "confident miss much harder. ECE (expected calibration error): how far the probabilities "
    "are from the observed rates, on average (0.02 = 2 points). The simple rule: "
    "{heuristic}. Base rate: the training share of positives, for every ad set. Logistic "
    "regression: a straight-line model on the same features."
)
"""The jargon in the Models tab, said once in words (the rule is the model's own heuristic)."""


LABELS = {
    "label_under_pacing_next": "whether the ad set under-paced the next day (the vendor's "
    "pacing status), yes or no per ad set and day",
    "label_roas_on_target_next7d": "whether the ad set's ROAS over the next 7 days reached the "
    "ROAS target, yes or no per ad set and day",
}
"""What each model learns from, in words instead of its column name."""
PSI_TEXT = (
    "PSI (population stability index): how far a feature's values in the latest 28 days have "
    "moved from those the model was trained on; under 0.1 is stable, above {limit} is drift."
)
VERSION_SHOWN = 7
"""Characters of a model version shown: enough to tell two fits apart."""


def label_text(label: str | None) -> str:
    """A model's label in words (an unknown one: its name without the `label_` prefix)."""
    if not label:
        return "n/a"
    return LABELS.get(label, label.removeprefix("label_").replace("_", " "))


def version_text(version: str | None) -> str:
    """A model version (a hash of the fit) shortened, with what it is."""
    if not version:
        return "no version recorded"
    return (
        f"version {str(version)[:VERSION_SHOWN]} (an id of this fit; each retrain gets a new one)"
    )


def model_intro(card: dict) -> str:
    """The line under a model's title: what it learns from and which fit it is, in words."""
    rows = card.get("training_rows") or 0
    return (
        f"Learns from {label_text(card.get('label'))}. Model {version_text(card.get('model_version'))}"
        f", trained on {rows:,} rows."
    )


def _day(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%d %b %Y}"


def windows(card: dict) -> pd.DataFrame:
    """The validated fit's windows (where the scores come from) and the served model's."""
    return pd.DataFrame(
        [
            [
                "Trained (validated)",
                _day(card.get("training_start")),
                _day(card.get("training_end")),
            ],
            ["Validation", _day(card.get("validation_start")), _day(card.get("validation_end"))],
            ["Served model (refit)", _day(card.get("refit_start")), _day(card.get("refit_end"))],
        ],
        columns=["window", "from", "to"],
    )


def scores_table(report: dict | None) -> pd.DataFrame:
    """The model's scores beside the base rate, the simple rule and the logistic regression on
    the same rows."""
    report = report or {}
    rows = []
    for key, label in METRICS:
        rows.append(
            [label]
            + [
                (report.get(column) or {}).get(key)
                for column in ("model", "base_rate", "heuristic", "logistic")
            ]
        )
    return pd.DataFrame(
        rows, columns=["metric", "model", "base rate", "simple rule", "logistic regression"]
    )


def validation(card: dict) -> dict:
    return ((card.get("metrics") or {}).get("validation")) or {}


def fit_sample_text(sample: dict | None) -> str | None:
    """What a booster fit on: every row, or the ad-set sample the row budget chose."""
    if not sample:
        return None
    if sample["rows"] == sample["of_rows"]:
        return f"all {sample['rows']:,} rows"
    return (
        f"{sample['rows']:,} of {sample['of_rows']:,} rows: every day of {sample['ad_sets']:,} "
        f"of {sample['of_ad_sets']:,} ad sets (by hash of their id)"
    )


def backtest_table(card: dict) -> pd.DataFrame:
    folds = (card.get("backtest") or {}).get("folds") or []
    return pd.DataFrame(
        [
            {
                "cutoff": fold.get("cutoff"),
                "evaluated": f"{fold.get('evaluation_start')} → {fold.get('evaluation_end')}",
                "rows": fold.get("rows"),
                "fit on": fit_sample_text(fold.get("fit_sample")),
                "AUC": (fold.get("model") or {}).get("auc"),
                "simple rule AUC": (fold.get("heuristic") or {}).get("auc"),
                "logistic AUC": (fold.get("logistic") or {}).get("auc"),
                "Brier": (fold.get("model") or {}).get("brier"),
                "base-rate Brier": (fold.get("base_rate") or {}).get("brier"),
                "status": fold.get("status"),
            }
            for fold in folds
        ]
    )


DRIFT_LIMIT = 0.2
"""PSI above this is drift: the same limit as the pipeline's feature_drift check."""
CALENDAR_FEATURES = ("days_since_first_day",)
"""Features that count days: the pipeline leaves them out of the models (they always drift)."""
CALENDAR_NOTE = (
    "Days since the first day is not a model feature: a count of days always drifts (the "
    "latest 28 days lie past every training value), and leaving it out left validation AUC "
    "unchanged. Day of week is cyclic and is judged like every other feature."
)
DRIFT_COLUMNS = {
    "feature": ("Feature", "text"),
    "psi": ("PSI", "number"),
    "null_share_training": ("Empty, training", "percent"),
    "null_share_latest": ("Empty, latest 28d", "percent"),
}


def drift(card: dict) -> dict:
    """The feature-drift verdict of a model card, as the pipeline's check judges it: `passed`,
    `verdict` (a sentence), `note` (what is left out and why) and `table` (highest PSI first)."""
    rows = [row for row in card.get("psi") or [] if isinstance(row, dict)]
    calendar = [row["feature"] for row in rows if row.get("feature") in CALENDAR_FEATURES]
    judged = [row for row in rows if row.get("feature") not in CALENDAR_FEATURES]
    judged.sort(key=lambda row: -(row.get("psi") or 0.0))
    drifted = [row["feature"] for row in judged if (row.get("psi") or 0.0) > DRIFT_LIMIT]
    if not judged:
        verdict = "No drift figures stored for this model."
    elif drifted:
        verdict = (
            f"Feature drift: {len(drifted)} of {len(judged)} features have a PSI above "
            f"{DRIFT_LIMIT} (training rows against the latest 28 days): "
            f"{', '.join(drifted[:5])}{'…' if len(drifted) > 5 else ''}. Recent scores may be "
            "less reliable."
        )
    else:
        top = judged[0]
        verdict = (
            f"No feature drift: all {len(judged)} features have a PSI of at most {DRIFT_LIMIT} "
            f"(training rows against the latest 28 days); highest {top['feature']} at "
            f"{(top.get('psi') or 0.0):.2f}."
        )
    note = CALENDAR_NOTE
    if calendar:
        note = (
            f"{', '.join(calendar)} counts days and always drifts: this model (stored before it "
            "was dropped) is judged without it."
        )
    frame = pd.DataFrame(judged, columns=list(DRIFT_COLUMNS))
    return {
        "passed": bool(judged) and not drifted,
        "drifted": drifted,
        "verdict": verdict,
        "note": note,
        "table": frame,
    }


RULE_COLUMNS = {
    "rule": ("Rule", "text"),
    "table_name": ("Table", "text"),
    "action": ("Action", "text"),
    "rows_affected": ("Rows affected", "count"),
    "status": ("Status", "text"),
    "description": ("What it checks", "text"),
}
QUARANTINE_COLUMNS = {
    "reason": ("Reason", "text"),
    "source_file": ("File", "text"),
    "rows": ("Rows", "count"),
}
ACCOUNTING_COLUMNS = {
    "source_file": ("File", "text"),
    "file_records": ("Records in the file", "count"),
    "bronze_rows": ("Loaded", "count"),
    "silver_rows": ("Kept after cleaning", "count"),
    "duplicates_dropped": ("Duplicates dropped", "count"),
    "quarantined_rows": ("Quarantined", "count"),
    "balanced": ("All accounted for", "yes/no"),
}
"""The data-quality tables' columns: header in words and kind of figure (app.narrative.FORMATS),
shared by the dashboard and the report."""


CURVE_BACKTEST_COLUMNS = {
    "ad_set_name": ("Ad set", "text"),
    "fit": ("Curve", "text"),
    "spend": ("Spend (£)", "money"),
    "expected_revenue": ("Expected revenue (£)", "money"),
    "expected_revenue_low": ("low", "money"),
    "expected_revenue_high": ("high", "money"),
    "actual_revenue": ("Actual revenue (£)", "money"),
    "error": ("Expected vs actual", "percent"),
    "inside": ("Actual in range", "yes/no"),
}


def curve_backtest(backtest: pd.DataFrame) -> dict:
    """The response curves' walk-forward backtest for a marketer: a verdict sentence, one row per
    four-week period, and the latest period per ad set (expected vs actual, worst misses first).
    An empty backtest (too little history, or not built yet) says so."""
    if backtest.empty:
        return {
            "verdict": "No backtest yet: the curves need a few months of history before a past "
            "cutoff to be tried against the weeks after it.",
            "folds": pd.DataFrame(),
            "latest": pd.DataFrame(),
        }
    folds = fold_summaries(backtest)
    within = max(abs(fold.total_error) for fold in folds)
    coverage = sum(fold.coverage * fold.ad_sets for fold in folds) / sum(f.ad_sets for f in folds)
    ad_set_error = sum(fold.ad_set_error for fold in folds) / len(folds)
    periods = "four-week period" if len(folds) == 1 else f"{len(folds)} four-week periods"
    verdict = (
        f"Over the last {periods} the curves, fitted only on the days before each period and "
        f"given the spend that then happened, predicted total revenue within {within:.0%}; per "
        f"ad set they were off by {ad_set_error:.0%} on average (weighted by revenue), and "
        f"{coverage:.0%} of the 90% ranges held the actual revenue."
    )
    table = pd.DataFrame(
        {
            "Period": [
                f"{_day(fold.cutoff + pd.Timedelta(days=1))} – "
                f"{_day(fold.cutoff + pd.Timedelta(days=HORIZON_DAYS))}"
                for fold in folds
            ],
            "Ad sets": [fold.ad_sets for fold in folds],
            "Expected revenue (£)": [round(fold.expected) for fold in folds],
            "Actual revenue (£)": [round(fold.actual) for fold in folds],
            "Total off by": [f"{fold.total_error:+.1%}" for fold in folds],
            "Per ad set off by": [f"{fold.ad_set_error:.1%}" for fold in folds],
            "In the 90% range": [f"{fold.coverage:.0%}" for fold in folds],
        }
    )
    last = backtest[backtest["cutoff"] == backtest["cutoff"].max()].copy()
    actual = last["actual_revenue"].astype(float)
    last["error"] = (last["expected_revenue"] - actual) / actual.where(actual > 0)
    last["inside"] = (last["expected_revenue_low"] <= actual) & (
        actual <= last["expected_revenue_high"]
    )
    last = last.assign(_miss=last["error"].abs()).sort_values(
        ["_miss", "ad_set_id"], ascending=[False, True], na_position="last"
    )
    latest = last[list(CURVE_BACKTEST_COLUMNS)].reset_index(drop=True)
    return {"verdict": verdict, "folds": table, "latest": latest}
