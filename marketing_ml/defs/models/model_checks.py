"""Leakage gates (blocking) and honesty warnings on the ML assets.

Every check opens the lakehouse itself and reads what was stored, so it judges the tables and
model rows the dashboard will see, not the objects that were meant to be written.

A model not trained yet (fewer days of history than its label window and validation need) is a
state, not a failure: its warning checks fail at WARN with the reason, its blocking checks verify
that the row and its scores are empty as it says, and the descriptive tables still publish. So is
an uninformative model (a label nearly all one class): its blocking checks verify that it stores
no booster and that every row is scored with its base rate, strictly between 0 and 1.
"""

import hashlib
import json
import re

import dagster as dg
import numpy as np

from marketing_ml.defs.models.model_assets import SCORED_DAYS, scored_window_sql
from marketing_ml.ml.features import (
    CALENDAR_FEATURES,
    FEATURE_COLUMNS,
    KEY_COLUMNS,
    LABEL_COLUMNS,
    feature_sql,
)
from marketing_ml.ml.store import DATE_COLUMNS, TRAINED, UNINFORMATIVE, VALIDATED_FIT_COLUMNS
from marketing_ml.ml.training import CONVERSION, PACING_RISK, ModelSpec
from marketing_ml.resources import LakehouseResource
from marketing_ml.storage import tables_for
from marketing_ml.table_keys import (
    DAILY_ADSET_METRICS,
    FEATURES,
    LABELS,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
    model_key,
    table_name,
)

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN
MIN_AUC_LIFT = 0.02
PSI_LIMIT = 0.2
POINT_IN_TIME_SHARES = (0.5, 0.9)
"""Cutoffs at these shares of the distinct dates: the first lies inside every training window."""
POINT_IN_TIME_AD_SETS = 100
"""Ad sets recomputed by the point-in-time check. Features are computed per ad set, so a
deterministic sample checks the same SQL at a cost that does not grow with the number of ad sets."""
LOOKS_AHEAD = re.compile(r"\bLEAD\s*\(|\bFOLLOWING\b", re.IGNORECASE)


def _columns(connection, table: str) -> list[str]:
    return tables_for(connection).column_names(connection, table)


def _model_row(connection, spec: ModelSpec) -> dict:
    cursor = connection.execute(
        f"SELECT * EXCLUDE (booster), booster IS NULL AS booster_is_null FROM models.{spec.name}"
    )
    names = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    if len(rows) != 1:
        raise dg.Failure(f"models.{spec.name} holds {len(rows)} rows, expected one model")
    return dict(zip(names, rows[0], strict=True))


def model_status(row: dict) -> str:
    """TRAINED, or the row's "not trained: …" status (rows from before the column: trained)."""
    return row.get("status") or TRAINED


def model_not_trained(row: dict, connection) -> dg.AssetCheckResult:
    """A warning check's verdict on a model not trained yet or uninformative: not passed, with
    the reason. Never a metric, and never blocking: the descriptive tables still publish."""
    metrics = json.loads(row["metrics"])
    history = metrics.get("history") or {}
    label = metrics.get("label") or {}
    return dg.AssetCheckResult(
        passed=False,
        severity=WARN,
        metadata={
            "status": model_status(row),
            "days_of_history": history.get("days_of_history"),
            "days_needed": history.get("days_needed"),
            "positive_share": label.get("share"),
        },
    )


@dg.asset_check(
    asset=FEATURES,
    blocking=True,
    description="No column of gold.features is a label, and the feature SQL never looks ahead "
    "(no LEAD, no FOLLOWING frame).",
)
def features_exclude_labels(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.connect(read_only=True) as connection:
        stored = set(_columns(connection, table_name(FEATURES)))
        label_columns = set(_columns(connection, table_name(LABELS))) - set(KEY_COLUMNS)
    leaked = sorted(stored & (label_columns | set(LABEL_COLUMNS)))
    looks_ahead = LOOKS_AHEAD.findall(feature_sql(table_name(DAILY_ADSET_METRICS)))
    return dg.AssetCheckResult(
        passed=not leaked and not looks_ahead,
        severity=ERROR,
        metadata={
            "label_columns_among_features": leaked,
            "forward_looking_sql": sorted(set(looks_ahead)),
            "features": len(stored - set(KEY_COLUMNS)),
        },
    )


def point_in_time_cutoffs(dates: list) -> list:
    dates = sorted(set(dates))
    if not dates:
        return []
    return sorted({dates[min(len(dates) - 1, int(len(dates) * s))] for s in POINT_IN_TIME_SHARES})


def point_in_time_sample(ad_set_ids: list[str], size: int = POINT_IN_TIME_AD_SETS) -> list[str]:
    """`size` ad sets chosen by a hash of their id: the same ids give the same sample on any run."""
    return sorted(
        sorted(set(ad_set_ids), key=lambda ad_set: hashlib.sha256(ad_set.encode()).hexdigest())[
            :size
        ]
    )


def point_in_time_mismatches(
    connection, daily_table: str, features_table: str, cutoff, ad_set_ids: list[str] | None = None
) -> int:
    """Rows that differ between stored features and features recomputed from data <= cutoff,
    over every ad set or only `ad_set_ids`. Both sides are computed once (each is read twice)."""
    only = "" if ad_set_ids is None else " AND list_contains($ad_set_ids, ad_set_id)"
    truncated = f"(SELECT * FROM {daily_table} WHERE date <= DATE '{cutoff}'{only})"
    columns = ", ".join([*KEY_COLUMNS, *FEATURE_COLUMNS])
    return connection.execute(
        f"""
WITH recomputed AS MATERIALIZED (
    SELECT {columns} FROM ({feature_sql(truncated)}) AS recomputed_features
),
stored AS MATERIALIZED (
    SELECT {columns} FROM {features_table} WHERE date <= DATE '{cutoff}'{only}
)
SELECT
    (SELECT count(*) FROM (SELECT * FROM recomputed EXCEPT SELECT * FROM stored) AS only_new)
    + (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM recomputed) AS only_old)""",
        {} if ad_set_ids is None else {"ad_set_ids": ad_set_ids},
    ).fetchone()[0]


@dg.asset_check(
    asset=FEATURES,
    blocking=True,
    additional_deps=[DAILY_ADSET_METRICS],
    description="Features recomputed from gold.daily_adset_metrics truncated at two cutoffs equal "
    "the stored features for every date up to the cutoff: nothing reads the future. Checked on "
    f"{POINT_IN_TIME_AD_SETS} ad sets chosen by a hash of their id (all of them when fewer).",
)
def features_point_in_time(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.connect(read_only=True) as connection:
        dates = [
            row[0]
            for row in connection.execute("SELECT DISTINCT date FROM gold.features").fetchall()
        ]
        cutoffs = point_in_time_cutoffs(dates)
        ad_sets = point_in_time_sample(
            [
                row[0]
                for row in connection.execute(
                    "SELECT DISTINCT ad_set_id FROM gold.features"
                ).fetchall()
            ]
        )
        mismatches = {
            str(cutoff): point_in_time_mismatches(
                connection, table_name(DAILY_ADSET_METRICS), table_name(FEATURES), cutoff, ad_sets
            )
            for cutoff in cutoffs
        }
    return dg.AssetCheckResult(
        passed=bool(cutoffs) and not any(mismatches.values()),
        severity=ERROR,
        metadata={"mismatched_rows_by_cutoff": mismatches, "ad_sets_checked": len(ad_sets)},
    )


def untrained_row_is_empty(row: dict) -> dg.AssetCheckResult:
    """A row that says "not trained" holds no booster, no training rows and no window: nothing
    was fit, so nothing can have leaked, and nothing can be scored from it."""
    filled = [name for name in DATE_COLUMNS if name != "trained_at_data_date" and row[name]]
    problems = [f"{name} is set" for name in filled]
    if not row["booster_is_null"]:
        problems.append("it stores a booster")
    if row["training_rows"]:
        problems.append(f"it counts {row['training_rows']} training rows")
    if row["model_version"] is not None:
        problems.append("it has a model version")
    return dg.AssetCheckResult(
        passed=not problems,
        severity=ERROR,
        metadata={
            "status": model_status(row),
            "problems": [f"marked not trained but {problem}" for problem in problems],
        },
    )


def uninformative_row_serves_its_base_rate(row: dict) -> dg.AssetCheckResult:
    """A row that says "uninformative" holds no booster and no validated fit; its base rate is
    strictly between 0 and 1 and comes from labelled days whose windows are all in the data."""
    label = json.loads(row["metrics"]).get("label") or {}
    rate = label.get("served_probability")
    problems = [f"{name} is set" for name in VALIDATED_FIT_COLUMNS if row[name]]
    if not row["booster_is_null"]:
        problems.append("it stores a booster")
    if rate is None or not 0 < rate < 1:
        problems.append(f"its base rate {rate} is not strictly between 0 and 1")
    problems += refit_problems(row)
    return dg.AssetCheckResult(
        passed=not problems,
        severity=ERROR,
        metadata={
            "status": model_status(row),
            "problems": [f"marked uninformative but {problem}" for problem in problems],
        },
    )


def refit_problems(row: dict) -> list[str]:
    """The served model learnt only from days whose label window the data holds."""
    if row.get("refit_end") is None:
        return []
    horizon = np.timedelta64(int(row["horizon_days"]), "D")
    refit_end = np.datetime64(row["refit_end"], "D")
    if refit_end + horizon <= np.datetime64(row["trained_at_data_date"], "D"):
        return []
    return [f"the refit's labels reach past the last day of data {row['trained_at_data_date']}"]


def split_invariants(row: dict, connection) -> dg.AssetCheckResult:
    if model_status(row).startswith(UNINFORMATIVE):
        return uninformative_row_serves_its_base_rate(row)
    if model_status(row) != TRAINED:
        return untrained_row_is_empty(row)
    horizon = np.timedelta64(int(row["horizon_days"]), "D")

    def day(name):
        return None if row[name] is None else np.datetime64(row[name], "D")

    problems = []
    if day("fit_end") is not None and not day("fit_end") + horizon < day("calibration_start"):
        problems.append("fit labels reach into the calibration window")
    if not day("training_end") + horizon <= day("validation_cutoff"):
        problems.append("training labels reach past the cutoff T")
    if day("validation_start") is not None and not day("validation_cutoff") < day(
        "validation_start"
    ):
        problems.append("validation starts on or before T")
    problems += refit_problems(row)
    windows = {
        name: str(row[name])
        for name in (
            "training_start",
            "fit_end",
            "calibration_start",
            "training_end",
            "validation_cutoff",
            "validation_start",
            "validation_end",
            "refit_start",
            "refit_end",
        )
        if name in row
    }
    return dg.AssetCheckResult(
        passed=not problems,
        severity=ERROR,
        metadata={"problems": problems, "horizon_days": int(row["horizon_days"]), **windows},
    )


def model_features_exclude_labels(row: dict, connection) -> dg.AssetCheckResult:
    used = json.loads(row["features"])
    available = set(_columns(connection, table_name(FEATURES))) - set(KEY_COLUMNS)
    label_columns = set(_columns(connection, table_name(LABELS))) - set(KEY_COLUMNS)
    leaked = sorted(set(used) & (label_columns | set(LABEL_COLUMNS)))
    unknown = sorted(set(used) - available)
    return dg.AssetCheckResult(
        passed=not leaked and not unknown,
        severity=ERROR,
        metadata={"label_columns_used": leaked, "not_in_gold_features": unknown},
    )


def validation_has_both_classes(row: dict, connection) -> dg.AssetCheckResult:
    validation = json.loads(row["metrics"])["validation"]
    return dg.AssetCheckResult(
        passed=validation["status"] == "ok",
        severity=WARN,
        metadata={
            "status": validation["status"],
            "rows": validation["rows"],
            "positives": validation["positives"],
        },
    )


def beats_base_rate(row: dict, connection) -> dg.AssetCheckResult:
    validation = json.loads(row["metrics"])["validation"]
    model_auc = validation["model"]["auc"]
    model_brier, base_brier = validation["model"]["brier"], validation["base_rate"]["brier"]
    passed = (
        model_auc is not None
        and model_auc >= 0.5 + MIN_AUC_LIFT
        and model_brier is not None
        and base_brier is not None
        and model_brier < base_brier
    )
    return dg.AssetCheckResult(
        passed=bool(passed),
        severity=WARN,
        metadata={
            "status": validation["status"],
            "auc": _metric(model_auc),
            "brier": _metric(model_brier),
            "base_rate_brier": _metric(base_brier),
        },
    )


def skill_over_heuristic(row: dict, connection) -> dg.AssetCheckResult:
    validation = json.loads(row["metrics"])["validation"]
    gaps = validation["model_minus_heuristic"]
    return dg.AssetCheckResult(
        passed=bool(validation["skill_over_heuristic"]),
        severity=WARN,
        metadata={
            f"{metric}_model_minus_heuristic": json.dumps(gaps[metric])
            for metric in ("auc", "brier", "log_loss")
        },
    )


CALENDAR_NOTE = (
    "Calendar position: days_since_first_day is not a model feature (a count of days always "
    "drifts, and dropping it left validation AUC unchanged); a model stored before that is "
    "judged without it. day_of_week is cyclic and judged like every other feature."
)


def feature_drift(row: dict, connection) -> dg.AssetCheckResult:
    psi = json.loads(row["psi"])
    judged = [item for item in psi if item["feature"] not in CALENDAR_FEATURES]
    drifted = [item["feature"] for item in judged if (item["psi"] or 0.0) > PSI_LIMIT]
    table = "\n".join(
        ["| feature | PSI |", "|---|---|"]
        + [f"| {item['feature']} | {_metric(item['psi'])} |" for item in judged]
    )
    return dg.AssetCheckResult(
        passed=not drifted,
        severity=WARN,
        metadata={
            "drifted_features": drifted,
            "psi": dg.MetadataValue.md(table),
            "calendar_features": dg.MetadataValue.text(CALENDAR_NOTE),
            "calendar_features_in_model": [
                item["feature"] for item in psi if item["feature"] in CALENDAR_FEATURES
            ],
        },
    )


MODEL_CHECKS = (
    (
        split_invariants,
        True,
        (),
        "Fit, calibration and validation are ordered in time, each earlier part purged by the "
        "label horizon: fit end + horizon < calibration start, training end + horizon <= T < "
        "validation start. A model not trained yet (too little history) has no split: its row "
        "must hold no booster, no window and no training rows.",
    ),
    (
        model_features_exclude_labels,
        True,
        (FEATURES, LABELS),
        "The model's stored feature list is point-in-time features only: every one a column of "
        "gold.features, none a label or a column of gold.labels.",
    ),
    (
        validation_has_both_classes,
        False,
        (),
        "The validation window holds both outcomes; otherwise AUC is not computable.",
    ),
    (
        beats_base_rate,
        False,
        (),
        f"Validation AUC at least {MIN_AUC_LIFT} above the base rate's 0.5, and Brier below the "
        "base rate's Brier.",
    ),
    (
        skill_over_heuristic,
        False,
        (),
        "The model beats the persistence heuristic on validation: the paired bootstrap interval "
        "(by date) of Brier(model) − Brier(heuristic) lies below zero.",
    ),
    (
        feature_drift,
        False,
        (),
        f"Population stability index of each feature, training rows against the latest 28 days, "
        f"at most {PSI_LIMIT}. Calendar position (days since the first day) is not a model "
        "feature: a count of days always drifts.",
    ),
)
"""(judge, blocking, extra tables read, description) of every check on a model: each judges the
model row as stored."""


def build_model_checks(spec: ModelSpec) -> dg.AssetChecksDefinition:
    """Every check of one model in one step: the model row is read once (a step per check
    costs about 0.1 s of overhead each)."""
    model = model_key(spec.name)
    judges = {dg.AssetCheckKey(model, judge.__name__): judge for judge, _, _, _ in MODEL_CHECKS}
    blocks_publish = {
        dg.AssetCheckKey(model, judge.__name__): blocks for judge, blocks, _, _ in MODEL_CHECKS
    }

    @dg.multi_asset_check(
        name=f"{spec.name}_checks",
        specs=[
            dg.AssetCheckSpec(
                judge.__name__,
                asset=model,
                description=description,
                blocking=blocking,
                additional_deps=list(reads),
            )
            for judge, blocking, reads, description in MODEL_CHECKS
        ],
        can_subset=True,
        description=f"Leakage gates and honesty warnings on models.{spec.name}.",
    )
    def model_checks(context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource):
        selected = [key for key in judges if key in context.selected_asset_check_keys]
        with lakehouse.connect(read_only=True) as connection:
            row = _model_row(connection, spec)
            untrained = model_status(row) != TRAINED
            judged = {
                key: (model_not_trained if untrained and not blocks_publish[key] else judges[key])(
                    row, connection
                )
                for key in selected
            }
        for key, result in judged.items():
            yield dg.AssetCheckResult(
                asset_key=model,
                check_name=key.name,
                passed=result.passed,
                severity=result.severity,
                metadata=result.metadata,
            )

    return model_checks


def _metric(value) -> float:
    return float("nan") if value is None else float(value)


def build_scores_check(scored: dg.AssetKey, column: str) -> dg.AssetChecksDefinition:
    table = table_name(scored)

    @dg.asset_check(
        asset=scored,
        name="scores_are_probabilities_one_per_key",
        blocking=True,
        additional_deps=[DAILY_ADSET_METRICS],
        description=f"The table has exactly one row per (ad_set_id, date) of "
        f"gold.daily_adset_metrics in its latest {SCORED_DAYS} days, each with a model_status; "
        f"{column} is strictly between 0 and 1 on every row scored by a trained or an "
        "uninformative model (a calibrated probability is never certain), and NULL (with no "
        "model version) on every row of a model not trained yet.",
    )
    def scores_valid(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        scored_window = scored_window_sql(table_name(DAILY_ADSET_METRICS))
        served = f"(model_status = '{TRAINED}' OR model_status LIKE '{UNINFORMATIVE}%')"
        with lakehouse.connect(read_only=True) as connection:
            outside, not_trained, scored_untrained, no_status, duplicates, missing, extra = (
                connection.execute(
                    f"""
                SELECT
                    (SELECT count(*) FROM {table} WHERE {served}
                     AND ({column} IS NULL OR {column} <= 0 OR {column} >= 1)),
                    (SELECT count(*) FROM {table} WHERE NOT {served}),
                    (SELECT count(*) FROM {table} WHERE NOT {served}
                     AND ({column} IS NOT NULL OR model_version IS NOT NULL)),
                    (SELECT count(*) FROM {table} WHERE model_status IS NULL),
                    (SELECT count(*) - count(DISTINCT (ad_set_id, date)) FROM {table}),
                    (SELECT count(*) FROM (SELECT ad_set_id, date FROM ({scored_window})
                                           EXCEPT SELECT ad_set_id, date FROM {table})),
                    (SELECT count(*) FROM (SELECT ad_set_id, date FROM {table}
                                           EXCEPT SELECT ad_set_id, date FROM ({scored_window})))
                """
                ).fetchone()
            )
            statuses = [
                status
                for (status,) in connection.execute(
                    f"SELECT DISTINCT model_status FROM {table} ORDER BY ALL"
                ).fetchall()
            ]
        return dg.AssetCheckResult(
            passed=outside == scored_untrained == no_status == duplicates == missing == extra == 0,
            severity=ERROR,
            metadata={
                "outside_0_1_or_null": outside,
                "rows_of_a_model_not_trained": not_trained,
                "scored_by_a_model_not_trained": scored_untrained,
                "rows_without_model_status": no_status,
                "model_status": ", ".join(str(status) for status in statuses),
                "duplicate_keys": duplicates,
                "keys_missing": missing,
                "keys_not_in_gold": extra,
            },
        )

    return scores_valid


ML_ASSET_CHECKS = [
    features_exclude_labels,
    features_point_in_time,
    build_model_checks(PACING_RISK),
    build_model_checks(CONVERSION),
    build_scores_check(SCORED_ADSETS, "under_pacing_risk"),
    build_scores_check(SCORED_CONVERSIONS, "roas_on_target_prob"),
]
