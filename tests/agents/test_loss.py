"""PPO's loss alone, against closed forms; the KL stop, the clip schedule and truncation
bootstrapping inside the loop."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import ppo, rollout
from agents.loss import kl_exceeded, ppo_loss
from agents.policies import ActorCritic, Evaluation
from agents.ppo import PPOConfig, make_policy, make_rollout, update_policy
from agents.rollout import Carry, collect
from envs.core import BatchedEnv


def _evaluation(logprob, value, entropy=None, **penalties):
    logprob, value = torch.tensor(logprob), torch.tensor(value)
    entropy = torch.zeros_like(logprob) if entropy is None else torch.tensor(entropy)
    return Evaluation(logprob, entropy, value, **penalties)


def _loss(new, old_logprob, old_value, adv, ret, **kwargs):
    options = dict(clip=0.2, vf_coef=0.5, ent_coef=0.0, norm_adv=False, clip_vloss=True)
    options.update(kwargs)
    return ppo_loss(new, torch.tensor(old_logprob), torch.tensor(old_value), torch.tensor(adv),
                    torch.tensor(ret), **options)


def test_the_surrogate_is_clipped_on_the_side_the_advantage_favours():
    # ratios 1.5 (A=+2: clipped to 1.2), 0.5 (A=-1: clipped to 0.8), 1.1 (A=+1: inside)
    new = _evaluation([math.log(1.5), math.log(0.5), math.log(1.1)], [0.0, 0.0, 0.0])
    terms = _loss(new, [0.0, 0.0, 0.0], [0.0] * 3, [2.0, -1.0, 1.0], [0.0] * 3)
    expected = (-2.0 * 1.2 + 1.0 * 0.8 - 1.0 * 1.1) / 3
    assert terms.policy_loss.item() == pytest.approx(expected, rel=1e-6)
    assert terms.clipfrac.item() == pytest.approx(2 / 3)
    ratio = torch.tensor([1.5, 0.5, 1.1])
    assert terms.approx_kl.item() == pytest.approx(((ratio - 1) - ratio.log()).mean().item())


def test_a_ratio_that_helps_less_is_not_clipped():
    # A=+1 with ratio 0.5: the unclipped term is the larger loss, so it counts (pessimism)
    new = _evaluation([math.log(0.5)], [0.0])
    terms = _loss(new, [0.0], [0.0], [1.0], [0.0])
    assert terms.policy_loss.item() == pytest.approx(-0.5)


def test_value_clipping_takes_the_larger_error_and_can_be_turned_off():
    # old value 0, new value 1 (a step of 1 > clip 0.2), return 2: clipped prediction 0.2
    new = _evaluation([0.0], [1.0])
    clipped = _loss(new, [0.0], [0.0], [0.0], [2.0])
    assert clipped.value_loss.item() == pytest.approx(0.5 * (2.0 - 0.2) ** 2)
    plain = _loss(new, [0.0], [0.0], [0.0], [2.0], clip_vloss=False)
    assert plain.value_loss.item() == pytest.approx(0.5 * (2.0 - 1.0) ** 2)
    # return 0.5: errors 0.5 (unclipped) and 0.3 (clipped): the larger counts
    towards = _loss(new, [0.0], [0.0], [0.0], [0.5])
    assert towards.value_loss.item() == pytest.approx(0.5 * max(0.5**2, 0.3**2))


def test_advantages_are_normalised_per_minibatch():
    adv = [1.0, 2.0, 3.0, 6.0]
    new = _evaluation([0.0] * 4, [0.0] * 4)  # ratio 1: loss = -mean(normalised A) = 0
    terms = _loss(new, [0.0] * 4, [0.0] * 4, adv, [0.0] * 4, norm_adv=True)
    assert terms.policy_loss.item() == pytest.approx(0.0, abs=1e-7)
    new = _evaluation([math.log(1.1), 0.0, 0.0, 0.0], [0.0] * 4)  # ratios inside the clip
    a = torch.tensor(adv)
    normalised = (a - a.mean()) / (a.std() + 1e-8)  # unbiased std, as torch.std
    terms = _loss(new, [0.0] * 4, [0.0] * 4, adv, [0.0] * 4, norm_adv=True)
    expected = -(normalised * torch.tensor([1.1, 1.0, 1.0, 1.0])).mean().item()
    assert expected == pytest.approx(-0.1 * normalised[0].item() / 4)
    assert terms.policy_loss.item() == pytest.approx(expected, rel=1e-5)
    raw = _loss(new, [0.0] * 4, [0.0] * 4, adv, [0.0] * 4, norm_adv=False)
    assert raw.policy_loss.item() == pytest.approx(-(1.1 * 1 + 2 + 3 + 6) / 4, rel=1e-6)


def test_total_loss_weighs_value_entropy_and_the_bayesian_penalties():
    new = _evaluation([0.0, 0.0], [1.0, 3.0], entropy=[0.5, 1.5], policy_penalty=0.25,
                      value_penalty=torch.tensor(0.75))
    terms = _loss(new, [0.0, 0.0], [1.0, 3.0], [1.0, -1.0], [2.0, 3.0], vf_coef=0.5,
                  ent_coef=0.1)
    assert terms.policy_loss.item() == pytest.approx(0.0 + 0.25)
    assert terms.value_loss.item() == pytest.approx(0.5 * (1.0 + 0.0) / 2 + 0.75)
    assert terms.entropy.item() == pytest.approx(1.0)
    assert terms.loss.item() == pytest.approx(0.25 + 0.5 * 1.0 - 0.1 * 1.0)


def test_kl_stop_rule():
    assert not kl_exceeded(10.0, None)
    assert kl_exceeded(0.021, 0.02) and not kl_exceeded(0.02, 0.02)


# ---------------------------------------------------------------------------- inside the loop
def _one_update(target_kl):
    config = PPOConfig(num_envs=8, num_steps=16, num_minibatches=4, update_epochs=5,
                       target_kl=target_kl, learning_rate=1e-2, device="cpu")
    env = ppo.make_env(config, torch.device("cpu"))
    policy = make_policy(config, env)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    buf = make_rollout(config, env, policy, torch.device("cpu"))
    obs, _ = env.reset(seed=0)
    collect(policy, env, buf, Carry(obs, policy.initial_state(8), torch.ones(8, dtype=torch.bool)),
            config.gamma, config.gae_lambda)
    return update_policy(policy, optimizer, buf, config, clip=0.2).sums[5].item()


def test_target_kl_stops_the_epochs_after_the_first_that_exceeds_it():
    assert _one_update(None) == 5 * 4  # every epoch's minibatches
    assert _one_update(1e-12) == 1 * 4  # the first epoch moved the policy: stop there
    assert _one_update(1e9) == 5 * 4


@pytest.mark.parametrize(("anneal_clip", "expected"),
                         [(False, [0.2, 0.2, 0.2, 0.2]), (True, [0.2, 0.15, 0.1, 0.05])])
def test_clip_coef_anneals_linearly_to_zero_when_asked(monkeypatch, anneal_clip, expected):
    clips = []
    real = ppo.update_policy

    def spy(policy, optimizer, buf, config, clip, **kwargs):
        clips.append(clip)
        return real(policy, optimizer, buf, config, clip, **kwargs)

    monkeypatch.setattr(ppo, "update_policy", spy)
    ppo.train(PPOConfig(num_envs=4, num_steps=8, total_steps=4 * 8 * 4, anneal_clip=anneal_clip,
                        device="cpu"))
    assert clips == pytest.approx(expected)


# ---------------------------------------------------------------------------- truncation
class Forever(BatchedEnv):
    """Reward 1 at every step, never terminated, truncated after 5 steps: the infinite-horizon
    return of every state is ``1 / (1 - gamma)``."""

    single_observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    single_action_space = gym.spaces.Discrete(2)
    max_episode_steps = 5

    def _reset_copies(self, mask, options=None):
        pass

    def _advance(self, actions):
        return (torch.ones(self.num_envs, device=self.device),
                torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))

    def _observe(self):
        return torch.rand(self.num_envs, 2, generator=self.generator, device=self.device)


@pytest.mark.parametrize("every_copy", [False, True])
def test_truncation_bootstraps_so_that_an_exact_value_has_zero_advantage(monkeypatch,
                                                                         every_copy):
    """SB3's infinite-horizon GAE check: with ``V = 1 / (1 - gamma)`` everywhere and truncated
    (never terminated) episodes, bootstrapping ``gamma * V(final_obs)`` makes every advantage 0;
    without it the advantage before each cut would be ``-gamma * V``."""
    gamma = 0.9
    env = Forever(num_envs=3)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_size=8)
    with torch.no_grad():
        policy.critic.weight.zero_()
        policy.critic.bias.fill_(1 / (1 - gamma))
    if every_copy:  # what accelerators run: the critic on every copy, masked
        monkeypatch.setattr(rollout, "_bootstrap_every_copy", lambda device: True)
    buf = make_rollout(PPOConfig(num_envs=3, num_steps=12, device="cpu"), env, policy,
                       torch.device("cpu"))
    obs, _ = env.reset(seed=0)
    collect(policy, env, buf, Carry(obs, policy.initial_state(3), torch.ones(3, dtype=torch.bool)),
            gamma, gae_lambda=0.95)
    assert buf.dones.sum() == 2 * 3  # truncated at steps 5 and 10 of every copy
    torch.testing.assert_close(buf.advantages, torch.zeros(12, 3), atol=1e-4, rtol=0)
    cut = buf.dones.nonzero()[:, 0]
    torch.testing.assert_close(buf.rewards[buf.dones], torch.full((6,), 1 + gamma / (1 - gamma)))
    assert set(cut.tolist()) == {4, 9}


def test_rows_that_do_not_act_carry_no_policy_gradient_but_train_the_critic():
    # Multi-agent turns: only acting rows count in the surrogate, entropy, KL and advantage
    # normalisation; the value loss keeps every row.
    torch.manual_seed(0)
    n = 12
    acting = torch.rand(n) < 0.5
    acting[:2] = torch.tensor([True, False])
    logprob = torch.randn(n, requires_grad=True)
    value = torch.randn(n, requires_grad=True)
    entropy = torch.rand(n)
    old_logprob = logprob.detach() + 0.01 * torch.randn(n)  # ratios inside the clip range
    old_value = value.detach() + 0.01 * torch.randn(n)
    adv, ret = torch.randn(n), torch.randn(n)
    options = dict(clip=0.2, vf_coef=0.5, ent_coef=0.01, norm_adv=True, clip_vloss=True)
    masked = ppo_loss(Evaluation(logprob, entropy, value), old_logprob, old_value, adv, ret,
                      acting=acting, **options)
    rows = acting.nonzero()[:, 0]
    subset = ppo_loss(Evaluation(logprob[rows], entropy[rows], value[rows]), old_logprob[rows],
                      old_value[rows], adv[rows], ret[rows], **options)
    for name in ("policy_loss", "entropy", "approx_kl", "clipfrac"):
        torch.testing.assert_close(getattr(masked, name), getattr(subset, name))
    full = ppo_loss(Evaluation(logprob, entropy, value), old_logprob, old_value, adv, ret,
                    **options)
    torch.testing.assert_close(masked.value_loss, full.value_loss)
    masked.loss.backward()
    assert (logprob.grad[~acting] == 0).all() and (logprob.grad[acting] != 0).all()
    assert (value.grad != 0).all(), "the critic learns from waiting rows too"


def test_an_all_acting_mask_gives_the_unmasked_loss():
    torch.manual_seed(1)
    n = 9
    new = Evaluation(torch.randn(n), torch.rand(n), torch.randn(n))
    args = (torch.randn(n), torch.randn(n), torch.randn(n), torch.randn(n))
    options = dict(clip=0.2, vf_coef=0.5, ent_coef=0.01, norm_adv=True, clip_vloss=True)
    plain = ppo_loss(new, *args, **options)
    masked = ppo_loss(new, *args, acting=torch.ones(n, dtype=torch.bool), **options)
    for a, b in zip(plain, masked, strict=True):
        torch.testing.assert_close(a, b)


def test_advantages_are_normalised_within_each_group():
    # One policy per group: each group's advantages are centred and scaled on their own, so a
    # group whose returns are large does not swamp (or shift) a group whose returns are small.
    adv = torch.tensor([100.0, 110.0, 120.0, -1.0, 0.0, 1.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    logprob = torch.zeros(6, requires_grad=True)
    new = Evaluation(logprob, torch.zeros(6), torch.zeros(6), groups=groups)
    terms = ppo_loss(new, torch.zeros(6), torch.zeros(6), adv, torch.zeros(6), clip=0.2,
                     vf_coef=0.5, ent_coef=0.0, norm_adv=True)
    terms.loss.backward()
    # d(policy loss)/d(logprob_i) = -A_i / n at ratio 1; per group A = (-1, 0, 1) for both
    torch.testing.assert_close(logprob.grad, torch.tensor([1.0, 0, -1, 1, 0, -1]) / 6)


def test_balanced_groups_weigh_each_group_the_same_whatever_its_size():
    # Three predators and one prey in a shared policy: the prey's one sample must count as much
    # as the predators' three together, in the surrogate, the entropy and the value loss.
    groups = torch.tensor([0, 0, 0, 1])
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0])
    logprob = torch.zeros(4, requires_grad=True)
    value = torch.zeros(4, requires_grad=True)
    new = Evaluation(logprob, torch.tensor([0.0, 0.0, 0.0, 1.0]), value, groups=groups)
    options = dict(clip=0.2, vf_coef=1.0, ent_coef=0.0, norm_adv=False, clip_vloss=False)
    balanced = ppo_loss(new, torch.zeros(4), torch.zeros(4), adv, torch.ones(4),
                        balance_groups=True, **options)
    balanced.loss.backward()
    # -A * ratio at ratio 1: d/d logprob_i = -A_i * w_i with w = (1/6, 1/6, 1/6, 1/2)
    torch.testing.assert_close(logprob.grad, -torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2]))
    torch.testing.assert_close(value.grad, -torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2]))
    torch.testing.assert_close(balanced.entropy, torch.tensor(0.5))  # mean of 0 and 1
    plain = ppo_loss(new, torch.zeros(4), torch.zeros(4), adv, torch.ones(4), **options)
    torch.testing.assert_close(plain.entropy, torch.tensor(0.25))  # every sample the same


def test_balanced_groups_count_only_acting_samples_and_skip_absent_groups():
    groups = torch.tensor([0, 0, 1, 1, 2])
    acting = torch.tensor([True, False, True, True, False])  # group 2 does not act here
    logprob = torch.zeros(5, requires_grad=True)
    new = Evaluation(logprob, torch.zeros(5), torch.zeros(5), groups=groups)
    terms = ppo_loss(new, torch.zeros(5), torch.zeros(5), torch.ones(5), torch.zeros(5),
                     clip=0.2, vf_coef=0.5, ent_coef=0.0, norm_adv=False, acting=acting,
                     balance_groups=True)
    terms.loss.backward()
    # two groups act: group 0's one acting sample weighs 1/2, group 1's two weigh 1/4 each
    torch.testing.assert_close(logprob.grad, -torch.tensor([1 / 2, 0, 1 / 4, 1 / 4, 0]))
