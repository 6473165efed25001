"""The ML assets: features, labels, training data, two calibrated models and their scores."""

from functools import partial

import dagster as dg
import numpy as np
import pandas as pd

from marketing_ml.defs.automation.conditions import ON_NEW_DATA, ON_WEEKLY_RETRAIN
from marketing_ml.ml.features import feature_sql, label_sql, training_dataset_sql
from marketing_ml.ml.model_card import freshness_metadata, model_metadata
from marketing_ml.ml.store import CalibratedModel
from marketing_ml.ml.training import (
    CONVERSION,
    PACING_RISK,
    ModelSpec,
    TrainingParameters,
    train_model,
)
from marketing_ml.resources import LakehouseResource
from marketing_ml.storage import (
    RecomputedFromChangedDays,
    ScoredRows,
    Sql,
    Table,
    full_load_requested,
)
from marketing_ml.table_keys import (
    CONVERSION_MODEL,
    DAILY_ADSET_METRICS,
    FEATURES,
    LABELS,
    PACING_RISK_MODEL,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
    TRAINING_DATASET,
    model_key,
)

KEY_ORDER = ("ad_set_id", "date")
SCORED_DAYS = 28
"""The scored tables cover the latest four weeks: the dashboard reads the latest day, and a month
shows how a score moved. Scoring every day of a year of 2,000 ad sets took 7 s per model."""


def scored_window_sql(table: str) -> str:
    """The rows of `table` in the scored window (its last SCORED_DAYS dates)."""
    return (
        f"SELECT * FROM {table} "
        f"WHERE date > (SELECT max(date) FROM {table}) - INTERVAL {SCORED_DAYS} DAY"
    )


@dg.asset(
    key=FEATURES,
    ins={"daily": dg.AssetIn(key=DAILY_ADSET_METRICS)},
    group_name="gold",
    automation_condition=ON_NEW_DATA,
    kinds={"duckdb", "sql"},
    description="Point-in-time features per ad set and day: each row reads only data dated on or "
    "before its date. Trailing 1/3/7/14/28-day windows (NULL until the history spans them) and "
    "yesterday's value of spend, planned budget (the pacing file's dated planned_spend), "
    "impressions, clicks, CTR, CPM, frequency, utilization, bookings, revenue, ROAS and the "
    "under-pacing share; days since the first day, day of week, audience.",
)
def features(context: dg.AssetExecutionContext, daily: Table) -> RecomputedFromChangedDays:
    """Recomputed from the first day whose daily rows changed: a feature reads only its own and
    earlier days (and every row joins its ad set's audience). Unsorted: every reader joins,
    filters or sorts it (sorting 730,000 rows cost 1.2 s)."""
    return RecomputedFromChangedDays(
        query=partial(feature_sql, daily.name),
        dated_inputs=(daily.name,),
        undated_inputs=(f"SELECT DISTINCT ad_set_id, target_age FROM {daily}",),
        full_load=full_load_requested(context),
    )


class LabelConfig(dg.Config):
    roas_target: float = 4.0
    """ROAS (revenue ÷ spend) the next 7 days must reach; the dashboard's default target."""


@dg.asset(
    key=LABELS,
    ins={"daily": dg.AssetIn(key=DAILY_ADSET_METRICS)},
    group_name="gold",
    automation_condition=ON_WEEKLY_RETRAIN,
    kinds={"duckdb", "sql"},
    description="Forward-looking labels: tomorrow's vendor pacing status is under_pacing; ROAS "
    "over the next 7 days reaches the target. NULL when the window is not fully in the data or "
    "has no spend.",
)
def labels(config: LabelConfig, daily: Table) -> Sql:
    return Sql(label_sql(str(daily), config.roas_target), order_by=KEY_ORDER)


@dg.asset(
    key=TRAINING_DATASET,
    ins={
        "features": dg.AssetIn(key=FEATURES),
        "labels": dg.AssetIn(key=LABELS),
        "daily": dg.AssetIn(key=DAILY_ADSET_METRICS),
    },
    group_name="gold",
    automation_condition=ON_WEEKLY_RETRAIN,
    kinds={"duckdb", "sql"},
    description="Features ⨝ labels per ad set and day, with the day's own revenue and ROAS.",
)
def training_dataset(features: Table, labels: Table, daily: Table) -> Sql:
    return Sql(training_dataset_sql(str(features), str(labels), str(daily)), order_by=KEY_ORDER)


MD5_PREFIX_DIGITS = 8


def training_rows_sql(training_dataset: str, rows: int, max_rows: int) -> tuple[str, str]:
    """The query of the rows a model trains on, and how they were chosen: every row, or, above
    `max_rows`, every day of the ad sets whose MD5 falls below a fraction of its range, so the
    sample is the same on every run and on both engines, and an ad set is all in or all out.
    In no particular order: training puts the rows in key order itself (`LabelledRows`)."""
    if rows <= max_rows:
        return f"SELECT * FROM {training_dataset}", "every row"
    bound = int(max_rows / rows * 16**MD5_PREFIX_DIGITS)
    threshold = f"{bound:0{MD5_PREFIX_DIGITS}x}"
    query = (
        f"SELECT * FROM {training_dataset} WHERE substr(md5(CAST(ad_set_id AS VARCHAR)), 1, "
        f"{MD5_PREFIX_DIGITS}) < '{threshold}'"
    )
    return query, (
        f"ad sets whose md5(ad_set_id) starts below {threshold} (about {max_rows / rows:.1%} of "
        f"{rows} rows, capped at {max_rows})"
    )


def build_model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=model_key(spec.name),
        ins={"training_dataset": dg.AssetIn(key=TRAINING_DATASET)},
        group_name="models",
        automation_condition=ON_WEEKLY_RETRAIN,
        kinds={"xgboost", "duckdb"},
        description=f"{spec.predicts} Calibrated XGBoost, trained before a time cutoff and judged "
        f"after it, against the base rate and {spec.heuristic_description}.",
    )
    def model(
        context: dg.AssetExecutionContext,
        config: TrainingParameters,
        training_dataset: Table,
        lakehouse: LakehouseResource,
    ) -> CalibratedModel:
        rows = int(lakehouse.frame(f"SELECT count(*) AS n FROM {training_dataset}")["n"].iloc[0])
        query, chosen = training_rows_sql(str(training_dataset), rows, config.max_training_rows)
        try:
            trained = train_model(lakehouse.frame(query), spec, config)
        except ValueError as error:
            raise dg.Failure(description=str(error)) from error
        context.add_output_metadata({**model_metadata(trained), "training_rows_chosen": chosen})
        return trained

    return model


pacing_risk_model = build_model_asset(PACING_RISK)
conversion_model = build_model_asset(CONVERSION)


def data_end(lakehouse: LakehouseResource, features: Table):
    """The last day of the features scored: the day the scores are for."""
    return lakehouse.frame(f"SELECT max(date) AS day FROM {features}")["day"].iloc[0]


def score(
    model: CalibratedModel, features: Table, column: str, with_roas_target: bool = False
) -> ScoredRows:
    """One probability per (ad_set_id, date) of the scored window, with the model version, its
    last training day and its status (and, `with_roas_target`, the model's ROAS target). An
    uninformative model scores every key with its label's base rate, its status saying why. A
    model not trained yet (too little history) scores every key NULL, with NULL version and
    training day, and its status says why: every key is still there, so the dashboard and the
    checks read one shape whatever the history. Scored where the engine runs (see ScoredRows)."""
    card = model.card
    roas_target = np.nan if card.roas_target is None else card.roas_target

    def scores_of(rows: pd.DataFrame) -> pd.DataFrame:
        count = len(rows)
        scored = {
            "ad_set_id": rows["ad_set_id"].astype(str),
            "date": pd.to_datetime(rows["date"]).dt.date,
            column: model.predict_proba(rows).astype(np.float64),
        }
        if with_roas_target:
            scored["roas_target"] = np.full(count, roas_target, dtype=np.float64)
        scored["model_version"] = pd.Series([model.version] * count, dtype="string")
        scored["trained_through"] = pd.Series(
            [model.trained_through] * count, dtype="date32[pyarrow]"
        )
        scored["model_status"] = pd.Series([card.status] * count, dtype="string")
        return pd.DataFrame(scored)

    columns = (
        ("ad_set_id", "VARCHAR"),
        ("date", "DATE"),
        (column, "DOUBLE"),
        *((("roas_target", "DOUBLE"),) if with_roas_target else ()),
        ("model_version", "VARCHAR"),
        ("trained_through", "DATE"),
        ("model_status", "VARCHAR"),
    )
    return ScoredRows(scored_window_sql(str(features)), scores_of, columns, KEY_ORDER)


@dg.asset(
    key=SCORED_ADSETS,
    ins={
        "model": dg.AssetIn(key=PACING_RISK_MODEL),
        "features": dg.AssetIn(key=FEATURES),
    },
    group_name="gold",
    automation_condition=ON_NEW_DATA,
    kinds={"duckdb", "xgboost"},
    description="under_pacing_risk: calibrated probability that each ad set under-paces the next "
    f"day, for every ad set and day of the latest {SCORED_DAYS} days.",
)
def scored_adsets(
    context: dg.AssetExecutionContext,
    model: CalibratedModel,
    features: Table,
    lakehouse: LakehouseResource,
) -> ScoredRows:
    context.add_output_metadata(freshness_metadata(model, data_end(lakehouse, features)))
    return score(model, features, "under_pacing_risk")


@dg.asset(
    key=SCORED_CONVERSIONS,
    ins={
        "model": dg.AssetIn(key=CONVERSION_MODEL),
        "features": dg.AssetIn(key=FEATURES),
    },
    group_name="gold",
    automation_condition=ON_NEW_DATA,
    kinds={"duckdb", "xgboost"},
    description="roas_on_target_prob: calibrated probability that each ad set's ROAS over the "
    f"next 7 days reaches roas_target, for every ad set and day of the latest {SCORED_DAYS} days.",
)
def scored_conversions(
    context: dg.AssetExecutionContext,
    model: CalibratedModel,
    features: Table,
    lakehouse: LakehouseResource,
) -> ScoredRows:
    context.add_output_metadata(freshness_metadata(model, data_end(lakehouse, features)))
    return score(model, features, "roas_on_target_prob", with_roas_target=True)


ML_ASSETS = [
    features,
    labels,
    training_dataset,
    pacing_risk_model,
    conversion_model,
    scored_adsets,
    scored_conversions,
]
