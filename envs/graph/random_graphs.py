"""Random connected graphs, drawn batched on a device, and the padded graph observation space."""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from envs.core import check_int


class RandomGraphs(NamedTuple):
    """A batch of ``B`` simple undirected graphs padded to ``N`` nodes and ``E`` directed edges.

    The real nodes of graph ``b`` occupy the slots ``0 .. num_nodes[b] - 1``; every undirected
    edge is stored twice, once in each direction.

    Attributes:
        num_nodes: ``[B]`` int64, the number of real nodes.
        adjacency: ``[B, N, N]`` bool, symmetric, no self-loops.
        edge_index: ``[B, 2, E]`` int64, (source, target) of each directed edge; 0 where
            ``edge_mask`` is false.
        edge_mask: ``[B, E]`` bool, which columns of ``edge_index`` are edges.
    """

    num_nodes: torch.Tensor
    adjacency: torch.Tensor
    edge_index: torch.Tensor
    edge_mask: torch.Tensor


def max_edges(extra_edges: int, max_nodes: int) -> int:
    """``E_max`` of :func:`random_connected_graphs`: both directions of every candidate edge."""
    return 2 * (max_nodes - 1 + extra_edges)


def random_connected_graphs(
    count: int,
    max_nodes: int,
    min_nodes: int,
    extra_edges: int,
    generator: torch.Generator,
) -> RandomGraphs:
    """``count`` random connected graphs: a random recursive tree plus random extra edges.

    Graph ``b`` has ``n`` nodes with ``n`` uniform in ``[min_nodes, max_nodes]``. Its backbone is a
    random recursive tree (node ``i > 0`` links to a uniform node ``< i``), which makes it
    connected; then ``extra_edges`` node pairs are drawn uniformly and added, dropping self-loops
    and pairs that are already edges, so the graph is simple with between ``n - 1`` and
    ``n - 1 + extra_edges`` edges. Finally the nodes are relabelled by a uniform random
    permutation of ``0 .. n - 1``, so that a node's slot says nothing about its place in the tree.
    A fixed number of tensor operations, whatever the graphs: nothing waits on the device.

    Args:
        count: Number of graphs ``B``.
        max_nodes: ``N``, the padded number of nodes, at least 2.
        min_nodes: Fewest real nodes, in ``[2, max_nodes]``.
        extra_edges: Random node pairs added to the tree, at least 0.
        generator: Source of randomness; its device is where the graphs live.

    Returns:
        A :class:`RandomGraphs` with ``E = max_edges(extra_edges, max_nodes)``; within a graph,
        the edges are sorted by (smaller endpoint, larger endpoint), first in one direction, then
        in the other.
    """
    device = generator.device
    g, b, n_max = generator, count, max_nodes
    size = torch.randint(min_nodes, max_nodes + 1, (b,), generator=g, device=device)
    node = torch.arange(n_max, device=device)
    real = node < size[:, None]

    child = node[1:].expand(b, -1)  # node i > 0 hangs below a uniform parent < i
    parent = (torch.rand(b, n_max - 1, generator=g, device=device) * child).to(torch.int64)
    extra_u = (torch.rand(b, extra_edges, generator=g, device=device) * size[:, None]).long()
    extra_v = (torch.rand(b, extra_edges, generator=g, device=device) * size[:, None]).long()
    u = torch.cat((child, extra_u), dim=1)
    v = torch.cat((parent, extra_v), dim=1)
    valid = torch.cat((child < size[:, None], extra_u != extra_v), dim=1)

    # Relabel: a uniform permutation of the real nodes; the padding slots stay where they are.
    keys = torch.where(real, torch.rand(b, n_max, generator=g, device=device), 2.0 + node)
    order = keys.argsort(dim=1)  # order[j]: the old label of the node in slot j
    label = torch.empty_like(order).scatter_(1, order, node.expand(b, -1))
    u, v = label.gather(1, u), label.gather(1, v)

    # The adjacency matrix drops repeats; the edge list is read back from its upper triangle in
    # order, compacted by a cumulative sum (a fixed number of operations, no sort).
    sentinel = n_max * n_max
    flat = torch.cat((u * n_max + v, v * n_max + u), dim=1)
    flat = torch.where(torch.cat((valid, valid), dim=1), flat, sentinel)
    adjacency = torch.zeros(b, sentinel + 1, dtype=torch.bool, device=device)
    adjacency.scatter_(1, flat, True)
    adjacency = adjacency[:, :sentinel].view(b, n_max, n_max)
    row, col = torch.triu_indices(n_max, n_max, 1, device=device)
    upper = adjacency.view(b, sentinel)[:, row * n_max + col]  # [B, N (N - 1) / 2]
    candidates = u.shape[1]  # n_max - 1 + extra_edges: at least the number of distinct edges
    slot = torch.where(upper, upper.cumsum(dim=1) - 1, candidates)
    pair = torch.zeros(b, candidates + 1, dtype=torch.int64, device=device)
    pair = pair.scatter_(1, slot, torch.arange(row.numel(), device=device).expand(b, -1))
    pair = pair[:, :candidates]
    valid = torch.arange(candidates, device=device) < upper.sum(dim=1, keepdim=True)
    low, high = torch.where(valid, row[pair], 0), torch.where(valid, col[pair], 0)
    edge_index = torch.stack((torch.cat((low, high), 1), torch.cat((high, low), 1)), dim=1)
    edge_mask = torch.cat((valid, valid), dim=1)
    return RandomGraphs(size, adjacency, edge_index, edge_mask)


def check_graph_sizes(
    num_nodes: int, min_nodes: int | None, extra_edges: int | None, extra_per_node: float
) -> tuple[int, int, int]:
    """Check the graph-size keyword arguments shared by the graph tasks.

    Returns:
        ``(num_nodes, min_nodes, extra_edges)`` with the defaults filled in: ``min_nodes`` is
        ``max(2, num_nodes // 2)`` when None, ``extra_edges`` is
        ``int(extra_per_node * num_nodes)`` when None.
    """
    num_nodes = check_int("num_nodes", num_nodes, 2)
    if min_nodes is None:
        min_nodes = max(2, num_nodes // 2)
    min_nodes = check_int("min_nodes", min_nodes, 2)
    if min_nodes > num_nodes:
        raise ValueError(
            f"min_nodes must be at most num_nodes={num_nodes} (the padded size), got {min_nodes}"
        )
    if extra_edges is None:
        extra_edges = int(extra_per_node * num_nodes)
    extra_edges = check_int("extra_edges", extra_edges, 0)
    return num_nodes, min_nodes, extra_edges


def graph_observation_space(num_nodes: int, num_edges: int, features: int) -> gym.spaces.Dict:
    """The padded graph observation of one copy, with an action mask over the nodes.

    ``x`` ``Box(0, 1, (num_nodes, features))`` float32; ``edge_index`` ``Box(0, num_nodes - 1,
    (2, num_edges))`` int64; ``node_mask``, ``action_mask`` ``Box(0, 1, (num_nodes,))`` int8;
    ``edge_mask`` ``Box(0, 1, (num_edges,))`` int8.
    """
    box = gym.spaces.Box
    return gym.spaces.Dict(
        {
            "x": box(0.0, 1.0, (num_nodes, features), np.float32),
            "edge_index": box(0, num_nodes - 1, (2, num_edges), np.int64),
            "node_mask": box(0, 1, (num_nodes,), np.int8),
            "edge_mask": box(0, 1, (num_edges,), np.int8),
            "action_mask": box(0, 1, (num_nodes,), np.int8),
        }
    )
