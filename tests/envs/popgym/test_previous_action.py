"""envs.popgym.previous_action.PreviousAction: popgym's PreviousAction wrapper, batched."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import envs
from agents.policies import DictEncoder
from agents.ppo import PPOConfig, train
from envs.interop.gymnasium import BatchedToGymEnv
from envs.popgym.previous_action import PreviousAction, null_action

EASY = "popgym/RepeatPreviousEasy-v0"


def test_make_wraps_popgym_ids_only_when_asked():
    env = envs.make(EASY, num_envs=8, previous_action=True)
    assert isinstance(env, PreviousAction)
    assert env.single_observation_space == gym.spaces.Dict(
        {"obs": gym.spaces.Discrete(4), "previous_action": gym.spaces.Discrete(4)}
    )
    assert env.single_action_space == gym.spaces.Discrete(4)
    assert env.k == 4, "other attributes are the wrapped env's"
    assert not isinstance(envs.make(EASY, num_envs=2), PreviousAction)
    assert not isinstance(envs.make(EASY, num_envs=2, previous_action=False), PreviousAction)
    with pytest.raises(TypeError, match="previous_action"):
        envs.make("umbra/CartPole-v0", num_envs=2, previous_action=True)
    with pytest.raises(TypeError, match="bool"):
        envs.make(EASY, num_envs=2, previous_action="yes")


def test_observation_holds_the_previous_action_exactly():
    env = envs.make(EASY, num_envs=4, previous_action=True)
    plain = envs.make(EASY, num_envs=4)
    obs, _ = env.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    assert torch.equal(obs["obs"], plain_obs), "same seed, same cards"
    assert torch.equal(obs["previous_action"], torch.zeros(4, dtype=torch.int64))
    for t in range(10):
        actions = (torch.arange(4) + t) % 4
        obs, reward, terminated, truncated, _ = env.step(actions)
        plain_obs, plain_reward, *_ = plain.step(actions)
        assert torch.equal(obs["previous_action"], actions)
        assert torch.equal(obs["obs"], plain_obs) and torch.equal(reward, plain_reward)
        assert env.observation_space.contains({k: v.numpy() for k, v in obs.items()})


def test_null_action_after_autoreset_and_final_obs_holds_the_last_action():
    env = envs.make(EASY, num_envs=3, previous_action=True)  # 51 steps, no time limit
    env.reset(seed=0)
    actions = torch.tensor([1, 2, 3])
    for _ in range(50):
        obs, _, terminated, truncated, info = env.step(actions)
        assert not (terminated | truncated).any()
        assert torch.equal(obs["previous_action"], actions)
    obs, _, terminated, _, info = env.step(actions)
    assert terminated.all() and info["_final_obs"].all()
    assert torch.equal(obs["previous_action"], torch.zeros(3, dtype=torch.int64)), "new episode"
    assert torch.equal(info["final_obs"]["previous_action"], actions), "last real action"
    assert info["episode_length"].tolist() == [51, 51, 51]
    obs, *_ = env.step(torch.tensor([3, 0, 1]))
    assert obs["previous_action"].tolist() == [3, 0, 1]


def test_only_the_copies_that_end_get_the_null_action():
    env = envs.make("popgym/MultiarmedBanditEasy-v0", num_envs=2, previous_action=True)
    env.reset(seed=0)
    env.env._episode_length[0] = 200 - 1  # copy 0 reaches the time limit at the next step
    obs, _, terminated, truncated, info = env.step(torch.tensor([7, 9]))
    done = terminated | truncated
    assert done.tolist() == [True, False]
    assert obs["previous_action"].tolist() == [0, 9]
    assert info["final_obs"]["previous_action"].tolist() == [7, 9]


def test_multi_discrete_and_box_actions():
    env = envs.make("popgym/BattleshipEasy-v0", num_envs=2, previous_action=True)
    assert env.single_observation_space["previous_action"] == gym.spaces.MultiDiscrete([8, 8])
    obs, _ = env.reset(seed=0)
    assert obs["previous_action"].tolist() == [[0, 0], [0, 0]]
    obs, *_ = env.step(torch.tensor([[1, 2], [7, 5]]))
    assert obs["previous_action"].tolist() == [[1, 2], [7, 5]]
    pendulum = envs.make("popgym/PositionOnlyPendulumEasy-v0", num_envs=2, previous_action=True)
    obs, _ = pendulum.reset(seed=0)
    assert obs["previous_action"].dtype == torch.float32
    assert obs["previous_action"].tolist() == [[0.0], [0.0]]
    obs, *_ = pendulum.step(torch.tensor([[1.5], [-0.5]]))
    assert obs["previous_action"].tolist() == [[1.5], [-0.5]]


def test_null_action_mirrors_popgym():
    assert null_action(gym.spaces.Discrete(4)) == 0
    assert null_action(gym.spaces.Discrete(3, start=2)) == 2
    np.testing.assert_array_equal(null_action(gym.spaces.MultiDiscrete([3, 4])), [0, 0])
    np.testing.assert_array_equal(null_action(gym.spaces.Box(1.0, 2.0, (2,))), [1.0, 1.0])
    popgym = pytest.importorskip("popgym.wrappers.previous_action")
    for space in (gym.spaces.Discrete(3, start=2), gym.spaces.MultiDiscrete([3, 4]),
                  gym.spaces.Box(1.0, 2.0, (2,)), gym.spaces.Box(-2.0, 2.0, (1,))):
        np.testing.assert_array_equal(
            null_action(space), popgym.PreviousAction.get_null_action(space)
        )


def test_dict_encoder_one_hots_multi_discrete_entries():
    space = gym.spaces.Dict({"obs": gym.spaces.MultiDiscrete([2, 3], start=[1, 0]),
                             "previous_action": gym.spaces.Discrete(4)})
    encoder = DictEncoder(space, 8)
    assert encoder.net[0].in_features == 2 + 3 + 4
    obs = {"obs": torch.tensor([[[2, 1]]]), "previous_action": torch.tensor([[3]])}
    assert encoder(obs).shape == (1, 1, 8)


@pytest.mark.parametrize("env_id", [EASY, "popgym/BattleshipEasy-v0"])
def test_gymnasium_check_env(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(env_id, previous_action=True)
        assert isinstance(env.unwrapped, BatchedToGymEnv)
        assert isinstance(env.unwrapped.batched, PreviousAction)
        check_env(env.unwrapped)


def test_ppo_trains_on_the_wrapped_env():
    config = PPOConfig(env_id="popgym/AutoencodeEasy-v0", env_kwargs={"previous_action": True},
                       num_envs=4, num_steps=32, total_steps=256, device="cpu", seed=0)
    result = train(config)
    assert result.policy is not None
