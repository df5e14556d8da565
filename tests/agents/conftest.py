"""Shared checks of the agent tests."""

import pytest
import torch

from agents.rollout import Carry, Rollout, collect, space_spec
from envs.core import torch_dtype


def _assert_ratio_is_one(policy, buf, num_minibatches=2):
    """Before the first gradient step, the update recomputes exactly the log-probabilities and
    values the rollout recorded (ratio = 1 to 1e-5; docs/architecture.md, "The policy")."""
    for mb in buf.minibatches(num_minibatches):
        with torch.no_grad():
            new = policy.evaluate(mb.obs, mb.actions, mb.state, mb.episode_starts, mb.inputs)
        logprob, value = new.logprob, new.value
        torch.testing.assert_close(logprob, mb.logprobs, atol=1e-5, rtol=0)
        torch.testing.assert_close(value, mb.values, atol=1e-5, rtol=0)


@pytest.fixture
def assert_ratio_is_one():
    """``assert_ratio_is_one(policy, buf, num_minibatches=2)`` over a filled rollout."""
    return _assert_ratio_is_one


def _filled_rollout(policy, env, steps, sequence_length=None, group_size=1):
    """One rollout of ``steps`` steps of ``policy`` on ``env`` after ``reset(seed=0)``."""
    shape, dtype = space_spec(env.single_observation_space)
    buf = Rollout(steps, env.num_envs, shape, env.single_action_space.shape, dtype,
                  torch_dtype(env.single_action_space), env.device, sequence_length,
                  group_size=group_size)
    obs, info = env.reset(seed=0)
    carry = Carry(obs, policy.initial_state(env.num_envs),
                  torch.ones(env.num_envs, dtype=torch.bool), info.get("critic_obs"),
                  acting=info.get("acting"))
    collect(policy, env, buf, carry, 0.99, 0.95)
    return buf


@pytest.fixture
def filled_rollout():
    """``filled_rollout(policy, env, steps, sequence_length=None, group_size=1)``: a Rollout
    filled by one collect after ``env.reset(seed=0)``."""
    return _filled_rollout
