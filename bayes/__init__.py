"""Pyro Bayesian heads, predictive uncertainty and calibration metrics."""

from bayes.calibration import (
    brier_score,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)
from bayes.heads import (
    BayesianClassifier,
    BayesianHead,
    BayesianLinear,
    GuideParams,
    PredictiveUncertainty,
    train_bayesian_head,
)

__all__ = [
    "BayesianClassifier",
    "BayesianHead",
    "BayesianLinear",
    "GuideParams",
    "PredictiveUncertainty",
    "brier_score",
    "expected_calibration_error",
    "fit_temperature",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_diagram",
    "train_bayesian_head",
]
