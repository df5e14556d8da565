"""Third-party Gymnasium envs with gymnasium.spaces.Graph observations, padded by the adapter."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs
from envs.interop.graph_padding import GraphPadding
from envs.interop.gymnasium import GymnasiumToBatched

torch.set_num_threads(1)


class LargestDegree(gym.Env):
    """A third-party-style env: a random graph each step; reward 1 for naming a node of the
    largest degree. Written as any Gymnasium user would, with a ``spaces.Graph`` observation."""

    def __init__(self, max_n=10, node_space="box", edge_features=False, dict_obs=False,
                 min_n=3, episode_steps=4):
        nodes = spaces.Box(0.0, 1.0, (2,), np.float64) if node_space == "box" else spaces.Discrete(
            3, start=1)
        edges = spaces.Box(-1.0, 1.0, (1,), np.float32) if edge_features else None
        graph = spaces.Graph(nodes, edges)
        self.max_n, self.min_n, self.episode_steps = max_n, min_n, episode_steps
        self.dict_obs = dict_obs
        self.observation_space = (
            spaces.Dict({"graph": graph, "action_mask": spaces.Box(0, 1, (max_n,), np.int8)})
            if dict_obs else graph
        )
        self.action_space = spaces.Discrete(max_n)
        self.last_graph = None

    def _observe(self):
        rng = self.np_random
        n = int(rng.integers(self.min_n, self.max_n + 1))
        pairs = {tuple(sorted(p)) for p in rng.integers(0, n, (n + 2, 2)).tolist() if p[0] != p[1]}
        links = np.array([p for a, b in sorted(pairs) for p in ((a, b), (b, a))],
                         dtype=np.int64).reshape(-1, 2)
        graph = self.observation_space["graph"] if self.dict_obs else self.observation_space
        if isinstance(graph.node_space, spaces.Box):
            nodes = rng.random((n, 2))
        else:
            nodes = rng.integers(1, 4, n)
        edges = None
        if graph.edge_space is not None:
            edges = rng.uniform(-1, 1, (len(links), 1)).astype(np.float32)
        self.degree = np.bincount(links[:, 0], minlength=n) if len(links) else np.zeros(n, int)
        self.last_graph = spaces.GraphInstance(nodes, edges, links)
        if self.dict_obs:
            mask = np.zeros(self.max_n, dtype=np.int8)
            mask[:n] = 1
            return {"graph": self.last_graph, "action_mask": mask}
        return self.last_graph

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        action = int(action)
        best = action < len(self.degree) and self.degree[action] == self.degree.max()
        self.t += 1
        return self._observe(), float(best), False, self.t >= self.episode_steps, {}


def _copies(batched):
    return [env.unwrapped for env in batched.vector_env.envs]


def _assert_padded(obs, i, graph, max_nodes, max_edges, one_hot=None):
    """Copy ``i`` of a batched padded observation is exactly ``graph`` padded."""
    n, m = len(graph.nodes), len(graph.edge_links)
    nodes = np.asarray(graph.nodes)
    expected_x = np.eye(one_hot, dtype=np.float32)[nodes - 1] if one_hot else nodes
    x = obs["x"][i].numpy()
    assert x.shape[0] == max_nodes and x.dtype == np.float32
    np.testing.assert_allclose(x[:n], expected_x, rtol=1e-6)
    assert not x[n:].any()
    edge_index = obs["edge_index"][i].numpy()
    assert edge_index.shape == (2, max_edges) and edge_index.dtype == np.int64
    np.testing.assert_array_equal(edge_index[:, :m], np.asarray(graph.edge_links).T)
    assert not edge_index[:, m:].any()
    np.testing.assert_array_equal(obs["node_mask"][i].numpy(), np.arange(max_nodes) < n)
    np.testing.assert_array_equal(obs["edge_mask"][i].numpy(), np.arange(max_edges) < m)
    if graph.edges is None:
        assert "edge_attr" not in obs
    else:
        edge_attr = obs["edge_attr"][i].numpy()
        np.testing.assert_allclose(edge_attr[:m], graph.edges)
        assert not edge_attr[m:].any()


@pytest.mark.parametrize("edge_features", [False, True])
def test_graph_observations_are_padded_exactly(edge_features):
    batched = GymnasiumToBatched([lambda: LargestDegree(edge_features=edge_features)] * 3,
                                 max_nodes=12, max_edges=40)
    space = batched.single_observation_space
    assert space["x"] == spaces.Box(0.0, 1.0, (12, 2), np.float32)
    assert space["edge_index"] == spaces.Box(0, 11, (2, 40), np.int64)
    assert space["node_mask"].shape == (12,) and space["edge_mask"].shape == (40,)
    assert ("edge_attr" in space.spaces) == edge_features
    obs, _ = batched.reset(seed=0)
    for i, env in enumerate(_copies(batched)):
        _assert_padded(obs, i, env.last_graph, 12, 40)
    for _ in range(4):  # the last step truncates: final_obs pads the episode's last graph
        last = [env.last_graph for env in _copies(batched)]
        obs, _, _, truncated, info = batched.step(torch.zeros(3, dtype=torch.int64))
        for i, env in enumerate(_copies(batched)):
            _assert_padded(obs, i, env.last_graph, 12, 40)
    assert truncated.all()
    for i in range(3):
        assert not np.array_equal(info["final_obs"]["x"][i].numpy(), obs["x"][i].numpy())
    padding = [env for env in batched.vector_env.envs if isinstance(env, GraphPadding)]
    assert len(padding) == 3 and all(space.contains(p.observation(g))
                                     for p, g in zip(padding, last, strict=True))


def test_make_pads_with_defaults_one_hot_discrete_nodes_and_keeps_other_dict_entries():
    batched = envs.make(f"{__name__}:LargestDegree", num_envs=2, node_space="discrete",
                        dict_obs=True)
    space = batched.single_observation_space
    assert space["x"] == spaces.Box(0.0, 1.0, (64, 3), np.float32)  # Discrete(3) -> one-hot
    assert space["edge_index"].shape == (2, 256)
    assert space["action_mask"] == spaces.Box(0, 1, (10,), np.int8)
    obs, _ = batched.reset(seed=1)
    for i, env in enumerate(_copies(batched)):
        _assert_padded(obs, i, env.last_graph, 64, 256, one_hot=3)
        assert obs["action_mask"][i].sum() == len(env.last_graph.nodes)
    assert "LargestDegree" in repr(batched)


def test_make_takes_the_padding_sizes():
    batched = envs.make(f"{__name__}:LargestDegree", num_envs=2,
                        graph_padding={"max_nodes": 16, "max_edges": 48})
    assert batched.single_observation_space["x"].shape == (16, 2)
    assert batched.single_observation_space["edge_index"].shape == (2, 48)


@pytest.mark.parametrize(
    ("padding", "message"),
    [({"max_nodes": 5}, "more than max_nodes=5: raise max_nodes"),
     ({"max_edges": 4}, "more than max_edges=4: raise max_edges")],
)
def test_graphs_over_the_padding_are_a_clear_error(padding, message):
    batched = GymnasiumToBatched([lambda: LargestDegree(min_n=8)], **padding)
    with pytest.raises(ValueError, match=message):
        batched.reset(seed=0)


def test_bad_graphs_and_options_are_clear_errors():
    env = LargestDegree()
    pad = GraphPadding(env, max_nodes=8, max_edges=8)
    nodes = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"links nodes \[1, 3\], but the graph has 3 nodes"):
        pad.pad(spaces.GraphInstance(nodes, None, np.array([[0, 1], [1, 3]])))
    with pytest.raises(ValueError, match=r"nodes must have shape \(3, 2\)"):
        pad.pad(spaces.GraphInstance(np.zeros((3, 4)), None, np.array([[0, 1]])))
    empty = pad.pad(spaces.GraphInstance(nodes, None, None))  # no edges at all
    assert not empty["edge_mask"].any() and empty["node_mask"].sum() == 3
    with pytest.raises(ValueError, match="max_nodes must be a positive int"):
        GymnasiumToBatched([LargestDegree], max_nodes=0)
    with pytest.raises(TypeError, match="max_edges must be a positive int"):
        GymnasiumToBatched([LargestDegree], max_edges=2.5)
    clash = LargestDegree()
    clash.observation_space = spaces.Dict({"g": env.observation_space,
                                           "x": spaces.Box(0, 1, (2,))})
    with pytest.raises(ValueError, match=r"entries \['x'\] next to its Graph entry 'g'"):
        GraphPadding(clash)
    two = LargestDegree()
    two.observation_space = spaces.Dict({"a": env.observation_space,
                                         "b": env.observation_space})
    with pytest.raises(TypeError, match="exactly one Graph entry, got 2"):
        GraphPadding(two)


@pytest.mark.parametrize("dict_obs", [False, True])
def test_umbra_ppo_trains_a_gnn_on_a_third_party_graph_env(dict_obs):
    from agents.policies import GraphObsEncoder
    from agents.ppo import PPOConfig, train

    config = PPOConfig(env_id=f"{__name__}:LargestDegree", num_envs=4, num_steps=16,
                       total_steps=512, device="cpu", env_kwargs={"dict_obs": dict_obs})
    result = train(config)
    assert isinstance(result.policy.encoder, GraphObsEncoder)
    assert result.metrics["steps"] >= 512
    assert result.metrics["episodes"] == 512 // 4, "every 4-step episode of the 4 copies counts"
