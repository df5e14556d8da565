"""Navigation on a random graph, seeing only the agent's neighbourhood: a POMDP on a graph."""

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

#: Node features: is the agent, is the goal (only when visible), degree / (num_nodes - 1).
FEATURES = ("is_agent", "is_goal", "degree")


class GraphNavigation(BatchedEnv):
    """Graph navigation: walk from node to node to a goal, seeing only nodes near the agent.

    Every episode draws a random connected graph (a random recursive tree plus random extra
    edges, see :func:`~envs.graph.random_graphs.random_connected_graphs`; node labels are a random
    permutation, so a slot index carries no information across episodes), a start node for the
    agent and a different goal node, both uniform. Each step the agent moves along one edge by
    naming a neighbour of its node. It sees only the nodes within ``view_hops`` hops of itself and
    the edges among them, so while the goal is out of sight it has to explore, and remember where
    it has been: a partially observable task on a graph.

    ## Action Space
    ``Discrete(num_nodes)``: the slot of the node to move to, which must be a neighbour of the
    agent's node; ``obs["action_mask"]`` (and :meth:`action_masks`) marks exactly these. Any other
    choice (the agent's own node, a non-neighbour, a padding slot) is invalid: with
    ``debug=True`` it raises a ``ValueError`` naming the copy, the action and the valid choices;
    otherwise (the default, and what the Gymnasium / SB3 adapters use) the agent stays where it is
    and the step costs ``invalid_penalty`` on top of the step penalty. An action outside
    ``[0, num_nodes)`` is rejected with a ``ValueError`` before stepping (on an accelerator
    without ``debug``: at the next ``check_deferred()``, see :class:`~envs.core.BatchedEnv`).

    ## Observation Space
    The padded graph form (docs/architecture.md, "Graph observations"), a ``Dict`` of Boxes;
    nodes keep their slot for the whole episode, edges are both directions of each undirected
    edge:

    - ``x`` ``Box(0, 1, (num_nodes, 3))`` float32: per node ``[is_agent, is_goal, degree]`` where
      ``is_goal`` is 1 only on the goal and only when it is visible, and ``degree`` is the node's
      number of neighbours in the whole graph divided by ``num_nodes - 1`` (so a visible node
      tells how many of its edges lead out of sight); all zeros on nodes that are not visible;
    - ``edge_index`` ``Box(0, num_nodes - 1, (2, E_max))`` int64 with
      ``E_max = 2 * (num_nodes - 1 + extra_edges)``: source and target slots of the visible
      edges (both ends visible); 0 in the columns where ``edge_mask`` is 0;
    - ``node_mask`` ``Box(0, 1, (num_nodes,))`` int8: 1 on the nodes within ``view_hops`` hops of
      the agent (the agent included), 0 elsewhere (hidden nodes and padding);
    - ``edge_mask`` ``Box(0, 1, (E_max,))`` int8: 1 on the visible edges;
    - ``action_mask`` ``Box(0, 1, (num_nodes,))`` int8: 1 on the agent's neighbours.

    Nothing about the hidden part of the graph leaks into the observation: hidden nodes have zero
    features and hidden edges are zero columns.

    ## Rewards
    ``-step_penalty`` every step, ``-invalid_penalty`` more for an invalid action, and ``+1`` on
    the step that reaches the goal. Walking a shortest path of ``d`` edges returns
    ``1 - d * step_penalty``. With the defaults, measured over 20,000 episodes: an oracle that
    knows the whole graph averages 0.976 (the mean start-goal distance is 2.4 edges); a uniformly
    random walk over the action mask averages 0.61 (it reaches the goal within the time limit in
    77% of the episodes).

    ## Starting State
    A fresh random graph with ``n`` nodes, ``n`` uniform in ``[min_nodes, num_nodes]``; the agent
    on a uniform node and the goal on a uniform other node.

    ## Episode End
    Terminated when the agent reaches the goal; truncated after ``time_limit`` steps.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_nodes`` (int >= 2, default 16): ``N_max``, the padded number of nodes;
    - ``min_nodes`` (int in ``[2, num_nodes]``, default ``max(2, num_nodes // 2)``): fewest
      nodes of a graph;
    - ``extra_edges`` (int >= 0, default ``num_nodes // 4``): random node pairs added to the
      spanning tree (self-loops and repeats dropped), i.e. up to that many cycles;
    - ``view_hops`` (int >= 0, default 1): how far the agent sees, in hops; 0 shows only its own
      node (its neighbours are still in ``action_mask``);
    - ``time_limit`` (int >= 1, default ``2 * num_nodes``): steps per episode at most;
    - ``step_penalty`` (float >= 0, default 0.01) and ``invalid_penalty`` (float >= 0, default
      0.05): see Rewards.

    ## Version History
    - v0: first version.
    """

    description = "Walk a random graph to a goal node seeing only nearby nodes (graph POMDP)."
    kind = "graph"

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_nodes: int = 16,
        min_nodes: int | None = None,
        extra_edges: int | None = None,
        view_hops: int = 1,
        time_limit: int | None = None,
        step_penalty: float = 0.01,
        invalid_penalty: float = 0.05,
    ):
        self.num_nodes, self.min_nodes, self.extra_edges = check_graph_sizes(
            num_nodes, min_nodes, extra_edges, extra_per_node=0.25
        )
        self.view_hops = check_int("view_hops", view_hops, 0)
        time_limit = 2 * self.num_nodes if time_limit is None else time_limit
        self.time_limit = self.max_episode_steps = check_int("time_limit", time_limit, 1)
        self.step_penalty = check_nonnegative("step_penalty", step_penalty)
        self.invalid_penalty = check_nonnegative("invalid_penalty", invalid_penalty)
        self.num_edges = max_edges(self.extra_edges, self.num_nodes)
        self.single_observation_space = graph_observation_space(
            self.num_nodes, self.num_edges, len(FEATURES)
        )
        self.single_action_space = gym.spaces.Discrete(self.num_nodes)
        super().__init__(num_envs, device, debug)

        b, n, e, device = self.num_envs, self.num_nodes, self.num_edges, self.device
        self._node = torch.arange(n, device=device)
        #: Per copy: the graph (see RandomGraphs), the agent's node and the goal node.
        self.size = torch.full((b,), n, dtype=torch.int64, device=device)
        self.adjacency = torch.zeros(b, n, n, dtype=torch.bool, device=device)
        self.edge_index = torch.zeros(b, 2, e, dtype=torch.int64, device=device)
        self.edge_mask = torch.zeros(b, e, dtype=torch.bool, device=device)
        self.degree = torch.zeros(b, n, device=device)
        self.agent = torch.zeros(b, dtype=torch.int64, device=device)
        self.goal = torch.zeros(b, dtype=torch.int64, device=device)

    # ------------------------------------------------------------------ the contract
    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        g, b = self.generator, self.num_envs
        fresh = random_connected_graphs(
            b, self.num_nodes, self.min_nodes, self.extra_edges, generator=g
        )
        size = fresh.num_nodes
        agent = (torch.rand(b, generator=g, device=self.device) * size).to(torch.int64)
        step = 1 + (torch.rand(b, generator=g, device=self.device) * (size - 1)).to(torch.int64)
        goal = (agent + step) % size
        per_node, per_pair = mask[:, None], mask[:, None, None]
        self.size = torch.where(mask, size, self.size)
        self.adjacency = torch.where(per_pair, fresh.adjacency, self.adjacency)
        self.edge_index = torch.where(per_pair, fresh.edge_index, self.edge_index)
        self.edge_mask = torch.where(per_node, fresh.edge_mask, self.edge_mask)
        degree = fresh.adjacency.sum(dim=2, dtype=torch.float32) / (self.num_nodes - 1)
        self.degree = torch.where(per_node, degree, self.degree)
        self.agent = torch.where(mask, agent, self.agent)
        self.goal = torch.where(mask, goal, self.goal)

    def _neighbours(self) -> torch.Tensor:
        """``[num_envs, num_nodes]`` bool: the neighbours of each copy's agent."""
        index = self.agent[:, None, None].expand(-1, 1, self.num_nodes)
        return self.adjacency.gather(1, index).squeeze(1)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = actions.to(torch.int64)
        inside = (target >= 0) & (target < self.num_nodes)
        target = target.clamp(0, self.num_nodes - 1)
        valid = inside & self._neighbours().gather(1, target[:, None]).squeeze(1)
        if self.debug and not bool(valid.all()):
            self._invalid_action_error(actions, valid)
        self.agent = torch.where(valid, target, self.agent)
        reached = self.agent == self.goal
        reward = reached.to(torch.float32) - self.step_penalty
        reward = reward - self.invalid_penalty * (~valid).to(torch.float32)
        return reward, reached

    def _invalid_action_error(self, actions: torch.Tensor, valid: torch.Tensor) -> None:
        copy = int((~valid).nonzero()[0, 0])
        choices = self._neighbours()[copy].nonzero()[:, 0].tolist()
        raise ValueError(
            f"action {int(actions[copy])} of copy {copy} is not a neighbour of the agent's node "
            f"{int(self.agent[copy])}: valid actions are {choices} (obs['action_mask']); "
            f"{int((~valid).sum())} of {self.num_envs} copies chose an invalid node. Without "
            "debug=True an invalid action is a no-op costing invalid_penalty"
        )

    def visible(self) -> torch.Tensor:
        """``[num_envs, num_nodes]`` bool: the nodes within ``view_hops`` hops of the agent."""
        seen = self._node == self.agent[:, None]
        for _ in range(self.view_hops):
            seen = seen | (self.adjacency & seen[:, None, :]).any(dim=2)
        return seen

    def _observe(self) -> dict[str, torch.Tensor]:
        seen = self.visible()
        at_agent = self._node == self.agent[:, None]
        at_goal = (self._node == self.goal[:, None]) & seen
        x = torch.stack(
            (at_agent.to(torch.float32), at_goal.to(torch.float32), self.degree * seen), dim=2
        )
        source, target = self.edge_index[:, 0], self.edge_index[:, 1]
        edge_seen = self.edge_mask & seen.gather(1, source) & seen.gather(1, target)
        return {
            "x": x,
            "edge_index": self.edge_index * edge_seen[:, None, :],
            "node_mask": seen.to(torch.int8),
            "edge_mask": edge_seen.to(torch.int8),
            "action_mask": self._neighbours().to(torch.int8),
        }

    def action_masks(self) -> torch.Tensor:
        """``[num_envs, num_nodes]`` bool: the valid actions now (as MaskablePPO asks)."""
        return self._neighbours()
