"""The whole graph materialized in process on small raw folders the tests write."""

import dagster as dg
import duckdb
import pytest

from marketing_ml.contract import (
    AUDIENCE_SEGMENTS,
    BUDGET_PACING,
    CONVERSION_EVENTS,
    META_CAMPAIGN_PERFORMANCE,
)
from marketing_ml.defs.quality.quality_checks import RULES, evaluate
from marketing_ml.sample_data import write_sample_data
from marketing_ml_tests.support.lakehouse import (
    BuiltLakehouse,
    Lakehouse,
    check_outcomes,
    clean_conversion_rows,
    clean_performance_rows,
    copy_lakehouse,
    performance_row,
    quality_warnings,
    raw_path,
    write_clean_raw_dir,
    write_raw_csv,
)

BLOCKING_CHECK_SUFFIXES = ("_key_unique", "_required_not_null", "_values_in_range")


def blocking_outcomes(result) -> dict[str, bool]:
    return {
        name: passed
        for name, passed in check_outcomes(result).items()
        if name.endswith(BLOCKING_CHECK_SUFFIXES) or name.startswith("row_accounting_")
    }


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(event.step_failure_data.error) for event in result.all_events if event.is_step_failure
    )


def write_dirty_raw_dir(lakehouse) -> None:
    """Every kind of dirt the issue names, on top of the clean fixture."""
    performance = clean_performance_rows()
    performance_dirt = [
        performance[0],  # exact duplicate of line 2
        performance_row("01/08/2024", "AS_002", "41500", "810", "-252.50"),  # negative copy
        performance_row("01/08/2024", "AS_003", "", "810", "253.50"),  # blank impressions copy
        performance_row("2024-08-25", "AS_001", '"45,000"', "900", '"1,250.00"'),  # ISO, "1,234"
        performance_row("32/08/2024", "AS_001", "45000", "900", "250.00"),  # bad date
        performance_row("06/08/2024", "AS_001", "lots", "900", "250.00"),  # non-numeric
        performance_row("06/08/2024", "AS_002", "-1", "0", "1.00"),  # negative impressions
        performance_row("06/08/2024", "AS_003", "100", "-2", "1.00"),  # negative clicks
        performance_row("07/08/2024", "AS_001", "100", "500", "9.00"),  # clicks > impressions
        performance_row("05/08/2024", "AS_404", "1000", "10", "5.00"),  # unknown ad set
    ]
    columns = [*META_CAMPAIGN_PERFORMANCE.columns, "campaign_objective"]  # extra column
    write_raw_csv(
        raw_path(lakehouse, META_CAMPAIGN_PERFORMANCE),
        columns,
        [[*row, "sales"] for row in performance + performance_dirt],
        bom=False,
    )
    conversions = clean_conversion_rows()
    conversions += [
        ["CV_B001", "01/08/2024", "AS_001", "booking_completed", "999", "7_day_click", "x"],
        ["CV_900", "02/08/2024", "AS_001", "purchase", "10", "7_day_click", "x"],
        ["CV_901", "03/08/2024", "AS_002", "booking_completed", "", "1_day_view", "x"],
    ]
    write_raw_csv(
        raw_path(lakehouse, CONVERSION_EVENTS),
        CONVERSION_EVENTS.columns,
        conversions,
        newline="\n",
        final_newline=False,
    )


@pytest.fixture(scope="module")
def dirty_build(tmp_path_factory) -> BuiltLakehouse:
    """The dirty fixture's whole graph, built once for the tests that read what it quarantined
    and counted."""
    root = tmp_path_factory.mktemp("dirty")
    lakehouse = Lakehouse(
        write_clean_raw_dir(root / "raw"), root / "lakehouse.duckdb", root / "serving.duckdb"
    )
    write_dirty_raw_dir(lakehouse)
    return BuiltLakehouse(lakehouse, lakehouse.materialize())


def test_clean_fixture_builds_every_table_and_publishes(clean_build):
    lakehouse, result = clean_build.lakehouse, clean_build.result
    assert result.success
    assert all(blocking_outcomes(result).values())
    assert quality_warnings(result) == []
    assert lakehouse.serving_query("SELECT count(*) FROM gold.daily_adset_metrics") == [(63,)]


def test_dirty_fixture_quarantines_each_bad_row_with_its_reason(dirty_build):
    lakehouse, result = dirty_build.lakehouse, dirty_build.result
    assert result.success
    assert all(blocking_outcomes(result).values())

    quarantined = lakehouse.query(
        "SELECT source_file, source_line, rule FROM silver.quarantine ORDER BY ALL"
    )
    performance_file = "meta_campaign_performance.csv"
    assert quarantined == [
        ("conversion_events.csv", 2, "conflicting_duplicate"),
        ("conversion_events.csv", 128, "conflicting_duplicate"),
        ("conversion_events.csv", 129, "unknown_vocabulary"),
        (performance_file, 66, "negative_value"),
        (performance_file, 67, "missing_required"),
        (performance_file, 69, "unparseable_date"),
        (performance_file, 70, "non_numeric"),
        (performance_file, 71, "negative_value"),
        (performance_file, 72, "negative_value"),
        (performance_file, 73, "clicks_exceed_impressions"),
    ]
    assert lakehouse.query(
        "SELECT bronze_rows, silver_rows, duplicates_dropped, quarantined_rows, balanced "
        "FROM gold.row_accounting WHERE source_file = ?",
        [performance_file],
    ) == [(73, 65, 1, 7, True)]
    assert lakehouse.query(
        "SELECT impressions, spend FROM silver.meta_campaign_performance "
        "WHERE date = DATE '2024-08-25' AND ad_set_id = 'AS_001'"
    ) == [(45000, 1250.0)]

    assert quality_warnings(result) == [
        "bookings_have_value",
        "ctr_cpm_match_reported",  # the "45,000" row reports a CPM of 5.00; its spend says 27.78
        "fact_files_fresh",  # the ISO row is dated after the other files end
        "meta_campaign_performance_ad_sets_known",
    ]
    report = dict(lakehouse.query("SELECT rule, rows_affected FROM gold.data_quality_report"))
    assert report["bookings_have_value"] == 1
    assert report["quarantined_negative_value"] == 3
    assert "campaign_objective" in [
        name
        for (name,) in lakehouse.query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'bronze' AND table_name = 'meta_campaign_performance'"
        )
    ]


def test_quality_report_takes_this_runs_check_counts_and_agrees_with_counting_again(
    dirty_build, tmp_path
):
    lakehouse = copy_lakehouse(dirty_build.lakehouse, tmp_path)  # the report alone rewrites it

    def counted_by_checks(result: dg.ExecuteInProcessResult) -> int:
        [event] = [
            event
            for event in result.get_asset_materialization_events()
            if event.asset_key == dg.AssetKey(["gold", "data_quality_report"])
        ]
        return event.materialization.metadata["rules_counted_by_checks_of_this_run"].value

    def counted_again() -> dict[str, int]:
        with duckdb.connect(str(lakehouse.database), read_only=True) as connection:
            return {rule.name: evaluate(rule, connection).rows_affected for rule in RULES}

    def report() -> dict[str, int]:
        return dict(lakehouse.query("SELECT rule, rows_affected FROM gold.data_quality_report"))

    whole_graph = dirty_build.result
    assert counted_by_checks(whole_graph) >= 20
    assert report() == counted_again()
    assert report()["quarantined_negative_value"] == 3

    report_alone = lakehouse.materialize(
        selection=dg.AssetSelection.assets(["gold", "data_quality_report"])
    )
    assert counted_by_checks(report_alone) == 0  # no check ran in that run: every rule counted
    assert report() == counted_again()


def test_header_only_file_publishes_the_data_layers_and_says_the_model_is_not_trained(lakehouse):
    write_raw_csv(raw_path(lakehouse, BUDGET_PACING), BUDGET_PACING.columns, [])
    result = lakehouse.materialize()
    assert result.success
    assert all(blocking_outcomes(result).values())
    (status,) = lakehouse.serving_query("SELECT status FROM models.pacing_risk_model")[0]
    assert status.startswith("not trained: 21 days of history, needs at least 4")
    assert "(0 have their 1-day label window in the data)" in status
    assert lakehouse.query("SELECT count(*) FROM silver.budget_pacing") == [(0,)]
    assert lakehouse.query(
        "SELECT count(*) FROM gold.daily_adset_metrics WHERE pacing_status IS NULL"
    ) == [(63,)]


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda path: path.unlink(), "budget_pacing.csv: file is missing"),
        (lambda path: path.write_bytes(b""), "budget_pacing.csv: file is empty"),
        (
            lambda path: path.write_bytes(b"\xff\xfed\x00a\x00t\x00e\x00"),
            "budget_pacing.csv: not UTF-8",
        ),
    ],
)
def test_unusable_file_fails_its_bronze_asset_with_a_message(lakehouse, breakage, expected):
    breakage(raw_path(lakehouse, BUDGET_PACING))
    result = lakehouse.materialize()
    assert not result.success
    assert expected in failure_messages(result)
    failed_steps = [event.step_key for event in result.all_events if event.is_step_failure]
    assert failed_steps == ["bronze__budget_pacing"]
    assert not lakehouse.serving.exists()


def test_unknown_ad_set_stays_with_a_warning(lakehouse):
    rows = clean_performance_rows() + [
        performance_row("05/08/2024", "AS_404", "1000", "10", "5.00")
    ]
    write_raw_csv(
        raw_path(lakehouse, META_CAMPAIGN_PERFORMANCE), META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    result = lakehouse.materialize()
    assert result.success
    assert check_outcomes(result)["meta_campaign_performance_ad_sets_known"] is False
    assert lakehouse.query(
        "SELECT ad_set_name, spend FROM gold.daily_adset_metrics WHERE ad_set_id = 'AS_404'"
    ) == [("Unknown_Ad_Set", 5.0)]


def test_gold_metrics_follow_their_definitions(clean_build):
    lakehouse = clean_build.lakehouse
    assert clean_build.result.success
    spend, revenue, bookings, clicks, impressions, roas, cpa, cvr, ctr = lakehouse.query(
        "SELECT spend, revenue, bookings, clicks, impressions, roas, cpa, cvr, ctr "
        "FROM gold.daily_adset_metrics WHERE ad_set_id = 'AS_002' AND date = DATE '2024-08-03'"
    )[0]
    assert (spend, revenue, bookings) == (254.5, 1100.0, 1)
    assert roas == pytest.approx(revenue / spend)
    assert cpa == pytest.approx(spend / bookings)
    assert cvr == pytest.approx(100 * bookings / clicks)
    assert ctr == pytest.approx(100 * clicks / impressions)


def test_roas_is_null_when_spend_is_zero(lakehouse):
    rows = clean_performance_rows()
    rows[0][5] = "0"
    write_raw_csv(
        raw_path(lakehouse, META_CAMPAIGN_PERFORMANCE), META_CAMPAIGN_PERFORMANCE.columns, rows
    )
    assert lakehouse.materialize().success
    assert lakehouse.query(
        "SELECT roas FROM gold.daily_adset_metrics WHERE ad_set_id = 'AS_001' "
        "AND date = DATE '2024-08-01'"
    ) == [(None,)]


def test_audience_file_with_a_duplicate_id_keeps_one_version(lakehouse):
    rows = [
        ["AS_001", "Premium", "25-45", '"x"', "y", "500"],
        ["AS_001", "Premium", "25-45", '"x"', "y", "500"],
        ["AS_002", "Families", "28-50", '"x"', "y", "-300"],
        ["AS_002", "Families", "28-50", '"x"', "y", "300"],
        ["AS_003", "Seniors", "55+", '"x"', "y", "350"],
    ]
    write_raw_csv(raw_path(lakehouse, AUDIENCE_SEGMENTS), AUDIENCE_SEGMENTS.header_columns, rows)
    result = lakehouse.materialize()
    assert result.success
    assert lakehouse.query(
        "SELECT ad_set_id, daily_budget FROM silver.audience_segments ORDER BY 1"
    ) == [("AS_001", 500.0), ("AS_002", 300.0), ("AS_003", 350.0)]


def test_generated_data_passes_every_blocking_check_and_warns_only_of_its_dirt(lakehouse):
    for path in lakehouse.raw_dir.iterdir():
        path.unlink()
    write_sample_data(lakehouse.raw_dir, ad_sets=10, days=60, seed=7)
    result = lakehouse.materialize()
    assert result.success
    assert all(blocking_outcomes(result).values())
    assert quality_warnings(result) == ["bookings_have_value"]
    accounts = lakehouse.query(
        "SELECT source_file, duplicates_dropped, quarantined_rows, balanced FROM gold.row_accounting "
        "WHERE source_file = 'meta_campaign_performance.csv'"
    )
    ((_, duplicates_dropped, quarantined_rows, balanced),) = accounts
    assert duplicates_dropped > 0 and quarantined_rows > 0 and balanced
    assert lakehouse.query(
        "SELECT count(*) = count(DISTINCT (date, ad_set_id)) FROM gold.daily_adset_metrics"
    ) == [(True,)]
