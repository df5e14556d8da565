"""Suites, runs and reports: ``python -m benchmarks.run``."""
