"""Every asset key of the lakehouse, written once: the key prefix is the DuckDB schema, so
`table_name(key)` is the table's "schema.table". The served tables' names come from
`serving_contract` (which the dashboard reads too); each raw file's raw, bronze and silver keys
from its contract entry (`bronze_key(EXPERIMENTS)`), so a new file declared there has all three."""

import dagster as dg

import serving_contract
from marketing_ml.contract import RawFile


def key_of(table: str) -> dg.AssetKey:
    """The asset key of a "schema.table" name."""
    return dg.AssetKey(table.split("."))


def table_name(key: dg.AssetKey) -> str:
    """The "schema.table" a key's asset is stored as."""
    return ".".join(key.path)


def raw_key(raw_file: RawFile) -> dg.AssetKey:
    """The raw file itself, an external asset whose changes the raw-folder sensor reports."""
    return dg.AssetKey(["raw", raw_file.name])


def bronze_key(raw_file: RawFile) -> dg.AssetKey:
    return dg.AssetKey(["bronze", raw_file.name])


def silver_key(raw_file: RawFile) -> dg.AssetKey:
    return dg.AssetKey(["silver", raw_file.name])


REVENUE_BY_DAY = dg.AssetKey(["silver", "revenue_by_day"])
QUARANTINE = key_of(serving_contract.QUARANTINE)

DAILY_ADSET_METRICS = key_of(serving_contract.DAILY_METRICS)
ROW_ACCOUNTING = key_of(serving_contract.ROW_ACCOUNTING)
DATA_QUALITY_REPORT = key_of(serving_contract.DATA_QUALITY)

FEATURES = dg.AssetKey(["gold", "features"])
LABELS = dg.AssetKey(["gold", "labels"])
TRAINING_DATASET = dg.AssetKey(["gold", "training_dataset"])


def model_key(model_name: str) -> dg.AssetKey:
    """A model's asset (its table in the models schema), by its spec's name."""
    return dg.AssetKey(["models", model_name])


PACING_RISK_MODEL = key_of(serving_contract.PACING_RISK_MODEL)
CONVERSION_MODEL = key_of(serving_contract.CONVERSION_MODEL)
MODEL_KEYS = (PACING_RISK_MODEL, CONVERSION_MODEL)
SCORED_ADSETS = key_of(serving_contract.SCORED_ADSETS)
SCORED_CONVERSIONS = key_of(serving_contract.SCORED_CONVERSIONS)

RESPONSE_CURVES = key_of(serving_contract.RESPONSE_CURVES)
RESPONSE_CURVE_BACKTEST = key_of(serving_contract.RESPONSE_CURVE_BACKTEST)
BUDGET_PLAN = key_of(serving_contract.BUDGET_PLAN)
BUDGET_PLAN_SUMMARY = key_of(serving_contract.BUDGET_PLAN_SUMMARY)

PUBLISH = dg.AssetKey("publish")
REPORT = dg.AssetKey("report")
