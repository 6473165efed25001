"""How a team runs it: the raw-folder sensor reports each changed file, the automation sensor
refreshes what it feeds (marketing_ml/defs/automation/conditions.py), and three named jobs run
the same selections by hand: a daily refresh, a weekly retrain, and everything at once.

Both sensors are off by default (local dev); MARKETING_ML_SCHEDULES=on turns them on (docker
compose does), so a laptop never starts runs by itself unless asked to.
"""

import json
import os
from datetime import UTC, datetime

import dagster as dg

from marketing_ml.contract import RAW_FILES
from marketing_ml.resources import RawFilesResource
from marketing_ml.storage import FULL_LOAD_TAG
from marketing_ml.table_keys import (
    LABELS,
    PUBLISH,
    RESPONSE_CURVE_BACKTEST,
    RESPONSE_CURVES,
    TRAINING_DATASET,
    raw_key,
)

MODELS = dg.AssetSelection.groups("models")
TRAINING_DATA = dg.AssetSelection.assets(LABELS, TRAINING_DATASET)
"""What only training reads: the daily refresh skips it (4 s a day at 2,000 ad sets × a year)."""
CURVES = dg.AssetSelection.assets(RESPONSE_CURVES, RESPONSE_CURVE_BACKTEST)
"""Refitted weekly, not daily: the fit is most of the plan's cost (3.9 s at 2,000 ad sets × 180
days) and a week of new days moves a 180-day fit little. The daily plan re-prices today's spend.
The curves' backtest (three more fits) is refitted with them."""

daily_refresh = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all() - MODELS - TRAINING_DATA - CURVES,
    description="Bronze → gold from the raw folder, rescored with the last trained models "
    "(not retrained), the budget plan remade on today's spend with the last fitted response "
    "curves, then published. What a file drop runs by itself (lakehouse_automation sensor).",
)
weekly_retrain = dg.define_asset_job(
    "weekly_retrain",
    selection=TRAINING_DATA | MODELS.downstream() | CURVES.downstream(),
    description="Rebuilds the labels and training data from the current gold tables, retrains "
    "both models (with their checks), refits the response curves, rescores every ad set, "
    "remakes the budget plan and publishes. What Mondays 05:00 run by themselves.",
)
full_refresh = dg.define_asset_job(
    "full_refresh",
    selection=dg.AssetSelection.all(),
    tags={FULL_LOAD_TAG: "true"},
    description="Everything, from scratch: every raw file loaded in full (not only the rows "
    "appended since the last load), bronze → gold, both models, scores, publish and report. "
    "Manual only: no sensor or schedule starts it.",
)
RAW_FILES_BY_FILE_NAME = {raw_file.file_name: raw_file for raw_file in RAW_FILES}


def automation_status() -> dg.DefaultSensorStatus:
    enabled = os.environ.get("MARKETING_ML_SCHEDULES", "").lower() in {"on", "1", "true"}
    return dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED


def raw_folder_fingerprint(raw_files: RawFilesResource) -> dict[str, list[int]]:
    """Name → [size, modification time in ns] of every raw file of the contract in the folder."""
    if not raw_files.path.is_dir():
        return {}
    return {
        path.name: [path.stat().st_size, path.stat().st_mtime_ns]
        for path in sorted(raw_files.path.glob("*.csv"))
        if path.name in RAW_FILES_BY_FILE_NAME
    }


def published_after_every_file(instance: dg.DagsterInstance, fingerprint: dict) -> bool:
    """Whether the last publish is newer than every raw file. Only a first look may trust it: a
    run that started before a file changed can publish after the change without having read it."""
    published = instance.get_latest_materialization_event(PUBLISH)
    newest_file = max(mtime_ns for _, mtime_ns in fingerprint.values()) / 1e9
    return published is not None and published.timestamp > newest_file


def read_cursor(cursor: str | None) -> dict | None:
    """The raw folder's fingerprint as the cursor holds it (a cursor from when the sensor also
    asked for retrains holds it under "files")."""
    if cursor is None:
        return None
    held = json.loads(cursor)
    return held["files"] if set(held) == {"files", "retrain"} else held


def write_cursor(fingerprint: dict) -> str:
    return json.dumps(fingerprint, sort_keys=True)


def file_changed(file_name: str, size: int, mtime_ns: int) -> dg.AssetMaterialization:
    """The raw file's asset event: what the file is now, for its bronze table to follow."""
    modified = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
    return dg.AssetMaterialization(
        asset_key=raw_key(RAW_FILES_BY_FILE_NAME[file_name]),
        description=f"{file_name} is new, resized or rewritten.",
        metadata={
            "size_bytes": dg.MetadataValue.int(size),
            "modified": dg.MetadataValue.timestamp(modified),
            "fingerprint": dg.MetadataValue.text(f"{size}:{mtime_ns}"),
        },
    )


def build_raw_files_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="raw_files_changed",
        minimum_interval_seconds=30,
        default_status=automation_status(),
        description="Reports each raw file that is new, resized or rewritten as a materialization "
        "of its raw asset (raw/<file>), which its bronze table and everything downstream follow "
        "(lakehouse_automation). The cursor holds the folder's fingerprint, so the same files "
        "never report twice; on its first look (no cursor yet), files older than the last "
        "publish (a first start after a build) set the cursor without reporting.",
    )
    def raw_files_changed(context: dg.SensorEvaluationContext, raw_files: RawFilesResource):
        fingerprint = raw_folder_fingerprint(raw_files)
        if not fingerprint:
            return dg.SkipReason(f"No raw files of the contract in {raw_files.path}.")
        seen = read_cursor(context.cursor)
        if fingerprint == seen:
            return dg.SkipReason("The raw files have not changed since the last look.")
        if seen is None and published_after_every_file(context.instance, fingerprint):
            context.update_cursor(write_cursor(fingerprint))
            return dg.SkipReason("The last publish already read these files (first look).")
        changed = {
            name: state for name, state in fingerprint.items() if (seen or {}).get(name) != state
        }
        context.update_cursor(write_cursor(fingerprint))
        if not changed:
            return dg.SkipReason("Only files were removed: nothing new to read.")
        return dg.SensorResult(
            asset_events=[file_changed(name, *state) for name, state in changed.items()]
        )

    return raw_files_changed


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluated in the code location (`use_user_code_server`): two conditions read run
    metadata with project code (conditions.py: `StoredUntrained`, `RetrainDue`)."""
    return dg.AutomationConditionSensorDefinition(
        "lakehouse_automation",
        target=dg.AssetSelection.all(),
        use_user_code_server=True,
        minimum_interval_seconds=30,
        default_status=automation_status(),
        description="Requests the assets whose automation condition holds, in one run per "
        "look: bronze → publish after a raw file changed; training data, models and response "
        "curves Mondays at 05:00, when missing, while a model is stored as not trained, and "
        "when new scores say a model misses more than a week of labels. Nothing while a run "
        "is queued or in progress.",
    )


raw_files_changed = build_raw_files_sensor()
lakehouse_automation = build_automation_sensor()
