r"""Message passing between agents: the communication slot of a multi-agent policy.

:class:`AgentCommunication` treats the agents of each copy of a multi-agent environment as the
nodes of a graph and lets a PyG GNN (:class:`~graphs.encoders.GraphEncoder`) pass messages along
its edges. The graph is complete, or built every step from the agents' positions
(:func:`communication_graph`): each agent hears its ``k`` nearest neighbours (``"knn"``) or every
agent within ``radius`` (``"radius"``). Everything is vectorised over the leading axes
``[T, copies]``: one pairwise-distance kernel, one ``topk`` or threshold, and masked edges in the
padded graph form (docs/architecture.md, "Graph observations"); no loop over copies or agents.

This module knows nothing of policies or environments: the positions come from a slice of each
agent's flat observation or a key of its Dict observation, named by the caller.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphs.encoders import MODELS, GraphEncoder

__all__ = [
    "COMMUNICATION_GRAPHS",
    "AgentCommunication",
    "communication_graph",
    "communication_options",
]

#: How the agents of a copy are connected.
COMMUNICATION_GRAPHS: tuple[str, ...] = ("complete", "knn", "radius")

#: The keys a communication setting may hold (see :func:`communication_options`).
OPTIONS: tuple[str, ...] = ("model", "num_layers", "graph", "k", "radius", "position_slice",
                            "position_key")


def _complete_edges(num_agents: int, device: torch.device | None = None) -> Tensor:
    """``[2, A * (A - 1)]``: every ordered pair of distinct agents, sources first."""
    src, dst = torch.meshgrid(torch.arange(num_agents, device=device),
                              torch.arange(num_agents, device=device), indexing="ij")
    keep = src != dst
    return torch.stack((src[keep], dst[keep]))


def communication_graph(
    positions: Tensor, graph: str = "knn", k: int | None = None, radius: float | None = None
) -> tuple[Tensor, Tensor]:
    r"""Edges between agents from their positions, in the padded form, for any leading axes.

    With :math:`d_{ij} = \lVert p_i - p_j \rVert_2` (self-pairs excluded), an edge
    :math:`j \to i` carries :math:`j`'s message to :math:`i` when

    - ``"knn"``: :math:`j` is one of the ``k`` agents nearest to :math:`i` (ties broken by
      :func:`torch.topk`); every agent receives exactly ``k`` messages, so no edge is masked;
    - ``"radius"``: :math:`d_{ij} \le` ``radius``; the edge list holds every ordered pair and
      ``edge_mask`` keeps those within range (the relation is symmetric);
    - ``"complete"``: always (positions are only read for their shape).

    Args:
        positions: Agent positions.
        graph: One of :data:`COMMUNICATION_GRAPHS`.
        k: Neighbours per agent for ``"knn"``, in ``[1, A - 1]``.
        radius: Range for ``"radius"``, > 0.

    Returns:
        ``(edge_index, edge_mask)`` with local agent indices (source, target).

    Shapes:
        - **positions** ``[*, A, P]``
        - **output** ``([*, 2, E], [*, E])`` with ``E = A * k`` (knn) or ``A * (A - 1)``.
    """
    lead, num_agents = positions.shape[:-2], positions.shape[-2]
    device = positions.device
    if graph == "knn":
        if k is None or not 1 <= k < num_agents:
            raise ValueError(f"a knn communication graph needs 1 <= k <= num_agents - 1 = "
                             f"{num_agents - 1}, got k={k}")
        dist = torch.cdist(positions.float(), positions.float())  # [*, A, A]: target i, source j
        eye = torch.eye(num_agents, dtype=torch.bool, device=device)
        dist = dist.masked_fill(eye, math.inf)
        src = dist.topk(k, dim=-1, largest=False).indices  # [*, A, k]
        dst = torch.arange(num_agents, device=device).unsqueeze(-1).expand_as(src)
        edge_index = torch.stack((src.flatten(-2), dst.flatten(-2)), dim=-2)
        return edge_index, torch.ones(edge_index.shape[:-2] + edge_index.shape[-1:],
                                      dtype=torch.bool, device=device)
    edges = _complete_edges(num_agents, device)
    edge_index = edges.expand(*lead, 2, edges.shape[-1])
    if graph == "complete":
        return edge_index, torch.ones(*lead, edges.shape[-1], dtype=torch.bool, device=device)
    if graph == "radius":
        if radius is None or not radius > 0:
            raise ValueError(f"a radius communication graph needs radius > 0, got {radius}")
        dist = torch.cdist(positions.float(), positions.float())
        return edge_index, dist[..., edges[0], edges[1]] <= radius
    raise _unknown_graph(graph)


def _unknown_graph(graph: Any) -> ValueError:
    close = difflib.get_close_matches(str(graph), COMMUNICATION_GRAPHS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"unknown communication graph {graph!r}{hint}; choose one of "
                      f"{', '.join(repr(g) for g in COMMUNICATION_GRAPHS)}")


def communication_options(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """Check a communication setting and return it as keyword arguments of
    :class:`AgentCommunication` (without ``hidden_size`` and ``num_agents``).

    Args:
        value: A GNN model name (``"gcn"``: a complete graph, as before), or a dict with
            ``model`` (default ``"gcn"``), ``num_layers``, ``graph`` (``"complete"``, ``"knn"``,
            ``"radius"``), ``k``, ``radius``, and the position source ``position_slice``
            (``[start, stop]`` into each agent's flat observation) or ``position_key``.

    Raises:
        ValueError: An unknown key, model or graph, or options that do not fit the graph
            (``k`` for knn, ``radius`` for radius), each named with what to do.
    """
    if isinstance(value, str):
        value = {"model": value}
    if not isinstance(value, Mapping):
        raise ValueError(f"communication must be a model name or a dict of options "
                         f"({', '.join(OPTIONS)}), got {value!r}")
    unknown = [key for key in value if key not in OPTIONS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), OPTIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown communication option {unknown[0]!r}{hint}; known options: "
                         f"{', '.join(OPTIONS)}")
    options = dict(value)
    model = options.setdefault("model", "gcn")
    if model not in MODELS:
        close = difflib.get_close_matches(str(model), list(MODELS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown communication model {model!r}{hint}; choose one of "
                         f"{', '.join(MODELS)}")
    layers = options.get("num_layers", 2)
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(f"communication num_layers must be a positive int, got {layers!r}")
    graph = options.setdefault("graph", "complete")
    if graph not in COMMUNICATION_GRAPHS:
        raise _unknown_graph(graph)
    k, radius = options.get("k"), options.get("radius")
    if graph == "knn" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"communication graph 'knn' needs an int k >= 1 (neighbours per agent), "
                         f"got k={k!r}")
    if graph == "radius" and (isinstance(radius, bool) or not isinstance(radius, (int, float))
                              or not 0 < radius < math.inf):
        raise ValueError(f"communication graph 'radius' needs a finite radius > 0, got "
                         f"radius={radius!r}")
    if graph != "knn" and k is not None:
        raise ValueError(f"k is an option of the 'knn' communication graph, not of {graph!r}")
    if graph != "radius" and radius is not None:
        raise ValueError(f"radius is an option of the 'radius' communication graph, not of "
                         f"{graph!r}")
    if options.get("position_slice") is not None:
        options["position_slice"] = _check_slice(options["position_slice"])
    if options.get("position_slice") is not None and options.get("position_key") is not None:
        raise ValueError("give one position source: position_slice or position_key, not both")
    return options


def _check_slice(value: Any) -> tuple[int, int | None]:
    ok = (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
          and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value)
          and value[0] is not None)
    if not ok:
        raise ValueError(f"position_slice must be [start, stop] (ints; stop may be None for the "
                         f"end of the observation), got {value!r}")
    return int(value[0]), None if value[1] is None else int(value[1])


#: Where ``position_slice`` reads in a Dict observation: the flat observation of a task with
#: action masks, as ``agents.multiagent.AgentBatch`` lays it out (its ``OBS_KEY``).
FLAT_OBS_KEY = "obs"


class AgentCommunication(nn.Module):
    r"""Message passing between the agents of each copy, in the policy's communication slot.

    Rows are agents folded into the batch (copy ``n``'s agent ``a`` is row ``n * num_agents +
    a``, as ``agents.multiagent.AgentBatch`` lays them out). The agents of a copy are the nodes
    of a graph (:func:`communication_graph`: complete, k nearest neighbours or within a radius of
    each other, from positions read out of the observations every step); a PyG GNN
    (:class:`~graphs.encoders.GraphEncoder`) passes messages over it, and each agent's features
    become

    .. math::
        h_a \leftarrow h_a + \mathrm{GNN}(h, \mathcal{E})_a

    (a residual, so no communication is the starting point).

    Args:
        hidden_size: Feature width (in and out).
        num_agents: Agents per copy, >= 2.
        model: One of :data:`graphs.MODELS`. (default: ``"gcn"``)
        num_layers: Message-passing layers. (default: ``2``)
        graph: One of :data:`COMMUNICATION_GRAPHS`. (default: ``"complete"``)
        k: Neighbours per agent for ``"knn"``, in ``[1, num_agents - 1]``.
        radius: Range for ``"radius"``, in the units of the positions.
        position_slice: ``(start, stop)``: the positions are ``obs[..., start:stop]`` of each
            agent's flat observation (Python slice semantics; ``stop`` None is the end); of
            ``obs["obs"]`` for a Dict observation (a task with action masks).
        position_key: The positions are ``obs[position_key]`` of a Dict observation.

    Raises:
        ValueError: Fewer than 2 agents, bad options (see :func:`communication_options`), or a
            ``"knn"``/``"radius"`` graph without a position source.

    Shapes:
        - **x** ``[T, N * num_agents, hidden_size]``, **obs** ``[T, N * num_agents, D]`` (or a
          dict holding ``position_key``), needed by ``"knn"`` and ``"radius"``
        - **output** ``[T, N * num_agents, hidden_size]``
    """

    def __init__(
        self,
        hidden_size: int,
        num_agents: int,
        model: str = "gcn",
        num_layers: int = 2,
        graph: str = "complete",
        k: int | None = None,
        radius: float | None = None,
        position_slice: Sequence[int | None] | None = None,
        position_key: str | None = None,
    ) -> None:
        super().__init__()
        if num_agents < 2:
            raise ValueError(f"communication needs at least 2 agents, got {num_agents}")
        options = communication_options({
            "model": model, "num_layers": num_layers, "graph": graph, "k": k, "radius": radius,
            "position_slice": position_slice, "position_key": position_key,
        })
        if graph == "knn" and k >= num_agents:
            raise ValueError(f"knn communication needs k <= num_agents - 1 = {num_agents - 1}, "
                             f"got k={k}")
        if graph != "complete" and position_slice is None and position_key is None:
            raise ValueError(
                f"communication graph {graph!r} is built from agent positions: give "
                "position_slice=(start, stop) into each agent's observation or position_key "
                "for a Dict observation (PPO reads a task's agent_position_slice)"
            )
        self.num_agents = num_agents
        self.model = model
        self.graph = graph
        self.k = k
        self.radius = radius
        self.position_slice = options.get("position_slice")
        self.position_key = position_key
        self.gnn = GraphEncoder(hidden_size, hidden_size, num_layers, model, validate=False)
        self.register_buffer("edges", _complete_edges(num_agents), persistent=False)

    def positions(self, obs: Tensor | Mapping[str, Tensor]) -> Tensor:
        """The agents' positions ``[*, P]`` read from their observations ``[*, D]`` (or dict)."""
        if self.position_key is not None:
            if not isinstance(obs, Mapping) or self.position_key not in obs:
                keys = list(obs) if isinstance(obs, Mapping) else "a tensor"
                raise ValueError(f"position_key {self.position_key!r} is not in the observation "
                                 f"(got {keys})")
            return obs[self.position_key].flatten(2).float()
        if isinstance(obs, Mapping):
            if FLAT_OBS_KEY not in obs:
                raise ValueError("a Dict observation needs position_key, not position_slice")
            obs = obs[FLAT_OBS_KEY]
        start, stop = self.position_slice
        positions = obs[..., start:stop]
        if positions.shape[-1] == 0:
            raise ValueError(f"position_slice {self.position_slice} selects nothing of an "
                             f"observation of size {obs.shape[-1]}")
        return positions.float()

    def forward(self, x: Tensor, obs: Tensor | Mapping[str, Tensor] | None = None) -> Tensor:
        length, rows, width = x.shape
        copies, agents = rows // self.num_agents, self.num_agents
        if self.graph == "complete":
            edge_index = self.edges.expand(length, copies, 2, -1)
            edge_mask = torch.ones(length, copies, edge_index.shape[-1], dtype=torch.bool,
                                   device=x.device)
        else:
            if obs is None:
                raise ValueError(f"communication graph {self.graph!r} needs the observations")
            positions = self.positions(obs).reshape(length, copies, agents, -1)
            edge_index, edge_mask = communication_graph(positions, self.graph, self.k,
                                                        self.radius)
        graph = {
            "x": x.reshape(length, copies, agents, width),
            "edge_index": edge_index,
            "node_mask": torch.ones(length, copies, agents, dtype=torch.bool, device=x.device),
            "edge_mask": edge_mask,
        }
        messages, _ = self.gnn(graph)
        return x + messages.reshape(length, rows, width)

    def extra_repr(self) -> str:
        options = f"num_agents={self.num_agents}, model={self.model!r}, graph={self.graph!r}"
        if self.graph == "knn":
            options += f", k={self.k}"
        if self.graph == "radius":
            options += f", radius={self.radius}"
        return options
