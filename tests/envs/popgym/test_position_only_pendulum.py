"""popgym/PositionOnlyPendulum*: equal to popgym's PositionOnlyPendulum step by step and in
distribution (helpers and tolerances: control_reference.py)."""

from __future__ import annotations

import pytest
import torch
from control_reference import (
    PENDULUM,
    first_episodes,
    oppose_sine,
    package_class,
    package_episodes,
    random_torque,
    random_torque_obs,
    side_by_side,
    z_score,
)

import envs
from envs.popgym import package_class as package_path

IDS = [f"popgym/PositionOnlyPendulum{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_length_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = package_class(package_path(env_id))()
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space
    assert env.max_episode_steps == ref.max_episode_length


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    """Same states, same torques: same observations, scaled rewards and truncations."""
    length = envs.make(env_id).max_episode_steps
    ended = side_by_side(env_id, PENDULUM, random_torque, steps=2 * length + 5)
    assert ended == {"terminated": 0, "truncated": 6 * 2}


@pytest.mark.parametrize("policy", [random_torque_obs, oppose_sine])
def test_returns_and_lengths_match_the_package_in_distribution(policy):
    """Random and scripted (torque against sin(theta)) policies on the Hard id (100 steps):
    one episode of each of 1,024 copies against 150 package episodes."""
    env_id = IDS[2]
    returns, lengths = first_episodes(env_id, policy, per_copy=1)
    ref_returns, ref_lengths = package_episodes(package_path(env_id), policy, 150)
    assert abs(z_score(returns, ref_returns)) < 4
    assert (lengths == 100).all() and (ref_lengths == 100).all()


def test_a_different_task_fails_the_comparison():
    """Control for the test above: Umbra's lookalike umbra/MaskedPendulum-v0 (Gymnasium's
    unscaled rewards, 200 steps) against popgym's PositionOnlyPendulumHard. (Returns are
    normalised per step, so popgym's difficulties differ in length rather than in return.)"""
    returns, _ = first_episodes("umbra/MaskedPendulum-v0", oppose_sine, per_copy=1)
    ref_returns, _ = package_episodes(package_path(IDS[2]), oppose_sine, 150)
    assert abs(z_score(returns, ref_returns)) > 4


def test_same_seed_same_trajectory():
    runs = []
    for _ in range(2):
        env = envs.make(IDS[2], num_envs=64)
        obs, _ = env.reset(seed=5)
        generator = torch.Generator().manual_seed(0)
        trajectory = [obs]
        for _ in range(120):
            obs, reward, terminated, truncated, _ = env.step(random_torque_obs(obs, generator))
            trajectory += [obs, reward, terminated, truncated]
        runs.append(trajectory)
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)
