"""popgym/VelocityOnlyCartPole*: equal to popgym's VelocityOnlyCartPole step by step, the first
observation of an episode (position and angle, as popgym's reset returns) included, and in
distribution (helpers and tolerances: control_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from control_reference import (
    CARTPOLE,
    balance_or_random,
    first_episodes,
    package_class,
    package_episodes,
    push_toward_second,
    random_push,
    side_by_side,
    z_score,
)

import envs
from envs.popgym import package_class as package_path

IDS = [f"popgym/VelocityOnlyCartPole{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_length_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = package_class(package_path(env_id))()
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space
    assert env.max_episode_steps == ref.max_episode_length


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    length = envs.make(env_id).max_episode_steps
    ended = side_by_side(env_id, CARTPOLE, balance_or_random, steps=length + 20)
    assert ended["terminated"] > 10
    assert ended["truncated"] == 3  # the three balancing copies


def test_first_observation_shows_positions_then_velocities():
    """popgym's reset shows [x, theta], its steps [x_dot, theta_dot]; autoreset does the same."""
    env = envs.make(IDS[0], num_envs=256)
    obs, _ = env.reset(seed=0)
    torch.testing.assert_close(obs, env.state[:, [0, 2]], rtol=0, atol=0)
    generator = torch.Generator().manual_seed(0)
    restarted = 0
    for _ in range(60):
        obs, _, terminated, truncated, _ = env.step(random_push(obs, generator))
        done = terminated | truncated
        torch.testing.assert_close(obs[done], env.state[done][:, [0, 2]], rtol=0, atol=0)
        torch.testing.assert_close(obs[~done], env.state[~done][:, [1, 3]], rtol=0, atol=0)
        restarted += int(done.sum())
    assert restarted > 100


@pytest.mark.parametrize(("policy", "episodes"), [(random_push, 600), (push_toward_second, 150)])
def test_returns_and_lengths_match_the_package_in_distribution(policy, episodes):
    """Random and scripted (push the way the pole turns: ~189 of 200 steps) policies: first 2
    episodes of 1,024 copies against ``episodes`` package episodes."""
    env_id = IDS[0]
    returns, lengths = first_episodes(env_id, policy)
    ref_returns, ref_lengths = package_episodes(package_path(env_id), policy, episodes)
    assert abs(z_score(returns, ref_returns)) < 4
    assert abs(z_score(lengths.astype(float), ref_lengths.astype(float))) < 4
    np.testing.assert_allclose(returns, lengths / 200, rtol=1e-5)


def test_same_seed_same_trajectory():
    runs = []
    for _ in range(2):
        env = envs.make(IDS[0], num_envs=64)
        obs, _ = env.reset(seed=5)
        generator = torch.Generator().manual_seed(0)
        trajectory = [obs]
        for _ in range(50):
            obs, reward, terminated, truncated, _ = env.step(random_push(obs, generator))
            trajectory += [obs, reward, terminated, truncated]
        runs.append(trajectory)
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)
