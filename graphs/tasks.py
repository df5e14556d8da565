r"""Graph learning (not RL) with the same encoders: node and graph classification.

Tasks are generated locally or ship with PyG, so nothing here needs the network:

- ``"sbm"`` (:func:`make_sbm_task`): node classification on a stochastic-block-model graph whose
  node features are a noisy one-hot of the node's block; features alone are a weak signal, and
  averaging over neighbours (mostly in the same block) is what makes the task easy.
- ``"karate"`` (:func:`make_karate_task`): Zachary's karate club
  (:class:`torch_geometric.datasets.KarateClub`, 34 nodes, 4 communities, identity features), so
  only the structure tells the classes apart.
- ``"motifs"`` (:func:`make_motif_task`): graph classification of random trees carrying either a
  "house" (a 5-cycle with one chord, so a triangle) or a triangle-free :math:`K_{2,3}` with the
  same degrees; the label is structural only.

:func:`train_node_classifier` and :func:`train_graph_classifier` train a :class:`GraphEncoder` with
a classification head, select the epoch by validation accuracy and report test accuracy, NLL,
expected calibration error and Brier score (:mod:`bayes.calibration`) with the test set's
predicted probabilities. Both run one training loop; the head is one of :data:`HEADS`:

- ``"linear"``: a linear layer on the embeddings, trained by cross-entropy;
- ``"temperature"``: the same, then temperature scaling (Guo et al., 2017) fitted on the
  validation split (:func:`bayes.calibration.fit_temperature`); accuracy is unchanged;
- ``"bayes"``: a Bayesian categorical head (:mod:`bayes.heads`) trained jointly with the encoder
  on the ELBO, predicting the mean softmax over weight samples.

Benchmarks address the tasks like environments, by id (:data:`TASKS`: ``graphs/SBM``,
``graphs/KarateClub``, ``graphs/Motifs``), with a :class:`GraphTaskConfig` (from
:func:`graph_task_config`, which maps an agent name such as ``gcn`` or ``gcn-temperature`` to a
model and a head) run by :func:`train_task`. Real benchmarks (:func:`load_planetoid`) are
optional: they download, so tests never call them.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import one_hot, stochastic_blockmodel_graph

from agents.configs import Config
from envs.core import resolve_device
from graphs.encoders import MODELS, READOUTS, GraphEncoder

__all__ = [
    "GRAPH_TASKS",
    "GRAPH_TASK_AGENTS",
    "HEADS",
    "NODE_TASKS",
    "TASKS",
    "GraphTask",
    "GraphTaskConfig",
    "TaskSpec",
    "graph_task_config",
    "is_graph_task",
    "load_planetoid",
    "make_karate_task",
    "make_motif_task",
    "make_sbm_task",
    "train_graph_classifier",
    "train_node_classifier",
    "train_task",
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
    :func:`train_node_classifier` as ``task=``.

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


def train_node_classifier(
    task: str | Data = "sbm",
    model: str = "gcn",
    hidden_size: int = 64,
    epochs: int = 100,
    seed: int = 0,
    *,
    num_layers: int = 2,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
    head: str = "linear",
    head_kwargs: dict[str, Any] | None = None,
    num_samples: int = 32,
    num_particles: int = 1,
    calibration_bins: int = 15,
    task_kwargs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    r"""Train ``GraphEncoder -> head`` for transductive node classification, full batch.

    Minimises the training nodes' loss (cross-entropy, or the per-node negative ELBO of the
    Bayesian head with ``num_data`` = the number of training nodes) with Adam, evaluates every
    epoch and keeps the parameters of the epoch with the best validation accuracy (ties: lower
    validation NLL); the reported test numbers are for those parameters (after temperature
    scaling for ``head="temperature"``).

    Args:
        task: A name from :data:`NODE_TASKS` (``"sbm"``, ``"karate"``) or a ``Data`` with ``x``,
            ``edge_index``, ``y`` and ``train_mask``/``val_mask``/``test_mask``.
            (default: ``"sbm"``)
        model: Encoder model, see :data:`graphs.encoders.MODELS`. (default: ``"gcn"``)
        hidden_size: Encoder width. (default: ``64``)
        epochs: Full-batch gradient steps. (default: ``100``)
        seed: Seeds the task (when built by name), the initialisation and the head's weight
            samples; the global RNG is left as it was. (default: ``0``)
        num_layers: Message-passing layers. (default: ``2``)
        lr: Adam learning rate. (default: ``0.01``)
        weight_decay: Adam weight decay of the encoder and of a linear head (a Bayesian head
            has its prior instead). (default: ``5e-4``)
        dropout: Encoder dropout between layers (as in Kipf & Welling's recipe, it keeps the
            attention models from overfitting noisy features). (default: ``0.5``)
        head: One of :data:`HEADS`: ``"linear"``, ``"temperature"`` or ``"bayes"``.
            (default: ``"linear"``)
        head_kwargs: Extra arguments of the Bayesian head (e.g. ``prior_scale``).
            (default: ``None``)
        num_samples: Weight samples of the Bayesian head's predictive mean. (default: ``32``)
        num_particles: ELBO particles per step of the Bayesian head. (default: ``1``)
        calibration_bins: Bins of the expected calibration error. (default: ``15``)
        task_kwargs: Extra arguments of the task builder. (default: ``None``)
        model_kwargs: Extra arguments of :class:`GraphEncoder`. (default: ``None``)
        device: Where to train. (default: ``"cpu"``)
        callback: Called after every epoch with the epoch (from 1) and that epoch's metrics
            (``train_loss``, ``{train,val,test}_{accuracy,nll}``, ``test_ece``; before
            temperature scaling). (default: ``None``)

    Returns:
        A dict with, on the test split, ``accuracy``, ``nll``, ``ece``, ``brier``, the predicted
        probabilities ``test_probs`` (``[N_test, C]`` numpy) and ``test_labels``; and
        ``val_accuracy``, ``val_nll``, ``train_accuracy``, ``best_epoch``, ``temperature``
        (``None`` unless fitted), ``history`` (the callback's metrics per epoch), ``epochs``,
        ``seconds``, ``model``, ``head``, ``task``, ``num_classes``.
    """
    task_name = task if isinstance(task, str) else "custom"
    if isinstance(task, str):
        if task not in NODE_TASKS:
            raise ValueError(f"unknown node task {task!r}; choose one of {list(NODE_TASKS)}")
        data = NODE_TASKS[task](seed=seed, **(task_kwargs or {}))
    else:
        data = task
    num_classes = int(getattr(data, "num_classes", None) or int(data.y.max()) + 1)
    data = data.to(device)
    splits = {name: (data, data[f"{name}_mask"]) for name in _SPLITS}
    num_train = int(data.train_mask.sum())

    return _train_classifier(
        encoder_args=(data.num_node_features, hidden_size, num_layers),
        encoder_kwargs={"model": model, "dropout": dropout, **(model_kwargs or {})},
        num_classes=num_classes,
        node_level=True,
        train_batches=lambda: [splits["train"]],
        splits=splits,
        num_train=num_train,
        seed=seed,
        device=device,
        summary={"model": model, "head": head, "task": task_name, "num_classes": num_classes},
        head=head,
        head_kwargs=head_kwargs,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        num_samples=num_samples,
        num_particles=num_particles,
        calibration_bins=calibration_bins,
        callback=callback,
    )


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


def train_graph_classifier(
    task: str | GraphTask = "motifs",
    model: str = "gin",
    hidden_size: int = 64,
    epochs: int = 100,
    seed: int = 0,
    *,
    readout: str = "mean",
    num_layers: int = 3,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    dropout: float = 0.0,
    head: str = "linear",
    head_kwargs: dict[str, Any] | None = None,
    num_samples: int = 32,
    num_particles: int = 1,
    calibration_bins: int = 15,
    task_kwargs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    r"""Train ``GraphEncoder (readout) -> head`` for graph classification.

    Each epoch is one pass over the training graphs in minibatches of ``batch_size`` (one full
    batch when ``None``), with Adam on the loss of :func:`train_node_classifier` (``num_data``:
    the number of training graphs); the parameters of the epoch with the best validation
    accuracy (ties: lower validation NLL) give the reported test numbers.

    Args:
        task: A name from :data:`GRAPH_TASKS` (``"motifs"``) or a :class:`GraphTask`.
            (default: ``"motifs"``)
        model: Encoder model, see :data:`graphs.encoders.MODELS`. (default: ``"gin"``)
        hidden_size: Encoder width. (default: ``64``)
        epochs: Passes over the training graphs. (default: ``100``)
        seed: Seeds the task (when built by name), the initialisation and the minibatch order;
            the global RNG is left as it was. (default: ``0``)
        readout: ``"mean"``, ``"max"`` or ``"attention"``. (default: ``"mean"``)
        num_layers: Message-passing layers. (default: ``3``)
        lr: Adam learning rate. (default: ``0.01``)
        weight_decay: Adam weight decay. (default: ``0.0``)
        batch_size: Graphs per step; ``None`` for full batch. (default: ``None``)
        dropout: Encoder dropout. (default: ``0.0``)
        head, head_kwargs, num_samples, num_particles, calibration_bins, callback: As in
            :func:`train_node_classifier`.
        task_kwargs: Extra arguments of the task builder. (default: ``None``)
        model_kwargs: Extra arguments of :class:`GraphEncoder`. (default: ``None``)
        device: Where to train. (default: ``"cpu"``)

    Returns:
        The dict of :func:`train_node_classifier`.
    """
    if isinstance(task, str):
        if task not in GRAPH_TASKS:
            raise ValueError(f"unknown graph task {task!r}; choose one of {list(GRAPH_TASKS)}")
        task = GRAPH_TASKS[task](seed=seed, **(task_kwargs or {}))
    splits = {name: (Batch.from_data_list(task.split(name)).to(device), None) for name in _SPLITS}
    train_graphs = task.split("train")

    def train_batches() -> list[tuple[Batch, None]]:
        if batch_size is None:
            return [splits["train"]]
        order = torch.randperm(len(train_graphs)).tolist()
        return [
            (
                Batch.from_data_list([train_graphs[i] for i in order[i : i + batch_size]]).to(
                    device
                ),
                None,
            )
            for i in range(0, len(order), batch_size)
        ]

    return _train_classifier(
        encoder_args=(task.num_features, hidden_size, num_layers),
        encoder_kwargs={"model": model, "readout": readout, "dropout": dropout,
                        **(model_kwargs or {})},
        num_classes=task.num_classes,
        node_level=False,
        train_batches=train_batches,
        splits=splits,
        num_train=len(train_graphs),
        seed=seed,
        device=device,
        summary={"model": model, "head": head, "task": task.name,
                 "num_classes": task.num_classes},
        head=head,
        head_kwargs=head_kwargs,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        num_samples=num_samples,
        num_particles=num_particles,
        calibration_bins=calibration_bins,
        callback=callback,
    )


# --------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------

#: The splits every task has, in the order they are evaluated.
_SPLITS = ("train", "val", "test")
#: Classification heads: linear, linear + temperature scaling, Bayesian (see the module doc).
HEADS: tuple[str, ...] = ("linear", "temperature", "bayes")


def _bayes_head_class() -> type[nn.Module]:
    """:class:`bayes.heads.BayesianClassifier` (imported on first use: Pyro loads slowly)."""
    try:
        from bayes.heads import BayesianClassifier
    except ImportError as err:  # an older bayes package
        raise ValueError(
            "head='bayes' needs bayes.heads.BayesianClassifier, which this version lacks: use "
            "head='linear' or 'temperature'"
        ) from err
    return BayesianClassifier


class _Classifier(nn.Module):
    """``GraphEncoder`` then a head on node (or graph) embeddings.

    A linear head (``"linear"``, ``"temperature"``) is trained by cross-entropy; a Bayesian head
    by its per-datum negative ELBO and predicts its mean softmax over ``num_samples`` weight
    samples.
    """

    def __init__(
        self,
        encoder: GraphEncoder,
        num_classes: int,
        node_level: bool,
        head: str = "linear",
        head_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            close = difflib.get_close_matches(head, HEADS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown head {head!r}; {hint}choose one of {', '.join(HEADS)}")
        self.encoder = encoder
        self.node_level = node_level
        self.head_name = head
        self.bayesian = head == "bayes"
        if self.bayesian:
            self.head = _bayes_head_class()(
                encoder.out_features, num_classes, **(head_kwargs or {})
            )
        else:
            if head_kwargs:
                raise ValueError(f"head_kwargs apply to head='bayes' only, got {head_kwargs}")
            self.head = nn.Linear(encoder.out_features, num_classes)

    def embed(self, data: Data | Batch, mask: Tensor | None = None) -> Tensor:
        """Node embeddings (``mask``-selected) or graph embeddings of ``data``."""
        nodes, graphs = self.encoder.encode_data(data)
        out = nodes if self.node_level else graphs
        return out if mask is None else out[mask]

    def loss(self, emb: Tensor, y: Tensor, num_data: int, num_particles: int) -> Tensor:
        """Cross-entropy, or the Bayesian head's negative ELBO per datum."""
        if self.bayesian:
            return self.head.loss(emb, y, num_data=num_data, num_particles=num_particles)
        return F.cross_entropy(self.head(emb), y)

    def log_probs(self, emb: Tensor, num_samples: int) -> Tensor:
        """Predicted log-probabilities ``[B, C]`` (logits up to a per-row constant)."""
        if self.bayesian:
            probs = self.head.predict_probs(emb, num_samples=num_samples)
            return probs.clamp_min(1e-12).log()
        return F.log_softmax(self.head(emb), dim=-1)

    def forward(self, data: Data | Batch) -> Tensor:
        return self.log_probs(self.embed(data), num_samples=32)


def _train_classifier(
    *,
    encoder_args: tuple[int, int, int],
    encoder_kwargs: dict[str, Any],
    num_classes: int,
    node_level: bool,
    seed: int,
    device: str | torch.device,
    summary: dict[str, Any],
    head: str,
    head_kwargs: dict[str, Any] | None,
    train_batches: Callable[[], Iterable[tuple[Data | Batch, Tensor | None]]],
    splits: dict[str, tuple[Data | Batch, Tensor | None]],
    num_train: int,
    **fit_kwargs: Any,
) -> dict[str, Any]:
    """Build ``GraphEncoder(*encoder_args, **encoder_kwargs) -> head`` under ``seed`` (the global
    RNG is left as it was), train it with :func:`_fit`, and add ``seconds`` and ``summary``."""
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = GraphEncoder(*encoder_args, **encoder_kwargs)
        net = _Classifier(encoder, num_classes, node_level, head, head_kwargs).to(device)
        result = _fit(net, train_batches, splits, num_train, **fit_kwargs)
    return {**result, "seconds": time.perf_counter() - start, **summary}


def _fit(
    net: _Classifier,
    train_batches: Callable[[], Iterable[tuple[Data | Batch, Tensor | None]]],
    splits: dict[str, tuple[Data | Batch, Tensor | None]],
    num_train: int,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    num_samples: int,
    num_particles: int,
    calibration_bins: int,
    callback: Callable[[int, dict[str, float]], None] | None,
) -> dict[str, Any]:
    """The one training loop of node and graph classification.

    Each epoch: one pass over ``train_batches()`` (``(data, mask)`` pairs; ``mask`` selects the
    nodes of a node task, ``None`` takes every graph of a batch) with Adam, then an evaluation of
    every split. The parameters of the epoch with the best validation accuracy (ties: lower
    validation NLL) are restored at the end and give the test probabilities (temperature-scaled
    for ``head="temperature"``) and metrics.
    """
    from bayes import calibration

    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs}")
    head_decay = 0.0 if net.bayesian else weight_decay  # a Bayesian head has its prior
    optimizer = torch.optim.Adam(
        [
            {"params": net.encoder.parameters(), "weight_decay": weight_decay},
            {"params": net.head.parameters(), "weight_decay": head_decay},
        ],
        lr=lr,
    )

    def evaluate() -> dict[str, tuple[Tensor, Tensor]]:
        net.eval()
        out = {}
        with torch.no_grad():
            for split, (data, mask) in splits.items():
                log_probs = net.log_probs(net.embed(data, mask), num_samples)
                out[split] = (log_probs, data.y if mask is None else data.y[mask])
        return out

    history: list[dict[str, float]] = []
    best: dict[str, float] = {}
    best_state: dict[str, Tensor] = {}
    for epoch in range(1, epochs + 1):
        net.train()
        losses = []
        for data, mask in train_batches():
            optimizer.zero_grad()
            y = data.y if mask is None else data.y[mask]
            loss = net.loss(net.embed(data, mask), y, num_train, num_particles)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        outputs = evaluate()
        metrics = {"train_loss": float(np.mean(losses))}
        for split, (log_probs, y) in outputs.items():
            metrics[f"{split}_accuracy"] = _accuracy(log_probs, y)
            metrics[f"{split}_nll"] = float(F.nll_loss(log_probs, y))
        test_log_probs, test_y = outputs["test"]
        metrics["test_ece"] = calibration.expected_calibration_error(
            test_log_probs.exp().double(), test_y, n_bins=calibration_bins
        )
        history.append(metrics)
        if callback is not None:
            callback(epoch, metrics)
        key = (metrics["val_accuracy"], -metrics["val_nll"])
        if not best or key > (best["val_accuracy"], -best["val_nll"]):
            best = {**metrics, "best_epoch": epoch}
            best_state = copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)

    outputs = evaluate()
    val_logits, val_y = outputs["val"]
    test_logits, test_y = outputs["test"]
    temperature = None
    if net.head_name == "temperature":
        temperature = calibration.fit_temperature(val_logits.double(), val_y)
    scale = temperature or 1.0
    val_probs = F.softmax(val_logits.double() / scale, dim=-1)
    test_probs = F.softmax(test_logits.double() / scale, dim=-1)
    test_np, labels_np = test_probs.cpu().numpy(), test_y.cpu().numpy()
    return {
        "accuracy": _accuracy(test_probs, test_y),
        "nll": calibration.negative_log_likelihood(test_np, labels_np),
        "ece": calibration.expected_calibration_error(test_np, labels_np, n_bins=calibration_bins),
        "brier": calibration.brier_score(test_np, labels_np),
        "val_accuracy": _accuracy(val_probs, val_y),
        "val_nll": calibration.negative_log_likelihood(
            val_probs.cpu().numpy(), val_y.cpu().numpy()
        ),
        "train_accuracy": best["train_accuracy"],
        "best_epoch": int(best["best_epoch"]),
        "temperature": temperature,
        "epochs": epochs,
        "test_probs": test_np.astype(np.float32),
        "test_labels": labels_np.astype(np.int64),
        "history": history,
    }


def _accuracy(scores: Tensor, y: Tensor) -> float:
    return float((scores.argmax(dim=-1) == y).float().mean()) if y.numel() else float("nan")


# --------------------------------------------------------------------------------------------
# Tasks by id, for benchmarks: a config per trial, agents as model + head
# --------------------------------------------------------------------------------------------

#: The namespace of learning-task ids: ``graphs/<Name>``.
TASK_NAMESPACE = "graphs/"


@dataclass(frozen=True)
class TaskSpec:
    """A graph-learning task addressed by id (a key of :data:`TASKS`).

    Attributes:
        kind: ``"node"`` (node classification, :func:`train_node_classifier`) or ``"graph"``
            (graph classification, :func:`train_graph_classifier`).
        name: The builder's name in :data:`NODE_TASKS` or :data:`GRAPH_TASKS`.
        description: One line.
        defaults: :class:`GraphTaskConfig` overrides tuned for the task (under the agent's and
            the caller's).
    """

    kind: Literal["node", "graph"]
    name: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def builder(self) -> Callable[..., Any]:
        """The function that builds the task's data."""
        return (NODE_TASKS if self.kind == "node" else GRAPH_TASKS)[self.name]


#: Learning tasks by id: what a benchmark suite's ``[[envs]] id = "graphs/SBM"`` means.
TASKS: dict[str, TaskSpec] = {
    "graphs/SBM": TaskSpec(
        "node", "sbm", "node classification: 4-block stochastic block model, noisy features"
    ),
    "graphs/KarateClub": TaskSpec(
        "node",
        "karate",
        "node classification: Zachary's karate club, 4 communities",
        {"hidden_size": 16},
    ),
    "graphs/Motifs": TaskSpec(
        "graph",
        "motifs",
        "graph classification: house vs K_{2,3} motif on random trees",
        {"num_layers": 3, "weight_decay": 0.0, "dropout": 0.0, "epochs": 40},
    ),
}

#: Agent names on learning tasks: ``<model>`` (linear head), ``<model>-temperature`` and
#: ``<model>-bayes``, for every model of :data:`graphs.encoders.MODELS`.
GRAPH_TASK_AGENTS: tuple[str, ...] = tuple(
    f"{model}{'' if head == 'linear' else '-' + head}" for model in MODELS for head in HEADS
)


def is_graph_task(task_id: str) -> bool:
    """Whether ``task_id`` names a learning task (the ``graphs/`` namespace), known or not."""
    return task_id.startswith(TASK_NAMESPACE)


@dataclass(frozen=True)
class GraphTaskConfig(Config):
    """Everything that defines one graph-learning trial. Logged with the run as ``config.json``.

    Benchmarks build it with :func:`graph_task_config` and run it with :func:`train_task`.
    """

    task_id: str = "graphs/SBM"
    """A key of :data:`TASKS`."""
    model: str = "gcn"
    """Encoder model, a key of :data:`graphs.encoders.MODELS`."""
    head: str = "linear"
    """``"linear"``, ``"temperature"`` or ``"bayes"`` (:data:`HEADS`)."""
    hidden_size: int = 64
    """Encoder width."""
    num_layers: int = 2
    """Message-passing layers."""
    epochs: int = 100
    """Full passes over the training nodes or graphs (a suite's ``steps``)."""
    lr: float = 0.01
    """Adam learning rate."""
    weight_decay: float = 5e-4
    """Adam weight decay of the encoder and a linear head."""
    dropout: float = 0.5
    """Encoder dropout between layers."""
    readout: str = "mean"
    """Graph tasks: ``"mean"``, ``"max"`` or ``"attention"`` pooling of node embeddings."""
    batch_size: int | None = None
    """Graph tasks: graphs per gradient step; ``None`` for full batch."""
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of the Bayesian head (e.g. ``prior_scale``)."""
    num_samples: int = 32
    """Weight samples of the Bayesian head's predictive mean."""
    num_particles: int = 1
    """ELBO particles per step of the Bayesian head."""
    calibration_bins: int = 15
    """Bins of the expected calibration error."""
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of the task's builder (a suite's ``env_kwargs``), e.g. ``feature_noise``."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further arguments of :class:`~graphs.encoders.GraphEncoder`."""
    seed: int = 0
    """Seeds the task's data and split, the initialisation and the head's samples."""
    device: str = "cpu"
    """``"cpu"``, ``"cuda"`` or ``"auto"``."""

    def __post_init__(self) -> None:
        super().__post_init__()  # the fields' types (agents/configs.py)
        _check_choice("learning task", self.task_id, list(TASKS))
        _check_choice("model", self.model, list(MODELS))
        _check_choice("head", self.head, list(HEADS))
        _check_choice("readout", self.readout, list(READOUTS))
        for name in (
            "hidden_size",
            "num_layers",
            "epochs",
            "num_samples",
            "num_particles",
            "calibration_bins",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"GraphTaskConfig.{name} must be a positive integer, got {value!r}"
                )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(
                f"GraphTaskConfig.batch_size must be positive or None, got {self.batch_size}"
            )
        if self.head == "bayes" and self.num_samples < 2:
            raise ValueError("GraphTaskConfig.num_samples must be >= 2 for head='bayes'")
        spec = TASKS[self.task_id]
        params = inspect.signature(spec.builder).parameters
        known = [name for name in params if name != "seed"]
        for key in self.task_kwargs:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=3)
                hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
                raise ValueError(
                    f"unknown argument {key!r} of {self.task_id} (env_kwargs); "
                    f"{hint}known: {', '.join(known)}"
                )
        if spec.kind == "node" and (self.batch_size is not None or self.readout != "mean"):
            raise ValueError(
                f"{self.task_id} is node classification (full batch, no readout): "
                "batch_size and readout apply to graph classification only"
            )

    @property
    def kind(self) -> Literal["node", "graph"]:
        """``"node"`` or ``"graph"`` classification."""
        return TASKS[self.task_id].kind




def graph_task_config(agent: str, task_id: str, **overrides: Any) -> GraphTaskConfig:
    """The config of ``agent`` on the learning task ``task_id``.

    ``agent`` is ``<model>`` (a linear head), ``<model>-temperature`` or ``<model>-bayes``
    (:data:`GRAPH_TASK_AGENTS`), so ``gcn`` is the same GCN encoder as the RL agent ``gcn``.
    Settings: defaults < the task's :attr:`TaskSpec.defaults` < the agent's model and head <
    ``overrides``.

    Raises:
        ValueError: unknown task id, agent or config field, naming the close matches.
    """
    _check_choice("learning task", task_id, list(TASKS))
    _check_choice(f"agent for the learning task {task_id}", agent, list(GRAPH_TASK_AGENTS))
    model, _, head = agent.partition("-")
    settings = {**TASKS[task_id].defaults, "model": model, "head": head or "linear", **overrides}
    return GraphTaskConfig.from_dict({"task_id": task_id, **settings})


def train_task(
    config: GraphTaskConfig, callback: Callable[[int, dict[str, float]], None] | None = None
) -> dict[str, Any]:
    """Train ``config`` (:func:`train_node_classifier` or :func:`train_graph_classifier`).

    Args:
        config: The trial's config.
        callback: Called after every epoch with the epoch and its metrics.

    Returns:
        The dict of :func:`train_node_classifier`.
    """
    spec = TASKS[config.task_id]
    common = dict(
        model=config.model,
        hidden_size=config.hidden_size,
        epochs=config.epochs,
        seed=config.seed,
        num_layers=config.num_layers,
        lr=config.lr,
        weight_decay=config.weight_decay,
        dropout=config.dropout,
        head=config.head,
        head_kwargs=dict(config.head_kwargs),
        num_samples=config.num_samples,
        num_particles=config.num_particles,
        calibration_bins=config.calibration_bins,
        task_kwargs=dict(config.task_kwargs),
        model_kwargs=dict(config.model_kwargs),
        device=resolve_device(config.device),
        callback=callback,
    )
    if spec.kind == "node":
        return train_node_classifier(spec.name, **common)
    return train_graph_classifier(
        spec.name, readout=config.readout, batch_size=config.batch_size, **common
    )


def _check_choice(what: str, value: Any, known: list[str]) -> None:
    if value not in known:
        close = difflib.get_close_matches(str(value), known, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"unknown {what} {value!r}; {hint}known: {', '.join(known)}")
