"""Honest ML: point-in-time features, forward labels, calibrated XGBoost models and their scores.

The library (features, training, evaluation, the model store); the assets and checks that run it
are in marketing_ml/defs/models/."""
