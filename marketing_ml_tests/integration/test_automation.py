"""Jobs select the right assets; the raw-folder sensor fires once per change of files."""

import os
from datetime import timedelta

import dagster as dg

from marketing_ml.definitions import build_definitions
from marketing_ml.defs.automation.jobs import build_raw_files_sensor
from marketing_ml.ml.model_card import freshness_metadata, model_metadata
from marketing_ml.ml.training import CONVERSION, PACING_RISK, TrainingParameters, train_model
from marketing_ml.resources import RawFilesResource
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support.lakehouse import Lakehouse, write_clean_raw_dir
from marketing_ml_tests.support.ml_data import training_frame


def job_keys(job_name: str) -> set[str]:
    job = build_definitions().resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


def test_daily_refresh_rescores_and_replans_without_retraining_or_refitting():
    keys = job_keys("daily_refresh")
    assert {"bronze/conversion_events", "gold/features", "gold/scored_adsets", "publish"} <= keys
    assert {"gold/budget_plan", "gold/budget_plan_summary"} <= keys
    weekly_only = {
        "gold/labels",
        "gold/training_dataset",
        "gold/response_curves",
        "gold/response_curve_backtest",
    }
    assert not {"models/pacing_risk_model", "models/conversion_model", *weekly_only} & keys


def test_weekly_retrain_trains_both_models_and_republishes():
    keys = job_keys("weekly_retrain")
    assert {
        "models/pacing_risk_model",
        "models/conversion_model",
        "gold/scored_conversions",
    } <= keys
    assert {"gold/labels", "gold/training_dataset", "publish", "report"} <= keys
    # the curves are refitted (and backtested) and tomorrow's budget re-planned with them and
    # the new risks
    assert {
        "gold/response_curves",
        "gold/response_curve_backtest",
        "gold/budget_plan",
        "gold/budget_plan_summary",
    } <= keys
    assert not {"bronze/conversion_events", "gold/features"} & keys


def test_full_refresh_covers_every_asset():
    definitions = build_definitions()
    every_asset = {key.to_user_string() for assets in definitions.assets for key in assets.keys}
    assert job_keys("full_refresh") == every_asset


def evaluate(sensor, raw_dir, instance, cursor=None):
    context = dg.build_sensor_context(
        cursor=cursor,
        instance=instance,
        resources={"raw_files": RawFilesResource(directory=str(raw_dir))},
    )
    return sensor(context), context.cursor


def test_sensor_fires_once_per_change_of_the_raw_files(tmp_path):
    sensor = build_raw_files_sensor()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        first, cursor = evaluate(sensor, raw_dir, instance)
        assert isinstance(first, dg.RunRequest)
        assert first.job_name == "full_refresh"  # no model trained yet

        again, same_cursor = evaluate(sensor, raw_dir, instance, cursor)
        assert isinstance(again, dg.SkipReason)
        assert same_cursor == cursor

        pacing = raw_dir / "budget_pacing.csv"
        pacing.write_bytes(pacing.read_bytes() + b"22/08/2024,AS_001,500,450.00,0.90,on_pace\r\n")
        changed, new_cursor = evaluate(sensor, raw_dir, instance, cursor)
        assert isinstance(changed, dg.RunRequest)
        assert changed.run_key != first.run_key and new_cursor != cursor

        stat = pacing.stat()
        os.utime(pacing, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        rewritten, _ = evaluate(sensor, raw_dir, instance, new_cursor)
        assert isinstance(rewritten, dg.RunRequest)


def test_sensor_asks_for_the_daily_refresh_once_models_and_curves_exist(tmp_path):
    sensor = build_raw_files_sensor()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        for name in ("pacing_risk_model", "conversion_model"):
            instance.report_runless_asset_event(dg.AssetMaterialization(["models", name]))
        without_curves, cursor = evaluate(sensor, raw_dir, instance)
        assert without_curves.job_name == "full_refresh"  # the daily plan needs fitted curves

        instance.report_runless_asset_event(dg.AssetMaterialization(["gold", "response_curves"]))
        pacing = raw_dir / "budget_pacing.csv"
        pacing.write_bytes(pacing.read_bytes() + b"21/08/2024,AS_001,500,450.00,0.90,on_pace\r\n")
        without_backtest, cursor = evaluate(sensor, raw_dir, instance, cursor)
        assert without_backtest.job_name == "full_refresh"  # publish copies the backtest too

        backtest = ["gold", "response_curve_backtest"]
        instance.report_runless_asset_event(dg.AssetMaterialization(backtest))
        pacing.write_bytes(pacing.read_bytes() + b"22/08/2024,AS_001,500,450.00,0.90,on_pace\r\n")
        request, _ = evaluate(sensor, raw_dir, instance, cursor)
        assert request.job_name == "daily_refresh"


def test_sensor_counts_an_uninformative_model_as_trained(tmp_path):
    """A label nearly all one class fits no booster (`trained: false`), but a full refresh would
    find the same label: the next file drop is a daily refresh, not another full one."""
    frame = training_frame(tmp_path, roas_target=1000.0)  # no 7 days reach 1000x
    conversion = train_model(frame, CONVERSION, TrainingParameters())
    pacing = train_model(frame, PACING_RISK, TrainingParameters(max_rounds=5))
    assert conversion.uninformative and pacing.trained
    sensor = build_raw_files_sensor()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        for model in (pacing, conversion):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    ["models", model.card.model_name], metadata=model_metadata(model)
                )
            )
        for curves in ("response_curves", "response_curve_backtest"):
            instance.report_runless_asset_event(dg.AssetMaterialization(["gold", curves]))
        request, _ = evaluate(sensor, raw_dir, instance)
        assert request.job_name == "daily_refresh"


def test_sensor_does_not_rebuild_files_the_last_publish_already_read(tmp_path):
    sensor = build_raw_files_sensor()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("publish"))
        first_look, cursor = evaluate(sensor, raw_dir, instance)
        assert isinstance(first_look, dg.SkipReason) and cursor is not None

        pacing = raw_dir / "budget_pacing.csv"
        pacing.write_bytes(pacing.read_bytes() + b"22/08/2024,AS_001,500,450.00,0.90,on_pace\r\n")
        changed, _ = evaluate(sensor, raw_dir, instance, cursor)
        assert isinstance(changed, dg.RunRequest)


def test_sensor_runs_for_a_change_that_a_publish_started_before_it_did_not_read(tmp_path):
    """A run starts, a vendor file changes while it runs, the run publishes: the publish is newer
    than the file but never read the change, so the next look must still ask for a run."""
    sensor = build_raw_files_sensor()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        first, cursor = evaluate(sensor, raw_dir, instance)
        assert isinstance(first, dg.RunRequest)

        pacing = raw_dir / "budget_pacing.csv"
        pacing.write_bytes(pacing.read_bytes() + b"22/08/2024,AS_001,500,450.00,0.90,on_pace\r\n")
        changed_at = pacing.stat().st_mtime_ns - 1_000_000_000
        os.utime(pacing, ns=(changed_at, changed_at))
        instance.report_runless_asset_event(dg.AssetMaterialization("publish"))
        published = instance.get_latest_materialization_event(dg.AssetKey("publish"))
        assert published.timestamp > changed_at / 1e9

        after_publish, new_cursor = evaluate(sensor, raw_dir, instance, cursor)
        assert isinstance(after_publish, dg.RunRequest)
        assert after_publish.run_key != first.run_key and new_cursor != cursor


def test_sensor_skips_an_empty_raw_folder(tmp_path):
    (tmp_path / "raw").mkdir()
    with dg.instance_for_test() as instance:
        result, cursor = evaluate(build_raw_files_sensor(), tmp_path / "raw", instance)
    assert isinstance(result, dg.SkipReason) and cursor is None


def test_every_asset_check_and_job_is_a_reviewed_name():
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
    check_count = sum(len(list(checks.check_keys)) for checks in definitions.asset_checks)
    assert check_count == 67  # 47 data-quality, 16 model and score, 4 budget-plan checks


def run_job(lakehouse: Lakehouse, instance: dg.DagsterInstance, job_name: str) -> None:
    job = lakehouse.definitions.resolve_job_def(job_name)
    assert job.execute_in_process(instance=instance, raise_on_error=False).success


def test_sensor_asks_once_for_the_weekly_retrain_when_files_bring_a_week_of_new_labels(tmp_path):
    """The whole loop on a real lakehouse: files built and published, then two file drops. Each
    drop is a daily refresh (rescored with the same models); once the data holds more than 7
    labelled days the models have not learnt from, the next look asks for the weekly retrain
    (not the full refresh), once; after the retrain the models are fresh and nothing is asked."""
    lakehouse = Lakehouse(
        tmp_path / "raw", tmp_path / "lakehouse.duckdb", tmp_path / "serving.duckdb"
    )
    write_sample_data(lakehouse.raw_dir, ad_sets=20, days=120, seed=4)
    sensor = build_raw_files_sensor()
    with dg.instance_for_test() as instance:
        run_job(lakehouse, instance, "full_refresh")
        first_look, cursor = evaluate(sensor, lakehouse.raw_dir, instance)
        assert isinstance(first_look, dg.SkipReason)
        fresh, cursor = evaluate(sensor, lakehouse.raw_dir, instance, cursor)
        assert isinstance(fresh, dg.SkipReason) and "not changed" in fresh.skip_message

        # a drop of 7 more days: a week of new labels is not more than a week
        write_sample_data(lakehouse.raw_dir, ad_sets=20, days=127, seed=4)
        drop, cursor = evaluate(sensor, lakehouse.raw_dir, instance, cursor)
        assert drop.job_name == "daily_refresh"
        run_job(lakehouse, instance, "daily_refresh")
        pacing = instance.get_latest_materialization_event(dg.AssetKey(["gold", "scored_adsets"]))
        metadata = pacing.asset_materialization.metadata
        assert metadata["data_end"].value == "2024-12-05"  # 1 Aug 2024 + 126 days
        assert metadata["labelled_through"].value == "2024-12-04"  # a 1-day label
        assert metadata["trained_through"].value == "2024-11-27"  # the full refresh's last label
        assert metadata["new_labelled_days"].value == 7
        week, cursor = evaluate(sensor, lakehouse.raw_dir, instance, cursor)
        assert isinstance(week, dg.SkipReason)

        # two days more: the models now miss 9 labelled days
        write_sample_data(lakehouse.raw_dir, ad_sets=20, days=129, seed=4)
        drop, cursor = evaluate(sensor, lakehouse.raw_dir, instance, cursor)
        assert drop.job_name == "daily_refresh"  # the new files are read first
        run_job(lakehouse, instance, "daily_refresh")
        retrain, retrain_cursor = evaluate(sensor, lakehouse.raw_dir, instance, cursor)
        assert isinstance(retrain, dg.RunRequest)
        assert retrain.job_name == "weekly_retrain"
        assert "gold/scored_adsets trained through 2024-11-27" in retrain.tags["retrain_for"]
        again, same_cursor = evaluate(sensor, lakehouse.raw_dir, instance, retrain_cursor)
        assert isinstance(again, dg.SkipReason) and same_cursor == retrain_cursor
        # a look that lost its cursor asks with the same run key, which Dagster runs once
        repeat, _ = evaluate(sensor, lakehouse.raw_dir, instance, cursor)
        assert repeat.run_key == retrain.run_key

        run_job(lakehouse, instance, "weekly_retrain")
        retrained = instance.get_latest_materialization_event(
            dg.AssetKey(["models", "pacing_risk_model"])
        )
        assert retrained.asset_materialization.metadata["trained_through"].value == "2024-12-06"
        after, _ = evaluate(sensor, lakehouse.raw_dir, instance, retrain_cursor)
        assert isinstance(after, dg.SkipReason) and "not changed" in after.skip_message


def test_sensor_holds_the_retrain_while_a_run_holds_the_lakehouse(tmp_path):
    """One run at a time holds the lakehouse: a retrain asked for while the daily refresh still
    runs would fail at once and its run key would never run again. It waits for the run."""
    model = train_model(training_frame(tmp_path), PACING_RISK, TrainingParameters(max_rounds=5))
    data_end = model.trained_through + timedelta(days=12)
    sensor = build_raw_files_sensor()
    raw_dir = write_clean_raw_dir(tmp_path / "raw")
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("publish"))
        _, cursor = evaluate(sensor, raw_dir, instance)
        scored = dg.AssetMaterialization(
            ["gold", "scored_adsets"], metadata=freshness_metadata(model, data_end)
        )
        instance.report_runless_asset_event(scored)
        running = dg.DagsterRun(
            job_name="daily_refresh", run_id="daily", status=dg.DagsterRunStatus.STARTED
        )
        instance.add_run(running)
        waiting, same_cursor = evaluate(sensor, raw_dir, instance, cursor)
        assert isinstance(waiting, dg.SkipReason) and "waits" in waiting.skip_message
        assert same_cursor == cursor

        instance.report_run_failed(running)
        retrain, _ = evaluate(sensor, raw_dir, instance, cursor)
        assert retrain.job_name == "weekly_retrain"
        assert f"labelled through {data_end - timedelta(days=1)}" in retrain.tags["retrain_for"]
