r"""Graph-learning data: generated node- and graph-classification tasks with seeded splits.

Every task here is generated locally or ships with PyG, so nothing needs the network:

- ``"sbm"`` (:func:`make_sbm_task`): node classification on a stochastic-block-model graph whose
  node features are a noisy one-hot of the node's block; features alone are a weak signal, and
  averaging over neighbours (mostly in the same block) is what makes the task easy.
- ``"karate"`` (:func:`make_karate_task`): Zachary's karate club
  (:class:`torch_geometric.datasets.KarateClub`, 34 nodes, 4 communities, identity features), so
  only the structure tells the classes apart.
- ``"motifs"`` (:func:`make_motif_task`): graph classification of random trees carrying either a
  "house" (a 5-cycle with one chord, so a triangle) or a triangle-free :math:`K_{2,3}` with the
  same degrees; the label is structural only.

A node task is one ``Data`` with ``train_mask``/``val_mask``/``test_mask`` and ``num_classes``; a
graph task is a :class:`GraphTask`. :data:`NODE_TASKS` and :data:`GRAPH_TASKS` name the builders.
:func:`load_planetoid` loads Cora, CiteSeer or PubMed in the node-task form; it downloads on first
use, so it is optional and no test calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import one_hot, stochastic_blockmodel_graph

__all__ = [
    "GRAPH_TASKS",
    "NODE_TASKS",
    "GraphTask",
    "load_planetoid",
    "make_karate_task",
    "make_motif_task",
    "make_sbm_task",
]


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


def _stratified_masks(
    y: Tensor, train: float, val: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Per class, a random ``train``/``val``/rest split of its members (at least one in train)."""
    if not (0 < train and 0 <= val and train + val < 1):
        raise ValueError(f"need 0 < train, 0 <= val and train + val < 1, got {train}, {val}")
    masks = [torch.zeros(y.shape[0], dtype=torch.bool) for _ in range(3)]
    for label in torch.unique(y):
        members = (y == label).nonzero().squeeze(1)
        members = members[torch.randperm(members.numel(), generator=generator)]
        n_train = max(1, round(train * members.numel()))
        n_val = round(val * members.numel())
        masks[0][members[:n_train]] = True
        masks[1][members[n_train : n_train + n_val]] = True
        masks[2][members[n_train + n_val :]] = True
    return masks[0], masks[1], masks[2]


# --------------------------------------------------------------------------------------------
# Node classification
# --------------------------------------------------------------------------------------------


    return masks[0], masks[1], masks[2]


# --------------------------------------------------------------------------------------------
# Node classification
# --------------------------------------------------------------------------------------------


def make_sbm_task(
    num_blocks: int = 4,
    block_size: int = 100,
    p_in: float = 0.08,
    p_out: float = 0.005,
    num_features: int = 8,
    feature_noise: float = 1.0,
    train_fraction: float = 0.6,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Data:
    r"""Node classification on a stochastic block model with noisy one-hot features.

    Node :math:`v` of block :math:`y_v` links to node :math:`u` with probability
    :math:`p_\text{in}` when :math:`y_u = y_v` and :math:`p_\text{out}` otherwise (undirected,
    :func:`torch_geometric.utils.stochastic_blockmodel_graph`). Its features are
    :math:`x_v = \mathbf{e}_{y_v} + \sigma \varepsilon_v`, :math:`\varepsilon_v \sim
    \mathcal{N}(0, I_F)`, with :math:`\mathbf{e}_{y}` the one-hot of the block padded to :math:`F`
    features. Averaging over the :math:`\approx p_\text{in} n` same-block neighbours divides the
    noise, so a GNN does much better than the features alone.

    Args:
        num_blocks: Number of blocks (= classes). (default: ``4``)
        block_size: Nodes per block. (default: ``100``)
        p_in: Edge probability within a block. (default: ``0.08``)
        p_out: Edge probability across blocks. (default: ``0.005``)
        num_features: Feature size :math:`F \ge` ``num_blocks``. (default: ``8``)
        feature_noise: :math:`\sigma`. (default: ``1.0``)
        train_fraction: Share of each class in the training mask. (default: ``0.6``)
        val_fraction: Share of each class in the validation mask; the rest is test.
            (default: ``0.2``)
        seed: Seeds the graph, the features and the split. (default: ``0``)

    Returns:
        ``Data(x, edge_index, y, train_mask, val_mask, test_mask, num_classes)``.

    Shapes:
        - **x** ``[N, F]``, **edge_index** ``[2, E]``, **y** and the masks ``[N]``, with
          ``N = num_blocks * block_size``.
    """
    if num_features < num_blocks:
        raise ValueError(f"num_features ({num_features}) must be >= num_blocks ({num_blocks})")
    probs = torch.full((num_blocks, num_blocks), p_out).fill_diagonal_(p_in)
    with torch.random.fork_rng(devices=[]):  # PyG's generator draws from the global RNG
        torch.manual_seed(seed)
        edge_index = stochastic_blockmodel_graph([block_size] * num_blocks, probs)
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(num_blocks).repeat_interleave(block_size)
    x = feature_noise * torch.randn(y.shape[0], num_features, generator=generator)
    x[:, :num_blocks] += one_hot(y, num_blocks)
    train, val, test = _stratified_masks(y, train_fraction, val_fraction, generator)
    return Data(
        x=x,
        edge_index=edge_index,
        y=y,
        train_mask=train,
        val_mask=val,
        test_mask=test,
        num_classes=num_blocks,
    )


def make_karate_task(train_fraction: float = 0.5, val_fraction: float = 0.2, seed: int = 0) -> Data:
    """Zachary's karate club (ships with PyG): 34 members, 4 communities, identity features.

    The split is stratified by community and seeded (the dataset's own mask labels one member
    per community). Chance accuracy is about 0.25 (0.35 for always guessing the largest class).

    Args:
        train_fraction: Share of each community in the training mask. (default: ``0.5``)
        val_fraction: Share in the validation mask; the rest is test. (default: ``0.2``)
        seed: Seeds the split. (default: ``0``)

    Returns:
        ``Data(x, edge_index, y, train_mask, val_mask, test_mask, num_classes)``.

    Shapes:
        - **x** ``[34, 34]``, **edge_index** ``[2, 156]``, **y** and the masks ``[34]``.
    """
    from torch_geometric.datasets import KarateClub

    data = KarateClub()[0]
    generator = torch.Generator().manual_seed(seed)
    train, val, test = _stratified_masks(data.y, train_fraction, val_fraction, generator)
    return Data(
        x=data.x,
        edge_index=data.edge_index,
        y=data.y,
        train_mask=train,
        val_mask=val,
        test_mask=test,
        num_classes=int(data.y.max()) + 1,
    )


def load_planetoid(name: str = "Cora", root: str | Path = "~/.cache/umbra/planetoid") -> Data:
    """Cora, CiteSeer or PubMed with their public split. DOWNLOADS on first use (needs network).

    Optional, for users online; no test calls it. The result plugs into
    :func:`graphs.training.train_node_classifier` as ``task=``.

    Args:
        name: ``"Cora"``, ``"CiteSeer"`` or ``"PubMed"``. (default: ``"Cora"``)
        root: Where PyG stores the files. (default: ``"~/.cache/umbra/planetoid"``)

    Returns:
        The graph with ``train_mask``, ``val_mask``, ``test_mask`` and ``num_classes``.
    """
    from torch_geometric.datasets import Planetoid

    dataset = Planetoid(str(Path(root).expanduser()), name)
    data = dataset[0]
    data.num_classes = dataset.num_classes
    return data


#: Node-classification tasks by name.
NODE_TASKS: dict[str, Callable[..., Data]] = {"sbm": make_sbm_task, "karate": make_karate_task}


# --------------------------------------------------------------------------------------------
# Graph classification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GraphTask:
    """A graph-classification dataset with its split.

    Attributes:
        graphs: The graphs, each a ``Data`` with ``x``, ``edge_index`` and a scalar label ``y``.
        train: Indices of the training graphs.
        val: Indices of the validation graphs.
        test: Indices of the test graphs.
        num_classes: Number of labels.
        name: A short name.
    """

    graphs: Sequence[Data]
    train: Tensor
    val: Tensor
    test: Tensor
    num_classes: int
    name: str = "custom"

    @property
    def num_features(self) -> int:
        """Node feature size."""
        return self.graphs[0].num_node_features

    def split(self, name: str) -> list[Data]:
        """The graphs of ``"train"``, ``"val"`` or ``"test"``."""
        return [self.graphs[i] for i in getattr(self, name).tolist()]


#: Motif edges on nodes 0..4, both with degrees (3, 3, 2, 2, 2) and node 0 of degree 3: the
#: complete bipartite K_{2,3} (no triangle) and the "house", a 5-cycle with the chord 0-2 (one).
_BIPARTITE = [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4)]
_HOUSE = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)]


def make_motif_task(
    num_graphs: int = 300,
    min_tree_nodes: int = 6,
    max_tree_nodes: int = 14,
    max_degree: int = 5,
    train_fraction: float = 0.6,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> GraphTask:
    r"""Graph classification: does a random tree carry a triangle-free motif (0) or a house (1)?

    Each graph is a uniform random recursive tree on :math:`n \sim U\{n_\min, \dots, n_\max\}`
    nodes (node :math:`i` links to a uniform earlier node) with a 5-node motif joined by one edge
    from a random tree node to one of the motif's degree-3 nodes: either the complete bipartite
    graph :math:`K_{2,3}` (label 0, no triangle) or the "house", a 5-cycle with one chord
    (label 1, one triangle). Both motifs have 6 edges and degrees :math:`(3, 3, 2, 2, 2)`, and the
    tree sizes have the same distribution in both classes, so node and edge counts and the degree
    histogram carry no signal: only *how* the nodes connect does (in the house the two degree-3
    nodes are adjacent, in :math:`K_{2,3}` they are not), which two rounds of message passing
    can see. Node features are the one-hot degree (capped at ``max_degree``), PyG's usual
    choice for featureless graphs (:class:`~torch_geometric.transforms.OneHotDegree`). Edges are
    stored in both directions; classes are balanced.

    Args:
        num_graphs: Number of graphs. (default: ``300``)
        min_tree_nodes: Smallest tree. (default: ``6``)
        max_tree_nodes: Largest tree. (default: ``14``)
        max_degree: Degrees above it share the last one-hot slot. (default: ``5``)
        train_fraction: Share of each class for training. (default: ``0.6``)
        val_fraction: Share of each class for validation; the rest is test. (default: ``0.2``)
        seed: Seeds the graphs and the split. (default: ``0``)

    Returns:
        A :class:`GraphTask` with 2 classes.

    Shapes:
        - per graph: **x** ``[n + 5, max_degree + 1]``, **edge_index** ``[2, 2 (n + 6)]``,
          **y** ``[1]``.
    """
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_graphs) % 2
    labels = labels[torch.randperm(num_graphs, generator=generator)]
    sizes = torch.randint(min_tree_nodes, max_tree_nodes + 1, (num_graphs,), generator=generator)
    graphs = []
    for label, n in zip(labels.tolist(), sizes.tolist(), strict=True):
        parents = (torch.rand(n - 1, generator=generator) * torch.arange(1, n)).long()
        tree = torch.stack([parents, torch.arange(1, n)])
        motif = torch.tensor(_HOUSE if label else _BIPARTITE).t() + n
        anchor = torch.randint(n, (1,), generator=generator)
        link = torch.stack([anchor, torch.tensor([n])])
        edges = torch.cat([tree, motif, link], dim=1)
        edge_index = torch.cat([edges, edges.flip(0)], dim=1)
        num_nodes = n + 5
        degree = torch.bincount(edge_index[0], minlength=num_nodes).clamp(max=max_degree)
        graphs.append(
            Data(
                x=one_hot(degree, max_degree + 1),
                edge_index=edge_index,
                y=torch.tensor([label]),
                num_nodes=num_nodes,
            )
        )
    train, val, test = _stratified_masks(labels, train_fraction, val_fraction, generator)
    return GraphTask(
        graphs=graphs,
        train=train.nonzero().squeeze(1),
        val=val.nonzero().squeeze(1),
        test=test.nonzero().squeeze(1),
        num_classes=2,
        name="motifs",
    )


#: Graph-classification tasks by name.
GRAPH_TASKS: dict[str, Callable[..., GraphTask]] = {"motifs": make_motif_task}
