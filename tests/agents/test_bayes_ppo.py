"""PPO with a Bayesian value head: ratio invariant, uncertainty logs, bonus, resume."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs
from agents.bayesian import BayesianValueHead
from agents.policies import ActorCritic
from agents.ppo import PPOConfig, train
from agents.presets import agent_config
from agents.rollout import Carry, Rollout, collect, space_spec
from envs.core import torch_dtype


def _rollout(policy, env, bonus=0.0, seed=0):
    shape, dtype = space_spec(env.single_observation_space)
    buf = Rollout(16, env.num_envs, shape, env.single_action_space.shape, dtype,
                  torch_dtype(env.single_action_space), env.device,
                  16 if policy.core.recurrent else None)
    obs, _ = env.reset(seed=seed)
    torch.manual_seed(seed)
    start = torch.ones(env.num_envs, dtype=torch.bool)
    collect(policy, env, buf, Carry(obs, policy.initial_state(env.num_envs), start), 0.99, 0.95,
            uncertainty_bonus=bonus)
    return buf


@pytest.mark.parametrize("core", ["mlp", "gru"])
def test_bayesian_value_keeps_the_ratio_invariant(core, assert_ratio_is_one):
    env = envs.make("umbra/CartPole-v0", num_envs=8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, core,
                         hidden_size=16, value_head="bayes")
    assert isinstance(policy.critic, BayesianValueHead)
    buf = _rollout(policy, env)
    assert (buf.value_std > 0).all()
    assert_ratio_is_one(policy, buf)


def test_exploration_bonus_adds_the_value_std_to_the_learning_reward():
    env = envs.make("umbra/CartPole-v0", num_envs=8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_size=16,
                         value_head="bayes")
    plain, bonus = _rollout(policy, env, 0.0), _rollout(policy, env, 0.5)
    torch.testing.assert_close(bonus.actions, plain.actions)
    torch.testing.assert_close(bonus.rewards - plain.rewards, 0.5 * plain.value_std)


def _scalars(logdir, tag):
    events = EventAccumulator(str(logdir))
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


def test_ppo_bayes_learns_and_its_uncertainty_falls_where_it_has_been(tmp_path):
    config = agent_config("ppo-bayes", "umbra/CartPole-v0", total_steps=60_000, device="cpu")
    result = train(config, logdir=tmp_path)
    assert result.metrics["final_return"] > 150  # random play: ~22
    visited = _scalars(tmp_path, "uncertainty/value_std")
    unvisited = _scalars(tmp_path, "uncertainty/value_std_unvisited")
    per_episode = _scalars(tmp_path, "uncertainty/episode_value_std")
    assert len(visited) == config.num_updates and per_episode
    assert visited[-1] < 0.5 * visited[0], "the std on visited states falls with training"
    assert unvisited[-1] > 5 * visited[-1], "and stays high on states never visited"
    metrics = result.metrics
    assert metrics["value_std_first"] == pytest.approx(visited[0], rel=1e-6)
    assert metrics["value_std_unvisited_last"] == pytest.approx(unvisited[-1], rel=1e-6)


def test_resume_restores_the_value_heads_guide(tmp_path):
    config = PPOConfig(env_id="umbra/CartPole-v0", num_envs=8, num_steps=16, total_steps=512,
                       value_head="bayes", device="cpu")
    first = train(config, logdir=tmp_path).policy
    saved = torch.load(tmp_path / "checkpoints/latest.pt", weights_only=True)["policy"]
    # A new policy built elsewhere: the guides' state loads strictly.
    env = envs.make("umbra/CartPole-v0")
    fresh = ActorCritic(env.single_observation_space, env.single_action_space, value_head="bayes")
    fresh.load_state_dict(saved)
    features = torch.randn(32, 64)
    torch.testing.assert_close(fresh.critic.std(features), first.critic.std(features))
    longer = PPOConfig(**{**config.to_dict(), "total_steps": 1024})
    resumed = train(longer, logdir=tmp_path, resume=True)
    assert resumed.metrics["steps"] == 1024


def test_bonus_without_a_bayesian_value_head_is_a_clear_error():
    with pytest.raises(ValueError, match="value_head='bayes'"):
        PPOConfig(uncertainty_bonus=0.1)
    with pytest.raises(ValueError, match="value_head"):
        PPOConfig(value_head="gaussian")


@pytest.mark.parametrize("env_id", ["umbra/CartPole-v0", "umbra/Pendulum-v0"])
def test_thompson_head_keeps_one_weight_sample_per_episode_and_the_ratio(env_id,
                                                                          assert_ratio_is_one):
    env = envs.make(env_id, num_envs=8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_size=16,
                         thompson_policy=True)
    buf = _rollout(policy, env)
    noise = buf.inputs["policy_noise"]
    same = (noise[1:] == noise[:-1]).all(-1)  # [T-1, B]
    torch.testing.assert_close(same, ~buf.episode_starts[1:])
    assert_ratio_is_one(policy, buf)
    with torch.no_grad():  # another weight sample gives another policy
        other = policy.evaluate(buf.obs, buf.actions, policy.initial_state(8), buf.episode_starts,
                                {"policy_noise": torch.randn_like(noise)}).logprob
    assert not torch.allclose(other, buf.logprobs, atol=1e-3)


def test_ppo_thompson_learns_cartpole():
    config = agent_config("ppo-thompson", "umbra/CartPole-v0", total_steps=60_000, device="cpu")
    assert train(config).metrics["final_return"] > 150  # random play: ~22


def test_full_covariance_is_the_posterior_of_the_observed_features():
    torch.manual_seed(0)
    head = BayesianValueHead(3, prior_scale=1.0)
    seen = torch.randn(500, 3) * torch.tensor([1.0, 1.0, 0.0])  # never along the 3rd feature
    head.observe(seen)
    head.fit()
    x = torch.cat((seen, torch.ones(500, 1)), 1)
    expected = torch.linalg.inv(x.T @ x + torch.eye(4))
    torch.testing.assert_close(head.scale_tril @ head.scale_tril.T, expected, atol=1e-5, rtol=1e-4)
    std = head.std(torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert std[1] > 10 * std[0]  # the unseen direction keeps the prior's uncertainty
    diagonal = BayesianValueHead(3, covariance="diagonal")
    torch.testing.assert_close(diagonal.std(seen[:4]),
                               diagonal.linear.posterior_mean_and_std(seen[:4])[1].squeeze(-1))


@pytest.mark.parametrize("thompson", [False, True])
def test_every_parameter_in_the_optimiser_gets_a_gradient(tmp_path, thompson):
    # The full-covariance value head (the default) computes its covariance in closed form, so its
    # guide's scales get no gradient: they are frozen and in no optimiser group, yet still saved.
    config = PPOConfig(env_id="umbra/CartPole-v0", num_envs=8, num_steps=16, total_steps=128,
                       value_head="bayes", thompson_policy=thompson, device="cpu")
    train(config, logdir=tmp_path)  # one update
    saved = torch.load(tmp_path / "checkpoints/latest.pt", weights_only=True)
    optimizer = saved["optimizer"]
    indices = [i for group in optimizer["param_groups"] for i in group["params"]]
    # Adam keeps a state only for the parameters that have had a gradient.
    assert indices and all(i in optimizer["state"] for i in indices)
    assert len(optimizer["param_groups"]) == (2 if thompson else 1)  # Thompson scales: faster
    assert "critic.linear.guide.scales.head.weight_unconstrained" in saved["policy"]
