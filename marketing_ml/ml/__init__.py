"""Honest ML: point-in-time features, forward labels, calibrated XGBoost models and their scores."""

from marketing_ml.ml.assets import ML_ASSETS
from marketing_ml.ml.checks import ML_ASSET_CHECKS

ml_assets = ML_ASSETS
ml_asset_checks = ML_ASSET_CHECKS

__all__ = ["ml_asset_checks", "ml_assets"]
