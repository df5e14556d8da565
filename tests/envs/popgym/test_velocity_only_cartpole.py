"""popgym/VelocityOnlyCartPole*: equal to popgym's VelocityOnlyCartPole step by step, the first
observation of an episode (position and angle, as popgym's reset returns) included, and in
distribution (helpers and tolerances: control_reference.py; spaces, time limit and seeding:
test_contract.py)."""

from __future__ import annotations

import control_reference as control
import numpy as np
import pytest
import torch

import envs

IDS = [f"popgym/VelocityOnlyCartPole{d}-v0" for d in ("Easy", "Medium", "Hard")]


@pytest.mark.parametrize("env_id", IDS)
def test_side_by_side_with_the_package(env_id):
    control.assert_cartpole_side_by_side(env_id, steps=envs.make(env_id).max_episode_steps + 20)


def test_first_observation_shows_positions_then_velocities():
    """popgym's reset shows [x, theta], its steps [x_dot, theta_dot]; autoreset does the same."""
    env = envs.make(IDS[0], num_envs=256)
    obs, _ = env.reset(seed=0)
    torch.testing.assert_close(obs, env.state[:, [0, 2]], rtol=0, atol=0)
    generator = torch.Generator().manual_seed(0)
    restarted = 0
    for _ in range(60):
        obs, _, terminated, truncated, _ = env.step(control.random_push(obs, generator))
        done = terminated | truncated
        torch.testing.assert_close(obs[done], env.state[done][:, [0, 2]], rtol=0, atol=0)
        torch.testing.assert_close(obs[~done], env.state[~done][:, [1, 3]], rtol=0, atol=0)
        restarted += int(done.sum())
    assert restarted > 100


@pytest.mark.parametrize(("policy", "episodes"),
                         [(control.random_push, 600), (control.push_toward_second, 150)])
def test_returns_and_lengths_match_the_package_in_distribution(policy, episodes):
    """Random and scripted (push the way the pole turns: ~189 of 200 steps) policies: first 2
    episodes of 1,024 copies against ``episodes`` package episodes."""
    returns, lengths, _, _ = control.assert_same_episodes(IDS[0], policy, episodes)
    np.testing.assert_allclose(returns, lengths / 200, rtol=1e-5)
