"""``gymnasium.spaces.Graph`` observations in the padded graph form (see
docs/architecture.md, "Graph observations").

- :class:`GraphPadding`: a ``gymnasium.ObservationWrapper`` that pads a Graph observation (or a
  Dict with one Graph entry) to ``max_nodes`` nodes and ``max_edges`` edges;
  :class:`~envs.interop.gymnasium.GymnasiumToBatched` wraps every copy whose observations hold a
  Graph in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["DEFAULT_MAX_EDGES", "DEFAULT_MAX_NODES", "GraphPadding"]

#: ``GymnasiumToBatched``'s default padding of ``gymnasium.spaces.Graph`` observations.
DEFAULT_MAX_NODES = 64
DEFAULT_MAX_EDGES = 256
#: The keys of the padded graph form (docs/architecture.md, "Graph observations").
_GRAPH_KEYS = ("x", "edge_index", "node_mask", "edge_mask", "edge_attr")


def check_padding(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _feature_size(space: gym.Space, what: str) -> int:
    """Width of one node's (or edge's) features: one-hot for Discrete, flattened for Box."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    raise TypeError(f"gymnasium.spaces.Graph {what} must be a Box or Discrete, got {space}")


def _feature_box(space: gym.Space, rows: int) -> spaces.Box:
    """The float32 Box of ``rows`` padded feature rows of ``space`` (padding rows are zeros)."""
    if isinstance(space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, (rows, int(space.n)), np.float32)
    info = np.finfo(np.float32)

    def bound(values: np.ndarray, pick: Any) -> np.ndarray:
        flat = pick(np.asarray(values, dtype=np.float64).reshape(-1), 0.0)  # padding is 0
        flat = np.where(np.isfinite(flat), np.clip(flat, info.min, info.max), flat)
        return np.tile(flat.astype(np.float32), (rows, 1))

    return spaces.Box(bound(space.low, np.minimum), bound(space.high, np.maximum), dtype=np.float32)


def _features(space: gym.Space, values: Any, count: int, what: str) -> np.ndarray:
    """``[count, width]`` float32 features of ``count`` nodes (or edges) of a ``GraphInstance``."""
    if isinstance(space, spaces.Discrete):
        index = np.asarray(values, dtype=np.int64).reshape(-1) - int(space.start)
        if index.shape != (count,) or ((index < 0) | (index >= space.n)).any():
            raise ValueError(
                f"graph {what} must be {count} values of {space}, got {np.asarray(values)!r}"
            )
        return np.eye(int(space.n), dtype=np.float32)[index]
    array = np.asarray(values, dtype=np.float32)
    if array.shape != (count, *space.shape):
        raise ValueError(
            f"graph {what} must have shape {(count, *space.shape)} for {space}, got {array.shape}"
        )
    return array.reshape(count, -1)


class GraphPadding(gym.ObservationWrapper):
    """A ``gymnasium.spaces.Graph`` observation (or a Dict with one Graph entry) in the padded form.

    :class:`GymnasiumToBatched` wraps every copy whose observation space holds a Graph in this
    wrapper; it is a plain ``gymnasium.ObservationWrapper`` and works on its own too. A
    ``GraphInstance`` with ``n`` nodes and ``m`` edges becomes (docs/architecture.md, "Graph
    observations"):

    - ``x`` ``[max_nodes, F]`` float32: ``nodes`` in rows ``0 .. n-1``, flattened per node (a
      Box node space of shape ``s`` gives ``F = prod(s)``; a ``Discrete(k)`` one gives a one-hot,
      ``F = k``); zeros below;
    - ``edge_index`` ``[2, max_edges]`` int64: ``edge_links`` transposed in columns
      ``0 .. m-1`` (source, target), zeros after;
    - ``node_mask`` ``[max_nodes]`` and ``edge_mask`` ``[max_edges]`` int8: 1 on the first
      ``n`` nodes and ``m`` edges;
    - ``edge_attr`` ``[max_edges, D]`` float32, only when the Graph has an edge space: ``edges``
      flattened (Box) or one-hot (Discrete), zeros after row ``m``.

    In a Dict, the Graph entry is replaced by these keys next to the other entries (e.g.
    ``action_mask``), which must not use their names.

    Args:
        env: The environment whose observation space is a Graph or a Dict with one Graph entry.
        max_nodes: ``N_max``, the padded number of nodes. (default: ``64``)
        max_edges: ``E_max``, the padded number of edges (links, as the env gives them; an
            undirected edge stored in both directions counts twice). (default: ``256``)

    Raises:
        TypeError: The space holds no Graph, or more than one; node or edge spaces that are not
            Box or Discrete; ``max_nodes`` / ``max_edges`` not ints.
        ValueError: A Dict key collides with the padded keys; on ``reset``/``step``, a graph with
            more than ``max_nodes`` nodes or ``max_edges`` edges (the message names the option to
            raise), links outside ``[0, n)``, or features that do not fit the space.
    """

    def __init__(
        self, env: gym.Env, max_nodes: int = DEFAULT_MAX_NODES, max_edges: int = DEFAULT_MAX_EDGES
    ):
        super().__init__(env)
        self.max_nodes = check_padding("max_nodes", max_nodes)
        self.max_edges = check_padding("max_edges", max_edges)
        space = env.observation_space
        if isinstance(space, spaces.Graph):
            self._graph_key: str | None = None
            graph, rest = space, {}
        elif isinstance(space, spaces.Dict):
            keys = [k for k, sub in space.spaces.items() if isinstance(sub, spaces.Graph)]
            if len(keys) != 1:
                raise TypeError(
                    f"GraphPadding pads a Dict observation with exactly one Graph entry, got "
                    f"{len(keys)} in {space}"
                )
            self._graph_key = keys[0]
            graph = space[keys[0]]
            rest = {k: sub for k, sub in space.spaces.items() if k != keys[0]}
            clash = sorted(set(rest) & set(_GRAPH_KEYS))
            if clash:
                raise ValueError(
                    f"the Dict observation has entries {clash} next to its Graph entry "
                    f"{keys[0]!r}: these names are taken by the padded graph form {_GRAPH_KEYS}"
                )
        else:
            raise TypeError(f"GraphPadding needs a gymnasium.spaces.Graph observation, got {space}")
        self.graph_space: spaces.Graph = graph
        self.num_node_features = _feature_size(graph.node_space, "node_space")
        self.num_edge_features = (
            None if graph.edge_space is None else _feature_size(graph.edge_space, "edge_space")
        )
        padded: dict[str, gym.Space] = {
            "x": _feature_box(graph.node_space, self.max_nodes),
            "edge_index": spaces.Box(0, self.max_nodes - 1, (2, self.max_edges), np.int64),
            "node_mask": spaces.Box(0, 1, (self.max_nodes,), np.int8),
            "edge_mask": spaces.Box(0, 1, (self.max_edges,), np.int8),
        }
        if graph.edge_space is not None:
            padded["edge_attr"] = _feature_box(graph.edge_space, self.max_edges)
        self.observation_space = spaces.Dict({**padded, **rest})

    def observation(self, observation: Any) -> dict[str, Any]:
        """Pad one observation (see the class docstring)."""
        if self._graph_key is None:
            return self.pad(observation)
        rest = {k: v for k, v in observation.items() if k != self._graph_key}
        return {**self.pad(observation[self._graph_key]), **rest}

    def pad(self, graph: spaces.GraphInstance) -> dict[str, np.ndarray]:
        """The padded form of one ``GraphInstance``."""
        space = self.graph_space
        nodes = np.asarray(graph.nodes)
        num_nodes = int(nodes.shape[0]) if nodes.ndim else 0
        if num_nodes > self.max_nodes:
            raise ValueError(
                f"the observation graph has {num_nodes} nodes, more than max_nodes="
                f"{self.max_nodes}: raise max_nodes (GymnasiumToBatched(..., max_nodes=...), or "
                "envs.make(..., graph_padding={'max_nodes': ...}))"
            )
        links = (
            np.zeros((0, 2), dtype=np.int64)
            if graph.edge_links is None
            else np.asarray(graph.edge_links, dtype=np.int64)
        )
        if links.ndim != 2 or links.shape[1] != 2:
            raise ValueError(f"graph edge_links must have shape [m, 2], got {links.shape}")
        num_edges = int(links.shape[0])
        if num_edges > self.max_edges:
            raise ValueError(
                f"the observation graph has {num_edges} edges, more than max_edges="
                f"{self.max_edges}: raise max_edges (GymnasiumToBatched(..., max_edges=...), or "
                "envs.make(..., graph_padding={'max_edges': ...}))"
            )
        if num_edges and (links.min() < 0 or links.max() >= num_nodes):
            bad = int(np.flatnonzero(((links < 0) | (links >= num_nodes)).any(axis=1))[0])
            raise ValueError(
                f"graph edge {bad} links nodes {links[bad].tolist()}, but the graph has "
                f"{num_nodes} nodes (valid: 0 .. {num_nodes - 1})"
            )
        x = np.zeros((self.max_nodes, self.num_node_features), dtype=np.float32)
        x[:num_nodes] = _features(space.node_space, nodes, num_nodes, "nodes")
        edge_index = np.zeros((2, self.max_edges), dtype=np.int64)
        edge_index[:, :num_edges] = links.T
        node_mask = np.zeros(self.max_nodes, dtype=np.int8)
        node_mask[:num_nodes] = 1
        edge_mask = np.zeros(self.max_edges, dtype=np.int8)
        edge_mask[:num_edges] = 1
        out = {"x": x, "edge_index": edge_index, "node_mask": node_mask, "edge_mask": edge_mask}
        if space.edge_space is not None:
            edge_attr = np.zeros((self.max_edges, self.num_edge_features), dtype=np.float32)
            if num_edges:
                if graph.edges is None:
                    raise ValueError(
                        f"the graph has {num_edges} edge_links but no edges (features) for its "
                        f"edge space {space.edge_space}"
                    )
                edge_attr[:num_edges] = _features(space.edge_space, graph.edges, num_edges,
                                                  "edges")
            out["edge_attr"] = edge_attr
        return out


def _holds_graph(space: gym.Space) -> bool:
    return isinstance(space, spaces.Graph) or (
        isinstance(space, spaces.Dict)
        and any(isinstance(sub, spaces.Graph) for sub in space.spaces.values())
    )


def with_graph_padding(
    fn: Callable[[], gym.Env], max_nodes: int, max_edges: int
) -> Callable[[], gym.Env]:
    """``fn``, with its env wrapped in :class:`GraphPadding` when its observations hold a Graph."""

    def make_env() -> gym.Env:
        env = fn()
        if isinstance(env, gym.Env) and _holds_graph(env.observation_space):
            try:
                return GraphPadding(env, max_nodes, max_edges)
            except (TypeError, ValueError):
                env.close()
                raise
        return env

    return make_env

