"""agents.sb3.GraphFeaturesExtractor: GNN policies for stable-baselines3 and sb3-contrib."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

import envs
from agents.sb3 import GraphFeaturesExtractor
from envs.interop.sb3 import BatchedToSB3VecEnv

torch.set_num_threads(1)

EXTRACTOR = {"features_extractor_class": GraphFeaturesExtractor}


def _as_sb3_batch(obs):
    """What SB3's MultiInputPolicy hands an extractor: every entry float32."""
    return {key: value.float() for key, value in obs.items()}


def _permute_nodes(obs, perms):
    """The same graphs with node slots relabelled: new slot ``perm[i]`` holds old node ``i``."""
    out = {key: value.clone() for key, value in obs.items()}
    for b, perm in enumerate(perms):
        out["x"][b, perm] = obs["x"][b]
        out["node_mask"][b, perm] = obs["node_mask"][b]
        out["action_mask"][b, perm] = obs["action_mask"][b]
        out["edge_index"][b] = perm[obs["edge_index"][b].long()].float()
    return out


def test_features_have_the_right_shape_and_are_permutation_invariant():
    env = envs.make("umbra/GraphNavigation-v0", num_envs=6, num_nodes=10)
    obs, _ = env.reset(seed=0)
    obs = _as_sb3_batch(obs)
    generator = torch.Generator().manual_seed(0)
    perms = [torch.randperm(10, generator=generator) for _ in range(6)]
    permuted = _permute_nodes(obs, perms)
    space = env.single_observation_space
    graph_only = gym.spaces.Dict({k: v for k, v in space.spaces.items() if k != "action_mask"})

    for model in ("gcn", "gin", "gat"):
        extractor = GraphFeaturesExtractor(graph_only, features_dim=16, model=model)
        assert extractor.features_dim == 16
        features = extractor({k: v for k, v in obs.items() if k != "action_mask"})
        assert features.shape == (6, 16)
        again = extractor({k: v for k, v in permuted.items() if k != "action_mask"})
        torch.testing.assert_close(again, features, atol=1e-5, rtol=1e-5)

    extractor = GraphFeaturesExtractor(space, features_dim=8, node_embeddings=True)
    assert extractor.features_dim == 8 + 10 * 8 + 10  # graph, nodes, action_mask
    features, again = extractor(obs), extractor(permuted)
    assert features.shape == (6, extractor.features_dim)
    torch.testing.assert_close(again[:, :8], features[:, :8], atol=1e-5, rtol=1e-5)
    nodes, nodes_again = features[:, 8:88].reshape(6, 10, 8), again[:, 8:88].reshape(6, 10, 8)
    for b, perm in enumerate(perms):  # node embeddings move with their nodes
        torch.testing.assert_close(nodes_again[b, perm], nodes[b], atol=1e-5, rtol=1e-5)
        assert not nodes[b][obs["node_mask"][b] == 0].any()
    torch.testing.assert_close(features[:, 88:], obs["action_mask"])


def test_a_space_without_graphs_is_a_clear_error():
    with pytest.raises(TypeError, match="needs the padded graph form"):
        GraphFeaturesExtractor(gym.spaces.Box(0, 1, (4,)))


def test_sb3_ppo_with_the_extractor_learns_graph_navigation():
    def venv():
        return BatchedToSB3VecEnv(envs.make("umbra/GraphNavigation-v0", num_envs=8, num_nodes=8))

    model = PPO("MultiInputPolicy", venv(), n_steps=64, batch_size=128, n_epochs=4,
                learning_rate=3e-3, seed=0, device="cpu",
                policy_kwargs={**EXTRACTOR, "net_arch": [64], "features_extractor_kwargs": {
                    "features_dim": 16, "node_embeddings": True}})
    assert isinstance(model.policy.features_extractor, GraphFeaturesExtractor)
    evaluation = venv()
    evaluation.seed(123)
    before, _ = evaluate_policy(model, evaluation, n_eval_episodes=100, deterministic=False)
    model.learn(8192)
    evaluation.seed(123)
    after, _ = evaluate_policy(model, evaluation, n_eval_episodes=100, deterministic=False)
    # Untrained, most choices are invalid (stay put, pay 0.06): about 0. Trained (seeds 0-2 on
    # this machine): 0.82-0.85, close to the shortest-path optimum of about 0.98.
    assert after > before + 0.5, (before, after)


def test_maskable_ppo_never_picks_a_masked_node():
    # debug=True: a masked (invalid) choice raises inside step instead of costing a penalty.
    venv = BatchedToSB3VecEnv(envs.make("umbra/GraphNavigation-v0", num_envs=4, debug=True))
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=32, batch_size=64, n_epochs=2,
                        seed=0, device="cpu", policy_kwargs={
                            **EXTRACTOR, "features_extractor_kwargs": {"features_dim": 16}})
    model.learn(256)

    env = gym.make("umbra/MinVertexCover-v0", debug=True)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0,
                        device="cpu", policy_kwargs={**EXTRACTOR, "features_extractor_kwargs": {
                            "features_dim": 16, "model": "gin", "node_embeddings": True}})
    model.learn(64)
    obs, _ = env.reset(seed=0)
    for _ in range(100):
        masks = env.unwrapped.action_masks()
        action, _ = model.predict(obs, action_masks=masks, deterministic=False)
        assert masks[int(action)], (action, masks)
        obs, _, terminated, truncated, _ = env.step(np.int64(action))
        if terminated or truncated:
            obs, _ = env.reset()
