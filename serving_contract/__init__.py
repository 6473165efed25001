"""What the serving file holds: the tables `publish` copies into it and the dashboard, the
report and the facts sent to LM Studio read, and the model tables' JSON columns.

Shared by the pipeline (`marketing_ml`) and the app (`app`) so that neither imports the other:
the serving file is the only thing between them.
"""

DAILY_METRICS = "gold.daily_adset_metrics"
DATA_QUALITY = "gold.data_quality_report"
ROW_ACCOUNTING = "gold.row_accounting"
QUARANTINE = "silver.quarantine"
SCORED_ADSETS = "gold.scored_adsets"
SCORED_CONVERSIONS = "gold.scored_conversions"
RESPONSE_CURVES = "gold.response_curves"
RESPONSE_CURVE_BACKTEST = "gold.response_curve_backtest"
BUDGET_PLAN = "gold.budget_plan"
BUDGET_PLAN_SUMMARY = "gold.budget_plan_summary"
PACING_RISK_MODEL = "models.pacing_risk_model"
CONVERSION_MODEL = "models.conversion_model"
AUDIENCE_SEGMENTS = "silver.audience_segments"

SERVED_TABLES = (
    DAILY_METRICS,
    DATA_QUALITY,
    ROW_ACCOUNTING,
    QUARANTINE,
    SCORED_ADSETS,
    SCORED_CONVERSIONS,
    RESPONSE_CURVES,
    RESPONSE_CURVE_BACKTEST,
    BUDGET_PLAN,
    BUDGET_PLAN_SUMMARY,
    PACING_RISK_MODEL,
    CONVERSION_MODEL,
    AUDIENCE_SEGMENTS,
)
"""Every table of the serving file, as "schema.table" (the lakehouse's own names)."""

UNSERVED_COLUMNS = frozenset({"booster"})
"""The dashboard shows model cards, not boosters: the serving file stays small."""

MODEL_JSON_COLUMNS = ("metrics", "backtest", "reliability", "importances", "psi")
"""Model-card columns stored as JSON text in the model tables, decoded by their readers."""

MODEL_CARD_COLUMNS = (
    "model_name",
    "model_version",
    "status",
    "predicts",
    "label",
    "horizon_days",
    "roas_target",
    "training_start",
    "training_end",
    "validation_start",
    "validation_end",
    "refit_start",
    "refit_end",
    "trained_at_data_date",
    "training_rows",
    *MODEL_JSON_COLUMNS,
)
"""The model-table columns the dashboard and the report read. `status` is "trained", "not
trained: …" (too little history, scores NULL) or "uninformative: …" (a label nearly all one
class, every ad set scored with its base rate). `training_*`/`validation_*` are the validated
fit whose figures the card reports; `refit_*` the served model, refit on every day whose label
is known (a model stored before the refit has them NULL)."""
