"""Train, calibrate and judge one model: one XGBoost fit per fold, nothing shuffled.

The validated model trains on dates <= T (purged by the label horizon) and is judged on the dates
after T; a walk-forward backtest repeats that at earlier cutoffs. The served model is then refit
the same way on every labelled day, so it is one label window behind the data, not the
validation window. Each fold's booster stops early and is calibrated on the last slice of its own
training dates, which it never fit on. A label nearly all one class fits nothing: it is served as
its base rate.
"""

import hashlib
import itertools
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

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
from marketing_ml.ml.features import CATEGORICAL_FEATURES, LABEL_HORIZON_DAYS, MODEL_FEATURES
from marketing_ml.ml.store import (
    TRAINED,
    UNINFORMATIVE,
    CalibratedModel,
    ModelCard,
    design_matrix,
    feature_array,
    threads_for,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

DRIFT_WINDOW_DAYS = 28
DRIFT_REFERENCE_ROWS = 100_000
"""PSI bins by the training rows' deciles: every k-th of them, about this many, pins the deciles
down as well as all 440,000 of a year of 2,000 ad sets, at a fifth of the cost (1.8 s a model)."""


@dataclass(frozen=True)
class ModelSpec:
    """A model: its label, what it predicts in words, and the heuristic it has to beat."""

    name: str
    label: str
    predicts: str
    positive: str
    """What a positive label means, in words that follow "ad-set days were"."""
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
    positive="under-pacing the next day",
    heuristic=lambda frame: -frame["utilization_1d"],
    heuristic_description="today's budget utilization (lower = riskier)",
)
CONVERSION = ModelSpec(
    name="conversion_model",
    label="label_roas_on_target_next7d",
    predicts="Probability that the ad set's ROAS over the next 7 days reaches the ROAS target.",
    positive="followed by 7 days whose ROAS reached the target",
    heuristic=lambda frame: frame["roas_28d"] - frame["roas_target"],
    heuristic_description="trailing 28-day ROAS against the target",
)


class TrainingParameters(dg.Config):
    """XGBoost and evaluation settings (run config of both model assets); the figures in
    docs/design.md use the defaults."""

    max_rounds: int = 200
    early_stopping_rounds: int = 10
    learning_rate: float = 0.3
    max_depth: int = 4
    max_bin: int = 64
    seed: int = 42
    validation_fraction: float = 0.2
    calibration_fraction: float = 0.25
    backtest_folds: int = 3
    bootstrap_samples: int = 200
    max_fit_rows: int = 300_000
    """The final model's booster fits on at most about this many rows: every day of a fixed
    sample of ad sets (chosen by a hash of their id). Calibration and validation use every row.
    This budget, the learning rate and the early stopping were chosen by `make bench`, which
    trains them beside the previous budget (every row, 0.2, 20 rounds; 150,000-row backtest
    fits) on 200 and 2,000 ad sets: see BENCHMARKS.md."""
    backtest_max_fit_rows: int = 50_000
    """A backtest fold's booster fits on at most about this many rows, sampled the same way."""
    min_minority_rows: int = 50
    min_minority_share: float = 0.02
    """A label is uninformative when its rarer outcome is under 2% of the labelled rows or fewer
    than 50 of them: no booster is fit and every row scores the smoothed base rate. A booster has
    next to nothing to tell apart then: on held-out data with a 98-99% positive label it ranked
    worse than the heuristic (AUC 0.863 against 0.982) and its isotonic map gave rows that were
    17% positive a probability of 0. With 50 rows of the rarer outcome the calibration slice (the
    last quarter) holds about a dozen, the fewest an isotonic step can rest on."""
    max_training_rows: int = 2_000_000
    """At most about this many training rows are collected from the lakehouse into memory: above
    it, every day of a fixed sample of ad sets (by the MD5 of their id, the same on DuckDB and
    Spark), reported in the model's metadata."""


@dataclass(frozen=True)
class Fold:
    """One trained fold and its out-of-time predictions."""

    split: Split
    model: CalibratedModel
    training_index: np.ndarray
    """Positions (in the labelled rows) of the rows the fold trained and calibrated on."""
    fit_sample: dict
    """How many rows and ad sets the booster fit on, of how many before the row budget."""
    labels: np.ndarray
    dates: np.ndarray
    model_probabilities: np.ndarray
    heuristic_probabilities: np.ndarray
    logistic_probabilities: np.ndarray
    base_rate: float | None


@dataclass(frozen=True)
class LabelledRows:
    """The rows that have the label, with what every fold reads from them computed once: the
    feature matrix (categorical columns are coded per fold, from that fold's training rows),
    labels, dates and the heuristic. Folds index these arrays instead of copying frames."""

    keys: pd.DataFrame
    """ad_set_id and date of each labelled row, in the training data's order."""
    features: np.ndarray
    labels: np.ndarray
    dates: np.ndarray
    heuristic: np.ndarray
    category_values: dict[str, np.ndarray]
    category_codes: dict[str, np.ndarray]

    @classmethod
    def of(cls, frame: pd.DataFrame, spec: "ModelSpec") -> "LabelledRows":
        """The labelled rows of `frame` in (ad_set_id, date) order, whatever order the engine
        returned them in (Spark's reads have none), so a fit never depends on it. Rows that
        arrive in that order (DuckDB's, from a table written so) are not moved."""
        labelled = np.flatnonzero(frame[spec.label].notna().to_numpy())
        arrived = pd.DataFrame(
            {column: frame[column].to_numpy()[labelled] for column in ("ad_set_id", "date")}
        )
        order = arrived.sort_values(["ad_set_id", "date"], kind="stable").index.to_numpy()
        if not np.array_equal(order, np.arange(len(order))):
            labelled = labelled[order]
        keys = pd.DataFrame(
            {column: frame[column].to_numpy()[labelled] for column in ("ad_set_id", "date")}
        )
        categorical = {
            name: pd.Categorical(frame[name].astype("string").to_numpy()[labelled])
            for name in CATEGORICAL_FEATURES
        }
        no_categories = {name: () for name in CATEGORICAL_FEATURES}
        return cls(
            keys=keys,
            features=feature_array(frame, MODEL_FEATURES, no_categories)[labelled],
            labels=frame[spec.label].to_numpy(np.float64)[labelled],
            dates=as_days(keys["date"]),
            heuristic=spec.heuristic(frame).to_numpy(np.float64)[labelled],
            category_values={
                name: np.asarray(values.categories, dtype=object)
                for name, values in categorical.items()
            },
            category_codes={name: values.codes for name, values in categorical.items()},
        )

    def categories_of(self, rows: np.ndarray) -> dict[str, tuple[str, ...]]:
        """The values each categorical feature takes in `rows`, sorted."""
        return {
            name: tuple(
                str(value)
                for value in self.category_values[name][np.unique(codes[rows][codes[rows] >= 0])]
            )
            for name, codes in self.category_codes.items()
        }

    def matrix(self, rows: np.ndarray, categories: dict[str, tuple[str, ...]]) -> np.ndarray:
        """The features of `rows`, categorical columns coded by their index in `categories`."""
        matrix = self.features[rows]
        for name, codes in self.category_codes.items():
            position = {value: code for code, value in enumerate(categories[name])}
            recode = np.array(
                [position.get(str(value), np.nan) for value in self.category_values[name]]
                + [np.nan],
                dtype=np.float32,
            )
            matrix[:, MODEL_FEATURES.index(name)] = recode[codes[rows]]
        return matrix


def fit_booster(
    fit: np.ndarray,
    fit_labels: np.ndarray,
    stop: np.ndarray,
    stop_labels: np.ndarray,
    categories: dict,
    params: TrainingParameters,
) -> bytes:
    """XGBoost (hist, fixed seed) stopped early on `stop`; trees past the best round dropped.

    No fit rows gives a booster without trees (a constant), which calibration turns into the
    base rate of the calibration slice.
    """
    import xgboost as xgb  # here, not at import: XGBoost (with sklearn, scipy) loads in ~1 s

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
    train = design_matrix(fit, MODEL_FEATURES, categories)
    train.set_label(fit_labels)
    if len(fit) == 0:
        return bytes(xgb.train({**settings, "base_score": 0.5}, train, 0).save_raw("ubj"))
    evaluation = design_matrix(stop, MODEL_FEATURES, categories)
    evaluation.set_label(stop_labels)
    booster = xgb.train(
        settings,
        train,
        params.max_rounds,
        evals=[(evaluation, "stop")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    return bytes(booster[: booster.best_iteration + 1].save_raw("ubj"))


def ad_set_sample(ad_set_ids: pd.Series, max_rows: int) -> np.ndarray:
    """Mask of every row of the ad sets whose hashed ids come first, about `max_rows` rows.

    Whole ad sets keep each one's history intact; the hash makes the sample the same on every
    run and independent of row order."""
    ids = ad_set_ids.astype(str)
    if len(ids) <= max_rows:
        return np.ones(len(ids), dtype=bool)
    ad_sets = sorted(ids.unique(), key=lambda ad_set: hashlib.sha256(ad_set.encode()).hexdigest())
    keep = max(1, math.ceil(len(ad_sets) * max_rows / len(ids)))
    return ids.isin(ad_sets[:keep]).to_numpy()


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): spend, impressions and ROAS span orders of magnitude between ad
    sets; on a log scale a linear model weighs a doubling alike at £100 and at £10,000."""
    return np.sign(values) * np.log1p(np.abs(values))


LOGISTIC_MAX_FIT_ROWS = 20_000
"""The logistic baseline fits on at most about this many of the booster's fit rows (every day of
a hashed sample of ad sets): about 150 columns need far fewer rows than trees do. At 200 ad sets
x 365 days its held-out AUC was 0.914 / 0.895 (pacing / conversion) from 20,000 rows against
0.909 / 0.890 from 10,000, in 2.4-2.8 s per fit on a busy machine."""
LOGISTIC_C = 0.1
"""L2 strength: the trailing windows overlap (a 7-day sum holds the 3-day one), so the weights
are near-collinear. C = 0.1 converged in 90-130 L-BFGS steps where C = 1 took 135-290, with the
same or better held-out AUC (conversion 0.895 against 0.894)."""


def fit_logistic(features: np.ndarray, labels: np.ndarray) -> "Pipeline | None":
    """The second baseline: a plain logistic regression (L2, C = LOGISTIC_C) on the model's
    features, log-scaled, missing values imputed by the median with a missing flag,
    standardized; the categorical codes one-hot. None when the fit rows hold one class only."""
    # here, not at import: scikit-learn (with scipy) costs about 0.6 s to load
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    if len(np.unique(labels)) < 2:
        return None
    categorical = [MODEL_FEATURES.index(name) for name in CATEGORICAL_FEATURES]
    numeric = [i for i in range(len(MODEL_FEATURES)) if i not in categorical]
    scaled = make_pipeline(
        FunctionTransformer(signed_log),
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    )
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("numeric", scaled, numeric),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        ),
        LogisticRegression(C=LOGISTIC_C, max_iter=500),
    )
    return pipeline.fit(features, labels)


def logistic_scores(model: "Pipeline | None", features: np.ndarray) -> np.ndarray:
    """P(label) of the logistic baseline; NaN without one (calibration then gives the base rate)."""
    if model is None or len(features) == 0:
        return np.full(len(features), np.nan)
    return model.predict_proba(features)[:, 1]


def train_fold(
    rows: LabelledRows,
    split: Split,
    params: TrainingParameters,
    max_fit_rows: int,
    baselines: bool = True,
) -> Fold:
    """Fit, calibrate and score one split; with `baselines`, the heuristic and the logistic
    regression are calibrated on the same slice and scored on the same rows (the served refit,
    which has no rows to score, skips them)."""
    fit_mask = split.rows(rows.dates, "fit")
    fit_ad_sets = rows.keys["ad_set_id"][fit_mask]
    if fit_mask.sum() > max_fit_rows:
        fit_mask[fit_mask] = ad_set_sample(fit_ad_sets, max_fit_rows)
    fit = np.flatnonzero(fit_mask)
    calibration = np.flatnonzero(split.rows(rows.dates, "calibration"))
    evaluated = np.flatnonzero(split.rows(rows.dates, "evaluation"))
    training = np.concatenate([fit, calibration])
    categories = rows.categories_of(training)
    fit_matrix, calibration_matrix = (
        rows.matrix(fit, categories),
        rows.matrix(calibration, categories),
    )
    evaluated_matrix = rows.matrix(evaluated, categories)
    booster = fit_booster(
        fit_matrix,
        rows.labels[fit],
        calibration_matrix,
        rows.labels[calibration],
        categories,
        params,
    )
    uncalibrated = CalibratedModel(booster, MODEL_FEATURES, categories, (0.0, 1.0), (0.0, 1.0))
    calibration_labels = rows.labels[calibration]
    x, y = fit_isotonic(uncalibrated.raw_scores_of(calibration_matrix), calibration_labels)
    model = CalibratedModel(booster, MODEL_FEATURES, categories, tuple(x), tuple(y))
    calibration_rate = float(calibration_labels.mean()) if len(calibration) else None
    heuristic = logistic = np.full(len(evaluated), np.nan)
    if baselines:
        heuristic_x, heuristic_y = fit_isotonic(rows.heuristic[calibration], calibration_labels)
        heuristic = apply_isotonic(
            rows.heuristic[evaluated], heuristic_x, heuristic_y, missing=calibration_rate
        )
        logistic_fit = ad_set_sample(rows.keys["ad_set_id"].iloc[fit], LOGISTIC_MAX_FIT_ROWS)
        regression = fit_logistic(fit_matrix[logistic_fit], rows.labels[fit][logistic_fit])
        logistic_x, logistic_y = fit_isotonic(
            logistic_scores(regression, calibration_matrix), calibration_labels
        )
        logistic = apply_isotonic(
            logistic_scores(regression, evaluated_matrix),
            logistic_x,
            logistic_y,
            missing=calibration_rate,
        )
    return Fold(
        split=split,
        model=model,
        training_index=training,
        fit_sample={
            "rows": int(len(fit)),
            "ad_sets": int(rows.keys["ad_set_id"].iloc[fit].nunique()),
            "of_rows": int(len(fit_ad_sets)),
            "of_ad_sets": int(fit_ad_sets.nunique()),
            "max_rows": max_fit_rows,
        },
        labels=rows.labels[evaluated],
        dates=rows.dates[evaluated],
        model_probabilities=apply_isotonic(
            model.raw_scores_of(evaluated_matrix), model.calibration_x, model.calibration_y
        ),
        heuristic_probabilities=heuristic,
        logistic_probabilities=logistic,
        base_rate=float(rows.labels[training].mean()) if len(training) else None,
    )


def judge(
    labels: np.ndarray,
    dates: np.ndarray,
    model: np.ndarray,
    heuristic: np.ndarray,
    logistic: np.ndarray,
    base_rate: float | None,
    params: TrainingParameters,
    bootstrap: bool = True,
) -> dict:
    """Scores of the model and of the three baselines (base rate, heuristic, logistic
    regression) on the same rows, and the paired bootstrap of model − heuristic. `status` says
    why a score is missing."""
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
        "logistic": scores(labels, logistic),
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
        fold.logistic_probabilities,
        fold.base_rate,
        params,
        bootstrap,
    )


def fingerprint(rows: LabelledRows, index: np.ndarray, categories: dict) -> str:
    """sha256 of the training rows (keys, features with their category codes, label) in key
    order, and of the category lists the codes refer to."""
    keys = rows.keys.iloc[index]
    ordered = index[np.lexsort((keys["date"].to_numpy(), keys["ad_set_id"].to_numpy()))]
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(rows.keys.iloc[ordered], index=False).to_numpy())
    digest.update(rows.matrix(ordered, categories).tobytes())
    digest.update(rows.labels[ordered].tobytes())
    digest.update(repr(sorted(categories.items())).encode())
    return digest.hexdigest()


def importances(model: CalibratedModel) -> list[dict]:
    import xgboost as xgb  # here, not at import: XGBoost (with sklearn, scipy) loads in ~1 s

    gains = xgb.Booster(model_file=bytearray(model.booster)).get_score(importance_type="gain")
    ranked = sorted(model.features, key=lambda name: (-gains.get(name, 0.0), name))
    return [{"feature": name, "gain": float(gains.get(name, 0.0))} for name in ranked]


def drift_reference(training_index: np.ndarray) -> np.ndarray:
    """Every k-th training row, about DRIFT_REFERENCE_ROWS of them (all when fewer)."""
    return training_index[:: max(1, math.ceil(len(training_index) / DRIFT_REFERENCE_ROWS))]


def drift(model: CalibratedModel, expected: np.ndarray, frame: pd.DataFrame) -> list[dict]:
    """PSI per feature: the training rows' features (`expected`) against the latest 28 days."""
    dates = as_days(frame["date"])
    latest = frame[dates > dates.max() - np.timedelta64(DRIFT_WINDOW_DAYS, "D")]
    actual = feature_array(latest, model.features, model.categories)
    return [
        {"feature": name, **population_stability(expected[:, i], actual[:, i])}
        for i, name in enumerate(model.features)
    ]


def _day(value) -> object:
    return None if value is None else pd.Timestamp(value).date()


def walk_forward(
    rows: LabelledRows,
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
                np.empty(0), np.empty(0, "datetime64[D]"), *[np.empty(0)] * 3, None, params, False
            )
            reports.append({**window, **empty, "status": "not computable: no training rows"})
            continue
        fold = train_fold(rows, split, params, params.backtest_max_fit_rows)
        folds.append(fold)
        reports.append(
            {
                **window,
                "training_rows": int(len(fold.training_index)),
                "fit_sample": fold.fit_sample,
                **_fold_report(fold, params, bootstrap=False),
            }
        )
    pooled = judge(
        np.concatenate([f.labels for f in folds] or [np.empty(0)]),
        np.concatenate([f.dates for f in folds] or [np.empty(0, "datetime64[D]")]),
        np.concatenate([f.model_probabilities for f in folds] or [np.empty(0)]),
        np.concatenate([f.heuristic_probabilities for f in folds] or [np.empty(0)]),
        np.concatenate([f.logistic_probabilities for f in folds] or [np.empty(0)]),
        float(np.mean([f.base_rate for f in folds] or [np.nan])),
        params,
    )
    pooled["skill_over_heuristic"] = skill_over_heuristic(pooled)
    return {"pooled": pooled, "folds": reports}


def final_split(
    labelled_dates: np.ndarray, horizon_days: int, params: TrainingParameters
) -> Split | None:
    """The final model's split: validation after T, training purged at T. None without labels."""
    if len(labelled_dates) == 0:
        return None
    cutoff = validation_cutoff(labelled_dates, params.validation_fraction)
    return make_split(labelled_dates, cutoff, horizon_days, None)


def refit_split(labelled_dates: np.ndarray, horizon_days: int) -> Split:
    """The served model's split: every labelled day (each one's label window is in the data),
    the last quarter of them for early stopping and calibration, nothing held out."""
    last_known = np.unique(labelled_dates)[-1] + np.timedelta64(horizon_days, "D")
    return make_split(labelled_dates, last_known, horizon_days, None)


def uninformative_status(
    labels: np.ndarray, spec: ModelSpec, params: TrainingParameters
) -> str | None:
    """Why the label is too one-sided to model, in words; None when it is not."""
    rows, positives = len(labels), int(labels.sum())
    minority = min(positives, rows - positives)
    if (
        rows
        and minority >= params.min_minority_rows
        and minority / rows >= params.min_minority_share
    ):
        return None
    share = positives / rows if rows else 0.0
    return (
        f"{UNINFORMATIVE}{share:.1%} of {rows:,} labelled ad-set days were {spec.positive} "
        f"(the rarer outcome: {minority:,} days; a model needs at least "
        f"{params.min_minority_rows} and {params.min_minority_share:.0%}), so no model was "
        f"fitted and every ad set gets the base rate {smoothed_rate(positives, rows):.1%}"
    )


def smoothed_rate(positives: int, rows: int) -> float:
    """(k + 1) / (n + 2), Laplace's rule of succession: the share of positives, never 0 or 1."""
    return (positives + 1) / (rows + 2)


def uninformative(
    frame: pd.DataFrame,
    spec: ModelSpec,
    params: TrainingParameters,
    rows: LabelledRows,
    status: str,
    roas_target: float | None,
) -> CalibratedModel:
    """The stand-in stored for a label nearly all one class: no booster, no validation, every
    row scored with the smoothed base rate of the labelled days, which are its refit window."""
    every_row = np.arange(len(rows.labels))
    positives = int(rows.labels.sum())
    label = {
        "rows": len(rows.labels),
        "positives": positives,
        "share": positives / len(rows.labels),
        "served_probability": smoothed_rate(positives, len(rows.labels)),
        "min_minority_rows": params.min_minority_rows,
        "min_minority_share": params.min_minority_share,
    }
    return _without_booster(
        spec,
        roas_target,
        status,
        {"label": label},
        trained_at_data_date=_day(as_days(frame["date"]).max()),
        refit=(_day(rows.dates.min()), _day(rows.dates.max())),
        training_rows=len(rows.labels),
        training_fingerprint=fingerprint(rows, every_row, rows.categories_of(every_row)),
    )


def trainable(split: Split | None) -> bool:
    """Training needs a labelled day whose window ends by T (the calibration slice; the booster
    fits on the days before it when any survive the purge, else it is the calibrated base rate)
    and a day after T to judge it on."""
    return split is not None and split.calibration is not None and split.evaluation is not None


MAX_HISTORY_DAYS = 100 * 366


def days_needed(horizon_days: int, params: TrainingParameters) -> int:
    """The fewest days of history from which a model with this label window trains.

    Derived by running the final split itself on D consecutive days, for D = 1, 2, …: a day has
    a label once its whole window is in the data, so the last `horizon_days` days have none; the
    last `validation_fraction` of the labelled days (at least one) are held out after the cutoff
    T; a training day's window must end by T; training needs one such day. With the defaults
    (20% validation): 4 days for the 1-day pacing label, 17 for the 7-day ROAS label.
    """
    first = np.datetime64("2000-01-03", "D")
    for days in itertools.count(horizon_days + 1):
        if days > MAX_HISTORY_DAYS:
            raise ValueError(
                f"no history up to {MAX_HISTORY_DAYS} days trains a {horizon_days}-day label "
                f"with validation_fraction={params.validation_fraction}"
            )
        labelled = first + np.arange(days - horizon_days)
        if trainable(final_split(labelled, horizon_days, params)):
            return days
    raise AssertionError("unreachable")


def not_trained(
    frame: pd.DataFrame,
    spec: ModelSpec,
    params: TrainingParameters,
    labelled_dates: np.ndarray,
    roas_target: float | None,
) -> CalibratedModel:
    """The stand-in stored while there is too little history: no booster, no windows, a status
    that says how many days there are and how many a model needs."""
    days = int(frame["date"].nunique())
    needed = days_needed(spec.horizon_days, params)
    labelled_days = len(np.unique(labelled_dates))
    status = (
        f"not trained: {days} day{'' if days == 1 else 's'} of history, needs at least {needed}"
    )
    if days >= needed:  # enough days, but gaps or days without spend leave their labels NULL
        status += (
            f" consecutive days with spend ({labelled_days} have their {spec.horizon_days}-day "
            "label window in the data)"
        )
    history = {
        "days_of_history": days,
        "days_needed": needed,
        "labelled_days": labelled_days,
        "horizon_days": spec.horizon_days,
        "validation_fraction": params.validation_fraction,
        "why": f"the last {spec.horizon_days} day(s) have no label yet; the last "
        f"{params.validation_fraction:.0%} of the labelled days (at least one) are validation; "
        f"a training day's {spec.horizon_days}-day window must end by the validation cutoff, "
        "and training needs at least one such day",
    }
    last_day = as_days(frame["date"]).max() if len(frame) else None
    return _without_booster(
        spec, roas_target, status, {"history": history}, trained_at_data_date=_day(last_day)
    )


def _without_booster(
    spec: ModelSpec,
    roas_target: float | None,
    status: str,
    metrics: dict,
    trained_at_data_date,
    refit: tuple = (None, None),
    training_rows: int = 0,
    training_fingerprint: str | None = None,
) -> CalibratedModel:
    """A model row with no booster and no validation (too little history, or an uninformative
    label): its card says why in `status` and `metrics`."""
    card = ModelCard(
        model_name=spec.name,
        predicts=spec.predicts,
        label=spec.label,
        horizon_days=spec.horizon_days,
        roas_target=roas_target,
        training_start=None,
        training_end=None,
        fit_end=None,
        calibration_start=None,
        calibration_end=None,
        validation_cutoff=None,
        validation_start=None,
        validation_end=None,
        refit_start=refit[0],
        refit_end=refit[1],
        trained_at_data_date=trained_at_data_date,
        training_rows=training_rows,
        training_fingerprint=training_fingerprint,
        metrics={
            "validation": {"status": status, "rows": 0, "positives": 0, "event_rate": None},
            "heuristic": spec.heuristic_description,
            "split_violations": [],
            **metrics,
        },
        status=status,
    )
    return CalibratedModel(b"", MODEL_FEATURES, {}, (), (), card)


def train_model(
    frame: pd.DataFrame, spec: ModelSpec, params: TrainingParameters
) -> CalibratedModel:
    """The validated model (trained <= T, judged after T, with its walk-forward backtest), whose
    figures the card reports, and the served model refit on every labelled day. With too little
    history for that split, a not-trained stand-in; with a label nearly all one class, an
    uninformative one that serves the base rate. Each says why in its status.

    The backtest trains in a second thread beside the final models: XGBoost, NumPy and hashing
    release the GIL, so the Python-side work of one (matrices, isotonic fits, scores) fills the
    cores the other's boosting leaves idle (both models at 2,000 ad sets: 19.6 s -> 17.2 s).
    Each fold reads only its own rows and seeds, so the results are those of a sequential run.
    BLAS runs on one thread throughout: the logistic baseline's L-BFGS path differed between one
    and two threads (different weights, 235 against 185 steps), so the card would depend on the
    machine, and two threads on a busy machine took 17 s where one took 4.6 s."""
    load_fitting_libraries()
    with threadpool_limits(limits=1, user_api="blas"):
        return _train_model(frame, spec, params)


def load_fitting_libraries() -> None:
    """Imports XGBoost and scikit-learn (with SciPy's BLAS) before `threadpool_limits` is entered:
    it limits only the libraries already loaded, and they are imported lazily (not at definitions
    load), so a first model would otherwise run L-BFGS on two BLAS threads."""
    import sklearn.isotonic  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import xgboost  # noqa: F401


def _train_model(
    frame: pd.DataFrame, spec: ModelSpec, params: TrainingParameters
) -> CalibratedModel:
    labelled_dates = as_days(frame.loc[frame[spec.label].notna(), "date"])
    roas_targets = frame["roas_target"].dropna() if "roas_target" in frame else pd.Series([])
    roas_target = float(roas_targets.iloc[0]) if spec is CONVERSION and len(roas_targets) else None
    split = final_split(labelled_dates, spec.horizon_days, params)
    if not trainable(split):
        return not_trained(frame, spec, params, labelled_dates, roas_target)
    rows = LabelledRows.of(frame, spec)
    if status := uninformative_status(rows.labels, spec, params):
        return uninformative(frame, spec, params, rows, status, roas_target)
    refit = refit_split(labelled_dates, spec.horizon_days)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest") as beside:
        backtest_run = beside.submit(walk_forward, rows, spec, labelled_dates, split.cutoff, params)
        validated = train_fold(rows, split, params, params.max_fit_rows)
        validation = _fold_report(validated, params)
        reliability = reliability_table(validated.labels, validated.model_probabilities)
        validation["ece"] = expected_calibration_error(reliability)
        validation["skill_over_heuristic"] = skill_over_heuristic(validation)
        served = train_fold(rows, refit, params, params.max_fit_rows, baselines=False)
        backtest = backtest_run.result()
    training_window = split.fit or split.calibration
    card = ModelCard(
        model_name=spec.name,
        predicts=spec.predicts,
        label=spec.label,
        horizon_days=spec.horizon_days,
        roas_target=roas_target,
        training_start=_day(training_window[0] if training_window else None),
        training_end=_day(split.calibration[1] if split.calibration else None),
        fit_end=_day(split.fit[1] if split.fit else None),
        calibration_start=_day(split.calibration[0] if split.calibration else None),
        calibration_end=_day(split.calibration[1] if split.calibration else None),
        validation_cutoff=_day(split.cutoff),
        validation_start=_day(split.evaluation[0] if split.evaluation else None),
        validation_end=_day(split.evaluation[1] if split.evaluation else None),
        refit_start=_day((refit.fit or refit.calibration)[0]),
        refit_end=_day(refit.calibration[1]),
        trained_at_data_date=_day(as_days(frame["date"]).max()),
        training_rows=len(served.training_index),
        training_fingerprint=fingerprint(rows, served.training_index, served.model.categories),
        metrics={
            "validation": validation,
            "heuristic": spec.heuristic_description,
            "split_violations": split.violations() + refit.violations(),
            "fit_sample": served.fit_sample,
            "validated_fit": {
                "training_rows": len(validated.training_index),
                "fit_sample": validated.fit_sample,
            },
            "refit": {
                "fit_end": _text(refit.fit, 1),
                "calibration_start": str(refit.calibration[0]),
            },
        },
        backtest=backtest,
        reliability=reliability,
        importances=importances(served.model),
        psi=drift(
            served.model,
            rows.matrix(drift_reference(served.training_index), served.model.categories),
            frame,
        ),
        status=TRAINED,
    )
    return CalibratedModel(
        served.model.booster,
        served.model.features,
        served.model.categories,
        served.model.calibration_x,
        served.model.calibration_y,
        card,
    )


def _text(window, index: int) -> str | None:
    return None if window is None else str(window[index])
