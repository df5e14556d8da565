"""The graph tasks: the padded graph form, the random graphs, each task's rules and baselines.

Checked in numpy against the environments' own state: every observation is a valid padded graph
(docs/architecture.md, "Graph observations"); generated graphs are connected and simple;
navigation shows exactly the nodes within ``view_hops`` hops; the action masks are exactly the
neighbours / the unselected nodes; the oracles (shortest path, greedy cover) get the returns
written in the manuals and random choices get less; seeding, bad keyword arguments and invalid
actions behave as documented; and Gymnasium's and SB3's checkers pass through the adapters.
"""

from __future__ import annotations

import warnings
from collections import deque

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.graph.cover import MinVertexCover
from envs.graph.navigation import GraphNavigation
from envs.graph.random_graphs import random_connected_graphs
from envs.interop.gymnasium import BatchedToGymEnv, BatchedToNumpyVecEnv
from envs.interop.sb3 import BatchedToSB3VecEnv

GRAPH_IDS = ["umbra/GraphNavigation-v0", "umbra/MinVertexCover-v0"]
#: SB3's checker recommends 1-D Box observations; the padded graph form is 2-D by contract
#: (``x`` [N, F], ``edge_index`` [2, E]) and is read by a graph encoder, as SB3 suggests.
DESIGN_WARNINGS = (r".*unconventional shape",)
MANUAL_SECTIONS = (
    "## Action Space",
    "## Observation Space",
    "## Rewards",
    "## Starting State",
    "## Episode End",
    "## Arguments",
    "## Version History",
)


@pytest.fixture
def warnings_as_errors():
    """Every warning but the design ones is an error (some API violations only warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in DESIGN_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        yield


# ---------------------------------------------------------------------------- helpers
def _numpy(obs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {key: value.cpu().numpy() for key, value in obs.items()}


def _graph(env) -> list[tuple[int, set[tuple[int, int]]]]:
    """Every copy's whole graph from the environment's state: (num_nodes, directed edge set)."""
    edge_index, edge_mask = env.edge_index.cpu().numpy(), env.edge_mask.cpu().numpy()
    return [
        (int(n), {tuple(e) for e in edge_index[b][:, edge_mask[b]].T.tolist()})
        for b, n in enumerate(env.size.tolist())
    ]


def _distances(num_nodes: int, edges: set[tuple[int, int]], start: int) -> np.ndarray:
    """Hop distances from ``start`` by breadth-first search; -1 where unreachable."""
    neighbours = [[] for _ in range(num_nodes)]
    for u, v in edges:
        neighbours[u].append(v)
    dist = np.full(num_nodes, -1)
    dist[start] = 0
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for v in neighbours[u]:
            if dist[v] < 0:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def _check_padded(obs: dict[str, np.ndarray], space: gym.spaces.Dict) -> None:
    """Assert that one copy's observation is a valid padded graph."""
    assert obs in space
    x, edge_index = obs["x"], obs["edge_index"]
    node_mask, edge_mask = obs["node_mask"].astype(bool), obs["edge_mask"].astype(bool)
    num_nodes = node_mask.shape[0]
    assert ((edge_index >= 0) & (edge_index < num_nodes)).all()
    assert (edge_index[:, ~edge_mask] == 0).all(), "padding edges must be zero columns"
    assert not x[~node_mask].any(), "hidden and padding nodes must have zero features"
    source, target = edge_index[:, edge_mask]
    assert node_mask[source].all() and node_mask[target].all(), "an edge touches a masked node"
    assert (source != target).all(), "self-loop"
    edges = list(zip(source.tolist(), target.tolist(), strict=True))
    assert len(set(edges)) == len(edges), "duplicate edge"
    assert set(edges) == {(v, u) for u, v in edges}, "an edge is missing its reverse"


def _check_batch(obs: dict[str, torch.Tensor], space: gym.spaces.Dict, copies=None) -> None:
    """Assert that every copy (or the given ``copies``) of a batched observation is valid."""
    batch = _numpy(obs)
    for b in range(len(batch["x"])) if copies is None else copies:
        _check_padded({key: value[b] for key, value in batch.items()}, space)


def _masked_random(obs: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    return obs["action_mask"].to(torch.float32).multinomial(1, generator=generator).squeeze(1)


def _returns(env, policy, episodes: int, start=None, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The first ``episodes`` returns of every copy (flattened), in the order they end.

    ``policy(env, obs) -> actions`` may read the environment's state (oracles do). ``start(env)
    -> [num_envs]`` is read at the start of every episode; its values for the returned episodes
    come second.
    """
    obs, _ = env.reset(seed=seed)
    count = np.zeros(env.num_envs, dtype=int)
    at_start = start(env).numpy() if start else np.zeros(env.num_envs)
    returns, starts = [], []
    while (count < episodes).any():
        obs, _, _, _, info = env.step(policy(env, obs))
        done = info["_episode"].numpy() & (count < episodes)
        returns.extend(info["episode_return"].numpy()[done].tolist())
        starts.extend(at_start[done].tolist())
        count += info["_episode"].numpy()
        if start:
            at_start = np.where(info["_episode"].numpy(), start(env).numpy(), at_start)
    return np.array(returns), np.array(starts)


def _distance_to_goal(env: GraphNavigation) -> torch.Tensor:
    """``[num_envs, num_nodes]`` hop distance of every node to the goal (num_nodes: none)."""
    n = env.num_nodes
    reached = env._node == env.goal[:, None]
    dist = torch.where(reached, 0, n)
    for hops in range(1, n):
        reached = reached | (env.adjacency & reached[:, None, :]).any(dim=2)
        dist = torch.where(reached & (dist == n), hops, dist)
    return dist


def _shortest_path(env: GraphNavigation, obs) -> torch.Tensor:
    """The oracle: the neighbour closest to the goal, from the whole graph."""
    dist = torch.where(env.action_masks(), _distance_to_goal(env), 10 * env.num_nodes)
    return dist.argmin(dim=1)


def _greedy_cover(env: MinVertexCover, obs) -> torch.Tensor:
    """The manual's greedy baseline: most uncovered edges, ties to the lowest slot."""
    return (obs["x"][..., 2] + 2.0 * obs["action_mask"]).argmax(dim=1)


def _start_distance(env: GraphNavigation) -> torch.Tensor:
    return _distance_to_goal(env).gather(1, env.agent[:, None]).squeeze(1)


# ---------------------------------------------------------------------------- registration
def test_graph_tasks_are_registered_with_manuals():
    assert envs.list_ids("graph") == GRAPH_IDS
    for env_id in GRAPH_IDS:
        cls = envs.spec(env_id).load()
        assert cls.kind == "graph" and cls.description and "\n" not in cls.description
        for section in MANUAL_SECTIONS:
            assert section in cls.__doc__, f"{cls.__name__}'s manual lacks {section}"


# ---------------------------------------------------------------------------- the padded form
@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_every_observation_is_a_valid_padded_graph(env_id):
    env = envs.make(env_id, num_envs=6, debug=True)
    obs, _ = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    space = env.single_observation_space
    assert set(obs) == {"x", "edge_index", "node_mask", "edge_mask", "action_mask"}
    for key, sub in space.spaces.items():
        assert obs[key].dtype == envs.core.torch_dtype(sub)
        assert obs[key].shape == (env.num_envs, *sub.shape)
    ended = 0
    for _ in range(40):
        _check_batch(obs, space)
        obs, _, terminated, truncated, info = env.step(_masked_random(obs, generator))
        done = np.flatnonzero((terminated | truncated).numpy())
        _check_batch(info["final_obs"], space, copies=done)
        ended += len(done)
    assert ended > 0


@pytest.mark.parametrize("env_id", GRAPH_IDS)
@pytest.mark.parametrize(
    "kwargs", [{"num_nodes": 2}, {"num_nodes": 3, "extra_edges": 0}, {"num_nodes": 40}]
)
def test_smallest_and_larger_graphs(env_id, kwargs):
    env = envs.make(env_id, num_envs=8, debug=True, **kwargs)
    obs, _ = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        obs, *_ = env.step(_masked_random(obs, generator))
        _check_batch(obs, env.single_observation_space)


def test_random_graphs_are_connected_and_simple():
    count, max_nodes, min_nodes, extra = 400, 12, 3, 5
    graphs = random_connected_graphs(count, max_nodes, min_nodes, extra, torch.Generator())
    sizes = graphs.num_nodes.numpy()
    assert sizes.min() == min_nodes and sizes.max() == max_nodes
    adjacency = graphs.adjacency.numpy()
    for b in range(count):
        n = int(sizes[b])
        edges = graphs.edge_index[b][:, graphs.edge_mask[b]].T.tolist()
        edge_set = {tuple(e) for e in edges}
        assert len(edge_set) == len(edges)
        dense = np.zeros((max_nodes, max_nodes), dtype=bool)
        for u, v in edge_set:
            dense[u, v] = True
        np.testing.assert_array_equal(dense, adjacency[b])
        assert (dense == dense.T).all() and not dense.diagonal().any()
        assert not dense[n:].any(), "an edge touches a padding slot"
        assert n - 1 <= len(edge_set) // 2 <= n - 1 + extra
        assert (_distances(n, edge_set, 0) >= 0).all(), "the graph is not connected"


def test_random_graph_slots_are_exchangeable():
    """The relabelling leaves no trace of the tree's root: every slot has the same mean degree."""
    graphs = random_connected_graphs(4000, 8, 8, 0, torch.Generator().manual_seed(0))
    degree = graphs.adjacency.sum(dim=2, dtype=torch.float32).mean(dim=0)
    torch.testing.assert_close(degree, torch.full((8,), 2 * 7 / 8), atol=0.1, rtol=0)


# ---------------------------------------------------------------------------- navigation
@pytest.mark.parametrize("view_hops", [0, 1, 2])
def test_navigation_shows_only_the_neighbourhood(view_hops):
    env = GraphNavigation(num_envs=16, view_hops=view_hops, debug=True)
    obs, _ = env.reset(seed=1)
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        batch = _numpy(obs)
        for b, (n, edges) in enumerate(_graph(env)):
            agent, goal = int(env.agent[b]), int(env.goal[b])
            dist = _distances(n, edges, agent)
            seen = np.zeros(env.num_nodes, dtype=bool)
            seen[:n] = dist <= view_hops
            np.testing.assert_array_equal(batch["node_mask"][b].astype(bool), seen)
            shown = batch["edge_index"][b][:, batch["edge_mask"][b].astype(bool)].T.tolist()
            assert {tuple(e) for e in shown} == {(u, v) for u, v in edges if seen[u] and seen[v]}
            x = batch["x"][b]
            np.testing.assert_array_equal(np.flatnonzero(x[:, 0]), [agent])
            np.testing.assert_array_equal(np.flatnonzero(x[:, 1]), [goal] if seen[goal] else [])
            degree = np.bincount([u for u, _ in edges], minlength=env.num_nodes)
            np.testing.assert_allclose(x[:, 2], seen * degree / (env.num_nodes - 1), rtol=1e-6)
            neighbours = np.zeros(env.num_nodes, dtype=bool)
            neighbours[[v for u, v in edges if u == agent]] = True
            np.testing.assert_array_equal(batch["action_mask"][b].astype(bool), neighbours)
            np.testing.assert_array_equal(env.action_masks()[b].numpy(), neighbours)
        obs, *_ = env.step(_masked_random(obs, generator))


def test_navigation_oracle_walks_shortest_paths_and_random_is_worse():
    env = GraphNavigation(num_envs=64, debug=True)
    returns, distances = _returns(env, _shortest_path, episodes=8, start=_start_distance)
    np.testing.assert_allclose(returns, 1.0 - env.step_penalty * distances, atol=1e-5)
    assert min(distances) >= 1
    assert abs(returns.mean() - 0.976) < 0.01  # the manual's oracle figure
    generator = torch.Generator().manual_seed(0)
    random_returns, _ = _returns(env, lambda e, obs: _masked_random(obs, generator), episodes=8)
    assert abs(random_returns.mean() - 0.61) < 0.08  # the manual's random-walk figure
    assert random_returns.mean() < returns.mean() - 0.2


def test_navigation_final_observation_shows_the_agent_on_the_goal():
    env = GraphNavigation(num_envs=32)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, reward, terminated, _, info = env.step(_shortest_path(env, obs))
        x = info["final_obs"]["x"][terminated]
        assert ((x[..., 0] == 1) & (x[..., 1] == 1)).any(dim=1).all()
        torch.testing.assert_close(reward[terminated], torch.full_like(reward[terminated], 0.99))
        assert not ((obs["x"][..., 0] == 1) & (obs["x"][..., 1] == 1)).any()


def test_navigation_invalid_action():
    env = GraphNavigation(num_envs=4, debug=True)
    obs, _ = env.reset(seed=0)
    stay = env.agent.clone()  # the agent's own node is never a neighbour
    with pytest.raises(ValueError, match=r"not a neighbour.*valid actions are \["):
        env.step(stay)
    with pytest.raises(ValueError, match=r"integers in \[0, 15\]"):
        env.step(torch.full((4,), 16))

    env = GraphNavigation(num_envs=4)
    env.reset(seed=0)
    before = env.agent.clone()
    _, reward, terminated, _, _ = env.step(before)  # masked out, inside the space: a penalty
    torch.testing.assert_close(reward, torch.full((4,), -0.06))
    assert torch.equal(env.agent, before) and not terminated.any()
    for outside in (torch.full((4,), 16), torch.full((4,), -1)):  # outside the space: an error
        with pytest.raises(ValueError, match=r"integers in \[0, 15\]"):
            env.step(outside)
        assert torch.equal(env.agent, before)


# ---------------------------------------------------------------------------- vertex cover
def test_cover_features_and_mask_follow_the_selection():
    env = MinVertexCover(num_envs=8, debug=True)
    obs, _ = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        batch = _numpy(obs)
        selected = env.selected.numpy()
        for b, (n, edges) in enumerate(_graph(env)):
            real = np.arange(env.num_nodes) < n
            np.testing.assert_array_equal(batch["node_mask"][b].astype(bool), real)
            np.testing.assert_array_equal(batch["action_mask"][b].astype(bool), real & ~selected[b])
            np.testing.assert_array_equal(env.action_masks()[b].numpy(), real & ~selected[b])
            x = batch["x"][b] * (env.num_nodes - 1)
            degree = np.bincount([u for u, _ in edges], minlength=env.num_nodes)
            open_edges = [u for u, v in edges if not (selected[b, u] or selected[b, v])]
            np.testing.assert_allclose(x[:, 1], degree, atol=1e-5)
            np.testing.assert_allclose(
                x[:, 2], np.bincount(open_edges, minlength=env.num_nodes), atol=1e-5
            )
            np.testing.assert_array_equal(batch["x"][b][:, 0], selected[b])
        obs, *_ = env.step(_masked_random(obs, generator))


def test_cover_episode_ends_with_a_vertex_cover_and_costs_its_size():
    env = MinVertexCover(num_envs=32, debug=True)
    obs, _ = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    ended = torch.zeros(env.num_envs, dtype=torch.bool)
    for _ in range(env.num_nodes - 1):
        graphs = _graph(env)
        obs, _, terminated, truncated, info = env.step(_masked_random(obs, generator))
        assert not truncated.any()
        final = _numpy(info["final_obs"])
        for b in np.flatnonzero(terminated.numpy()):
            chosen = final["x"][b][:, 0].astype(bool)
            assert all(chosen[u] or chosen[v] for u, v in graphs[b][1])
            assert info["episode_return"][b] == -chosen.sum() == -info["episode_length"][b]
        ended |= terminated
    assert ended.all()  # valid choices always finish within n - 1 steps


def _minimum_cover_size(n: int, edges: set[tuple[int, int]]) -> int:
    graph = nx.Graph(list(edges))
    graph.add_nodes_from(range(n))
    _, independent = nx.max_weight_clique(nx.complement(graph), weight=None)
    return n - independent


def test_cover_greedy_gets_the_documented_return_and_random_is_worse():
    env = MinVertexCover(num_envs=200, debug=True)
    returns, _ = _returns(env, _greedy_cover, episodes=5)
    assert abs(returns.mean() - (-6.77)) < 0.15  # the manual's greedy figure
    generator = torch.Generator().manual_seed(0)
    random_returns, _ = _returns(env, lambda e, obs: _masked_random(obs, generator), episodes=5)
    assert abs(random_returns.mean() - (-9.94)) < 0.3  # the manual's random figure
    assert random_returns.mean() < returns.mean() - 2.0

    # Greedy is never better than the optimum, and close to it on average.
    env = MinVertexCover(num_envs=100)
    obs, _ = env.reset(seed=1)
    optimum = [_minimum_cover_size(n, edges) for n, edges in _graph(env)]
    total = torch.zeros(env.num_envs)
    finished = torch.zeros(env.num_envs, dtype=torch.bool)
    for _ in range(env.num_nodes):
        obs, reward, terminated, _, _ = env.step(_greedy_cover(env, obs))
        total += torch.where(finished, 0.0, reward)
        finished |= terminated
    assert finished.all()
    assert (-total.numpy() >= np.array(optimum)).all()
    assert np.mean(-total.numpy()) - np.mean(optimum) < 0.5


def test_cover_invalid_action():
    env = MinVertexCover(num_envs=3, min_nodes=8, num_nodes=16, debug=True)
    obs, _ = env.reset(seed=0)
    env.step(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"not a node left to select.*valid actions are \["):
        env.step(torch.zeros(3, dtype=torch.int64))  # already selected

    env = MinVertexCover(num_envs=3, min_nodes=8, num_nodes=16, invalid_penalty=0.5)
    env.reset(seed=0)
    env.step(torch.zeros(3, dtype=torch.int64))
    selected = env.selected.clone()
    padding = torch.where(env.size < 16, 15, 0)  # slot 15 is padding where n < 16
    for bad in (torch.zeros(3, dtype=torch.int64), padding):  # masked out: a penalty
        _, reward, terminated, _, _ = env.step(bad)
        torch.testing.assert_close(reward, torch.full((3,), -0.5))
        assert torch.equal(env.selected, selected) and not terminated.any()
    with pytest.raises(ValueError, match=r"integers in \[0, 15\]"):  # outside the space
        env.step(torch.full((3,), 16))
    assert torch.equal(env.selected, selected)


# ---------------------------------------------------------------------------- shared rules
def _trajectory(env, seed: int, steps: int = 30) -> list[dict[str, torch.Tensor]]:
    obs, _ = env.reset(seed=seed)
    generator = torch.Generator().manual_seed(0)
    seen = [obs]
    for _ in range(steps):
        obs, reward, *_ = env.step(_masked_random(obs, generator))
        seen.append({**obs, "reward": reward})
    return seen


@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_same_seed_same_trajectory(env_id):
    env = envs.make(env_id, num_envs=8)
    first, second = _trajectory(env, seed=3), _trajectory(env, seed=3)
    for a, b in zip(first, second, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    other = _trajectory(env, seed=4)
    assert not torch.equal(first[0]["edge_index"], other[0]["edge_index"])


@pytest.mark.parametrize("cls", [GraphNavigation, MinVertexCover])
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"num_nodes": 1}, ValueError),
        ({"num_nodes": 8, "min_nodes": 9}, ValueError),
        ({"min_nodes": 1}, ValueError),
        ({"extra_edges": -1}, ValueError),
        ({"time_limit": 0}, ValueError),
        ({"invalid_penalty": -0.1}, ValueError),
        ({"invalid_penalty": float("nan")}, ValueError),
        ({"num_nodes": 8.0}, TypeError),
        ({"invalid_penalty": "1"}, TypeError),
    ],
)
def test_bad_kwargs(cls, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"view_hops": -1}, ValueError),
        ({"step_penalty": float("inf")}, ValueError),
        ({"view_hop": 1}, TypeError),
    ],
)
def test_bad_navigation_kwargs(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        envs.make("umbra/GraphNavigation-v0", **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_runs_on_cuda(env_id):
    cpu = envs.make(env_id, num_envs=64)
    cuda = envs.make(env_id, num_envs=64, device="cuda")
    obs, _ = cuda.reset(seed=0)
    assert all(value.device.type == "cuda" for value in obs.values())
    generator = torch.Generator(device="cuda").manual_seed(0)
    for _ in range(50):
        obs, *_ = cuda.step(_masked_random(obs, generator))
    _check_batch(obs, cpu.single_observation_space)


# ---------------------------------------------------------------------------- checkers
@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_gymnasium_check_env(env_id, warnings_as_errors):
    env = gym.make(env_id)
    assert isinstance(env.unwrapped, BatchedToGymEnv)
    check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_gymnasium_passive_checker(env_id, warnings_as_errors):
    env = gym.make(env_id, disable_env_checker=False)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(60):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_sb3_check_env(env_id, warnings_as_errors):
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_make_vec_same_step(env_id):
    venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(venv, BatchedToNumpyVecEnv)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=0)
    assert isinstance(obs, dict) and obs in venv.observation_space
    venv.action_space.seed(0)
    episodes = 0
    for _ in range(100):  # random unmasked actions: mostly invalid, so time limits end episodes
        obs, _, terminated, truncated, info = venv.step(venv.action_space.sample())
        assert obs in venv.observation_space
        done = terminated | truncated
        for i in np.flatnonzero(done):
            assert info["final_obs"][i] in venv.single_observation_space
        episodes += int(done.sum())
    assert episodes > 0
    venv.close()


@pytest.mark.parametrize("env_id", GRAPH_IDS)
def test_maskable_ppo_never_takes_a_masked_node(env_id):
    """sb3-contrib's MaskablePPO reads ``action_masks()`` through the SB3 adapter; in debug mode
    a single masked choice would raise."""
    from sb3_contrib import MaskablePPO

    venv = BatchedToSB3VecEnv(envs.make(env_id, num_envs=4, debug=True))
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0)
    model.learn(total_timesteps=64)
    obs = venv.reset()
    masks = np.stack(venv.env_method("action_masks"))
    actions, _ = model.predict(obs, action_masks=masks)
    assert masks[np.arange(4), actions].all()
