"""Models: features, labels, training data, the two calibrated models, their scores and checks."""
