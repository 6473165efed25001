"""Point-in-time features and forward labels, computed by DuckDB from a generated daily table."""

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from marketing_ml.defs.models.model_checks import point_in_time_mismatches
from marketing_ml.ml.features import FEATURE_COLUMNS, LABEL_COLUMNS, feature_sql, label_sql
from marketing_ml_tests.support.ml_data import daily_metrics, write_daily_metrics

CUTOFF = date(2024, 8, 20)


def features_of(connection, table: str = "gold.daily_adset_metrics") -> pd.DataFrame:
    frame = connection.execute(feature_sql(table)).df()
    return frame.sort_values(["ad_set_id", "date"]).reset_index(drop=True)


@pytest.fixture
def connection(tmp_path):
    database = write_daily_metrics(tmp_path / "lakehouse.duckdb", daily_metrics(4, 40))
    with duckdb.connect(str(database)) as connection:
        yield connection


def test_rows_after_the_cutoff_never_change_features_up_to_it(connection):
    before = features_of(connection)
    connection.execute(
        f"UPDATE gold.daily_adset_metrics SET spend = spend * 7, revenue = 0, clicks = 1, "
        f"pacing_status = 'over_pacing', budget_utilization = 3 WHERE date > DATE '{CUTOFF}'"
    )
    after = features_of(connection)
    kept = before["date"] <= pd.Timestamp(CUTOFF)
    pd.testing.assert_frame_equal(before[kept], after[after["date"] <= pd.Timestamp(CUTOFF)])
    assert not before[~kept].equals(after[~kept]), "the mutation should reach later features"


def test_point_in_time_check_finds_nothing_on_honest_features_and_flags_a_leak(connection):
    connection.execute(
        f"CREATE SCHEMA gold_copy; CREATE TABLE gold_copy.features AS {feature_sql('gold.daily_adset_metrics')}"
    )
    honest = point_in_time_mismatches(
        connection, "gold.daily_adset_metrics", "gold_copy.features", CUTOFF
    )
    connection.execute(
        f"UPDATE gold_copy.features SET spend_7d = spend_7d + 1 WHERE date = DATE '{CUTOFF}'"
    )
    leaked = point_in_time_mismatches(
        connection, "gold.daily_adset_metrics", "gold_copy.features", CUTOFF
    )
    assert honest == 0
    assert leaked == 2 * 4  # each of 4 ad sets: one row only stored, one only recomputed


def test_windows_are_null_until_the_history_spans_them(connection):
    frame = features_of(connection)
    first = frame[frame["ad_set_id"] == "AS_000"].reset_index(drop=True)
    assert first.loc[:5, "spend_7d"].isna().all() and first.loc[6:, "spend_7d"].notna().all()
    assert first.loc[:26, "roas_28d"].isna().all() and first.loc[27:, "roas_28d"].notna().all()
    assert np.isnan(first.loc[0, "spend_lag1"]) and first.loc[1, "spend_lag1"] > 0


def test_a_missing_day_leaves_a_gap_instead_of_pulling_in_older_rows(connection):
    gap = date(2024, 8, 15)
    connection.execute(f"DELETE FROM gold.daily_adset_metrics WHERE date = DATE '{gap}'")
    frame = features_of(connection)
    daily = connection.execute(
        "SELECT date, spend FROM gold.daily_adset_metrics WHERE ad_set_id = 'AS_000'"
    ).df()
    row = frame[
        (frame["ad_set_id"] == "AS_000") & (frame["date"] == pd.Timestamp(gap + timedelta(1)))
    ]
    window = daily[
        (daily["date"] > pd.Timestamp(gap - timedelta(2)))
        & (daily["date"] <= pd.Timestamp(gap + timedelta(1)))
    ]
    assert len(window) == 2  # three calendar days, one of them missing
    assert row["spend_3d"].iloc[0] == pytest.approx(window["spend"].sum())
    assert np.isnan(row["spend_lag1"].iloc[0])


def test_window_ratios_are_sums_over_sums_not_means_of_daily_ratios(connection):
    frame = features_of(connection)
    daily = connection.execute(
        "SELECT revenue, spend FROM gold.daily_adset_metrics WHERE ad_set_id = 'AS_001' "
        "ORDER BY date LIMIT 7"
    ).df()
    roas_7d = frame[frame["ad_set_id"] == "AS_001"]["roas_7d"].iloc[6]
    assert roas_7d == pytest.approx(daily["revenue"].sum() / daily["spend"].sum())


def test_target_age_bands_parse_to_bounds_with_open_upper_for_plus(connection):
    frame = features_of(connection)
    bounds = frame.groupby("ad_set_id")[["target_age_lower", "target_age_upper"]].first()
    assert bounds.loc["AS_000"].tolist() == [25, 45]
    assert bounds.loc["AS_001", "target_age_lower"] == 55
    assert pd.isna(bounds.loc["AS_001", "target_age_upper"])


def test_no_feature_is_a_label():
    assert not set(FEATURE_COLUMNS) & set(LABEL_COLUMNS)
    assert "FOLLOWING" not in feature_sql("t").upper()


def test_labels_look_one_and_seven_days_ahead_and_are_null_when_unobserved(connection):
    labels = connection.execute(label_sql("gold.daily_adset_metrics", 4.0)).df()
    labels = labels[labels["ad_set_id"] == "AS_000"].sort_values("date").reset_index(drop=True)
    daily = connection.execute(
        "SELECT pacing_status, spend, revenue FROM gold.daily_adset_metrics "
        "WHERE ad_set_id = 'AS_000' ORDER BY date"
    ).df()
    expected_pacing = (daily["pacing_status"].shift(-1) == "under_pacing").astype(float)
    assert (
        labels["label_under_pacing_next"].iloc[:-1].tolist() == expected_pacing.iloc[:-1].tolist()
    )
    assert pd.isna(labels["label_under_pacing_next"].iloc[-1])
    roas = daily["revenue"].iloc[1:8].sum() / daily["spend"].iloc[1:8].sum()
    assert labels["label_roas_on_target_next7d"].iloc[0] == float(roas >= 4.0)
    assert labels["label_roas_on_target_next7d"].iloc[-7:].isna().all()
    assert labels["label_roas_on_target_next7d"].iloc[:-7].notna().all()


def test_a_window_without_spend_has_no_roas_label(connection):
    connection.execute("UPDATE gold.daily_adset_metrics SET spend = 0 WHERE ad_set_id = 'AS_002'")
    labels = connection.execute(label_sql("gold.daily_adset_metrics", 4.0)).df()
    assert labels.loc[labels["ad_set_id"] == "AS_002", "label_roas_on_target_next7d"].isna().all()


def test_a_budget_change_dated_after_a_day_never_reaches_that_days_features(connection):
    before = features_of(connection)
    connection.execute(
        "UPDATE gold.daily_adset_metrics SET planned_spend = planned_spend * 3 "
        f"WHERE date > DATE '{CUTOFF}'"
    )
    after = features_of(connection)
    kept = before["date"] <= pd.Timestamp(CUTOFF)
    pd.testing.assert_frame_equal(before[kept], after[after["date"] <= pd.Timestamp(CUTOFF)])
    moved = after[~kept]["planned_spend_1d"] / before[~kept]["planned_spend_1d"]
    np.testing.assert_allclose(moved, 3.0)  # the budget is dated: each day reads its own


def test_the_audience_files_daily_budget_snapshot_is_no_feature(connection):
    """The audience file's daily_budget is the budget at export time, joined onto every past
    day: features reading it would change history whenever a new export changes it."""
    before = features_of(connection)
    connection.execute("UPDATE gold.daily_adset_metrics SET daily_budget = daily_budget * 10 + 7")
    pd.testing.assert_frame_equal(before, features_of(connection))
    assert "daily_budget" not in FEATURE_COLUMNS


def test_point_in_time_check_flags_a_budget_feature_read_from_the_next_day(connection):
    """The budget features come from dated daily rows, so the point-in-time check sees them: a
    planned_spend taken from tomorrow's row is a mismatch, as any other look-ahead."""
    connection.execute(
        "UPDATE gold.daily_adset_metrics SET planned_spend = planned_spend + 100 "
        f"WHERE date = DATE '{CUTOFF}' + INTERVAL 1 DAY"
    )
    connection.execute(
        "CREATE SCHEMA leaky; CREATE TABLE leaky.daily AS SELECT * REPLACE ("
        "coalesce(lead(planned_spend) OVER (PARTITION BY ad_set_id ORDER BY date), "
        "planned_spend) AS planned_spend) FROM gold.daily_adset_metrics"
    )
    connection.execute(f"CREATE TABLE leaky.features AS {feature_sql('leaky.daily')}")
    leaked = point_in_time_mismatches(
        connection, "gold.daily_adset_metrics", "leaky.features", CUTOFF
    )
    assert leaked == 2 * 4  # each of 4 ad sets: the cutoff day read the next day's new budget
