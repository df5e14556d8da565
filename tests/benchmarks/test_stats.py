"""Statistics across seeds: point estimates, bootstrap intervals and comparisons by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import stats


# ---------------------------------------------------------------------------------- points
@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([1, 2, 3, 4, 100], 3.0),  # 5 runs: one cut from each end, the outlier has no effect
        ([8, 1, 7, 2, 6, 3, 5, 4], 4.5),  # 8 runs: two cut from each end -> mean(3, 4, 5, 6)
        ([4.0, 1.0, 2.0], 7.0 / 3.0),  # fewer than 4 runs: nothing cut, the mean
    ],
)
def test_interquartile_mean_by_hand(scores, expected):
    assert stats.iqm(scores) == pytest.approx(expected)


def test_point_estimates_along_an_axis():
    scores = np.array([[1.0, 2.0, 3.0, 4.0, 100.0], [0.0, 0.0, 0.0, 0.0, 5.0]])
    np.testing.assert_allclose(stats.iqm(scores, axis=-1), [3.0, 0.0])
    np.testing.assert_allclose(stats.mean(scores, axis=-1), [22.0, 1.0])
    np.testing.assert_allclose(stats.median(scores, axis=-1), [3.0, 0.0])


# ---------------------------------------------------------------------------------- intervals
def test_bootstrap_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    repetitions, runs = 400, 30
    covered = 0
    for i in range(repetitions):
        sample = rng.normal(loc=2.0, scale=3.0, size=runs)
        interval = stats.bootstrap_interval(sample, stats.mean, reps=500, seed=i)
        assert interval.low <= interval.point <= interval.high
        covered += interval.low <= 2.0 <= interval.high
    # The percentile bootstrap of a mean of 30 normal draws covers about 94%; the binomial
    # standard error over 400 repetitions is 1.1 points.
    assert 0.90 <= covered / repetitions <= 0.98


def test_bootstrap_is_stratified_by_environment():
    # Each resample draws 3 runs from the first env and 1 from the second: always exactly one 10,
    # so the pooled mean never moves. An unstratified bootstrap would draw 0 to 4 tens.
    interval = stats.bootstrap_interval([[0.0, 0.0, 0.0], [10.0]], stats.mean, reps=200)
    assert (interval.point, interval.low, interval.high) == (2.5, 2.5, 2.5)


def test_bootstrap_is_reproducible_with_a_seed():
    scores = [[1.0, 5.0, 2.0, 8.0], [3.0, 3.5, 9.0]]
    first = stats.bootstrap_interval(scores, stats.iqm, reps=300, seed=7)
    assert stats.bootstrap_interval(scores, stats.iqm, reps=300, seed=7) == first
    assert stats.bootstrap_interval(scores, stats.iqm, reps=300, seed=8) != first


def test_one_seed_gives_a_point_without_an_interval():
    summary = stats.summarize([42.0])
    assert list(summary) == ["iqm", "mean", "median"]
    for interval in summary.values():
        assert interval.point == 42.0 and math.isnan(interval.low) and math.isnan(interval.high)
        assert interval.format() == "42.0"
    assert stats.Interval(1.0, 0.5, 1.25).format(2) == "1.00 [0.50, 1.25]"


@pytest.mark.parametrize("bad", [[], [[1.0], []], [[[1.0, 2.0]]]])
def test_empty_or_malformed_scores_are_rejected(bad):
    with pytest.raises(ValueError, match="score"):
        stats.bootstrap_interval(bad)


# ---------------------------------------------------------------------------------- comparisons
def test_probability_of_improvement_by_hand():
    # x=1 beats 0 (1 pair); x=2 beats 0 and ties both 2s (1 + 2 * 0.5); x=3 beats all 3: 6 / 9.
    assert stats.probability_of_improvement([1, 2, 3], [2, 2, 0]) == pytest.approx(6 / 9)
    assert stats.probability_of_improvement([1, 2, 3], [1, 2, 3]) == pytest.approx(0.5)
    # Averaged over environments: (6/9 + 1) / 2.
    both = stats.probability_of_improvement([[1, 2, 3], [5]], [[2, 2, 0], [4]])
    assert both == pytest.approx((6 / 9 + 1) / 2)
    with pytest.raises(ValueError, match="same environments"):
        stats.probability_of_improvement([[1.0], [2.0]], [[1.0]])


def test_probability_of_improvement_interval():
    clear = stats.probability_of_improvement_interval([5, 6, 7, 8], [1, 2, 3, 4], reps=200)
    assert (clear.point, clear.low, clear.high) == (1.0, 1.0, 1.0)
    # 16 pairs: 3 wins (3 > 2, 4 > 2, 4 > 3) and 3 ties (2, 3, 4): (3 + 0.5 * 3) / 16.
    mixed = stats.probability_of_improvement_interval([1, 2, 3, 4], [2, 3, 4, 5], reps=500)
    assert mixed.point == pytest.approx(4.5 / 16) and mixed.low < mixed.point < 0.5 < mixed.high


# ---------------------------------------------------------------------------------- aggregates
def test_normalize_maps_random_to_0_and_expert_to_1():
    np.testing.assert_allclose(stats.normalize([20.0, 500.0, 260.0], 20.0, 500.0), [0, 1, 0.5])
    with pytest.raises(ValueError, match="expert != random"):
        stats.normalize([1.0], 3.0, 3.0)


def test_performance_profile_weighs_environments_equally():
    profile = stats.performance_profile([[0, 1, 2, 3], [5]], taus=[0.5, 2.5, 10.0])
    # env 1: 3/4, 1/4, 0 of its runs above each tau; env 2: 1, 1, 0.
    np.testing.assert_allclose(profile, [0.875, 0.625, 0.0])
