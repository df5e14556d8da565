"""GAE against closed forms, and minibatches that cover the rollout exactly once."""

import pytest
import torch

from agents.policies import PolicyState
from agents.rollout import Rollout, compute_gae


def test_gae_lambda_one_is_discounted_return_plus_bootstrap():
    # With lambda = 1 and no episode end, A_t + V_t = sum_k gamma^k r_{t+k} + gamma^{T-t} V_T.
    T, gamma = 6, 0.9
    rewards = torch.arange(1.0, T + 1).unsqueeze(1)
    values = torch.full((T, 1), 0.7)
    next_value = torch.tensor([2.0])
    adv, ret = compute_gae(rewards, values, torch.zeros(T, 1, dtype=torch.bool), next_value,
                           gamma, 1.0)
    for t in range(T):
        expected = sum(gamma**k * rewards[t + k, 0] for k in range(T - t)) + gamma ** (T - t) * 2.0
        assert ret[t, 0] == pytest.approx(float(expected), rel=1e-6)
        assert adv[t, 0] == pytest.approx(float(expected) - 0.7, rel=1e-6)


def test_gae_lambda_zero_is_one_step_td_error():
    T, gamma = 5, 0.95
    rewards = torch.randn(T, 3)
    values = torch.randn(T, 3)
    next_value = torch.randn(3)
    dones = torch.zeros(T, 3, dtype=torch.bool)
    dones[2, 1] = True
    adv, _ = compute_gae(rewards, values, dones, next_value, gamma, 0.0)
    next_values = torch.cat((values[1:], next_value[None]))
    expected = rewards + gamma * next_values * (~dones).float() - values
    torch.testing.assert_close(adv, expected)


def test_gae_constant_value_policy_closed_form():
    # Reward 1 every step, V = 0 everywhere, episode ends at the last step: A_t is the finite
    # geometric sum (1 - (gamma*lambda)^(T-t)) / (1 - gamma*lambda).
    T, gamma, lam = 8, 0.99, 0.95
    dones = torch.zeros(T, 1, dtype=torch.bool)
    dones[-1] = True
    adv, _ = compute_gae(torch.ones(T, 1), torch.zeros(T, 1), dones, torch.tensor([123.0]),
                         gamma, lam)
    gl = gamma * lam
    for t in range(T):
        assert adv[t, 0] == pytest.approx((1 - gl ** (T - t)) / (1 - gl), rel=1e-6)


def test_gae_does_not_leak_across_episode_end():
    T = 4
    rewards = torch.zeros(T, 1)
    rewards[3] = 100.0  # reward in the next episode
    dones = torch.zeros(T, 1, dtype=torch.bool)
    dones[1] = True
    adv, _ = compute_gae(rewards, torch.zeros(T, 1), dones, torch.zeros(1), 0.99, 0.95)
    assert adv[0, 0] == 0.0 and adv[1, 0] == 0.0
    assert adv[2, 0] > 0.0


def _filled_rollout(T=8, N=6, sequence_length=None):
    buf = Rollout(T, N, (3,), (), torch.float32, torch.int64, torch.device("cpu"), sequence_length)
    buf.obs[:] = torch.arange(T * N, dtype=torch.float32).reshape(T, N, 1).expand(T, N, 3)
    buf.actions[:] = torch.arange(T * N).reshape(T, N)
    return buf


@pytest.mark.parametrize("num_minibatches", [1, 4])
def test_shuffled_minibatches_cover_every_sample_once(num_minibatches):
    buf = _filled_rollout()
    seen = torch.cat([mb.actions.flatten() for mb in buf.minibatches(num_minibatches)])
    assert sorted(seen.tolist()) == list(range(48))
    mb = next(iter(buf.minibatches(num_minibatches)))
    assert mb.obs.shape == (1, 48 // num_minibatches, 3)
    torch.testing.assert_close(mb.obs[..., 0], mb.actions.float())  # fields stay aligned


@pytest.mark.parametrize("length", [2, 4, 8])
def test_sequence_minibatches_keep_whole_ordered_sequences(length):
    buf = _filled_rollout(sequence_length=length)
    for t in range(8):
        state = torch.full((1, 6, 2), float(t)) + torch.arange(6.0)[None, :, None]
        buf.store_state(t, PolicyState((state,)))
    seen = []
    for mb in buf.minibatches(2):
        assert mb.actions.shape[0] == length
        steps = mb.actions // 6  # time index of each sample
        assert (steps[1:] - steps[:-1] == 1).all(), "a sequence must be consecutive steps"
        copies = mb.actions % 6
        assert (copies == copies[0]).all(), "a sequence must stay on one environment copy"
        # the stored state at the start of each sequence is the state of its first step
        torch.testing.assert_close(mb.state.actor[0][0, :, 0], (steps[0] + copies[0]).float())
        seen += mb.actions.flatten().tolist()
    assert sorted(seen) == list(range(48))


def test_sequence_length_must_divide_the_rollout():
    with pytest.raises(ValueError, match="divide"):
        _filled_rollout(T=8, sequence_length=3)


@pytest.mark.parametrize("sequence_length", [None, 4])
def test_groups_of_copies_stay_together_and_in_order(sequence_length):
    # Communicating agents of one copy (rows n*A .. n*A+A-1) must share every minibatch.
    buf = _filled_rollout(T=8, N=6, sequence_length=sequence_length)
    buf.group_size = 3
    for mb in buf.minibatches(2):
        copies = (mb.actions % 6).reshape(mb.actions.shape[0], -1, 3)
        assert (copies[..., 1] == copies[..., 0] + 1).all()
        assert (copies[..., 2] == copies[..., 0] + 2).all()
        assert (copies[..., 0] % 3 == 0).all()
