"""Budget reallocation: move a share of spend from the lowest-ROAS quartile to the highest.

Revenue responds to spend with a constant elasticity, revenue' = revenue × (spend'/spend)^e: e = 1
keeps each ad set's ROAS as it was, e < 1 means diminishing returns. A range of elasticities gives
the projection as a range rather than a false point estimate.
"""

from dataclasses import dataclass

import pandas as pd

from app.text import csv_text


@dataclass(frozen=True)
class Reallocation:
    plan: pd.DataFrame
    """Per ad set: group, ROAS, spend before and after, revenue before and projected (low, high)."""
    moved: float
    spend: float
    revenue_before: float
    revenue_low: float
    revenue_high: float

    @property
    def roas_before(self) -> float | None:
        return self.revenue_before / self.spend if self.spend else None

    @property
    def roas_low(self) -> float | None:
        return self.revenue_low / self.spend if self.spend else None

    @property
    def roas_high(self) -> float | None:
        return self.revenue_high / self.spend if self.spend else None


def quartile_size(ad_sets: int) -> int:
    """How many ad sets form a quartile; none when there are too few to have two ends."""
    return max(1, ad_sets // 4) if ad_sets >= 2 else 0


def projected_revenue(revenue: pd.Series, spend: pd.Series, new_spend: pd.Series, elasticity):
    scale = (new_spend / spend).where(spend > 0, 1.0)
    return revenue * scale**elasticity


def reallocate(
    by_ad_set: pd.DataFrame, share: float, elasticity: tuple[float, float]
) -> Reallocation:
    """Take `share` of each bottom-quartile ad set's spend and give it to the top quartile in
    proportion to their current spend. Total spend is unchanged."""
    plan = by_ad_set[by_ad_set["spend"] > 0].copy()
    plan["roas"] = plan["roas"].fillna(0.0)
    plan = plan.sort_values(["roas", "ad_set_id"]).reset_index(drop=True)
    size = quartile_size(len(plan))
    plan["group"] = "unchanged"
    if size:
        plan.loc[: size - 1, "group"] = "gives budget"
        plan.loc[len(plan) - size :, "group"] = "receives budget"
    donors = plan["group"] == "gives budget"
    recipients = plan["group"] == "receives budget"
    moved = float(plan.loc[donors, "spend"].sum() * share)
    plan["new_spend"] = plan["spend"]
    plan.loc[donors, "new_spend"] = plan.loc[donors, "spend"] * (1 - share)
    if recipients.any():
        weights = plan.loc[recipients, "spend"] / plan.loc[recipients, "spend"].sum()
        plan.loc[recipients, "new_spend"] = plan.loc[recipients, "spend"] + moved * weights
    plan["spend_change"] = plan["new_spend"] - plan["spend"]
    projections = [
        projected_revenue(plan["revenue"], plan["spend"], plan["new_spend"], e) for e in elasticity
    ]
    plan["revenue_low"] = pd.concat(projections, axis=1).min(axis=1)
    plan["revenue_high"] = pd.concat(projections, axis=1).max(axis=1)
    totals = [float(projection.sum()) for projection in projections]
    plan = plan.sort_values(["roas", "ad_set_id"], ascending=False).reset_index(drop=True)
    return Reallocation(
        plan=plan[
            [
                "ad_set_id",
                "ad_set_name",
                "group",
                "roas",
                "spend",
                "new_spend",
                "spend_change",
                "revenue",
                "revenue_low",
                "revenue_high",
            ]
        ],
        moved=moved,
        spend=float(plan["spend"].sum()),
        revenue_before=float(plan["revenue"].sum()),
        revenue_low=min(totals),
        revenue_high=max(totals),
    )


def plan_csv(plan: pd.DataFrame) -> str:
    """A reallocation's rows as a CSV a media buyer can load into a spreadsheet, money rounded
    to pence; a name a spreadsheet would run as a formula is written as text
    (`app.text.csv_text`)."""
    return csv_text(plan.round(2))
