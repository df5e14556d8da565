"""Minimum vertex cover on random graphs: a combinatorial node-selection task."""

from __future__ import annotations

import gymnasium as gym
import torch

from envs.core import BatchedEnv, check_int, check_nonnegative
from envs.graph.random_graphs import (
    check_graph_sizes,
    graph_observation_space,
    max_edges,
    random_connected_graphs,
)

#: Node features: selected, degree / (num_nodes - 1), uncovered degree / (num_nodes - 1).
FEATURES = ("selected", "degree", "uncovered_degree")


class MinVertexCover(BatchedEnv):
    """Minimum vertex cover: select as few nodes as possible so that every edge has one selected.

    Every episode draws a random connected graph (a random recursive tree plus random extra
    edges, see :func:`~envs.graph.random_graphs.random_connected_graphs`). The agent selects
    nodes one at a time; an edge is covered once one of its ends is selected, and the episode ends
    when every edge is covered. Each selection costs 1, so the return is minus the size of the
    cover found. Finding a minimum vertex cover is NP-hard; the classic learned-heuristic
    benchmark (Khalil et al., 2017, "Learning Combinatorial Optimization Algorithms over
    Graphs"). The whole graph is observed.

    ## Action Space
    ``Discrete(num_nodes)``: the slot of the node to select. ``obs["action_mask"]`` (and
    :meth:`action_masks`) marks the valid choices: the real nodes not selected yet. Choosing a
    selected node or a padding slot is invalid: with ``debug=True`` it raises a ``ValueError``
    naming the copy, the action and the valid choices; otherwise (the default, and what the
    Gymnasium / SB3 adapters use) nothing is selected and the step costs ``invalid_penalty``.
    Valid choices that cover no new edge are allowed (they only cost 1). An action outside
    ``[0, num_nodes)`` is rejected with a ``ValueError`` before stepping (on an accelerator
    without ``debug``: at the next ``check_deferred()``, see :class:`~envs.core.BatchedEnv`).

    ## Observation Space
    The padded graph form (docs/architecture.md, "Graph observations"), a ``Dict`` of Boxes;
    nodes keep their slot for the whole episode, edges are both directions of each undirected
    edge:

    - ``x`` ``Box(0, 1, (num_nodes, 3))`` float32: per node ``[selected, degree,
      uncovered_degree]``, the degrees (all edges, and edges not yet covered) divided by
      ``num_nodes - 1``; zeros on padding;
    - ``edge_index`` ``Box(0, num_nodes - 1, (2, E_max))`` int64 with
      ``E_max = 2 * (num_nodes - 1 + extra_edges)``: source and target slots of every edge of
      the graph; 0 in the columns where ``edge_mask`` is 0;
    - ``node_mask`` ``Box(0, 1, (num_nodes,))`` int8: 1 on the graph's nodes (always the slots
      ``0 .. n - 1``), 0 on padding;
    - ``edge_mask`` ``Box(0, 1, (E_max,))`` int8: 1 on the graph's edges;
    - ``action_mask`` ``Box(0, 1, (num_nodes,))`` int8: 1 on the nodes not selected yet.

    ## Rewards
    -1 per valid selection; ``-invalid_penalty`` per invalid action. The return of an episode of
    valid choices is minus the size of the cover. With the defaults (graphs of 8 to 16 nodes),
    measured over 20,000 graphs: the optimum (a minimum vertex cover) averages -6.61; the greedy
    heuristic "select the node with the most uncovered edges, ties to the lowest slot" -6.77;
    uniformly random valid choices -9.94.

    ## Starting State
    A fresh random graph with ``n`` nodes, ``n`` uniform in ``[min_nodes, num_nodes]``, with
    nothing selected.

    ## Episode End
    Terminated when every edge is covered; a policy of valid choices always ends within
    ``n - 1`` steps. Truncated after ``time_limit`` steps (reached only with invalid actions).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_nodes`` (int >= 2, default 16): ``N_max``, the padded number of nodes;
    - ``min_nodes`` (int in ``[2, num_nodes]``, default ``max(2, num_nodes // 2)``): fewest
      nodes of a graph;
    - ``extra_edges`` (int >= 0, default ``num_nodes``): random node pairs added to the spanning
      tree (self-loops and repeats dropped);
    - ``time_limit`` (int >= 1, default ``num_nodes``): steps per episode at most;
    - ``invalid_penalty`` (float >= 0, default 1.0): see Rewards.

    ## Version History
    - v0: first version.
    """

    description = "Minimum vertex cover on random graphs: select nodes until every edge is covered."
    kind = "graph"

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_nodes: int = 16,
        min_nodes: int | None = None,
        extra_edges: int | None = None,
        time_limit: int | None = None,
        invalid_penalty: float = 1.0,
    ):
        self.num_nodes, self.min_nodes, self.extra_edges = check_graph_sizes(
            num_nodes, min_nodes, extra_edges, extra_per_node=1.0
        )
        time_limit = self.num_nodes if time_limit is None else time_limit
        self.time_limit = self.max_episode_steps = check_int("time_limit", time_limit, 1)
        self.invalid_penalty = check_nonnegative("invalid_penalty", invalid_penalty)
        self.num_edges = max_edges(self.extra_edges, self.num_nodes)
        self.single_observation_space = graph_observation_space(
            self.num_nodes, self.num_edges, len(FEATURES)
        )
        self.single_action_space = gym.spaces.Discrete(self.num_nodes)
        super().__init__(num_envs, device, debug)

        b, n, e, device = self.num_envs, self.num_nodes, self.num_edges, self.device
        self._node = torch.arange(n, device=device)
        #: Per copy: the graph (see RandomGraphs) and the nodes selected so far.
        self.size = torch.full((b,), n, dtype=torch.int64, device=device)
        self.edge_index = torch.zeros(b, 2, e, dtype=torch.int64, device=device)
        self.edge_mask = torch.zeros(b, e, dtype=torch.bool, device=device)
        self.selected = torch.zeros(b, n, dtype=torch.bool, device=device)

    # ------------------------------------------------------------------ the contract
    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        fresh = random_connected_graphs(
            self.num_envs, self.num_nodes, self.min_nodes, self.extra_edges, self.generator
        )
        self.size = torch.where(mask, fresh.num_nodes, self.size)
        self.edge_index = torch.where(mask[:, None, None], fresh.edge_index, self.edge_index)
        self.edge_mask = torch.where(mask[:, None], fresh.edge_mask, self.edge_mask)
        self.selected = self.selected & ~mask[:, None]

    def real(self) -> torch.Tensor:
        """``[num_envs, num_nodes]`` bool: the graph's nodes (not padding)."""
        return self._node < self.size[:, None]

    def uncovered(self) -> torch.Tensor:
        """``[num_envs, E_max]`` bool: the edges with neither end selected."""
        source, target = self.edge_index[:, 0], self.edge_index[:, 1]
        return self.edge_mask & ~self.selected.gather(1, source) & ~self.selected.gather(1, target)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        choice = actions.to(torch.int64)
        inside = (choice >= 0) & (choice < self.num_nodes)
        choice = choice.clamp(0, self.num_nodes - 1)
        valid = inside & self.action_masks().gather(1, choice[:, None]).squeeze(1)
        if self.debug and not bool(valid.all()):
            self._invalid_action_error(actions, valid)
        self.selected = self.selected | ((self._node == choice[:, None]) & valid[:, None])
        reward = torch.where(valid, -1.0, -self.invalid_penalty)
        return reward, ~self.uncovered().any(dim=1)

    def _invalid_action_error(self, actions: torch.Tensor, valid: torch.Tensor) -> None:
        copy = int((~valid).nonzero()[0, 0])
        choices = self.action_masks()[copy].nonzero()[:, 0].tolist()
        raise ValueError(
            f"action {int(actions[copy])} of copy {copy} is not a node left to select (already "
            f"selected or padding): valid actions are {choices} (obs['action_mask']); "
            f"{int((~valid).sum())} of {self.num_envs} copies chose an invalid node. Without "
            "debug=True an invalid action is a no-op costing invalid_penalty"
        )

    def _observe(self) -> dict[str, torch.Tensor]:
        uncovered = self.uncovered()
        source = self.edge_index[:, 0]
        zeros = torch.zeros(self.num_envs, self.num_nodes, device=self.device)
        degree = zeros.scatter_add(1, source, self.edge_mask.to(torch.float32))
        open_degree = zeros.scatter_add(1, source, uncovered.to(torch.float32))
        scale = 1.0 / (self.num_nodes - 1)
        x = torch.stack((self.selected.to(torch.float32), degree * scale, open_degree * scale), 2)
        return {
            "x": x,
            "edge_index": self.edge_index.clone(),
            "node_mask": self.real().to(torch.int8),
            "edge_mask": self.edge_mask.to(torch.int8),
            "action_mask": self.action_masks().to(torch.int8),
        }

    def action_masks(self) -> torch.Tensor:
        """``[num_envs, num_nodes]`` bool: the valid actions now (as MaskablePPO asks)."""
        return self.real() & ~self.selected
