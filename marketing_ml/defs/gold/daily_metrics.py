"""Gold: the daily ad-set fact table the dashboard and the models read."""

from functools import partial

import dagster as dg

from marketing_ml.contract import AUDIENCE_SEGMENTS, BUDGET_PACING, META_CAMPAIGN_PERFORMANCE
from marketing_ml.defs.automation.conditions import ON_NEW_DATA
from marketing_ml.storage import RecomputedFromChangedDays, Table, full_load_requested
from marketing_ml.table_keys import DAILY_ADSET_METRICS, REVENUE_BY_DAY, silver_key


def daily_adset_metrics_sql(
    performance: str, pacing: str, revenue: str, audience: str, since: str | None = None
) -> str:
    """One row per ad set and day; with `since` (an ISO date), only the days from it on."""
    days = f"WHERE date >= DATE '{since}'" if since else ""
    return f"""
WITH ad_set_days AS (
    SELECT date, ad_set_id FROM {performance} {days}
    UNION
    SELECT date, ad_set_id FROM {pacing} {days}
    UNION
    SELECT date, ad_set_id FROM {revenue} {days}
)
SELECT
    ad_set_days.date,
    ad_set_days.ad_set_id,
    coalesce(audience.ad_set_name, performance.ad_set_name) AS ad_set_name,
    audience.target_age,
    audience.lookalike_source,
    audience.daily_budget,
    audience.campaign_id,
    audience.campaign_name,
    audience.budget_level,
    performance.spend,
    performance.impressions,
    performance.clicks,
    performance.frequency,
    coalesce(revenue.bookings, 0) AS bookings,
    coalesce(revenue.revenue, 0) AS revenue,
    coalesce(revenue.bookings_without_value, 0) AS bookings_without_value,
    coalesce(revenue.revenue, 0) / nullif(performance.spend, 0) AS roas,
    performance.spend / nullif(coalesce(revenue.bookings, 0), 0) AS cpa,
    performance.ctr,
    coalesce(revenue.bookings, 0) * 100.0 / nullif(performance.clicks, 0) AS cvr,
    performance.cpm,
    pacing.planned_spend,
    pacing.actual_spend,
    pacing.budget_utilization,
    pacing.pacing_status
FROM ad_set_days
LEFT JOIN {performance} AS performance
    ON performance.date = ad_set_days.date AND performance.ad_set_id = ad_set_days.ad_set_id
LEFT JOIN {pacing} AS pacing
    ON pacing.date = ad_set_days.date AND pacing.ad_set_id = ad_set_days.ad_set_id
LEFT JOIN {revenue} AS revenue
    ON revenue.date = ad_set_days.date AND revenue.ad_set_id = ad_set_days.ad_set_id
LEFT JOIN {audience} AS audience
    ON audience.ad_set_id = ad_set_days.ad_set_id"""


@dg.asset(
    key=DAILY_ADSET_METRICS,
    ins={
        "performance": dg.AssetIn(key=silver_key(META_CAMPAIGN_PERFORMANCE)),
        "pacing": dg.AssetIn(key=silver_key(BUDGET_PACING)),
        "revenue": dg.AssetIn(key=REVENUE_BY_DAY),
        "audience": dg.AssetIn(key=silver_key(AUDIENCE_SEGMENTS)),
    },
    group_name="gold",
    automation_condition=ON_NEW_DATA,
    kinds={"duckdb", "sql"},
    description="One row per ad set and day: spend, impressions, clicks, bookings, revenue, "
    "ROAS (revenue ÷ spend, NULL when spend is 0), CPA, CTR and CVR (percent), CPM, planned "
    "spend, utilization, the vendor's pacing status, ad set name and audience attributes "
    "(campaign_id, campaign_name and budget_level among them; NULL where the audience file has "
    "no such column or no row for the ad set). "
    "Revenue counts bookings with a known value; bookings_without_value says how many lack one.",
)
def daily_adset_metrics(
    context: dg.AssetExecutionContext,
    performance: Table,
    pacing: Table,
    revenue: Table,
    audience: Table,
) -> RecomputedFromChangedDays:
    """A day's row reads only that day (and the ad set's audience): after a day is appended,
    only the days whose inputs changed are rebuilt. Sorted by date for the dashboard's ranges."""
    return RecomputedFromChangedDays(
        query=partial(
            daily_adset_metrics_sql, performance.name, pacing.name, revenue.name, audience.name
        ),
        dated_inputs=(performance.name, pacing.name, revenue.name),
        undated_inputs=(f"SELECT * FROM {audience}",),
        order_by=("date", "ad_set_id"),
        full_load=full_load_requested(context),
    )
