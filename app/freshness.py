"""How fresh the plan is: when its data ends, whether that is too long ago to plan ahead, and how
much newer that data is than what the models learnt from.

Pure: the published summary (`data_end`, `models_trained_through`, `plan_date`) and today's date
in, sentences out; the dashboard's headline, its What-if (under the same title) and the report
show them. Today is a parameter so tests can set the clock.
"""

import html
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

STALE_DAYS = 3
"""Data that ended more than this many days ago is old: a plan "for tomorrow" is then a plan for
a day long past (vendors' exports arrive overnight, a weekend adds two days)."""
RETRAIN_AFTER_DAYS = 7
"""Models more than a week older than the data they score are due their weekly retrain (the
automation sensor asks for it once a week of new labels has arrived:
marketing_ml/defs/automation/conditions.py)."""


STALE_STYLE = "background: #FFF4E5; border-left: 4px solid #D97706; padding: 0.6rem 0.9rem;"
"""The report's warning box (the report's own sheet has no warning style)."""


def _day(value) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


@dataclass(frozen=True)
class Freshness:
    """The last day of data, the day the plan is for, and the last day the models learnt from
    (None while they are not trained), against today."""

    data_end: date
    plan_date: date | None
    models_trained_through: date | None
    today: date

    @property
    def days_old(self) -> int:
        """Days from the last day of data to today (1 = the data ends yesterday)."""
        return (self.today - self.data_end).days

    @property
    def stale(self) -> bool:
        return self.days_old > STALE_DAYS

    @property
    def models_behind(self) -> int | None:
        """Days of data newer than the models' last training day (None: no trained models)."""
        if self.models_trained_through is None:
            return None
        return (self.data_end - self.models_trained_through).days

    @property
    def retrain_due(self) -> bool:
        return (self.models_behind or 0) > RETRAIN_AFTER_DAYS


def freshness_of(summary: dict, today: date) -> Freshness | None:
    """From gold.budget_plan_summary's row; a plan published before `data_end` was stored ends
    its data the day before its plan date. None when neither is known."""
    plan_date = _day(summary.get("plan_date"))
    data_end = _day(summary.get("data_end"))
    if data_end is None and plan_date is not None:
        data_end = plan_date - timedelta(days=1)
    if data_end is None:
        return None
    return Freshness(data_end, plan_date, _day(summary.get("models_trained_through")), today)


def data_end_line(freshness: Freshness) -> str:
    """ "Data to Fri 28 Mar 2025"."""
    return f"Data to {freshness.data_end:%a %d %b %Y}"


def stale_warning(freshness: Freshness) -> str:
    """The warning for data older than STALE_DAYS days; "" when the data is recent."""
    if not freshness.stale:
        return ""
    planned = (
        f"the plan is for {freshness.plan_date:%d %b %Y}, not for tomorrow"
        if freshness.plan_date
        else "the figures are not today's"
    )
    return (
        f"The data ends {freshness.data_end:%d %b %Y}, {_days(freshness.days_old)} ago: "
        f"{planned}. Load newer files to plan ahead."
    )


def model_age_line(freshness: Freshness) -> str:
    """ "Models trained through 14 Mar, scoring data to 28 Mar (14 days newer)", saying the weekly
    retrain is due when that is more than a week; "" while no model is trained."""
    behind = freshness.models_behind
    if behind is None:
        return ""
    trained, scored = freshness.models_trained_through, freshness.data_end
    same_year = trained.year == scored.year
    line = (
        f"Models trained through {trained:%d %b}{'' if same_year else f' {trained:%Y}'}, "
        f"scoring data to {scored:%d %b} ({_days(behind)} newer)"
    )
    if freshness.retrain_due:
        return f"{line}: the weekly retrain is due."
    return line


def freshness_notes(summary: dict | None, today: date) -> tuple[str, str]:
    """(the line under the headline: data end and model age; the stale-data warning or ""),
    plain text; ("", "") without a plan."""
    freshness = None if summary is None else freshness_of(summary, today)
    if freshness is None:
        return "", ""
    line = " · ".join(
        part for part in (data_end_line(freshness), model_age_line(freshness)) if part
    )
    return line, stale_warning(freshness)


def freshness_html(summary: dict | None, today: date) -> list[str]:
    """The same notes as report paragraphs (escaped): the line, then any warning."""
    line, warning = freshness_notes(summary, today)
    paragraphs = [f'<p class="sub">{html.escape(line)}</p>'] if line else []
    if warning:
        paragraphs.append(f'<p class="stale" style="{STALE_STYLE}">{html.escape(warning)}</p>')
    return paragraphs
