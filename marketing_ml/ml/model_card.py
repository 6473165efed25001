"""A model card as Dagster metadata: markdown tables a reviewer reads in the UI."""

from datetime import date, timedelta

import dagster as dg
import pandas as pd

from marketing_ml.ml.store import CalibratedModel


def _number(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def scores_table(report: dict) -> str:
    """Model beside the base rate, the heuristic and the logistic regression, with the bootstrap
    interval of the model − heuristic gap."""
    gaps = report.get("model_minus_heuristic") or {}
    rows = []
    for metric in ("auc", "brier", "log_loss", "ece"):
        gap = gaps.get(metric)
        interval = (
            "n/a"
            if not gap
            else f"{gap['difference']:+.4f} [{_number(gap['low'])}, {_number(gap['high'])}]"
        )
        rows.append(
            [
                metric,
                _number(report["model"].get(metric)),
                _number(report["base_rate"].get(metric)),
                _number(report["heuristic"].get(metric)),
                _number((report.get("logistic") or {}).get(metric)),
                interval,
            ]
        )
    summary = (
        f"{report['status']}; {report['rows']} rows, {report['positives']} positive "
        f"(event rate {_number(report['event_rate'], 3)})"
    )
    return (
        summary
        + "\n\n"
        + _table(
            [
                "metric",
                "model",
                "base rate",
                "heuristic",
                "logistic regression",
                "model − heuristic [95% CI, by date]",
            ],
            rows,
        )
    )


def not_trained_metadata(model: CalibratedModel) -> dict:
    card = model.card
    history = card.metrics.get("history") or {}
    return {
        "trained": dg.MetadataValue.bool(False),
        "status": dg.MetadataValue.text(card.status),
        "predicts": dg.MetadataValue.text(card.predicts),
        "days_of_history": dg.MetadataValue.int(history.get("days_of_history", 0)),
        "days_needed": dg.MetadataValue.int(history.get("days_needed", 0)),
        "why": dg.MetadataValue.text(history.get("why", "")),
    }


def uninformative_metadata(model: CalibratedModel) -> dict:
    """No booster was fit (`trained` false), but nothing waits for more history either: the
    raw-folder sensor reads the status and counts it as trained."""
    card = model.card
    label = card.metrics["label"]
    return {
        "trained": dg.MetadataValue.bool(False),
        "status": dg.MetadataValue.text(card.status),
        "model_version": dg.MetadataValue.text(model.version),
        "predicts": dg.MetadataValue.text(card.predicts),
        "labelled_rows": dg.MetadataValue.int(label["rows"]),
        "positive_share": dg.MetadataValue.float(label["share"]),
        "served_probability": dg.MetadataValue.float(label["served_probability"]),
        "refit_window": dg.MetadataValue.text(f"{card.refit_start} → {card.refit_end}"),
        **trained_through_metadata(model),
    }


def day_of(value) -> date | None:
    """A stored date (date, Timestamp or ISO text) as a date; None when missing."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def trained_through_metadata(model: CalibratedModel) -> dict:
    """The last day the served model learnt from, and its label's horizon (a model not trained
    yet has neither)."""
    trained_through = day_of(model.trained_through)
    if trained_through is None:
        return {}
    return {
        "trained_through": dg.MetadataValue.text(trained_through.isoformat()),
        "horizon_days": dg.MetadataValue.int(int(model.card.horizon_days)),
    }


def freshness_metadata(model: CalibratedModel, data_end) -> dict:
    """What a scoring run tells the automation sensor: the last day of the data scored, and
    (for a trained model) the last day whose label is known in it (data_end − the label's
    horizon) and how many labelled days the model has not learnt from. More than a week of them
    asks for the retrain (`RetrainDue` in marketing_ml/defs/automation/conditions.py)."""
    data_end = day_of(data_end)
    if data_end is None:
        return {}
    metadata = {"data_end": dg.MetadataValue.text(data_end.isoformat())}
    trained_through = day_of(model.trained_through)
    if trained_through is None:
        return metadata
    labelled_through = data_end - timedelta(days=int(model.card.horizon_days))
    return {
        **metadata,
        **trained_through_metadata(model),
        "labelled_through": dg.MetadataValue.text(labelled_through.isoformat()),
        "new_labelled_days": dg.MetadataValue.int((labelled_through - trained_through).days),
    }


def model_metadata(model: CalibratedModel) -> dict:
    """`trained` and `status` on every model materialization (the raw-folder sensor reads them);
    the scores, windows and tables of a trained model."""
    if model.uninformative:
        return uninformative_metadata(model)
    if not model.trained:
        return not_trained_metadata(model)
    card = model.card
    validation = card.metrics["validation"]
    folds = [
        [
            fold["cutoff"],
            f"{fold['evaluation_start']} → {fold['evaluation_end']}",
            str(fold["rows"]),
            _number(fold["model"]["auc"]),
            _number(fold["heuristic"]["auc"]),
            _number(fold["model"]["brier"]),
            _number(fold["base_rate"]["brier"]),
        ]
        for fold in card.backtest["folds"]
    ]
    psi = [
        [
            row["feature"],
            _number(row["psi"], 3),
            _number(row["null_share_training"], 3),
            _number(row["null_share_latest"], 3),
        ]
        for row in card.psi
    ]
    return {
        "trained": dg.MetadataValue.bool(True),
        "status": dg.MetadataValue.text(card.status),
        "model_version": dg.MetadataValue.text(model.version),
        "predicts": dg.MetadataValue.text(card.predicts),
        "heuristic": dg.MetadataValue.text(card.metrics["heuristic"]),
        "training_window": dg.MetadataValue.text(
            f"{card.training_start} → {card.training_end} (the validated fit)"
        ),
        "calibration_window": dg.MetadataValue.text(
            f"{card.calibration_start} → {card.calibration_end}"
        ),
        "validation_window": dg.MetadataValue.text(
            f"{card.validation_start} → {card.validation_end} (cutoff {card.validation_cutoff})"
        ),
        "refit_window": dg.MetadataValue.text(
            f"{card.refit_start} → {card.refit_end} (the served model; data through "
            f"{card.trained_at_data_date})"
        ),
        **trained_through_metadata(model),
        "training_rows": dg.MetadataValue.int(card.training_rows),
        "training_fingerprint": dg.MetadataValue.text(card.training_fingerprint),
        "validation_auc": dg.MetadataValue.float(validation["model"]["auc"] or float("nan")),
        "validation_brier": dg.MetadataValue.float(validation["model"]["brier"] or float("nan")),
        "validation_ece": dg.MetadataValue.float(validation["ece"] or float("nan")),
        "logistic_auc": dg.MetadataValue.float(
            (validation.get("logistic") or {}).get("auc") or float("nan")
        ),
        "skill_over_heuristic": dg.MetadataValue.bool(validation["skill_over_heuristic"]),
        "validation": dg.MetadataValue.md(scores_table(validation)),
        "backtest": dg.MetadataValue.md(
            scores_table(card.backtest["pooled"])
            + "\n\n"
            + _table(
                ["cutoff", "evaluated", "rows", "AUC", "heuristic AUC", "Brier", "base Brier"],
                folds,
            )
        ),
        "reliability": dg.MetadataValue.md(
            _table(
                ["bin", "rows", "mean predicted", "observed"],
                [
                    [
                        row["bin"],
                        str(row["rows"]),
                        _number(row["mean_predicted"], 3),
                        _number(row["observed_rate"], 3),
                    ]
                    for row in card.reliability
                ],
            )
        ),
        "importances": dg.MetadataValue.md(
            _table(
                ["feature", "gain"],
                [[row["feature"], _number(row["gain"], 3)] for row in card.importances[:20]],
            )
        ),
        "psi": dg.MetadataValue.md(
            _table(["feature", "PSI", "NULL share, training", "NULL share, latest 28 days"], psi)
        ),
    }
