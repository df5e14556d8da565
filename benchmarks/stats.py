"""Statistics across seeds and environments, following rliable (Agarwal et al., 2021).

"Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021) argues
for robust point estimates with interval estimates instead of a mean over a handful of seeds.
This module implements its tools on numpy/scipy:

- point estimates of a 1-D array of scores: :func:`mean`, :func:`median` and the interquartile
  mean :func:`iqm` (rliable's: ``scipy.stats.trim_mean(x, 0.25)``, the mean of what is left
  once the lowest and the highest quarter of the runs are cut);
- :func:`bootstrap_interval`: the point estimate with a percentile 95% interval from a
  *stratified* bootstrap: every resample draws, with replacement, as many runs from each stratum
  (environment) as that stratum has, pools them and applies the statistic. One stratum is the
  ordinary bootstrap across seeds; several strata give an aggregate over environments in which
  every environment keeps its number of runs;
- :func:`probability_of_improvement` ``P(X > Y)`` of agent X over agent Y: per environment the
  Mann-Whitney statistic ``mean_ij [x_i > y_j] + 0.5 [x_i == y_j]``, averaged over environments,
  with a stratified-bootstrap interval in :func:`probability_of_improvement_interval`;
- :func:`normalize`: ``(score - random) / (expert - random)``, so that aggregates over
  environments with different return scales mean something;
- :func:`performance_profile`: for each threshold ``tau`` the fraction of runs scoring above
  ``tau``, per environment, averaged over environments.

Aggregates pool the runs of all environments: the aggregate IQM is rliable's; the aggregate mean
equals rliable's mean of per-environment means when every environment has the same number of
runs; the aggregate median is the median of the pooled runs (rliable's is the median of the
per-environment means). Every bootstrap takes a ``seed``: the same inputs and seed give the same
interval.

Shapes: a "stratum" is a 1-D array of scores, one per run (seed) of one environment; "strata" is
a sequence of them, one per environment, of possibly different lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _scipy_stats

#: Bootstrap resamples per interval: rliable's default is 50,000; 2,000 keeps the percentile
#: bounds within about 0.01 standard deviations of their limit and a report fast.
DEFAULT_REPS = 2_000
CONFIDENCE = 0.95

Statistic = Callable[..., np.ndarray | float]


# ---------------------------------------------------------------------------------- points
def mean(scores: ArrayLike, axis: int = -1) -> np.ndarray | float:
    """Arithmetic mean along ``axis``."""
    return np.mean(np.asarray(scores, dtype=float), axis=axis)


def median(scores: ArrayLike, axis: int = -1) -> np.ndarray | float:
    """Median along ``axis`` (the mean of the two middle values for an even count)."""
    return np.median(np.asarray(scores, dtype=float), axis=axis)


def iqm(scores: ArrayLike, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean along ``axis``: the mean of the middle half of the sorted scores.

    As rliable, this is ``scipy.stats.trim_mean(scores, 0.25)``: with ``n`` scores,
    ``floor(n / 4)`` are cut from each end (whole scores, no fractional weights), so one outlier
    among five seeds does not move it: ``iqm([1, 2, 3, 4, 100]) == mean([2, 3, 4]) == 3.0``.
    With fewer than 4 scores nothing is cut and it equals the mean.
    """
    return _scipy_stats.trim_mean(np.asarray(scores, dtype=float), 0.25, axis=axis)


#: Name -> point estimate, in the order reports show them.
STATISTICS: dict[str, Statistic] = {"iqm": iqm, "mean": mean, "median": median}


# ---------------------------------------------------------------------------------- intervals
@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval.

    Attributes:
        point: The statistic of the observed scores.
        low: Lower bound of the interval; NaN when no stratum has two runs (one seed per
            environment cannot show spread).
        high: Upper bound, NaN likewise.
    """

    point: float
    low: float
    high: float

    def format(self, digits: int = 1) -> str:
        """``"12.3 [10.1, 14.0]"``, or ``"12.3"`` without an interval."""
        if np.isnan(self.point):
            return "n/a"
        if np.isnan(self.low):
            return f"{self.point:.{digits}f}"
        return f"{self.point:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap_interval(
    strata: ArrayLike | Sequence[ArrayLike],
    statistic: Statistic = iqm,
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """``statistic`` of the pooled scores with a stratified-bootstrap percentile interval.

    Args:
        strata: One 1-D array of scores (one stratum: the ordinary bootstrap across seeds) or a
            sequence of them, one per environment.
        statistic: A function ``f(scores, axis=-1)`` such as :func:`iqm`, :func:`mean` or
            :func:`median`.
        reps: Bootstrap resamples.
        confidence: Coverage of the interval; the bounds are the ``(1 - confidence) / 2`` and
            ``(1 + confidence) / 2`` quantiles of the resampled statistics.
        seed: Seed of the resampling.

    Returns:
        The statistic of the observed pooled scores and its interval.

    Raises:
        ValueError: no scores, or a stratum that is empty or not 1-D.
    """
    groups = _strata(strata)
    point = float(statistic(np.concatenate(groups), axis=-1))
    if max(len(g) for g in groups) < 2:
        return Interval(point, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    resampled = np.concatenate(_resample(groups, reps, rng), axis=1)  # [reps, runs]
    values = np.asarray(statistic(resampled, axis=-1), dtype=float)
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(point, float(low), float(high))


def summarize(
    strata: ArrayLike | Sequence[ArrayLike], *, reps: int = DEFAULT_REPS, seed: int = 0
) -> dict[str, Interval]:
    """IQM, mean and median (:data:`STATISTICS`) of ``strata``, each with its 95% interval."""
    return {name: bootstrap_interval(strata, f, reps=reps, seed=seed)
            for name, f in STATISTICS.items()}


# ---------------------------------------------------------------------------------- comparisons
def probability_of_improvement(
    x: ArrayLike | Sequence[ArrayLike], y: ArrayLike | Sequence[ArrayLike]
) -> float:
    """``P(X > Y)``: how likely a run of agent X beats a run of agent Y on a random environment.

    Per environment, the Mann-Whitney U statistic over all pairs of runs normalised to [0, 1]:
    ``mean_ij ([x_i > y_j] + 0.5 [x_i == y_j])``; then the mean over environments. 0.5 means no
    difference; rliable calls an improvement meaningful when the interval's lower bound is above
    0.5.

    Args:
        x: Scores of agent X: one array, or one array per environment.
        y: Scores of agent Y in the same layout and environment order as ``x``.
    """
    xs, ys = _paired(x, y)
    return float(np.mean([_mann_whitney(a[None], b[None])[0] for a, b in zip(xs, ys,
                                                                              strict=True)]))


def probability_of_improvement_interval(
    x: ArrayLike | Sequence[ArrayLike],
    y: ArrayLike | Sequence[ArrayLike],
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """:func:`probability_of_improvement` with a stratified-bootstrap interval.

    Every resample draws the runs of X and of Y independently within each environment.
    """
    xs, ys = _paired(x, y)
    point = probability_of_improvement(xs, ys)
    if max(len(g) for g in (*xs, *ys)) < 2:
        return Interval(point, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    xr, yr = _resample(xs, reps, rng), _resample(ys, reps, rng)
    values = np.mean([_mann_whitney(a, b) for a, b in zip(xr, yr, strict=True)], axis=0)
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(point, float(low), float(high))


# ---------------------------------------------------------------------------------- aggregates
def normalize(scores: ArrayLike, random: float, expert: float) -> np.ndarray:
    """``(scores - random) / (expert - random)``: 0 is a random policy, 1 an expert.

    Raises:
        ValueError: ``expert == random``.
    """
    if expert == random:
        raise ValueError(f"reference scores need expert != random, got both = {random}")
    return (np.asarray(scores, dtype=float) - random) / (expert - random)


def performance_profile(
    strata: ArrayLike | Sequence[ArrayLike], taus: ArrayLike
) -> np.ndarray:
    """Run-score distribution: for each ``tau``, the fraction of runs with a score above it.

    The fraction is taken per environment, then averaged over environments, so that every
    environment weighs the same whatever its number of runs (rliable's performance profile).

    Args:
        strata: Scores, one array or one per environment (normalised when pooling environments).
        taus: Thresholds, shape ``[K]``.

    Returns:
        Fractions in [0, 1], shape ``[K]``, non-increasing in ``tau``.
    """
    taus = np.asarray(taus, dtype=float)
    return np.mean([(g[:, None] > taus[None, :]).mean(axis=0) for g in _strata(strata)], axis=0)


# ---------------------------------------------------------------------------------- helpers
def _strata(strata: ArrayLike | Sequence[ArrayLike]) -> list[np.ndarray]:
    """One float array per stratum; a flat sequence of numbers is one stratum."""
    if isinstance(strata, np.ndarray) or (
        isinstance(strata, Sequence) and all(np.ndim(s) == 0 for s in strata)
    ):
        groups = [np.asarray(strata, dtype=float)]
    else:
        groups = [np.asarray(s, dtype=float) for s in strata]
    if not groups:
        raise ValueError("no scores: give at least one stratum with at least one score")
    for i, g in enumerate(groups):
        if g.ndim != 1 or g.size == 0:
            raise ValueError(f"stratum {i} must be a non-empty 1-D array of scores, got shape "
                             f"{g.shape}")
    return groups


def _paired(x: ArrayLike | Sequence[ArrayLike],
            y: ArrayLike | Sequence[ArrayLike]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs, ys = _strata(x), _strata(y)
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} environments and y {len(ys)}: compare agents on the "
                         "same environments, in the same order")
    return xs, ys


def _resample(groups: list[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per stratum, ``reps`` resamples with replacement of its own size: ``[reps, n_stratum]``."""
    return [g[rng.integers(0, len(g), size=(reps, len(g)))] for g in groups]


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``mean_ij [x_i > y_j] + 0.5 [x_i == y_j]`` per leading index: ``[R, n], [R, m] -> [R]``."""
    diff = x[:, :, None] - y[:, None, :]
    return (diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2))
