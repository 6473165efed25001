"""A calibrated model as one DuckDB row: XGBoost's own UBJSON booster, isotonic thresholds, the
feature list and the model card. No pickle: a row read back is plain bytes, numbers and JSON."""

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd

from marketing_ml.ml.evaluation import apply_isotonic
from marketing_ml.storage.engine import tables_for
from serving_contract import MODEL_JSON_COLUMNS

if TYPE_CHECKING:
    import xgboost as xgb

TRAINED = "trained"
"""The status of a model that was fit. Any other status says why it was not: "not trained: "
(too little history for its label window: no booster, no version, no windows, scores NULL) or
UNINFORMATIVE (a label nearly all one class: no booster, every row scored with the label's
smoothed base rate)."""
UNINFORMATIVE = "uninformative: "
"""How the status of a model whose label is nearly all one class begins."""

ROWS_PER_THREAD = 10_000
"""Below this many rows per thread, OpenMP start-up costs more than it saves, so small data runs
on one thread. Measured on 2 cores: a model on 73,000 rows trains in 3.0 s on one thread and
2.0 s on two (the same booster: hist training does not depend on the thread count)."""


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def threads_for(rows: int) -> int:
    return max(1, min(available_cores(), rows // ROWS_PER_THREAD))


def feature_array(
    frame: pd.DataFrame, features: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Features in the stored order as float32 (what XGBoost works in); a categorical column
    becomes its index in the stored category list (NaN when unseen), so codes never depend on
    the rows being scored."""
    matrix = np.empty((len(frame), len(features)), dtype=np.float32, order="F")
    for i, name in enumerate(features):
        if name in categories:
            codes = pd.Categorical(frame[name], categories=list(categories[name])).codes
            matrix[:, i] = np.where(codes >= 0, codes, np.nan)
        else:
            matrix[:, i] = frame[name].to_numpy(dtype=np.float32, na_value=np.nan)
    return np.ascontiguousarray(matrix)


def design_matrix(
    features: np.ndarray, names: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> "xgb.DMatrix":
    import xgboost as xgb  # here, not at import: XGBoost (with sklearn, scipy) loads in ~1 s

    return xgb.DMatrix(
        features,
        feature_names=list(names),
        feature_types=["c" if name in categories else "q" for name in names],
        enable_categorical=True,
        nthread=threads_for(len(features)),
    )


@dataclass(frozen=True)
class ModelCard:
    """What a reader needs to trust a model: what it predicts, its windows and its scores."""

    model_name: str
    predicts: str
    label: str
    horizon_days: int
    roas_target: float | None
    training_start: object
    training_end: object
    fit_end: object
    calibration_start: object
    calibration_end: object
    validation_cutoff: object
    validation_start: object
    validation_end: object
    refit_start: object
    refit_end: object
    """The served model's training window: refit on every labelled day once validation is done,
    so it is trained through the last day whose label is known (`training_*`, `calibration_*`
    and `validation_*` are the validated fit's, whose figures the card reports)."""
    trained_at_data_date: object
    training_rows: int
    training_fingerprint: str
    metrics: dict = field(default_factory=dict)
    backtest: dict = field(default_factory=dict)
    reliability: list = field(default_factory=list)
    importances: list = field(default_factory=list)
    psi: list = field(default_factory=list)
    status: str = TRAINED
    """TRAINED, "not trained: <days> days of history, needs at least <n>", or
    "uninformative: <why>"."""


@dataclass(frozen=True)
class CalibratedModel:
    """An XGBoost booster followed by an isotonic map; `predict_proba` gives calibrated P(label)."""

    booster: bytes
    features: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]
    calibration_x: tuple[float, ...]
    calibration_y: tuple[float, ...]
    card: ModelCard | None = None

    @property
    def trained(self) -> bool:
        """True when a booster was fit: False for the stand-ins stored while there is too little
        history or the label is uninformative."""
        return self.card is None or self.card.status == TRAINED

    @property
    def uninformative(self) -> bool:
        """The label is nearly all one class: every row scores the smoothed base rate."""
        return self.card is not None and self.card.status.startswith(UNINFORMATIVE)

    @property
    def base_rate(self) -> float | None:
        """The probability an uninformative model gives every row (None for the others)."""
        return self.card.metrics["label"]["served_probability"] if self.uninformative else None

    @property
    def trained_through(self):
        """The last day the served model learnt from: the refit's last day (the validated fit's
        for a model stored before the refit); None when not trained."""
        return self.card.refit_end or self.card.training_end

    @cached_property
    def version(self) -> str | None:
        """Changes whenever the booster, the calibration, the feature contract or the served base
        rate changes; None when the model is not trained (there is nothing to version)."""
        if not self.trained and not self.uninformative:
            return None
        digest = hashlib.sha256(self.booster)
        digest.update(_json([self.calibration_x, self.calibration_y]).encode())
        digest.update(_json([list(self.features), self.categories]).encode())
        if self.uninformative:
            digest.update(_json(self.base_rate).encode())
        return digest.hexdigest()[:12]

    @cached_property
    def _booster(self) -> "xgb.Booster":
        import xgboost as xgb  # here, not at import: XGBoost (with sklearn, scipy) loads in ~1 s

        return xgb.Booster(model_file=bytearray(self.booster))

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        return self.raw_scores_of(feature_array(frame, self.features, self.categories))

    def raw_scores_of(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated scores of a feature matrix in `self.features` order."""
        if len(features) == 0:
            return np.empty(0)
        matrix = design_matrix(features, self.features, self.categories)
        self._booster.set_param({"nthread": threads_for(len(features))})
        return self._booster.predict(matrix).astype(np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the label for each row of `frame` (which has the features);
        the base rate for every row when the label is uninformative; NaN for every row when the
        model is not trained."""
        if self.uninformative:
            return np.full(len(frame), self.base_rate)
        if not self.trained:
            return np.full(len(frame), np.nan)
        return apply_isotonic(self.raw_scores(frame), self.calibration_x, self.calibration_y)

    def to_row(self) -> pd.DataFrame:
        card = asdict(self.card)
        row = {
            "model_name": card.pop("model_name"),
            "model_version": self.version,
            "status": card.pop("status"),
        }
        row.update({k: _json(v) if k in MODEL_JSON_COLUMNS else v for k, v in card.items()})
        row["features"] = _json(list(self.features))
        row["categories"] = _json(self.categories)
        row["calibration"] = _json({"x": self.calibration_x, "y": self.calibration_y})
        row["booster"] = self.booster if self.booster else None
        return pd.DataFrame([row])

    @classmethod
    def from_row(cls, row: Mapping) -> "CalibratedModel":
        card = {}
        for item in fields(ModelCard):
            if item.name == "status":  # rows stored before the status column were all trained
                status = row.get("status")
                card["status"] = TRAINED if _missing(status) else str(status)
                continue
            if item.name in REFIT_COLUMNS and item.name not in row:  # stored before the refit
                card[item.name] = None
                continue
            value = row[item.name]
            if item.name in MODEL_JSON_COLUMNS:
                value = json.loads(value)
            elif item.name in DATE_COLUMNS:
                value = None if pd.isna(value) else pd.Timestamp(value).date()
            elif item.name == "roas_target":
                value = None if pd.isna(value) else float(value)
            card[item.name] = value
        calibration = json.loads(row["calibration"])
        model = cls(
            booster=b"" if _missing(row["booster"]) else bytes(row["booster"]),
            features=tuple(json.loads(row["features"])),
            categories={k: tuple(v) for k, v in json.loads(row["categories"]).items()},
            calibration_x=tuple(calibration["x"]),
            calibration_y=tuple(calibration["y"]),
            card=ModelCard(**card),
        )
        stored_version = None if _missing(row["model_version"]) else row["model_version"]
        if model.version != stored_version:
            raise ValueError(
                f"model {card['model_name']}: stored version {row['model_version']} does not "
                f"match its contents ({model.version}); the row was altered, retrain the model"
            )
        return model


VALIDATED_FIT_COLUMNS = (
    "training_start",
    "training_end",
    "fit_end",
    "calibration_start",
    "calibration_end",
    "validation_cutoff",
    "validation_start",
    "validation_end",
)
REFIT_COLUMNS = ("refit_start", "refit_end")
DATE_COLUMNS = (*VALIDATED_FIT_COLUMNS, *REFIT_COLUMNS, "trained_at_data_date")

ROW_SCHEMA = (
    ("model_name", "VARCHAR"),
    ("model_version", "VARCHAR"),
    ("status", "VARCHAR"),
    ("predicts", "VARCHAR"),
    ("label", "VARCHAR"),
    ("horizon_days", "INTEGER"),
    ("roas_target", "DOUBLE"),
    *((column, "DATE") for column in DATE_COLUMNS),
    ("training_rows", "BIGINT"),
    ("training_fingerprint", "VARCHAR"),
    *((column, "VARCHAR") for column in MODEL_JSON_COLUMNS),
    ("features", "VARCHAR"),
    ("categories", "VARCHAR"),
    ("calibration", "VARCHAR"),
    ("booster", "BLOB"),
)
"""Typed explicitly, so a NULL window (too little data) never changes the table's schema."""


def store_model(connection, name: str, model: CalibratedModel) -> None:
    """Replace `name` with the model's row in one transaction."""
    columns = ",\n    ".join(f"CAST({c} AS {t}) AS {c}" for c, t in ROW_SCHEMA)
    connection.register("_model_row", model.to_row())
    try:
        tables_for(connection).replace_table_with_query(
            connection, name, f"SELECT\n    {columns}\nFROM _model_row"
        )
    finally:
        connection.unregister("_model_row")


def _missing(value) -> bool:
    return value is None or (not isinstance(value, bytes | bytearray | str) and pd.isna(value))


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def load_model(connection, name: str) -> CalibratedModel:
    """The model stored in table `name` (one row)."""
    rows = connection.execute(f"SELECT * FROM {name}").df()
    if len(rows) != 1:
        raise dg.Failure(
            description=f"{name} holds {len(rows)} rows, expected one model: materialize "
            f"the model asset again."
        )
    return CalibratedModel.from_row(rows.iloc[0])
