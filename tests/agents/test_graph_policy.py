"""Graph policies: a node-selection head on GNN node embeddings, communication graphs built from
agent positions, and a GNN that beats an MLP over the flattened padding where structure matters."""

import json

import pytest
import torch

import envs
from agents.multiagent import AgentBatch
from agents.policies import ActorCritic, CategoricalHead, DictEncoder, GraphObsEncoder, NodeHead
from agents.ppo import PPOConfig, train
from agents.presets import agent_config
from agents.rollout import evaluate

GRAPH_TASKS = ("umbra/GraphNavigation-v0", "umbra/MinVertexCover-v0")


@pytest.mark.parametrize("env_id", GRAPH_TASKS)
@pytest.mark.parametrize("core", ["mlp", "gru"])
def test_node_head_is_automatic_and_keeps_the_ratio_invariant(env_id, core, filled_rollout,
                                                              assert_ratio_is_one):
    env = envs.make(env_id, num_envs=6, num_nodes=10)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, core,
                         hidden_size=16, encoder_kwargs={"model": "sage"})
    assert policy.node_head and isinstance(policy.actor, NodeHead)
    buf = filled_rollout(policy, env, 16, sequence_length=8 if core == "gru" else None)
    chosen = buf.actions.flatten()
    valid = buf.obs["action_mask"].reshape(chosen.numel(), -1).bool()
    assert valid[torch.arange(chosen.numel()), chosen].all(), "only valid nodes are chosen"
    assert_ratio_is_one(policy, buf)


def test_node_head_scores_each_node_by_its_embedding_and_predict_agrees():
    env = envs.make("umbra/MinVertexCover-v0", num_envs=8, num_nodes=8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, hidden_size=16)
    obs, _ = env.reset(seed=3)
    # Permuting the node slots permutes the logits (the head is the same MLP for every node).
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    inverse = perm.argsort()
    permuted = dict(obs, x=obs["x"][:, perm], node_mask=obs["node_mask"][:, perm],
                    action_mask=obs["action_mask"][:, perm], edge_index=inverse[obs["edge_index"]])
    state, start = policy.initial_state(8), torch.ones(1, 8, dtype=torch.bool)
    actions = [torch.full((1, 8), node) for node in range(8)]  # [T=1, B] each
    with torch.no_grad():
        logp = torch.stack([policy.evaluate({k: v[None] for k, v in obs.items()}, a, state,
                                            start).logprob[0] for a in actions], -1)
        logp_perm = torch.stack([policy.evaluate({k: v[None] for k, v in permuted.items()}, a,
                                                 state, start).logprob[0] for a in actions], -1)
    valid = obs["action_mask"].bool()
    torch.testing.assert_close(logp_perm[valid[:, perm]], logp[:, perm][valid[:, perm]],
                               atol=1e-5, rtol=0)
    action, _ = policy.predict(obs)
    assert torch.equal(action, logp.argmax(-1)), "predict's mode is evaluate's most likely node"


def test_node_head_and_the_gnn_can_be_turned_off(filled_rollout, assert_ratio_is_one):
    env = envs.make("umbra/MinVertexCover-v0", num_envs=4, num_nodes=8)
    spaces = env.single_observation_space, env.single_action_space
    readout = ActorCritic(*spaces, hidden_size=16, node_head=False)
    assert isinstance(readout.encoder, GraphObsEncoder) and type(readout.actor) is CategoricalHead
    flat = ActorCritic(*spaces, hidden_size=16, encoder_kwargs={"model": "flat"})
    assert isinstance(flat.encoder, DictEncoder) and not flat.node_head
    assert "action_mask" not in flat.encoder.keys, "the MLP must not read the valid moves"
    for policy in (readout, flat):
        assert_ratio_is_one(policy, filled_rollout(policy, env, 8))
    with pytest.raises(ValueError, match="node_head=True needs"):
        ActorCritic(*spaces, encoder_kwargs={"model": "flat"}, node_head=True)
    with pytest.raises(ValueError, match="flat encoder takes no GNN options"):
        ActorCritic(*spaces, encoder_kwargs={"model": "flat", "num_layers": 3})


def test_mappo_with_knn_communication_keeps_the_ratio_invariant(filled_rollout,
                                                                assert_ratio_is_one):
    env = AgentBatch(envs.make("umbra/CooperativeNavigation-v0", num_envs=4, num_agents=4),
                     centralised_critic=True)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, "gru",
                         hidden_size=16, critic_observation_space=env.critic_observation_space,
                         communication={"num_agents": 4, "graph": "knn", "k": 2,
                                        "position_slice": (0, 2)})
    buf = filled_rollout(policy, env, 16, sequence_length=8, group_size=4)
    assert_ratio_is_one(policy, buf)


def test_communication_options_travel_through_the_config():
    options = {"model": "gat", "graph": "radius", "radius": 0.8}
    config = PPOConfig(env_id="umbra/CooperativeNavigation-v0", communication=options,
                       centralised_critic=True, num_envs=4, num_steps=8, total_steps=64,
                       num_minibatches=2, device="cpu")
    assert PPOConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    comm = train(config).policy.communication
    assert (comm.graph, comm.radius, comm.position_slice) == ("radius", 0.8, (0, 2))
    pursuit = train(agent_config("mappo-comm", "umbra/Pursuit-v0", num_envs=4, num_steps=8,
                                 total_steps=32, num_minibatches=2, device="cpu",
                                 communication={"graph": "knn", "k": 1}))
    own = envs.make("umbra/Pursuit-v0").single_observation_space.shape[0]
    assert pursuit.policy.communication.position_slice == (own - 2, own), "own cell is last"
    assert PPOConfig(communication="gcn").communication == "gcn", "a model name still works"
    with pytest.raises(ValueError, match="needs an int k"):
        PPOConfig(communication={"graph": "knn"})
    with pytest.raises(ValueError, match="declares none"):
        train(PPOConfig(env_id="umbra/PrivateSum-v0", communication={"graph": "knn", "k": 1},
                        num_envs=2, num_steps=8, total_steps=16, device="cpu"))


def _mean_return(agent, steps, seed, **overrides):
    config = agent_config(agent, "umbra/MinVertexCover-v0", total_steps=steps, seed=seed,
                          device="cpu", env_kwargs={"num_nodes": 8}, **overrides)
    result = train(config)
    env = envs.make("umbra/MinVertexCover-v0", num_envs=64, num_nodes=8)
    returns = evaluate(result.policy, env, 512, seed=99)
    return sum(returns) / len(returns)


@pytest.mark.slow
def test_gnn_node_policy_beats_an_mlp_over_the_flattened_padding_on_vertex_cover():
    # (test_node_actions.py's hub task is the default run's guard of the node head's learning.)
    # Graphs of 4 to 8 nodes; over 4,000 episodes the greedy heuristic (most uncovered edges)
    # returns -3.27 and uniformly random valid choices -4.49. Measured at 30k steps, seeds 0-3:
    # GCN + node head -3.33, -3.35, -3.31, -3.35; flat MLP -4.48, -4.29, -4.32, -4.25.
    gnn = _mean_return("gcn", 30_000, seed=0)
    flat = _mean_return("mlp-flat", 30_000, seed=0)
    assert gnn >= -3.5, f"GNN {gnn:.2f}: not within 0.25 of greedy (-3.27)"
    assert gnn >= flat + 0.5, f"GNN {gnn:.2f} vs flat MLP {flat:.2f}"
