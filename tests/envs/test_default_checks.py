"""Bad input on the default path (``debug=False``): actions checked, non-finite env output caught.

``envs.make(id, num_envs=...)`` is what the README shows; before these checks it accepted
out-of-range, float, bool, scalar and NaN actions silently.
"""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from agents.multiagent import AgentBatch


def _bad_single(n):
    return [
        (torch.full((n,), 2), ValueError, r"integers in \[0, 1\].*max 2"),
        (torch.full((n,), -1), ValueError, r"integers in \[0, 1\].*min -1"),
        (torch.zeros(n), TypeError, "integer tensor, got torch.float32"),
        (torch.zeros(n, dtype=torch.bool), TypeError, "integer tensor, got torch.bool"),
        (torch.tensor(1), ValueError, re.escape(f"shape ({n},), got ()")),
        (torch.zeros(n, 2, dtype=torch.int64), ValueError, re.escape(f"shape ({n},)")),
        (np.zeros(n, np.int64), TypeError, "torch.Tensor.*got ndarray"),
        ([0] * n, TypeError, "torch.Tensor.*got list"),
    ]


@pytest.mark.parametrize("case", range(8))
def test_default_cartpole_rejects_bad_actions(case):
    env = envs.make("umbra/CartPole-v0", num_envs=4)
    assert not env.debug
    env.reset(seed=0)
    actions, error, pattern = _bad_single(4)[case]
    with pytest.raises(error, match=pattern):
        env.step(actions)
    obs, *_ = env.step(torch.zeros(4, dtype=torch.int64))  # still usable
    assert torch.isfinite(obs).all()


def test_default_box_env_rejects_nan_and_out_of_range_naming_the_copies():
    env = envs.make("umbra/Pendulum-v0", num_envs=3)
    env.reset(seed=0)
    actions = torch.zeros(3, 1)
    actions[1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN \(copies 1\)"):
        env.step(actions)
    actions = torch.zeros(3, 1)
    actions[2] = 5.0
    with pytest.raises(ValueError, match=r"lie in \[\[-2\.0\], \[2\.0\]\].*copies 2"):
        env.step(actions)
    obs, *_ = env.step(torch.zeros(3, 1))
    assert torch.isfinite(obs).all()  # the rejected NaN never reached the state


def test_default_multi_agent_env_names_the_agent_instead_of_an_index_error():
    env = envs.make("umbra/CooperativeNavigation-v0", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions of agent_1 must be integers in \[0, 4\]"):
        env.step(torch.tensor([[0, 5, 0], [0, 0, 0]]))
    with pytest.raises(TypeError, match="integer tensor"):
        env.step(torch.zeros(2, 3))


# ---------------------------------------------------------------------------- accelerators
def _deferring(env_id, num_envs):
    """An env on the path accelerators take: value checks deferred to check_deferred()."""
    env = envs.make(env_id, num_envs=num_envs)
    env.defers_action_checks = True  # what device="cuda" without debug sets
    env.reset(seed=0)
    return env


def test_deferred_checks_raise_at_the_next_check_and_clamp_meanwhile():
    env = _deferring("umbra/CooperativeNavigation-v0", 2)
    good = torch.zeros(2, 3, dtype=torch.int64)
    env.step(good)
    env.check_deferred()  # nothing invalid yet
    obs, *_ = env.step(torch.tensor([[0, 99, 0], [0, 0, 0]]))  # no IndexError: clamped
    assert torch.isfinite(obs).all()
    env.step(torch.tensor([[0, -7, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"step\(\) call 2 .*debug=True"):
        env.check_deferred()
    env.check_deferred()  # reported once; the flag starts over
    with pytest.raises(TypeError, match="integer tensor"):  # form is still checked at once
        env.step(torch.zeros(2, 3))


def test_deferred_checks_catch_nan_box_actions_and_pass_through_agent_batch():
    env = _deferring("umbra/Pendulum-v0", 2)
    env.step(torch.full((2, 1), float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        env.check_deferred()
    multi = AgentBatch(_deferring("umbra/CooperativeNavigation-v0", 2))
    multi.step(torch.full((6,), 9))
    with pytest.raises(ValueError, match="call 1"):
        multi.check_deferred()


def test_check_deferred_never_raises_where_checks_are_immediate():
    env = envs.make("umbra/CartPole-v0", num_envs=2)
    env.reset(seed=0)
    assert not env.defers_action_checks  # the CPU checks every step at once
    with pytest.raises(ValueError):
        env.step(torch.full((2,), 5))
    env.check_deferred()


# ---------------------------------------------------------------------------- NaN from envs
class NaNAfter(gym.Env):
    """Finite observations and rewards until step ``at``, then NaN in ``what``."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, what="obs", at=3):
        self.what, self.at = what, at

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        bad = self.t == self.at
        obs = np.full(2, np.nan if bad and self.what == "obs" else 0.0, np.float32)
        reward = np.inf if bad and self.what == "reward" else 1.0
        return obs, reward, self.t >= 10, False, {}


@pytest.mark.parametrize(("what", "name"), [("obs", "observations"), ("reward", "rewards")])
def test_third_party_nan_is_caught_where_it_enters(what, name):
    env = envs.make(f"{__name__}:NaNAfter", num_envs=3, what=what)
    env.reset(seed=0)
    for _ in range(2):
        env.step(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=rf"NaNAfter.*non-finite {name} .* step\(\) call 3, "
                                         r"copies 0, 1, 2: the environment"):
        env.step(torch.zeros(3, dtype=torch.int64))


def test_ppo_on_a_nan_env_blames_the_env_not_the_learning_rate(tmp_path):
    from agents.ppo import PPOConfig, train

    config = PPOConfig(env_id=f"{__name__}:NaNAfter", num_envs=2, num_steps=8,
                       total_steps=64, env_kwargs={"what": "reward", "at": 5}, device="cpu")
    with pytest.raises(ValueError, match="non-finite rewards") as caught:
        train(config, logdir=tmp_path)
    assert "learning_rate" not in str(caught.value)
    assert not (tmp_path / "checkpoints").exists()
