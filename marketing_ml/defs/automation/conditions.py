"""When each asset is refreshed, as Dagster automation conditions the `lakehouse_automation`
sensor evaluates: the data chain (bronze → publish) when what it reads has newer data; training
data, models and response curves weekly, when missing, while a model is stored as not trained,
and when the scores say the models are more than a week of labels behind.

Every condition waits while any run holds the lakehouse (one run at a time: a second run would
fail at once, marketing_ml/run_lock.py); what made it true stays true until the asset is built
or attempted, so a file reported during a run is read by the next one.
"""

from dataclasses import dataclass

import dagster as dg

from marketing_ml.table_keys import MODEL_KEYS, SCORED_ADSETS, SCORED_CONVERSIONS

WEEKLY_CRON = "0 5 * * 1"
"""Mondays at 05:00: the weekly retrain and curve refit, on the data up to Sunday."""
SCORED_KEYS = (SCORED_ADSETS, SCORED_CONVERSIONS)
"""Each scoring run says what its model was trained through and what labelled days the data
now has (marketing_ml/ml/model_card.py::freshness_metadata)."""
RETRAIN_AFTER_DAYS = 7
"""More labelled days than this that a model has not learnt from ask for a retrain: a week's
data moves a model little, and the Monday cron retrains weekly anyway."""
BUSY_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def a_run_is_busy(instance: dg.DagsterInstance) -> bool:
    """Whether a run is queued or running: one run at a time holds the lakehouse."""
    return bool(instance.get_run_records(dg.RunsFilter(statuses=BUSY_STATUSES), limit=1))


def model_trained(event: dg.EventLogEntry | None) -> bool:
    """Whether a model's latest materialization is a trained model. A model stored while there
    was too little history says `trained: false` in its metadata: it counts as not trained
    (materializations from before that key were all trained ones). An uninformative model (a
    label nearly all one class, served as its base rate) also says `trained: false`, but its
    status says why, and it counts as trained: more data would find the same label."""
    from marketing_ml.ml.store import UNINFORMATIVE

    if event is None or event.asset_materialization is None:
        return False
    metadata = event.asset_materialization.metadata
    trained, status = metadata.get("trained"), metadata.get("status")
    if status is not None and str(status.value).startswith(UNINFORMATIVE):
        return True
    return trained is None or bool(trained.value)


def untrained_labelled_days(event: dg.EventLogEntry | None) -> tuple[str, str, int] | None:
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


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey):
    """The asset's latest materialization record (with its storage id), or None."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1)
    return records.records[0] if records.records else None


def whole_or_empty(context: dg.AutomationContext, true: bool) -> dg.AutomationResult:
    subset = context.candidate_subset if true else context.get_empty_subset()
    return dg.AutomationResult(context=context, true_subset=subset)


BUSY_BY_EVALUATION: dict[tuple, bool] = {}
"""Whether a run was busy, per (instance, evaluation id and time): asked once per look, so every asset of
one look sees the same answer (asked per asset, a run submitted mid-look split the chain)."""


@dataclass(frozen=True)
class LakehouseIdle(dg.AutomationCondition):
    """No run is queued or running, on this lakehouse or any other of the instance."""

    @property
    def description(self) -> str:
        return "no run is queued or in progress (one run at a time holds the lakehouse)"

    @property
    def name(self) -> str:
        return "lakehouse_idle"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        instance = context.asset_graph_view.instance
        look = (id(instance), context.evaluation_id, context.evaluation_time)
        if look not in BUSY_BY_EVALUATION:
            BUSY_BY_EVALUATION.clear()
            BUSY_BY_EVALUATION[look] = a_run_is_busy(instance)
        return whole_or_empty(context, not BUSY_BY_EVALUATION[look])


@dataclass(frozen=True)
class StoredUntrained(dg.AutomationCondition):
    """One of `models` is stored as not trained (too little history when it last ran)."""

    models: tuple[dg.AssetKey, ...] = MODEL_KEYS

    @property
    def description(self) -> str:
        names = ", ".join(key.to_user_string() for key in self.models)
        return f"{names}: stored as not trained (too little history)"

    @property
    def name(self) -> str:
        return "stored_untrained"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        instance = context.asset_graph_view.instance
        stored = [latest_materialization(instance, key) for key in self.models]
        untrained = any(
            record is not None and not model_trained(record.event_log_entry) for record in stored
        )
        return whole_or_empty(context, untrained)


@dataclass(frozen=True)
class RetrainDue(dg.AutomationCondition):
    """A scoring run since the previous evaluation says its model has not learnt from more
    than RETRAIN_AFTER_DAYS labelled days. Only new scores count, so the same data asks once
    (a failed retrain is not retried on it) and newer data asks again."""

    @property
    def description(self) -> str:
        return f"new scores say a model misses more than {RETRAIN_AFTER_DAYS} labelled days"

    @property
    def name(self) -> str:
        return "retrain_due"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        instance = context.asset_graph_view.instance
        seen_through = context.previous_max_storage_id or 0
        due = False
        for key in SCORED_KEYS:
            record = latest_materialization(instance, key)
            if record is None or record.storage_id <= seen_through:
                continue
            days = untrained_labelled_days(record.event_log_entry)
            due = due or (days is not None and days[2] > RETRAIN_AFTER_DAYS)
        return whole_or_empty(context, due)


@dataclass(frozen=True)
class NewerUpstreamData(dg.AutomationCondition):
    """Something the asset reads was materialized (or reported, for a raw file) after the asset
    was last built or last attempted, by another run than that attempt. Compared by event
    storage ids, so a file reported between two looks while the asset's own run also ended is
    still seen (Dagster's `since_last_handled` drops it: a trigger and a reset on one look). A
    parent updated by the run that also attempted the asset does not count: a failed step is
    retried on new data, not on every look."""

    @property
    def description(self) -> str:
        return "what it reads was updated after its last build or attempt"

    @property
    def name(self) -> str:
        return "newer_upstream_data"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        parents = sorted(context.asset_graph.get(context.key).parent_keys)
        instance = context.asset_graph_view.instance
        entries = {
            record.asset_entry.asset_key: record.asset_entry
            for record in instance.get_asset_records([context.key, *parents])
        }
        own = entries.get(context.key)
        attempt = instance.get_latest_planned_materialization_info(context.key)
        seen_through = max(
            (own.last_materialization_storage_id or 0) if own else 0,
            attempt.storage_id if attempt else 0,
        )
        attempted_by = attempt.run_id if attempt else None
        newer = any(
            (record := entry.last_materialization_record) is not None
            and record.storage_id > seen_through
            and record.run_id != attempted_by
            for entry in (entries.get(parent) for parent in parents)
            if entry is not None
        )
        return whole_or_empty(context, newer)


def waiting_for_the_lakehouse(trigger: dg.AutomationCondition) -> dg.AutomationCondition:
    """`trigger`, acted on once nothing the asset reads is missing and no run holds the
    lakehouse."""
    return trigger & ~dg.AutomationCondition.any_deps_missing() & LakehouseIdle()


BUILT_ONCE = (
    dg.AutomationCondition.missing() & ~dg.AutomationCondition.execution_failed()
).with_label("missing, not failed")
"""Never built and its last run did not fail: built once (a failed build waits for new data)."""

NEW_DATA = (
    NewerUpstreamData()
    | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
).with_label("new data upstream")
"""Newer data upstream, or a parent requested on this look: one look asks for the whole chain
below a changed file, in one run."""

ON_RAW_FILE_CHANGE = ((NEW_DATA | BUILT_ONCE) & LakehouseIdle()).with_label(
    "on a raw file's change"
)
"""Bronze: when the raw-folder sensor reported its file changed, or never built. A raw file no
change was ever reported for (say, the optional experiments file, absent) does not hold it."""

ON_NEW_DATA = waiting_for_the_lakehouse(NEW_DATA | BUILT_ONCE).with_label("on new data")
"""Silver → gold → scores → plan → publish → report: when what it reads has newer data (or is
requested on the same look), so one file drop is one run down the chain."""

WEEKLY_OR_MISSING = (
    dg.AutomationCondition.cron_tick_passed(WEEKLY_CRON).since_last_handled()
    | BUILT_ONCE
    | (dg.AutomationCondition.missing() & NEW_DATA)
    | RetrainDue().since_last_handled()
)
ON_WEEKLY_REFIT = waiting_for_the_lakehouse(WEEKLY_OR_MISSING).with_label(
    "weekly, when missing or a week behind"
)
"""Response curves and their backtest: Mondays at 05:00 (the fit is most of the plan's cost and
a week of new days moves a 180-day fit little); when missing; and with the models' retrain."""

ON_WEEKLY_RETRAIN = waiting_for_the_lakehouse(
    WEEKLY_OR_MISSING | (StoredUntrained() & NEW_DATA)
).with_label("weekly, when missing, untrained or a week behind")
"""Labels, training data and models: as the curves, and with new data while a model is stored
as not trained (retried on every file drop until the history suffices)."""
