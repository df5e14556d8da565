"""The composed policy: encoders chosen from the observation space, action masks respected."""

import gymnasium as gym
import numpy as np
import torch

from agents.policies import ActorCritic
from agents.ppo import PPOConfig, train
from agents.rollout import Carry, Rollout, collect, space_spec
from envs.core import BatchedEnv, torch_dtype


class MaskedChoice(BatchedEnv):
    """Pick one of 4 actions; only actions in the mask are allowed, and action 3 pays 1."""

    description = "test env: Dict observation with an action mask"
    max_episode_steps = 8

    def __init__(self, num_envs=1, device="cpu", debug=False):
        self.single_observation_space = gym.spaces.Dict({
            "position": gym.spaces.Box(0.0, 1.0, (2,), np.float32),
            "action_mask": gym.spaces.Box(0, 1, (4,), np.int8),
        })
        self.single_action_space = gym.spaces.Discrete(4)
        super().__init__(num_envs, device, debug)
        self.mask = torch.ones(self.num_envs, 4, dtype=torch.int8)
        self.bad = torch.zeros(self.num_envs, dtype=torch.long)

    def _reset_copies(self, mask, options=None):
        fresh = torch.ones(self.num_envs, 4, dtype=torch.int8)
        fresh[:, 1] = 0  # action 1 is never allowed
        self.mask = torch.where(mask[:, None], fresh, self.mask)

    def _advance(self, actions):
        self.bad += (actions == 1).long()
        reward = (actions == 3).float()
        return reward, torch.zeros(self.num_envs, dtype=torch.bool)

    def _observe(self):
        return {"position": torch.rand(self.num_envs, 2, generator=self.generator),
                "action_mask": self.mask.clone()}


def test_masked_actions_are_never_sampled_and_ratio_is_one(assert_ratio_is_one):
    env = MaskedChoice(num_envs=16)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_size=16)
    shape, dtype = space_spec(env.single_observation_space)
    buf = Rollout(32, 16, shape, (), dtype, torch_dtype(env.single_action_space), env.device)
    obs, _ = env.reset(seed=0)
    start = torch.ones(16, dtype=torch.bool)
    collect(policy, env, buf, Carry(obs, policy.initial_state(16), start), 0.99, 0.95)
    assert int(env.bad.sum()) == 0
    assert not (buf.actions == 1).any()
    assert_ratio_is_one(policy, buf)


def test_ppo_learns_through_a_dict_observation_and_its_mask():
    config = PPOConfig(env_id=f"{__name__}:MaskedChoice", num_envs=16, num_steps=16,
                       total_steps=8192, learning_rate=1e-2, device="cpu")
    result = train(config)
    env = MaskedChoice(num_envs=64)
    obs, _ = env.reset(seed=1)
    action, _ = result.policy.predict(obs)
    assert (action == 3).float().mean() > 0.9
    assert result.metrics["final_return"] > 6.0  # 8 steps, 1 for each right choice


def test_graph_observations_get_a_gnn_and_keep_the_ratio_invariant(assert_ratio_is_one):
    import envs
    from agents.policies import GraphObsEncoder

    env = envs.make("umbra/GraphNavigation-v0", num_envs=8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_size=16,
                         encoder_kwargs={"model": "gin"})
    assert isinstance(policy.encoder, GraphObsEncoder)
    shape, dtype = space_spec(env.single_observation_space)
    buf = Rollout(16, 8, shape, (), dtype, torch_dtype(env.single_action_space), env.device)
    obs, _ = env.reset(seed=0)
    start = torch.ones(8, dtype=torch.bool)
    collect(policy, env, buf, Carry(obs, policy.initial_state(8), start), 0.99, 0.95)
    chosen = buf.actions.flatten()
    valid = buf.obs["action_mask"].reshape(-1, buf.obs["action_mask"].shape[-1])
    assert valid[torch.arange(chosen.numel()), chosen].all(), "only neighbours are chosen"
    assert_ratio_is_one(policy, buf)


def test_a_multi_discrete_observation_is_the_concatenation_of_its_one_hots():
    """MultiDiscrete([3, 2], start=[1, 0]): [2, 1] -> one-hot 1 of 3, then one-hot 1 of 2."""
    from agents.policies import VectorEncoder

    space = gym.spaces.MultiDiscrete([3, 2], start=[1, 0])
    encoder = VectorEncoder(space, hidden_size=4)
    inputs = []
    encoder.net.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    encoder(torch.tensor([[[2, 1], [1, 0]]]))
    torch.testing.assert_close(inputs[0], torch.tensor([[[0.0, 1, 0, 0, 1], [1, 0, 0, 1, 0]]]))


def test_ppo_trains_on_popgym_multi_discrete_observations():
    """POPGym's card and labyrinth tasks show MultiDiscrete observations: mlp and gru train."""
    for env_id, agent in [("popgym/CountRecallEasy-v0", "gru"),
                          ("popgym/LabyrinthEscapeEasy-v0", "mlp")]:
        config = PPOConfig(env_id=env_id, core=agent, num_envs=4, num_steps=16,
                           total_steps=128, seed=0)
        assert train(config).metrics["steps"] == 128
