"""popgym/PositionOnlyCartPole*: equal to popgym's PositionOnlyCartPole step by step and in
distribution (helpers and tolerances: control_reference.py; spaces, time limit and seeding:
test_contract.py)."""

from __future__ import annotations

import control_reference as control
import numpy as np
import pytest

import envs
from envs.popgym import package_class as package_path

IDS = [f"popgym/PositionOnlyCartPole{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    """Same states, same actions: same observations, rewards, terminations and truncations,
    through terminations and time limits (half the copies balance to the limit)."""
    control.assert_cartpole_side_by_side(env_id, steps=envs.make(env_id).max_episode_steps + 20)


@pytest.mark.parametrize("policy", [control.random_push, control.push_toward_second])
def test_returns_and_lengths_match_the_package_in_distribution(policy):
    """Random and scripted (push toward the pole's side) policies: the returns (and lengths,
    return * 200) of the first 2 episodes of 1,024 copies against 600 package episodes."""
    returns, lengths, ref_returns, ref_lengths = control.assert_same_episodes(IDS[0], policy, 600)
    np.testing.assert_allclose(returns, lengths / 200, rtol=1e-5)
    np.testing.assert_allclose(ref_returns, ref_lengths / 200, rtol=1e-12)


def test_a_different_task_fails_the_comparison():
    """Control for the test above: the Hard id (rewards 1/600) against popgym's Easy (1/200)."""
    returns, _ = control.first_episodes(IDS[2], control.push_toward_second)
    ref_returns, _ = control.package_episodes(package_path(IDS[0]), control.push_toward_second, 600)
    assert abs(control.z_score(returns, ref_returns)) > 4
