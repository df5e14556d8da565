"""Partially observable (memory) tasks: one file per family."""
