"""Train, calibrate and judge one model: one XGBoost fit per fold, nothing shuffled.

The final model trains on dates <= T (purged by the label horizon) and is judged on the dates
after T; a walk-forward backtest repeats that at earlier cutoffs. Each fold's booster stops early
and is calibrated on the last slice of its own training dates, which it never fit on.
"""

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
import xgboost as xgb

from marketing_ml.ml.evaluation import (
    Split,
    apply_isotonic,
    as_days,
    backtest_cutoffs,
    expected_calibration_error,
    fit_isotonic,
    make_split,
    paired_bootstrap,
    population_stability,
    reliability_table,
    scores,
    validation_cutoff,
)
from marketing_ml.ml.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, LABEL_HORIZON_DAYS
from marketing_ml.ml.store import (
    CalibratedModel,
    ModelCard,
    design_matrix,
    feature_array,
    threads_for,
)

DRIFT_WINDOW_DAYS = 28


@dataclass(frozen=True)
class ModelSpec:
    """A model: its label, what it predicts in words, and the heuristic it has to beat."""

    name: str
    label: str
    predicts: str
    heuristic: Callable[[pd.DataFrame], pd.Series]
    """A score a marketer could compute without a model; higher means the label is likelier."""
    heuristic_description: str

    @property
    def horizon_days(self) -> int:
        return LABEL_HORIZON_DAYS[self.label]


PACING_RISK = ModelSpec(
    name="pacing_risk_model",
    label="label_under_pacing_next",
    predicts="Probability that the ad set is under-pacing tomorrow (vendor pacing status).",
    heuristic=lambda frame: -frame["utilization_1d"],
    heuristic_description="today's budget utilization (lower = riskier)",
)
CONVERSION = ModelSpec(
    name="conversion_model",
    label="label_roas_on_target_next7d",
    predicts="Probability that the ad set's ROAS over the next 7 days reaches the ROAS target.",
    heuristic=lambda frame: frame["roas_28d"] - frame["roas_target"],
    heuristic_description="trailing 28-day ROAS against the target",
)


class TrainingParameters(dg.Config):
    """XGBoost and evaluation settings (run config of both model assets); the README's figures
    use the defaults."""

    max_rounds: int = 200
    early_stopping_rounds: int = 20
    learning_rate: float = 0.2
    max_depth: int = 4
    max_bin: int = 64
    seed: int = 42
    validation_fraction: float = 0.2
    calibration_fraction: float = 0.25
    backtest_folds: int = 3
    bootstrap_samples: int = 200
    backtest_max_fit_rows: int = 150_000
    """A backtest fold fits on at most about this many rows: every day of a fixed sample of ad
    sets (chosen by a hash of their id). The final model always fits on every row."""


@dataclass(frozen=True)
class Fold:
    """One trained fold and its out-of-time predictions."""

    split: Split
    model: CalibratedModel
    training_rows: pd.DataFrame
    labels: np.ndarray
    dates: np.ndarray
    model_probabilities: np.ndarray
    heuristic_probabilities: np.ndarray
    base_rate: float | None


def categories_of(frame: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(sorted(frame[name].dropna().astype(str).unique()))
        for name in CATEGORICAL_FEATURES
    }


def fit_booster(
    fit: pd.DataFrame, stop: pd.DataFrame, label: str, categories: dict, params: TrainingParameters
) -> bytes:
    """XGBoost (hist, fixed seed) stopped early on `stop`; trees past the best round dropped.

    No fit rows gives a booster without trees (a constant), which calibration turns into the
    base rate of the calibration slice.
    """
    settings = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "max_bin": params.max_bin,
        "seed": params.seed,
        "nthread": threads_for(len(fit)),
    }
    train = design_matrix(fit, FEATURE_COLUMNS, categories)
    train.set_label(fit[label].to_numpy(np.float64))
    if len(fit) == 0:
        return bytes(xgb.train({**settings, "base_score": 0.5}, train, 0).save_raw("ubj"))
    evaluation = design_matrix(stop, FEATURE_COLUMNS, categories)
    evaluation.set_label(stop[label].to_numpy(np.float64))
    booster = xgb.train(
        settings,
        train,
        params.max_rounds,
        evals=[(evaluation, "stop")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    return bytes(booster[: booster.best_iteration + 1].save_raw("ubj"))


def ad_set_sample(fit: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """Every row of the ad sets whose hashed ids come first, about `max_rows` rows in all.

    Whole ad sets keep each one's history intact; the hash makes the sample the same on every
    run and independent of row order."""
    if len(fit) <= max_rows:
        return fit
    ad_sets = sorted(
        fit["ad_set_id"].astype(str).unique(),
        key=lambda ad_set: hashlib.sha256(ad_set.encode()).hexdigest(),
    )
    keep = max(1, math.ceil(len(ad_sets) * max_rows / len(fit)))
    return fit[fit["ad_set_id"].astype(str).isin(ad_sets[:keep])]


def train_fold(
    frame: pd.DataFrame,
    spec: ModelSpec,
    split: Split,
    params: TrainingParameters,
    max_fit_rows: int | None = None,
) -> Fold:
    labelled = frame[frame[spec.label].notna()]
    dates = as_days(labelled["date"])
    fit = labelled[split.rows(dates, "fit")]
    if max_fit_rows is not None:
        fit = ad_set_sample(fit, max_fit_rows)
    calibration = labelled[split.rows(dates, "calibration")]
    evaluated = labelled[split.rows(dates, "evaluation")]
    training = pd.concat([fit, calibration])
    categories = categories_of(training)
    booster = fit_booster(fit, calibration, spec.label, categories, params)
    uncalibrated = CalibratedModel(booster, FEATURE_COLUMNS, categories, (0.0, 1.0), (0.0, 1.0))
    calibration_labels = calibration[spec.label].to_numpy(np.float64)
    x, y = fit_isotonic(uncalibrated.raw_scores(calibration), calibration_labels)
    model = CalibratedModel(booster, FEATURE_COLUMNS, categories, tuple(x), tuple(y))
    heuristic_x, heuristic_y = fit_isotonic(
        spec.heuristic(calibration).to_numpy(np.float64), calibration_labels
    )
    calibration_rate = float(calibration_labels.mean()) if len(calibration) else None
    return Fold(
        split=split,
        model=model,
        training_rows=training,
        labels=evaluated[spec.label].to_numpy(np.float64),
        dates=as_days(evaluated["date"]),
        model_probabilities=model.predict_proba(evaluated),
        heuristic_probabilities=apply_isotonic(
            spec.heuristic(evaluated).to_numpy(np.float64),
            heuristic_x,
            heuristic_y,
            missing=calibration_rate,
        ),
        base_rate=float(training[spec.label].mean()) if len(training) else None,
    )


def judge(
    labels: np.ndarray,
    dates: np.ndarray,
    model: np.ndarray,
    heuristic: np.ndarray,
    base_rate: float | None,
    params: TrainingParameters,
    bootstrap: bool = True,
) -> dict:
    """Scores of the model, the base rate and the heuristic on the same rows, and the paired
    bootstrap of model − heuristic. `status` says why a score is missing."""
    positives = int(labels.sum())
    status = "ok"
    if len(labels) == 0:
        status = "not computable: no labelled rows in the window"
    elif positives in (0, len(labels)):
        status = "not computable: one class only in the window (AUC undefined)"
    if base_rate is None:
        base_rate = float("nan")
    constant = np.full(len(labels), base_rate)
    return {
        "status": status,
        "rows": int(len(labels)),
        "positives": positives,
        "event_rate": float(labels.mean()) if len(labels) else None,
        "training_base_rate": None if np.isnan(base_rate) else base_rate,
        "model": scores(labels, model),
        "base_rate": scores(labels, constant) if not np.isnan(base_rate) else scores([], []),
        "heuristic": scores(labels, heuristic),
        "model_minus_heuristic": paired_bootstrap(
            labels, model, heuristic, dates, params.bootstrap_samples, params.seed
        )
        if bootstrap
        else None,
    }


def skill_over_heuristic(report: dict) -> bool:
    """A claim of skill: the bootstrap interval of the Brier difference lies below zero."""
    brier = (report.get("model_minus_heuristic") or {}).get("brier")
    return bool(brier and brier["high"] is not None and brier["high"] < 0)


def _fold_report(fold: Fold, params: TrainingParameters, bootstrap: bool = True) -> dict:
    return judge(
        fold.labels,
        fold.dates,
        fold.model_probabilities,
        fold.heuristic_probabilities,
        fold.base_rate,
        params,
        bootstrap,
    )


def fingerprint(rows: pd.DataFrame, label: str) -> str:
    """sha256 of the training rows (keys, features, label) in key order."""
    columns = ["ad_set_id", "date", *FEATURE_COLUMNS, label]
    ordered = rows[columns].sort_values(["ad_set_id", "date"], kind="stable")
    hashed = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def importances(model: CalibratedModel) -> list[dict]:
    gains = xgb.Booster(model_file=bytearray(model.booster)).get_score(importance_type="gain")
    ranked = sorted(model.features, key=lambda name: (-gains.get(name, 0.0), name))
    return [{"feature": name, "gain": float(gains.get(name, 0.0))} for name in ranked]


def drift(model: CalibratedModel, training: pd.DataFrame, frame: pd.DataFrame) -> list[dict]:
    """PSI per feature: the training rows against the latest 28 days of data."""
    dates = as_days(frame["date"])
    latest = frame[dates > dates.max() - np.timedelta64(DRIFT_WINDOW_DAYS, "D")]
    expected = feature_array(training, model.features, model.categories)
    actual = feature_array(latest, model.features, model.categories)
    return [
        {"feature": name, **population_stability(expected[:, i], actual[:, i])}
        for i, name in enumerate(model.features)
    ]


def _day(value) -> object:
    return None if value is None else pd.Timestamp(value).date()


def walk_forward(
    frame: pd.DataFrame,
    spec: ModelSpec,
    labelled_dates: np.ndarray,
    cutoff: np.datetime64,
    params: TrainingParameters,
) -> dict:
    """Backtest folds before T, each trained only on what preceded its own cutoff; pooled too."""
    folds, reports = [], []
    for fold_cutoff, evaluation_end in backtest_cutoffs(
        labelled_dates, cutoff, params.backtest_folds
    ):
        split = make_split(labelled_dates, fold_cutoff, spec.horizon_days, evaluation_end)
        window = {
            "cutoff": str(fold_cutoff),
            "evaluation_start": _text(split.evaluation, 0),
            "evaluation_end": _text(split.evaluation, 1),
        }
        if split.calibration is None or split.evaluation is None:
            empty = judge(
                np.empty(0), np.empty(0, "datetime64[D]"), *[np.empty(0)] * 2, None, params, False
            )
            reports.append({**window, **empty, "status": "not computable: no training rows"})
            continue
        fold = train_fold(frame, spec, split, params, params.backtest_max_fit_rows)
        folds.append(fold)
        reports.append(
            {
                **window,
                "training_rows": int(len(fold.training_rows)),
                **_fold_report(fold, params, bootstrap=False),
            }
        )
    pooled = judge(
        np.concatenate([f.labels for f in folds] or [np.empty(0)]),
        np.concatenate([f.dates for f in folds] or [np.empty(0, "datetime64[D]")]),
        np.concatenate([f.model_probabilities for f in folds] or [np.empty(0)]),
        np.concatenate([f.heuristic_probabilities for f in folds] or [np.empty(0)]),
        float(np.mean([f.base_rate for f in folds] or [np.nan])),
        params,
    )
    pooled["skill_over_heuristic"] = skill_over_heuristic(pooled)
    return {"pooled": pooled, "folds": reports}


def train_model(
    frame: pd.DataFrame, spec: ModelSpec, params: TrainingParameters
) -> CalibratedModel:
    """The final model (trained <= T, judged after T) with its walk-forward backtest in its card."""
    labelled_dates = as_days(frame.loc[frame[spec.label].notna(), "date"])
    if len(labelled_dates) == 0:
        raise ValueError(
            f"{spec.name}: no row has {spec.label} (its {spec.horizon_days}-day window is never "
            f"fully observed in {len(frame)} rows over {frame['date'].nunique()} dates); "
            f"load more days of data"
        )
    cutoff = validation_cutoff(labelled_dates, params.validation_fraction)
    split = make_split(labelled_dates, cutoff, spec.horizon_days, None)
    if split.calibration is None:
        raise ValueError(
            f"{spec.name}: no labelled row ends its {spec.horizon_days}-day label window by the "
            f"validation cutoff {cutoff} ({len(np.unique(labelled_dates))} labelled dates); "
            f"load more days of data"
        )
    final = train_fold(frame, spec, split, params)
    validation = _fold_report(final, params)
    reliability = reliability_table(final.labels, final.model_probabilities)
    validation["ece"] = expected_calibration_error(reliability)
    validation["skill_over_heuristic"] = skill_over_heuristic(validation)

    backtest = walk_forward(frame, spec, labelled_dates, cutoff, params)
    training_window = split.fit or split.calibration
    roas_targets = frame["roas_target"].dropna() if "roas_target" in frame else pd.Series([])
    card = ModelCard(
        model_name=spec.name,
        predicts=spec.predicts,
        label=spec.label,
        horizon_days=spec.horizon_days,
        roas_target=float(roas_targets.iloc[0])
        if spec is CONVERSION and len(roas_targets)
        else None,
        training_start=_day(training_window[0] if training_window else None),
        training_end=_day(split.calibration[1] if split.calibration else None),
        fit_end=_day(split.fit[1] if split.fit else None),
        calibration_start=_day(split.calibration[0] if split.calibration else None),
        calibration_end=_day(split.calibration[1] if split.calibration else None),
        validation_cutoff=_day(split.cutoff),
        validation_start=_day(split.evaluation[0] if split.evaluation else None),
        validation_end=_day(split.evaluation[1] if split.evaluation else None),
        trained_at_data_date=_day(as_days(frame["date"]).max()),
        training_rows=len(final.training_rows),
        training_fingerprint=fingerprint(final.training_rows, spec.label),
        metrics={
            "validation": validation,
            "heuristic": spec.heuristic_description,
            "split_violations": split.violations(),
        },
        backtest=backtest,
        reliability=reliability,
        importances=importances(final.model),
        psi=drift(final.model, final.training_rows, frame),
    )
    return CalibratedModel(
        final.model.booster,
        final.model.features,
        final.model.categories,
        final.model.calibration_x,
        final.model.calibration_y,
        card,
    )


def _text(window, index: int) -> str | None:
    return None if window is None else str(window[index])
