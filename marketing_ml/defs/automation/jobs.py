"""How a team runs it: a daily refresh, a weekly retrain, everything at once, and a raw-folder sensor.

Schedules and the sensor are off by default (local dev); MARKETING_ML_SCHEDULES=on turns them on
(docker compose does), so a laptop never starts runs by itself unless asked to.
"""

import hashlib
import json
import os

import dagster as dg

from marketing_ml.resources import RawFilesResource
from marketing_ml.storage import FULL_LOAD_TAG
from marketing_ml.table_keys import (
    LABELS,
    MODEL_KEYS,
    PUBLISH,
    RESPONSE_CURVE_BACKTEST,
    RESPONSE_CURVES,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
    TRAINING_DATASET,
)

MODELS = dg.AssetSelection.groups("models")
TRAINING_DATA = dg.AssetSelection.assets(LABELS, TRAINING_DATASET)
"""What only training reads: the daily refresh skips it (4 s a day at 2,000 ad sets × a year)."""
CURVES = dg.AssetSelection.assets(RESPONSE_CURVES, RESPONSE_CURVE_BACKTEST)
"""Refitted weekly, not daily: the fit is most of the plan's cost (3.9 s at 2,000 ad sets × 180
days) and a week of new days moves a 180-day fit little. The daily plan re-prices today's spend.
The curves' backtest (three more fits) is refitted with them."""
SCORED_KEYS = (SCORED_ADSETS, SCORED_CONVERSIONS)
"""Each scoring run says what its model was trained through and what labelled days the data
now has (marketing_ml/ml/model_card.py::freshness_metadata)."""
RETRAIN_AFTER_DAYS = 7
"""More labelled days than this that a model has not learnt from ask for the weekly retrain: a
week's data moves a model little, and the Monday schedule retrains weekly anyway."""
BUSY_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]

daily_refresh = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all() - MODELS - TRAINING_DATA - CURVES,
    description="Bronze → gold from the raw folder, rescored with the last trained models "
    "(not retrained), the budget plan remade on today's spend with the last fitted response "
    "curves, then published. The run users make every day.",
)
weekly_retrain = dg.define_asset_job(
    "weekly_retrain",
    selection=TRAINING_DATA | MODELS.downstream() | CURVES.downstream(),
    description="Rebuilds the labels and training data from the current gold tables, retrains "
    "both models (with their checks), refits the response curves, rescores every ad set, "
    "remakes the budget plan and publishes.",
)
full_refresh = dg.define_asset_job(
    "full_refresh",
    selection=dg.AssetSelection.all(),
    tags={FULL_LOAD_TAG: "true"},
    description="Everything, from scratch: every raw file loaded in full (not only the rows "
    "appended since the last load), bronze → gold, both models, scores, publish and report.",
)


def automation_status() -> dg.DefaultScheduleStatus:
    enabled = os.environ.get("MARKETING_ML_SCHEDULES", "").lower() in {"on", "1", "true"}
    return dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED


def build_schedules() -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            job=daily_refresh,
            cron_schedule="0 6 * * *",
            default_status=automation_status(),
            description="Every morning at 06:00, after the vendors' overnight exports.",
        ),
        dg.ScheduleDefinition(
            job=weekly_retrain,
            cron_schedule="0 5 * * 1",
            default_status=automation_status(),
            description="Mondays at 05:00, before the daily refresh.",
        ),
    ]


def raw_folder_fingerprint(raw_files: RawFilesResource) -> dict[str, list[int]]:
    """Name → [size, modification time in ns] of every CSV in the raw folder."""
    if not raw_files.path.is_dir():
        return {}
    return {
        path.name: [path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted(raw_files.path.glob("*.csv"))
    }


def model_trained(event: dg.EventLogRecord | None) -> bool:
    """Whether a model's latest materialization needs no full refresh to train it. A model
    stored while there was too little history says `trained: false` in its metadata: it counts
    as not trained (materializations from before that key were all trained ones). An
    uninformative model (a label nearly all one class, served as its base rate) also says
    `trained: false`, but its status says why, and it counts as trained: a full refresh would
    find the same label, so every file drop would start one."""
    from marketing_ml.ml.store import UNINFORMATIVE

    if event is None or event.asset_materialization is None:
        return False
    metadata = event.asset_materialization.metadata
    trained, status = metadata.get("trained"), metadata.get("status")
    if status is not None and str(status.value).startswith(UNINFORMATIVE):
        return True
    return trained is None or bool(trained.value)


def published_after_every_file(instance: dg.DagsterInstance, fingerprint: dict) -> bool:
    """Whether the last publish is newer than every raw file. Only a first look may trust it: a
    run that started before a file changed can publish after the change without having read it."""
    published = instance.get_latest_materialization_event(PUBLISH)
    newest_file = max(mtime_ns for _, mtime_ns in fingerprint.values()) / 1e9
    return published is not None and published.timestamp > newest_file


def untrained_labelled_days(event: dg.EventLogRecord | None) -> tuple[str, str, int] | None:
    """(trained through, labelled through, labelled days between) from a scoring run's
    metadata; None when it has none (a model not trained yet, or scores from before the
    metadata was written)."""
    if event is None or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    if not {"trained_through", "labelled_through", "new_labelled_days"} <= metadata.keys():
        return None
    return (
        str(metadata["trained_through"].value),
        str(metadata["labelled_through"].value),
        int(metadata["new_labelled_days"].value),
    )


def retrain_due(instance: dg.DagsterInstance) -> str | None:
    """Which data the weekly retrain is due for: "<asset> trained through <day>, labelled through
    <day>" for each scored table whose model has not learnt from more than RETRAIN_AFTER_DAYS
    labelled days; None when no model is that far behind. The text names the data, so the same
    data never asks twice, and newer data asks again."""
    behind = []
    for key in SCORED_KEYS:
        days = untrained_labelled_days(instance.get_latest_materialization_event(key))
        if days is not None and days[2] > RETRAIN_AFTER_DAYS:
            behind.append(
                f"{key.to_user_string()} trained through {days[0]}, labelled through {days[1]}"
            )
    return "; ".join(behind) or None


def a_run_is_busy(instance: dg.DagsterInstance) -> bool:
    """Whether a run is queued or running: one run at a time holds the lakehouse
    (marketing_ml/run_lock.py), so a retrain asked for now would fail at once."""
    return bool(instance.get_run_records(dg.RunsFilter(statuses=BUSY_STATUSES), limit=1))


def read_cursor(cursor: str | None) -> tuple[dict | None, str | None]:
    """(the raw folder's fingerprint, the data the last retrain was asked for) as the cursor
    holds them; a cursor from before retrains were asked for is the fingerprint alone."""
    if cursor is None:
        return None, None
    held = json.loads(cursor)
    if set(held) == {"files", "retrain"}:
        return held["files"], held["retrain"]
    return held, None


def digest(text: str) -> str:
    """A run key: short, and the same for the same text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_cursor(fingerprint: dict, retrain: str | None) -> str:
    return json.dumps({"files": fingerprint, "retrain": retrain}, sort_keys=True)


def build_raw_files_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="raw_files_changed",
        jobs=[daily_refresh, full_refresh, weekly_retrain],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus(automation_status().value),
        description="Starts the daily refresh when a CSV in the raw folder is new, resized or "
        "rewritten (the full refresh while a model has not been trained yet: never materialized, or "
        "stored as not trained for lack of history; or while the response curves or their "
        "backtest were never made: the daily refresh publishes both). The cursor holds the "
        "folder's fingerprint, so the same files never trigger twice; on its first look (no "
        "cursor yet), files older than the last publish (a first start after a build) set the "
        "cursor without a run. Once the files are read and no run is busy, it starts the weekly "
        "retrain when a model has not learnt from more than a week of labelled days, once per "
        "such data (the cursor and the run key name it).",
    )
    def raw_files_changed(context: dg.SensorEvaluationContext, raw_files: RawFilesResource):
        fingerprint = raw_folder_fingerprint(raw_files)
        if not fingerprint:
            return dg.SkipReason(f"No CSV files in {raw_files.path}.")
        files, retrained_for = read_cursor(context.cursor)
        if fingerprint == files:
            return retrain_request(context, fingerprint, retrained_for)
        if context.cursor is None and published_after_every_file(context.instance, fingerprint):
            context.update_cursor(write_cursor(fingerprint, None))
            return dg.SkipReason("The last publish already read these files (first look).")
        models_trained = all(
            model_trained(context.instance.get_latest_materialization_event(key))
            for key in MODEL_KEYS
        )
        curves_fitted = all(
            context.instance.get_latest_materialization_event(key) is not None
            for key in (RESPONSE_CURVES, RESPONSE_CURVE_BACKTEST)
        )
        job = daily_refresh if models_trained and curves_fitted else full_refresh
        context.update_cursor(write_cursor(fingerprint, retrained_for))
        return dg.RunRequest(
            run_key=digest(json.dumps(fingerprint, sort_keys=True)),
            job_name=job.name,
            tags={"raw_files": ", ".join(fingerprint)},
        )

    return raw_files_changed


def retrain_request(
    context: dg.SensorEvaluationContext, fingerprint: dict, retrained_for: str | None
) -> dg.RunRequest | dg.SkipReason:
    """The weekly retrain when the files read so far brought more than a week of labelled days
    the models have not learnt from, asked for once per such data; skipped while a run is busy
    (asked for on a later look)."""
    due = retrain_due(context.instance)
    if due is None:
        return dg.SkipReason("The raw files have not changed since the last run request.")
    if due == retrained_for:
        return dg.SkipReason(f"The weekly retrain was already asked for: {due}.")
    if a_run_is_busy(context.instance):
        return dg.SkipReason(f"The weekly retrain waits for the run in progress: {due}.")
    context.update_cursor(write_cursor(fingerprint, due))
    return dg.RunRequest(
        run_key=f"weekly_retrain:{digest(due)}",
        job_name=weekly_retrain.name,
        tags={"retrain_for": due},
    )


schedules = build_schedules()
raw_files_changed = build_raw_files_sensor()
