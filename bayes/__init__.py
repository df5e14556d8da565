"""Pyro Bayesian heads, predictive uncertainty and calibration metrics."""
