"""popgym/PositionOnlyPendulum*: equal to popgym's PositionOnlyPendulum step by step and in
distribution (helpers and tolerances: control_reference.py; spaces, time limit and seeding:
test_contract.py)."""

from __future__ import annotations

import control_reference as control
import pytest

import envs
from envs.popgym import package_class as package_path

IDS = [f"popgym/PositionOnlyPendulum{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    """Same states, same torques: same observations, scaled rewards and truncations."""
    length = envs.make(env_id).max_episode_steps
    ended = control.side_by_side(env_id, control.PENDULUM, control.random_torque,
                                 steps=2 * length + 5)
    assert ended == {"terminated": 0, "truncated": 6 * 2}


@pytest.mark.parametrize("policy", [control.random_torque_obs, control.oppose_sine])
def test_returns_and_lengths_match_the_package_in_distribution(policy):
    """Random and scripted (torque against sin(theta)) policies on the Hard id (100 steps):
    one episode of each of 1,024 copies against 150 package episodes."""
    _, lengths, _, ref_lengths = control.assert_same_episodes(IDS[2], policy, 150, per_copy=1)
    assert (lengths == 100).all() and (ref_lengths == 100).all()


def test_a_different_task_fails_the_comparison():
    """Control for the test above: Umbra's lookalike umbra/MaskedPendulum-v0 (Gymnasium's
    unscaled rewards, 200 steps) against popgym's PositionOnlyPendulumHard. (Returns are
    normalised per step, so popgym's difficulties differ in length rather than in return.)"""
    returns, _ = control.first_episodes("umbra/MaskedPendulum-v0", control.oppose_sine, per_copy=1)
    ref_returns, _ = control.package_episodes(package_path(IDS[2]), control.oppose_sine, 150)
    assert abs(control.z_score(returns, ref_returns)) > 4
