"""Heterogeneous teams: one policy per group (or one shared, padded policy) in the one PPO loop."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.groups import GroupedActorCritic
from agents.multiagent import AgentBatch
from agents.ppo import PPOConfig, make_env, make_policy, train
from agents.rollout import evaluate
from envs.core import MultiAgentBatchedEnv

CORES = ["mlp", "gru", "lstm", "transformer", "linear"]


class TwoKinds(MultiAgentBatchedEnv):
    """A speaker (own observation Box(3,), Discrete(3)) and a listener (Box(5,), Discrete(5)),
    padded to Box(5,) / Discrete(5) with action masks. Each round every agent sees a one-hot
    token of its own size and is rewarded 1 for naming it: chance is 1/3 and 1/5 per round."""

    description = "test task"
    has_action_mask = True
    SIZES = (3, 5)

    def __init__(self, num_envs=1, device="cpu", debug=False, episode_length=8):
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (5,), dtype=np.float32)
        self.single_action_space = gym.spaces.Discrete(5)
        self.state_space = gym.spaces.Box(0.0, 1.0, (10,), dtype=np.float32)
        super().__init__(num_agents=2, num_envs=num_envs, device=device, debug=debug)
        self.possible_agents = ["speaker_0", "listener_0"]
        self.agent_observation_spaces = {
            name: gym.spaces.Box(0.0, 1.0, (size,), dtype=np.float32)
            for name, size in zip(self.possible_agents, self.SIZES, strict=True)}
        self.agent_action_spaces = {name: gym.spaces.Discrete(size)
                                    for name, size in zip(self.possible_agents, self.SIZES,
                                                          strict=True)}
        self.episode_length = episode_length
        self._sizes = torch.tensor(self.SIZES, device=self.device)
        self.tokens = torch.zeros(num_envs, 2, dtype=torch.long, device=self.device)
        self.round = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    def _draw(self, mask):
        fresh = (torch.rand(self.num_envs, 2, generator=self.generator, device=self.device)
                 * self._sizes).long()
        self.tokens = torch.where(mask[:, None], fresh, self.tokens)

    def _reset_copies(self, mask, options=None):
        self.round = torch.where(mask, 0, self.round)
        self._draw(mask)

    def _advance(self, actions):
        reward = (actions == self.tokens).float()
        self.round += 1
        self._draw(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return reward, self.round >= self.episode_length

    def _observe(self):
        return torch.nn.functional.one_hot(self.tokens, 5).float()

    def _state(self):
        return self._observe().reshape(self.num_envs, -1)

    def _action_mask(self):
        return (torch.arange(5, device=self.device) < self._sizes[:, None]).expand(
            self.num_envs, 2, 5)


ENV = f"{__name__}:TwoKinds"


def _config(**overrides):
    options = dict(env_id=ENV, num_envs=16, num_steps=16, total_steps=512, device="cpu",
                   centralised_critic=True, num_minibatches=2, update_epochs=2)
    options.update(overrides)
    return PPOConfig(**options)


def test_agent_batch_tags_each_agent_with_its_id_and_group():
    env = AgentBatch(TwoKinds(num_envs=3))
    assert [g.name for g in env.groups] == ["speaker", "listener"]
    assert [g.agents for g in env.groups] == [(0,), (1,)]
    assert [g.observation_size for g in env.groups] == [3, 5]
    assert [g.action_space.n for g in env.groups] == [3, 5]
    obs, _ = env.reset(seed=0)
    tag = obs["obs"][:, 5:]
    assert tag.shape == (6, 4)  # agent one-hot (2), then group one-hot (2)
    torch.testing.assert_close(tag[:2], torch.tensor([[1.0, 0, 1, 0], [0, 1.0, 0, 1]]))
    assert obs["action_mask"][0].tolist() == [1, 1, 1, 0, 0]


def test_user_named_groups_are_checked():
    with pytest.raises(ValueError, match="unknown agents"):
        AgentBatch(TwoKinds(), groups={"all": ["speaker_0", "nobody"]})
    with pytest.raises(ValueError, match="exactly once"):
        AgentBatch(TwoKinds(), groups={"a": ["speaker_0"]})
    one = AgentBatch(TwoKinds(), groups={"team": ["speaker_0", "listener_0"]})
    assert len(one.groups) == 1 and one.groups[0].action_space.n == 5
    with pytest.raises(ValueError, match="groups needs a multi-agent"):
        train(PPOConfig(env_id="umbra/CartPole-v0", groups={"a": ["x"]}, total_steps=64,
                        num_envs=2, num_steps=32, device="cpu"))


@pytest.mark.parametrize("core", CORES)
def test_ratio_is_one_with_two_groups(core, assert_ratio_is_one, filled_rollout):
    config = _config(core=core, hidden_size=16, core_kwargs={"window": 8} if core ==
                     "transformer" else {})
    env = make_env(config, torch.device("cpu"))
    policy = make_policy(config, env)
    assert isinstance(policy, GroupedActorCritic)
    buf = filled_rollout(policy, env, 16, sequence_length=8 if policy.core.recurrent else None)
    assert_ratio_is_one(policy, buf)


def test_each_group_learns_only_from_its_own_agents(filled_rollout):
    config = _config(core="gru", hidden_size=16)
    env = make_env(config, torch.device("cpu"))
    policy = make_policy(config, env)
    buf = filled_rollout(policy, env, 8, sequence_length=8)
    mb = next(buf.minibatches(1))
    new = policy.evaluate(mb.obs, mb.actions, mb.state, mb.episode_starts, mb.inputs)
    speaker_rows = mb.obs["obs"][0, :, 5] == 1  # the agent id follows the padded observation
    assert 0 < int(speaker_rows.sum()) < env.num_envs
    (new.logprob[:, speaker_rows].sum() + new.value[:, speaker_rows].sum()).backward()
    speaker, listener = policy.policies
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in speaker.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in listener.parameters())


def test_the_speaker_never_names_a_token_it_does_not_have():
    config = _config()
    env = make_env(config, torch.device("cpu"))
    policy = make_policy(config, env)
    obs, _ = env.reset(seed=0)
    state = policy.initial_state(env.num_envs)
    for _ in range(20):
        action, state = policy.predict(obs, state, deterministic=False)
        assert (action[0::2] < 3).all() and (action[1::2] < 5).all()
        obs, *_ = env.step(action)


def test_checkpoints_hold_every_group_and_tensorboard_logs_each_group(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _config(checkpoint_every=1)
    result = train(config, logdir=tmp_path)
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=False)["policy"]
    assert any(k.startswith("policies.0.") for k in saved)
    assert any(k.startswith("policies.1.") for k in saved)
    assert set(result.metrics["group_returns"]) == {"speaker", "listener"}
    tags = EventAccumulator(str(tmp_path)).Reload().Tags()["scalars"]
    assert {"charts/group_return/speaker", "charts/group_return/listener"} <= set(tags)
    resumed = train(_config(checkpoint_every=1, total_steps=1024), logdir=tmp_path, resume=True)
    assert resumed.metrics["steps"] == 1024


def test_messages_cross_groups(assert_ratio_is_one, filled_rollout):
    config = _config(core="gru", hidden_size=16, communication="gcn")
    env = make_env(config, torch.device("cpu"))
    policy = make_policy(config, env)
    assert isinstance(policy, GroupedActorCritic) and policy.communication is not None
    buf = filled_rollout(policy, env, 16, sequence_length=8, group_size=2)
    assert_ratio_is_one(policy, buf)
    # The listener's action probabilities change when only the speaker's observation does.
    obs, info = env.reset(seed=0)
    changed = {key: value.clone() for key, value in obs.items()}
    changed["obs"][0, :3] = 1.0 - changed["obs"][0, :3]  # copy 0's speaker

    def logprob(observation):
        seq = {key: value.unsqueeze(0) for key, value in observation.items()}
        return policy.evaluate(seq, torch.zeros(1, env.num_envs, dtype=torch.long),
                               policy.initial_state(env.num_envs),
                               torch.ones(1, env.num_envs, dtype=torch.bool),
                               {"critic_obs": info["critic_obs"].unsqueeze(0)}).logprob[0]

    with torch.no_grad():
        before, after = logprob(obs), logprob(changed)
    assert (before[1] - after[1]).abs() > 0, "copy 0's listener hears its speaker"
    assert torch.equal(before[2:], after[2:]), "the other copies hear nothing"
    shared = train(_config(communication="gcn", group_policies=False))
    assert shared.metrics["steps"] == 512


def _group_returns(policy):
    """Each group's mean return over 256 episodes of sampled actions."""
    env = make_env(_config(num_envs=64), torch.device("cpu"))
    evaluate(policy, env, 256, deterministic=False, seed=7)
    return env.group_returns()


@pytest.mark.parametrize("group_policies", [True, False])
def test_every_group_beats_its_random_return(group_policies):
    # 8 rounds per episode: chance is 8/3 = 2.7 for the speaker and 8/5 = 1.6 for the listener;
    # naming the token every time is 8. An untrained policy is the negative control.
    config = _config(total_steps=24_576, num_envs=32, learning_rate=3e-3,
                     group_policies=group_policies, core="mlp")
    untrained = make_policy(config, make_env(config, torch.device("cpu")))
    before = _group_returns(untrained)
    assert before["speaker"] < 4.0 and before["listener"] < 3.0, before
    after = _group_returns(train(config).policy)
    assert after["speaker"] > 6.5 and after["listener"] > 6.5, (before, after)


@pytest.mark.parametrize("env_id", [
    "mpe2.simple_tag_v3:parallel_env",  # PettingZoo parallel: 3 predators, 1 prey
    "mpe2.simple_speaker_listener_v4:parallel_env",
    "vmas:simple_speaker_listener",
    "tests.envs.test_heterogeneous:Uneven",  # turn-based (AEC), two players of different sizes
])
def test_mixed_teams_of_every_ecosystem_train_with_one_policy_per_group(env_id):
    if env_id.startswith("vmas:"):
        pytest.importorskip("vmas")
    config = PPOConfig(env_id=env_id, num_envs=4, num_steps=8, total_steps=64, device="cpu",
                       core="gru", centralised_critic=True, num_minibatches=1, update_epochs=1)
    env = make_env(config, torch.device("cpu"))
    policy = make_policy(config, env)
    assert isinstance(policy, GroupedActorCritic) and len(policy.policies) == len(env.groups) >= 2
    assert train(config).metrics["steps"] == 64


def test_agent_batch_reads_each_rows_group_from_its_tag():
    env = AgentBatch(TwoKinds(num_envs=3))
    obs, _ = env.reset(seed=0)
    assert env.row_groups(obs).tolist() == [0, 1] * 3
    stacked = {key: value.unsqueeze(0).expand(4, *value.shape) for key, value in obs.items()}
    assert env.row_groups(stacked).shape == (4, 6)
    with pytest.raises(ValueError, match="one group"):
        AgentBatch(TwoKinds(), groups={"team": ["speaker_0", "listener_0"]}).row_groups(obs)


@pytest.mark.parametrize("group_policies, balance_groups, balanced", [
    (False, True, True), (False, False, False), (True, True, False)])
def test_a_shared_policy_balances_its_loss_over_the_groups(monkeypatch, group_policies,
                                                            balance_groups, balanced):
    # The shared policy's update hands the loss each sample's group (from the observation's
    # tag) and asks for balanced means; one policy per group has its own groups already.
    from agents import ppo

    seen = []

    def spy(new, *args, **kwargs):
        seen.append((new.groups, kwargs["balance_groups"]))
        return ppo_loss(new, *args, **kwargs)

    from agents.loss import ppo_loss
    monkeypatch.setattr(ppo, "ppo_loss", spy)
    train(_config(group_policies=group_policies, balance_groups=balance_groups))
    groups, asked = seen[0]
    assert asked is balanced
    if group_policies or balance_groups:
        assert groups is not None and set(groups.unique().tolist()) == {0, 1}
    else:
        assert groups is None
