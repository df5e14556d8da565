"""Shared checks of the agent tests."""

import pytest
import torch


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
