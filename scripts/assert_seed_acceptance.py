"""Assert the acceptance figures of the original sample (../shared/seed-raw) on a built lakehouse."""

import sys

import duckdb


def main(database: str) -> None:
    connection = duckdb.connect(database, read_only=True)

    def one(sql: str):
        return connection.execute(sql).fetchone()

    rows, keys, ad_sets, days, spend = one(
        "SELECT count(*), count(DISTINCT (date, ad_set_id)), count(DISTINCT ad_set_id), "
        "count(DISTINCT date), round(sum(spend), 2) FROM silver.meta_campaign_performance"
    )
    assert (rows, keys, ad_sets, days) == (126, 126, 6, 21), (rows, keys, ad_sets, days)
    assert spend == 37847.66, spend
    bookings, revenue = one(
        "SELECT sum(bookings), round(sum(revenue), 2) FROM silver.revenue_by_day"
    )
    assert (bookings, revenue) == (240, 337578.75), (bookings, revenue)
    roas = one("SELECT round(sum(revenue) / sum(spend), 2) FROM gold.daily_adset_metrics")[0]
    assert roas == 8.92, roas
    unbalanced = one("SELECT count(*) FROM gold.row_accounting WHERE NOT balanced")[0]
    assert unbalanced == 0, unbalanced
    failing = connection.execute(
        "SELECT rule, action, rows_affected FROM gold.data_quality_report "
        "WHERE status IN ('warn', 'fail') ORDER BY rule"
    ).fetchall()
    assert failing == [("bookings_have_value", "warn", 5)], failing
    print(
        f"seed acceptance: {rows} rows, spend £{spend:,.2f}, {bookings} bookings, "
        f"revenue £{revenue:,.2f}, ROAS {roas}×, only warning: 5 bookings without a value"
    )


if __name__ == "__main__":
    main(sys.argv[1])
