"""Mathematics: the batched classic-control environments equal Gymnasium's, step for step."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from envs.classic import CartPole, Pendulum

#: A linear controller that keeps CartPole up for the whole 500 steps (state . gains > 0 -> push
#: right), so that the trajectories below reach the time limit as well as the termination.
BALANCE_GAINS = torch.tensor([0.1, 0.3, 3.0, 1.0])


def _near_cartpole_boundary(state: np.ndarray, tol: float = 1e-5) -> bool:
    """Whether float32 and float64 arithmetic could disagree about termination."""
    return (
        abs(abs(state[0]) - CartPole.x_threshold) < tol
        or abs(abs(state[2]) - CartPole.theta_threshold_radians) < tol
    )


def test_cartpole_one_step_matches_gymnasium():
    """From random states and actions, one step gives Gymnasium's next obs, reward, termination."""
    num_envs = 512
    rng = np.random.default_rng(0)
    states = rng.uniform([-2.4, -3.0, -0.21, -3.5], [2.4, 3.0, 0.21, 3.5], size=(num_envs, 4))
    states = states.astype(np.float32)
    actions = rng.integers(0, 2, size=num_envs)

    env = CartPole(num_envs=num_envs)
    env.reset(seed=0)
    env.state = torch.from_numpy(states.copy())
    _, reward, terminated, truncated, info = env.step(torch.from_numpy(actions))

    ref = gym.make("CartPole-v1").unwrapped
    ref.reset(seed=0)
    compared = 0
    for i in range(num_envs):
        ref.state = states[i].astype(np.float64)
        ref.steps_beyond_terminated = None
        ref_obs, ref_reward, ref_terminated, _, _ = ref.step(int(actions[i]))
        # final_obs is the post-step observation of every copy, reset or not.
        np.testing.assert_allclose(info["final_obs"][i].numpy(), ref_obs, atol=1e-5)
        assert reward[i].item() == ref_reward
        if not _near_cartpole_boundary(np.asarray(ref.state)):
            assert terminated[i].item() == ref_terminated
            compared += 1
    assert not truncated.any()
    assert compared > num_envs - 5
    assert 0 < terminated.sum().item() < num_envs  # both outcomes were exercised


def test_cartpole_trajectories_match_gymnasium():
    """Long trajectories, Gymnasium re-synchronised to our state before every step, agree on
    observations, termination and truncation at 500 steps."""
    num_envs, steps = 8, 1500
    env = CartPole(num_envs=num_envs)
    env.reset(seed=1)
    refs = [gym.make("CartPole-v1") for _ in range(num_envs)]
    for i, ref in enumerate(refs):
        ref.reset(seed=i)
    generator = torch.Generator().manual_seed(0)
    balanced = torch.arange(num_envs) < num_envs // 2  # half balance, half act at random
    n_terminated = n_truncated = 0
    for _ in range(steps):
        state = env.state.double().numpy()
        random_actions = torch.randint(0, 2, (num_envs,), generator=generator)
        balance_actions = ((env.state * BALANCE_GAINS).sum(1) > 0).long()
        actions = torch.where(balanced, balance_actions, random_actions)
        _, _, terminated, truncated, info = env.step(actions)
        for i, ref in enumerate(refs):
            ref.unwrapped.state = state[i].copy()
            ref_obs, _, ref_terminated, ref_truncated, _ = ref.step(int(actions[i]))
            np.testing.assert_allclose(info["final_obs"][i].numpy(), ref_obs, atol=1e-5)
            assert terminated[i].item() == ref_terminated
            assert truncated[i].item() == ref_truncated
            if ref_terminated or ref_truncated:
                ref.reset()
        n_terminated += terminated.sum().item()
        n_truncated += truncated.sum().item()
    assert n_terminated > 10
    assert n_truncated == (num_envs // 2) * (steps // 500)


def test_pendulum_one_step_matches_gymnasium():
    num_envs = 512
    rng = np.random.default_rng(0)
    theta = rng.uniform(-3 * math.pi, 3 * math.pi, num_envs).astype(np.float32)
    theta_dot = rng.uniform(-8.0, 8.0, num_envs).astype(np.float32)
    actions = rng.uniform(-2.0, 2.0, (num_envs, 1)).astype(np.float32)

    env = Pendulum(num_envs=num_envs)
    env.reset(seed=0)
    env.theta, env.theta_dot = torch.from_numpy(theta.copy()), torch.from_numpy(theta_dot.copy())
    obs, reward, terminated, truncated, _ = env.step(torch.from_numpy(actions))

    ref = gym.make("Pendulum-v1").unwrapped
    ref.reset(seed=0)
    for i in range(num_envs):
        ref.state = np.array([theta[i], theta_dot[i]], dtype=np.float64)
        ref_obs, ref_reward, _, _, _ = ref.step(actions[i])
        np.testing.assert_allclose(obs[i].numpy(), ref_obs, atol=1e-5)
        np.testing.assert_allclose(reward[i].item(), ref_reward, rtol=1e-5, atol=1e-4)
    assert not terminated.any() and not truncated.any()


@pytest.mark.parametrize("g", [10.0, 9.81])
def test_pendulum_trajectories_match_gymnasium(g):
    """Re-synchronised trajectories agree on obs and reward, and truncate together at 200."""
    num_envs, steps = 4, 450
    env = envs.make("umbra/Pendulum-v0", num_envs=num_envs, g=g)
    env.reset(seed=2)
    refs = [gym.make("Pendulum-v1", g=g) for _ in range(num_envs)]
    for i, ref in enumerate(refs):
        ref.reset(seed=i)
    generator = torch.Generator().manual_seed(0)
    for t in range(1, steps + 1):
        state = torch.stack((env.theta, env.theta_dot), 1).double().numpy()
        actions = torch.rand(num_envs, 1, generator=generator) * 4 - 2
        _, reward, terminated, truncated, info = env.step(actions)
        assert not terminated.any()
        assert truncated.all().item() == (t % 200 == 0)
        for i, ref in enumerate(refs):
            ref.unwrapped.state = state[i].copy()
            ref_obs, ref_reward, _, ref_truncated, _ = ref.step(actions[i].numpy())
            np.testing.assert_allclose(info["final_obs"][i].numpy(), ref_obs, atol=1e-5)
            np.testing.assert_allclose(reward[i].item(), ref_reward, rtol=1e-5, atol=1e-4)
            assert truncated[i].item() == ref_truncated
            if ref_truncated:
                ref.reset()


@pytest.mark.parametrize(
    ("masked_id", "full_id", "columns"),
    [
        ("umbra/MaskedCartPole-v0", "umbra/CartPole-v0", [0, 2]),
        ("umbra/MaskedPendulum-v0", "umbra/Pendulum-v0", [0, 1]),
    ],
)
def test_masked_variant_shows_the_selected_columns(masked_id, full_id, columns):
    """Same seed and actions: the masked env's observations are columns of the unmasked ones."""
    num_envs = 16
    masked = envs.make(masked_id, num_envs=num_envs)
    full = envs.make(full_id, num_envs=num_envs)
    np.testing.assert_array_equal(
        masked.single_observation_space.low, full.single_observation_space.low[columns]
    )
    np.testing.assert_array_equal(
        masked.single_observation_space.high, full.single_observation_space.high[columns]
    )
    assert masked.single_action_space == full.single_action_space

    obs_m, _ = masked.reset(seed=3)
    obs_f, _ = full.reset(seed=3)
    torch.testing.assert_close(obs_m, obs_f[:, columns], rtol=0, atol=0)
    masked.action_space.seed(0)
    for _ in range(250):
        actions = torch.as_tensor(masked.action_space.sample())
        obs_m, reward_m, term_m, trunc_m, info_m = masked.step(actions)
        obs_f, reward_f, term_f, trunc_f, info_f = full.step(actions)
        torch.testing.assert_close(obs_m, obs_f[:, columns], rtol=0, atol=0)
        torch.testing.assert_close(info_m["final_obs"], info_f["final_obs"][:, columns])
        torch.testing.assert_close(reward_m, reward_f, rtol=0, atol=0)
        assert torch.equal(term_m, term_f) and torch.equal(trunc_m, trunc_f)
