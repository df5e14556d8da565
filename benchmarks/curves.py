"""Learning curves: read from each trial's TensorBoard events, put on one step grid, summarised.

Each trial folder holds the TensorBoard events that training wrote (``charts/episode_return``:
the mean return of the episodes finished in an update, at the global step). To compare agents
across seeds, :func:`read_curve` reads one trial's points, :func:`on_grid` interpolates several
trials linearly onto a common grid of steps, and :func:`band` gives at each grid step the IQM
across seeds with its 95% bootstrap interval (rliable's sample-efficiency curve).

A trial has no value before its first logged point; after its last point it holds its last
value (a trial stopped early at a return threshold stays at the return it reached).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import stats

TAG = "charts/episode_return"
#: Points of the common step grid.
GRID_POINTS = 100


@dataclass(frozen=True)
class Curve:
    """One trial's scalar series: ``steps[i]`` and ``values[i]``, sorted by step."""

    steps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Band:
    """A statistic across seeds at each step of a grid, with its 95% interval.

    Attributes:
        steps: The grid, shape ``[P]``.
        point: IQM across seeds, shape ``[P]``.
        low: Lower bound, shape ``[P]`` (equal to ``point`` for a single seed).
        high: Upper bound, shape ``[P]``.
        runs: Number of seeds.
    """

    steps: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int


def read_curve(logdir: str | Path, tag: str = TAG) -> Curve | None:
    """The points logged under ``tag`` by the events files directly in ``logdir``.

    Returns:
        The curve, or ``None`` when the folder has no point under ``tag`` (e.g. no episode
        finished).
    """
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    accumulator = EventAccumulator(str(logdir), size_guidance={SCALARS: 0})  # 0: keep all
    expected_purge = _ExpectedPurge()
    event_accumulator.logger.addFilter(expected_purge)
    try:
        accumulator.Reload()
    finally:
        event_accumulator.logger.removeFilter(expected_purge)
    if tag not in accumulator.Tags().get("scalars", []):
        return None
    events = accumulator.Scalars(tag)
    steps = np.array([e.step for e in events], dtype=float)
    values = np.array([e.value for e in events], dtype=float)
    order = np.argsort(steps, kind="stable")
    return Curve(steps[order], values[order])


class _ExpectedPurge(logging.Filter):
    """Drops TensorBoard's "Detected out of order event.step ... Purging" warning.

    A resumed run opens its events file with ``purge_step`` (:func:`agents.ppo.train`), asking
    the reader to drop the points an interrupted run logged after its last checkpoint: that purge
    is the intended reading of a resumed trial, not news for the reader of a report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Detected out of order event.step")


def step_grid(curves: list[Curve], points: int = GRID_POINTS) -> np.ndarray:
    """``points`` evenly spaced steps from 0 to the last step of the longest curve."""
    last = max(float(c.steps[-1]) for c in curves)
    return np.linspace(0.0, last, points)


def on_grid(curves: list[Curve], grid: np.ndarray) -> np.ndarray:
    """Curves interpolated linearly at ``grid``: ``[runs, P]``, NaN before a run's first point."""
    rows = []
    for curve in curves:
        row = np.interp(grid, curve.steps, curve.values)  # holds the last value after the end
        row[grid < curve.steps[0]] = np.nan
        rows.append(row)
    return np.stack(rows)


def band(values: np.ndarray, grid: np.ndarray, *, reps: int = 1_000, seed: int = 0) -> Band:
    """IQM across seeds with its 95% bootstrap interval at the grid steps every seed reached.

    Args:
        values: ``[runs, P]`` from :func:`on_grid`.
        grid: The steps, ``[P]``.
        reps: Bootstrap resamples of the seeds (the same resample for every step).
        seed: Seed of the resampling.
    """
    keep = ~np.isnan(values).any(axis=0)
    values, grid = values[:, keep], grid[keep]
    point = np.asarray(stats.iqm(values, axis=0), dtype=float)
    runs = values.shape[0]
    if runs < 2 or values.shape[1] == 0:
        return Band(grid, point, point.copy(), point.copy(), runs)
    rng = np.random.default_rng(seed)
    resampled = values[rng.integers(0, runs, size=(reps, runs))]  # [reps, runs, P]
    iqms = np.asarray(stats.iqm(resampled, axis=1), dtype=float)  # [reps, P]
    low, high = np.quantile(iqms, [(1 - stats.CONFIDENCE) / 2, (1 + stats.CONFIDENCE) / 2],
                            axis=0)
    return Band(grid, point, low, high, runs)
