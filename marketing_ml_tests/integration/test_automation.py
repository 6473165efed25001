"""Jobs select the right assets; the raw-folder sensor reports each change of a file once; the
automation sensor turns those reports, the weekly cron and the models' state into one run at a
time, never the full refresh."""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from marketing_ml.definitions import build_definitions
from marketing_ml.defs.automation.conditions import model_trained
from marketing_ml.defs.automation.jobs import build_raw_files_sensor
from marketing_ml.ml.model_card import model_metadata
from marketing_ml.ml.training import CONVERSION, TrainingParameters, train_model
from marketing_ml.resources import RawFilesResource
from marketing_ml.sample_data import write_sample_data
from marketing_ml.storage import FULL_LOAD_TAG
from marketing_ml.table_keys import MODEL_KEYS, SCORED_ADSETS
from marketing_ml_tests.support.automation import Automation, keys_of
from marketing_ml_tests.support.lakehouse import Lakehouse, load_outcomes, write_clean_raw_dir
from marketing_ml_tests.support.ml_data import daily_metrics, training_frame

PACING_ROW = b"22/08/2024,AS_001,500,450.00,0.90,on_pace\r\n"
DATA_CHAIN = {
    "gold/daily_adset_metrics",
    "gold/features",
    "gold/scored_adsets",
    "gold/scored_conversions",
    "gold/budget_plan",
    "gold/budget_plan_summary",
    "publish",
    "report",
}
RETRAIN = {
    "gold/labels",
    "gold/training_dataset",
    "models/pacing_risk_model",
    "models/conversion_model",
}
REFIT = {"gold/response_curves", "gold/response_curve_backtest"}


def job_keys(job_name: str) -> set[str]:
    job = build_definitions().resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


def test_daily_refresh_rescores_and_replans_without_retraining_or_refitting():
    keys = job_keys("daily_refresh")
    assert {"bronze/conversion_events", "gold/features", "gold/scored_adsets", "publish"} <= keys
    assert {"gold/budget_plan", "gold/budget_plan_summary"} <= keys
    assert not (RETRAIN | REFIT) & keys


def test_weekly_retrain_trains_both_models_and_republishes():
    keys = job_keys("weekly_retrain")
    assert RETRAIN | REFIT <= keys
    assert {
        "gold/scored_conversions",
        "gold/budget_plan",
        "gold/budget_plan_summary",
        "publish",
        "report",
    } <= keys
    assert not {"bronze/conversion_events", "gold/features"} & keys


def test_full_refresh_covers_every_asset_dagster_builds_and_nothing_starts_it():
    definitions = build_definitions()
    built = {key.to_user_string() for a in definitions.assets if a.is_executable for key in a.keys}
    assert job_keys("full_refresh") == built
    assert not list(definitions.schedules)
    assert all(
        not sensor.targets
        for sensor in definitions.sensors
        if sensor.name != "lakehouse_automation"
    )


def test_each_asset_is_refreshed_by_the_condition_of_its_layer():
    graph = build_definitions().resolve_asset_graph()
    labels = {
        key.to_user_string(): node.automation_condition and node.automation_condition.get_label()
        for key, node in ((key, graph.get(key)) for key in graph.get_all_asset_keys())
    }
    assert {key for key, label in labels.items() if label is None} == {
        "raw/audience_segments",
        "raw/budget_pacing",
        "raw/conversion_events",
        "raw/experiments",
        "raw/meta_campaign_performance",
    }
    assert {key for key, label in labels.items() if label == "on a raw file's change"} == {
        key.replace("raw/", "bronze/") for key, label in labels.items() if label is None
    }
    weekly = {key for key, label in labels.items() if label and label.startswith("weekly")}
    assert weekly == RETRAIN | REFIT
    assert DATA_CHAIN <= {key for key, label in labels.items() if label == "on new data"}


def stored(instance: dg.DagsterInstance, model) -> dg.EventLogEntry:
    key = dg.AssetKey(["models", model.card.model_name])
    instance.report_runless_asset_event(
        dg.AssetMaterialization(key, metadata=model_metadata(model))
    )
    return instance.get_latest_materialization_event(key)


def test_a_short_history_model_is_not_trained_but_an_uninformative_one_is(tmp_path):
    """A model stored for lack of history is retrained with every file drop; a label nearly all
    one class fits no booster either (`trained: false`), but more data would find the same
    label, so it must not retrain with every drop."""
    for folder in ("one_class", "short"):
        (tmp_path / folder).mkdir()
    uninformative = train_model(
        training_frame(tmp_path / "one_class", roas_target=1000.0), CONVERSION, TrainingParameters()
    )
    short = train_model(
        training_frame(tmp_path / "short", daily_metrics(6, 10)),
        CONVERSION,
        TrainingParameters(min_minority_rows=1),
    )
    assert uninformative.uninformative and not short.trained
    with dg.instance_for_test() as instance:
        assert model_trained(stored(instance, uninformative))
        assert not model_trained(stored(instance, short))


def look(raw_dir, instance, cursor=None):
    sensor = build_raw_files_sensor()
    context = dg.build_sensor_context(
        cursor=cursor,
        instance=instance,
        resources={"raw_files": RawFilesResource(directory=str(raw_dir))},
    )
    return sensor(context), context.cursor


def reported(result) -> set[str]:
    assert isinstance(result, dg.SensorResult)
    return {event.asset_key.to_user_string() for event in result.asset_events}


def test_sensor_reports_each_change_of_a_raw_file_once(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        first, cursor = look(raw_dir, instance)
        assert reported(first) == {
            "raw/audience_segments",
            "raw/budget_pacing",
            "raw/conversion_events",
            "raw/meta_campaign_performance",
        }
        pacing_event = next(
            e for e in first.asset_events if e.asset_key.path[-1] == "budget_pacing"
        )
        pacing = raw_dir / "budget_pacing.csv"
        assert pacing_event.metadata["size_bytes"].value == pacing.stat().st_size

        again, same_cursor = look(raw_dir, instance, cursor)
        assert isinstance(again, dg.SkipReason) and same_cursor == cursor

        pacing.write_bytes(pacing.read_bytes() + PACING_ROW)
        changed, new_cursor = look(raw_dir, instance, cursor)
        assert reported(changed) == {"raw/budget_pacing"} and new_cursor != cursor

        stat = pacing.stat()
        os.utime(pacing, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        rewritten, _ = look(raw_dir, instance, new_cursor)
        assert reported(rewritten) == {"raw/budget_pacing"}


def test_sensor_does_not_report_files_the_last_publish_already_read(tmp_path):
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    (raw_dir / "notes.csv").write_text("not,a,vendor,file\n")
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("publish"))
        first_look, cursor = look(raw_dir, instance)
        assert isinstance(first_look, dg.SkipReason) and cursor is not None

        (raw_dir / "notes.csv").write_text("still,not,a,vendor,file\n")
        notes, cursor = look(raw_dir, instance, cursor)
        assert isinstance(notes, dg.SkipReason)  # no contract entry, no asset to report

        pacing = raw_dir / "budget_pacing.csv"
        pacing.write_bytes(pacing.read_bytes() + PACING_ROW)
        changed, _ = look(raw_dir, instance, cursor)
        assert reported(changed) == {"raw/budget_pacing"}


def test_sensor_reports_a_change_that_a_publish_started_before_it_did_not_read(tmp_path):
    """A run starts, a vendor file changes while it runs, the run publishes: the publish is newer
    than the file but never read the change, so the next look must still report it."""
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        _, cursor = look(raw_dir, instance)
        pacing = raw_dir / "budget_pacing.csv"
        pacing.write_bytes(pacing.read_bytes() + PACING_ROW)
        changed_at = pacing.stat().st_mtime_ns - 1_000_000_000
        os.utime(pacing, ns=(changed_at, changed_at))
        instance.report_runless_asset_event(dg.AssetMaterialization("publish"))
        published = instance.get_latest_materialization_event(dg.AssetKey("publish"))
        assert published.timestamp > changed_at / 1e9

        after_publish, _ = look(raw_dir, instance, cursor)
        assert reported(after_publish) == {"raw/budget_pacing"}


def test_sensor_skips_an_empty_raw_folder(tmp_path):
    (tmp_path / "raw").mkdir()
    with dg.instance_for_test() as instance:
        result, cursor = look(tmp_path / "raw", instance)
    assert isinstance(result, dg.SkipReason) and cursor is None


def test_every_asset_check_job_and_sensor_is_a_reviewed_name():
    """A renamed asset or check is a change to this list, not a silent break of the dashboard."""
    definitions = build_definitions()
    assets = sorted(key.to_user_string() for a in definitions.assets for key in a.keys)
    assert assets == [
        "bronze/audience_segments",
        "bronze/budget_pacing",
        "bronze/conversion_events",
        "bronze/experiments",
        "bronze/meta_campaign_performance",
        "gold/budget_plan",
        "gold/budget_plan_summary",
        "gold/daily_adset_metrics",
        "gold/data_quality_report",
        "gold/features",
        "gold/labels",
        "gold/response_curve_backtest",
        "gold/response_curves",
        "gold/row_accounting",
        "gold/scored_adsets",
        "gold/scored_conversions",
        "gold/training_dataset",
        "models/conversion_model",
        "models/pacing_risk_model",
        "publish",
        "raw/audience_segments",
        "raw/budget_pacing",
        "raw/conversion_events",
        "raw/experiments",
        "raw/meta_campaign_performance",
        "report",
        "silver/audience_segments",
        "silver/budget_pacing",
        "silver/conversion_events",
        "silver/experiments",
        "silver/meta_campaign_performance",
        "silver/quarantine",
        "silver/revenue_by_day",
    ]
    assert sorted(job.name for job in definitions.jobs) == [
        "daily_refresh",
        "full_refresh",
        "weekly_retrain",
    ]
    assert sorted(sensor.name for sensor in definitions.sensors) == [
        "lakehouse_automation",
        "raw_files_changed",
    ]
    check_count = sum(len(list(checks.check_keys)) for checks in definitions.asset_checks)
    assert check_count == 67  # 47 data-quality, 16 model and score, 4 budget-plan checks


def test_nothing_is_asked_while_a_run_holds_the_lakehouse(tmp_path):
    """One run at a time holds the lakehouse: a run asked for while another runs would fail at
    once. A file reported meanwhile is acted on when the run has ended."""
    write_clean_raw_dir(tmp_path / "raw")
    lakehouse = Lakehouse(tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "s.duckdb")
    with dg.instance_for_test() as instance:
        automation = Automation(lakehouse, instance)
        running = dg.DagsterRun(
            job_name="full_refresh", run_id="manual", status=dg.DagsterRunStatus.STARTED
        )
        instance.add_run(running)
        assert automation.tick() is None  # everything is missing, but a run holds the lakehouse
        automation.look_at_raw_folder()
        assert automation.tick() is None

        instance.report_run_failed(running)
        request = automation.tick()
        assert {"bronze/budget_pacing", "silver/budget_pacing", "publish"} <= keys_of(request)
        assert FULL_LOAD_TAG not in request.tags


def test_a_file_drop_while_a_model_is_missing_appends_and_builds_the_models(tmp_path):
    """The old sensor sent every file drop to the full refresh while a model was missing, which
    reloaded all of bronze. Now the drop appends the new rows to its bronze table and the missing
    models are built in the same run."""
    lakehouse = Lakehouse(tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "s.duckdb")
    write_clean_raw_dir(lakehouse.raw_dir)
    with dg.instance_for_test() as instance:
        automation = Automation(lakehouse, instance)
        first, built = automation.drop_and_run()  # a fresh lakehouse: everything is built
        assert DATA_CHAIN | RETRAIN | REFIT <= keys_of(first)
        assert load_outcomes(built)["bronze/budget_pacing"].startswith("full load")

        instance.wipe_assets(list(MODEL_KEYS))
        pacing = lakehouse.raw_dir / "budget_pacing.csv"
        last_line = pacing.read_bytes().splitlines(keepends=True)[-1]
        pacing.write_bytes(pacing.read_bytes() + last_line)  # a repeated row: silver drops it
        request, run = automation.drop_and_run()
        assert FULL_LOAD_TAG not in request.tags and FULL_LOAD_TAG not in run.dagster_run.tags
        selected = keys_of(request)
        assert {
            "bronze/budget_pacing",
            "models/pacing_risk_model",
            "models/conversion_model",
        } <= selected
        assert not {"bronze/conversion_events", "bronze/meta_campaign_performance"} & selected
        assert load_outcomes(run)["bronze/budget_pacing"] == "appended 1 rows"
        built_models = {e.asset_key for e in run.get_asset_materialization_events()} & set(
            MODEL_KEYS
        )
        assert built_models == set(MODEL_KEYS)
        assert automation.tick() is None


def test_a_failed_run_is_retried_on_new_data_not_on_every_look(tmp_path):
    """A vendor file that cannot be read fails its bronze step; asking again on every look would
    start a failing run every 30 s. The next change of the file is read."""
    lakehouse = Lakehouse(tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "s.duckdb")
    write_clean_raw_dir(lakehouse.raw_dir)
    with dg.instance_for_test() as instance:
        automation = Automation(lakehouse, instance)
        automation.drop_and_run()
        pacing = lakehouse.raw_dir / "budget_pacing.csv"
        readable = pacing.read_bytes()
        pacing.write_bytes(b"not,the,pacing,header\r\n1,2,3,4\r\n")
        assert isinstance(automation.look_at_raw_folder(), dg.SensorResult)
        failing = automation.tick()
        assert "bronze/budget_pacing" in keys_of(failing)
        automation.run(failing, succeeds=False)
        assert automation.tick() is None

        pacing.write_bytes(readable + PACING_ROW)
        request, run = automation.drop_and_run()
        assert "bronze/budget_pacing" in keys_of(request)
        assert load_outcomes(run)["bronze/budget_pacing"].startswith(("appended", "full load"))


def test_a_retrain_is_asked_once_when_files_bring_more_than_a_week_of_new_labels(tmp_path):
    """The whole loop on a real lakehouse: built, then two file drops. Each drop runs the data
    chain (rescored with the same models); once the scores say the models miss more than 7
    labelled days, the next look asks for the retrain (models, training data, curves and what
    follows them; never bronze, never the full refresh), once; after it nothing is asked. On
    Monday at 05:00 the weekly retrain is asked for again."""
    lakehouse = Lakehouse(tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "s.duckdb")
    write_sample_data(lakehouse.raw_dir, ad_sets=20, days=120, seed=4)
    with dg.instance_for_test() as instance:
        automation = Automation(lakehouse, instance)
        automation.drop_and_run()
        assert automation.tick() is None

        # a drop of 7 more days: a week of new labels is not more than a week
        write_sample_data(lakehouse.raw_dir, ad_sets=20, days=127, seed=4)
        drop, _ = automation.drop_and_run()
        assert DATA_CHAIN <= keys_of(drop) and not (RETRAIN | REFIT) & keys_of(drop)
        scored = instance.get_latest_materialization_event(SCORED_ADSETS)
        metadata = scored.asset_materialization.metadata
        assert metadata["data_end"].value == "2024-12-05"  # 1 Aug 2024 + 126 days
        assert metadata["labelled_through"].value == "2024-12-04"  # a 1-day label
        assert metadata["trained_through"].value == "2024-11-27"  # the first build's last label
        assert metadata["new_labelled_days"].value == 7
        assert automation.tick() is None

        # two days more: the models now miss 9 labelled days
        write_sample_data(lakehouse.raw_dir, ad_sets=20, days=129, seed=4)
        drop, _ = automation.drop_and_run()
        assert not (RETRAIN | REFIT) & keys_of(drop)  # the new files are read first
        retrain = automation.tick()
        assert RETRAIN | REFIT | {"gold/scored_adsets", "publish"} <= keys_of(retrain)
        assert not {"bronze/budget_pacing", "gold/features"} & keys_of(retrain)
        assert FULL_LOAD_TAG not in retrain.tags
        assert automation.tick() is None  # asked once for this data

        automation.run(retrain)
        retrained = instance.get_latest_materialization_event(MODEL_KEYS[0])
        assert retrained.asset_materialization.metadata["trained_through"].value == "2024-12-06"
        assert automation.tick() is None

        now = datetime.now(UTC)
        next_monday = now + timedelta(days=7 - now.weekday())
        first = dg.evaluate_automation_conditions(
            lakehouse.definitions, instance, evaluation_time=now
        )
        weekly = dg.evaluate_automation_conditions(
            lakehouse.definitions,
            instance,
            evaluation_time=next_monday.replace(hour=5, minute=1),
            cursor=first.cursor,
        )
        asked = {
            key
            for key in RETRAIN | REFIT | DATA_CHAIN
            if weekly.get_num_requested(dg.AssetKey.from_user_string(key))
        }
        assert asked == RETRAIN | REFIT | (
            DATA_CHAIN - {"gold/daily_adset_metrics", "gold/features"}
        )
