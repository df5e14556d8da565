"""Contract tests: Gymnasium's and SB3's own checkers over every registered native id."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.interop.gymnasium import BatchedToGymEnv, BatchedToNumpyVecEnv

#: Warnings about an environment's design rather than its API: Pendulum's torque range [-2, 2] is
#: Gymnasium's own Pendulum-v1, which both checkers would rather see normalised to [-1, 1];
#: popgym's VelocityOnlyCartPole declares its observations Box(-inf, inf), as the package does.
DESIGN_WARNINGS = (
    r".*symmetric and normalized",
    r".*A Box observation space (minimum|maximum) value is -?infinity",
)


@pytest.fixture
def warnings_as_errors():
    """Every warning but the design ones is an error (some API violations only warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in DESIGN_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_gymnasium_check_env(env_id, warnings_as_errors):
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, BatchedToGymEnv)
    assert env.spec is not None and env.spec.id == env_id
    check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_gymnasium_passive_checker(env_id, warnings_as_errors):
    """With Gymnasium's passive checker switched on, reset and random steps raise no warning."""
    env = gym.make(env_id, disable_env_checker=False)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(30):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_sb3_check_env(env_id, warnings_as_errors):
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", envs.list_ids("single-agent"))
def test_make_vec_same_step(env_id):
    """``make_vec`` gives a numpy VectorEnv that resets ended copies inside the same step."""
    num_envs = 4
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    assert isinstance(venv, BatchedToNumpyVecEnv)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert venv.spec is not None and venv.spec.id == env_id
    assert venv.num_envs == num_envs

    obs, info = venv.reset(seed=0)
    assert isinstance(obs, np.ndarray) and obs in venv.observation_space
    assert info == {}
    venv.action_space.seed(0)
    returns = np.zeros(num_envs)
    lengths = np.zeros(num_envs, dtype=np.int64)
    episodes = 0
    # At least 250 steps (CartPole ends within a few dozen random steps, Pendulum at 200), then
    # on until an episode has ended (popgym's card games last up to 831 steps, without a limit).
    for step in range(2000):
        if step >= 250 and episodes > 0:
            break
        obs, reward, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert obs in venv.observation_space
        assert reward.shape == (num_envs,) and reward.dtype == np.float64
        assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
        returns += reward
        lengths += 1
        done = terminated | truncated
        if not done.any():
            assert "final_obs" not in info
            continue
        np.testing.assert_array_equal(info["_final_obs"], done)
        assert info["final_obs"].dtype == object
        for i in range(num_envs):
            if done[i]:
                assert info["final_obs"][i] in venv.single_observation_space
            else:
                assert info["final_obs"][i] is None
        # atol: a float32 running sum of rewards that cancel leaves ~1e-8, not 0.
        np.testing.assert_allclose(info["episode_return"][done], returns[done], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_array_equal(info["episode_length"][done], lengths[done])
        returns[done] = 0.0
        lengths[done] = 0
        episodes += int(done.sum())
    assert episodes > 0
    venv.close()
