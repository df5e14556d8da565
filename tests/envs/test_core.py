"""Contract tests of the batched environment: types, SAME_STEP autoreset, statistics, seeding."""

from __future__ import annotations

import pytest
import torch

import envs
from envs.classic import CartPole
from envs.core import torch_dtype

INFO_KEYS = {"final_obs", "_final_obs", "episode_return", "episode_length", "_episode"}


def _rollout(env, seed: int, steps: int, action_seed: int = 0) -> list[tuple]:
    """Everything a user sees over ``steps`` random steps after ``reset(seed=seed)``."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(action_seed)
    seen = [(obs,)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(
            torch.as_tensor(env.action_space.sample())
        )
        seen.append((obs, reward, terminated, truncated, info["final_obs"]))
    return seen


@pytest.mark.parametrize("num_envs", [1, 5])
@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_step_types_and_shapes(env_id, num_envs):
    env = envs.make(env_id, num_envs=num_envs)
    obs_shape = (num_envs, *env.single_observation_space.shape)
    obs, info = env.reset(seed=0)
    expected_dtype = torch_dtype(env.single_observation_space)  # float32 boxes, int64 discrete
    assert isinstance(obs, torch.Tensor) and obs.shape == obs_shape and obs.dtype == expected_dtype
    assert obs.device == env.device and info == {}
    assert obs.numpy() in env.observation_space

    env.action_space.seed(0)
    obs, reward, terminated, truncated, info = env.step(torch.as_tensor(env.action_space.sample()))
    assert obs.shape == obs_shape and obs.numpy() in env.observation_space
    assert reward.shape == (num_envs,) and reward.dtype == torch.float32
    assert terminated.shape == truncated.shape == (num_envs,)
    assert terminated.dtype == truncated.dtype == torch.bool
    assert set(info) == INFO_KEYS
    assert info["final_obs"].shape == obs_shape
    assert info["_final_obs"].dtype == info["_episode"].dtype == torch.bool
    assert info["episode_length"].dtype == torch.int64
    assert info["episode_return"].dtype == torch.float32


def test_same_step_autoreset():
    """A copy that ends is reset inside the step: final_obs is terminal, obs is a fresh start."""
    num_envs = 64
    env = CartPole(num_envs=num_envs)
    obs, _ = env.reset(seed=0)
    assert (obs.abs() <= 0.05).all()
    push_right = torch.ones(num_envs, dtype=torch.int64)  # every pole falls within ~10 steps
    ended = torch.zeros(num_envs, dtype=torch.bool)
    for t in range(1, 40):
        obs, _, terminated, truncated, info = env.step(push_right)
        done = terminated | truncated
        assert torch.equal(info["_final_obs"], done) and torch.equal(info["_episode"], done)
        final = info["final_obs"]
        out_of_bounds = (final[:, 0].abs() > CartPole.x_threshold) | (
            final[:, 2].abs() > CartPole.theta_threshold_radians
        )
        assert torch.equal(terminated, out_of_bounds)
        assert (obs[done].abs() <= 0.05).all()  # the new episode's first observation
        torch.testing.assert_close(final[~done], obs[~done], rtol=0, atol=0)
        first_end = done & ~ended
        assert (info["episode_length"][first_end] == t).all()
        assert (info["episode_return"][first_end] == t).all()  # +1 per step, terminal included
        ended |= done
    assert ended.all()


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_episode_statistics_equal_the_sum_of_rewards(env_id):
    num_envs = 6
    env = envs.make(env_id, num_envs=num_envs)
    env.reset(seed=0)
    env.action_space.seed(0)
    returns = torch.zeros(num_envs, dtype=torch.float64)
    lengths = torch.zeros(num_envs, dtype=torch.int64)
    episodes = 0
    ended = torch.zeros(num_envs, dtype=torch.bool)
    # At least 420 steps, and on until every copy ended once (long card games: 16 decks).
    for step in range(5000):
        if step >= 420 and bool(ended.all()):
            break
        _, reward, terminated, truncated, info = env.step(
            torch.as_tensor(env.action_space.sample())
        )
        returns += reward.double()
        lengths += 1
        done = info["_episode"]
        assert torch.equal(done, terminated | truncated)
        torch.testing.assert_close(
            info["episode_return"][done].double(), returns[done], rtol=1e-5, atol=1e-3
        )
        assert torch.equal(info["episode_length"][done], lengths[done])
        returns[done] = 0.0
        lengths[done] = 0
        episodes += int(done.sum())
        ended |= done
    assert episodes >= num_envs  # Pendulum: two truncations per copy; CartPole: many falls


def test_pendulum_truncates_every_copy_at_200_steps():
    env = envs.make("umbra/Pendulum-v0", num_envs=3)
    env.reset(seed=0)
    zero = torch.zeros(3, 1)
    for t in range(1, 401):
        _, _, terminated, truncated, info = env.step(zero)
        assert not terminated.any()
        assert truncated.all().item() == (t % 200 == 0)
        assert not (truncated & ~info["_episode"]).any()
    assert (info["episode_length"] == 200).all()


def test_cartpole_truncates_at_500_steps():
    """Holding the pole upright (state pinned to zero) ends the episode by truncation at 500."""
    env = CartPole(num_envs=2)
    env.reset(seed=0)
    actions = torch.zeros(2, dtype=torch.int64)
    for t in range(1, 501):
        env.state = torch.zeros_like(env.state)
        _, _, terminated, truncated, info = env.step(actions)
        assert not terminated.any()
        assert truncated.all().item() == (t == 500)
    assert (info["episode_length"] == 500).all()


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_same_seed_same_trajectory(env_id):
    """Same seed and actions -> identical trajectories, autoresets included."""
    first = _rollout(envs.make(env_id, num_envs=4), seed=7, steps=300)
    second = _rollout(envs.make(env_id, num_envs=4), seed=7, steps=300)
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_different_seed_different_start(env_id):
    """Another seed gives another episode (some tasks show the same first observation, e.g. a
    board still face down: the difference then shows within a few steps)."""
    first = _rollout(envs.make(env_id, num_envs=4), seed=1, steps=20)
    second = _rollout(envs.make(env_id, num_envs=4), seed=2, steps=20)
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))


def test_reset_without_seed_continues_the_generator():
    """``reset(seed=s)`` then ``reset()`` is reproducible; the two resets differ."""
    a, b = CartPole(num_envs=3), CartPole(num_envs=3)
    first_a, _ = a.reset(seed=5)
    first_b, _ = b.reset(seed=5)
    second_a, _ = a.reset()
    second_b, _ = b.reset()
    assert torch.equal(first_a, first_b) and torch.equal(second_a, second_b)
    assert not torch.equal(first_a, second_a)


def test_reseeding_mid_run_restarts_the_trajectory():
    env = CartPole(num_envs=4)
    start = _rollout(env, seed=11, steps=50)
    again = _rollout(env, seed=11, steps=50)
    for a, b in zip(start, again, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_step_before_reset_raises(env_id):
    env = envs.make(env_id, num_envs=2)
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step(torch.as_tensor(env.action_space.sample()))


@pytest.mark.parametrize("seed", [1.5, "3", True])
def test_bad_seed_raises(seed):
    with pytest.raises(TypeError, match="seed must be an int"):
        CartPole(num_envs=1).reset(seed=seed)
