r"""Training and evaluation of node and graph classifiers: ``GraphEncoder -> head``.

:func:`train_node_classifier` (transductive, full batch) and :func:`train_graph_classifier`
(minibatches of graphs) build a :class:`~graphs.encoders.GraphEncoder` with a classification
head and run the one training loop of this module under :class:`TrainSettings`: Adam on the
training loss, an evaluation of every split after every epoch, and the parameters of the epoch
with the best validation accuracy (ties: lower validation NLL) restored at the end. The result
holds test accuracy, NLL, expected calibration error and Brier score (:mod:`bayes.calibration`)
with the test set's predicted probabilities. The head is one of :data:`HEADS`:

- ``"linear"``: a linear layer on the embeddings, trained by cross-entropy;
- ``"temperature"``: the same, then temperature scaling (Guo et al., 2017) fitted on the
  validation split (:func:`bayes.calibration.fit_temperature`); accuracy is unchanged;
- ``"bayes"``: a Bayesian categorical head (:mod:`bayes.heads`) trained jointly with the encoder
  on the ELBO, predicting the mean softmax over weight samples.

The data comes from :mod:`graphs.datasets` (by name or as an object); the same runs addressed by
task id for benchmarks are in :mod:`graphs.tasks`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from agents.configs import Config, check_known_fields
from envs.core import resolve_device
from graphs.datasets import GRAPH_TASKS, NODE_TASKS, GraphTask
from graphs.encoders import MODELS, READOUTS, GraphEncoder

__all__ = [
    "GRAPH_SETTINGS",
    "HEADS",
    "EpochCallback",
    "TrainSettings",
    "train_graph_classifier",
    "train_node_classifier",
]

#: Classification heads: linear, linear + temperature scaling, Bayesian (see the module doc).
HEADS: tuple[str, ...] = ("linear", "temperature", "bayes")

#: Called after every epoch with the epoch (from 1) and that epoch's metrics.
EpochCallback = Callable[[int, dict[str, float]], None]

#: The splits every task has, in the order they are evaluated.
_SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSettings(Config):
    """How one classifier is built and trained: encoder, head, optimiser, seed and device.

    The defaults are node classification's (Kipf & Welling's GCN recipe); graph classification
    starts from them with :data:`GRAPH_SETTINGS`. :class:`~graphs.tasks.GraphTaskConfig` is these
    settings plus the task.
    """

    model: str = "gcn"
    """Encoder model, a key of :data:`graphs.encoders.MODELS`."""
    hidden_size: int = 64
    """Encoder width."""
    num_layers: int = 2
    """Message-passing layers."""
    dropout: float = 0.5
    """Encoder dropout between layers (it keeps the attention models from overfitting noisy
    features)."""
    readout: str = "mean"
    """Graph tasks: ``"mean"``, ``"max"`` or ``"attention"`` pooling of node embeddings."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further arguments of :class:`~graphs.encoders.GraphEncoder`."""
    head: str = "linear"
    """``"linear"``, ``"temperature"`` or ``"bayes"`` (:data:`HEADS`)."""
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of the Bayesian head (e.g. ``prior_scale``)."""
    num_samples: int = 32
    """Weight samples of the Bayesian head's predictive mean."""
    num_particles: int = 1
    """ELBO particles per step of the Bayesian head."""
    epochs: int = 100
    """Full passes over the training nodes or graphs (a suite's ``steps``)."""
    lr: float = 0.01
    """Adam learning rate."""
    weight_decay: float = 5e-4
    """Adam weight decay of the encoder and a linear head (a Bayesian head has its prior)."""
    batch_size: int | None = None
    """Graph tasks: graphs per gradient step; ``None`` for full batch."""
    calibration_bins: int = 15
    """Bins of the expected calibration error."""
    seed: int = 0
    """Seeds the task's data and split (when built by name), the initialisation, the minibatch
    order and the head's samples; the global RNG is left as it was."""
    device: str = "cpu"
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``."""

    def __post_init__(self) -> None:
        super().__post_init__()  # the fields' types (agents/configs.py)
        name = type(self).__name__
        check_choice("model", self.model, list(MODELS))
        check_choice("head", self.head, list(HEADS))
        check_choice("readout", self.readout, list(READOUTS))
        for key in (
            "hidden_size",
            "num_layers",
            "epochs",
            "num_samples",
            "num_particles",
            "calibration_bins",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{key} must be a positive integer, got {value!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"{name}.batch_size must be positive or None, got {self.batch_size}")
        if self.head == "bayes" and self.num_samples < 2:
            raise ValueError(f"{name}.num_samples must be >= 2 for head='bayes'")
        if self.head != "bayes" and self.head_kwargs:
            raise ValueError(f"head_kwargs apply to head='bayes' only, got {self.head_kwargs}")


#: What graph classification changes in :class:`TrainSettings`' defaults (node classification's):
#: three message-passing layers, no weight decay, no dropout. ``graphs/Motifs`` starts from them.
GRAPH_SETTINGS: dict[str, Any] = {"num_layers": 3, "weight_decay": 0.0, "dropout": 0.0}


def _settings(
    settings: TrainSettings | None, default: TrainSettings, overrides: dict[str, Any]
) -> TrainSettings:
    """``settings`` (or ``default``) with the fields in ``overrides`` replaced."""
    base = default if settings is None else settings
    if not isinstance(base, TrainSettings):
        raise TypeError(
            f"settings must be a TrainSettings (or GraphTaskConfig), got {base!r}: name the "
            "fields instead, e.g. train_node_classifier('sbm', model='gat', epochs=50)"
        )
    check_known_fields(type(base), overrides)
    return dataclasses.replace(base, **overrides) if overrides else base


def check_choice(what: str, value: Any, known: list[str]) -> None:
    """``ValueError`` naming the close matches when ``value`` is not in ``known``."""
    if value not in known:
        close = difflib.get_close_matches(str(value), known, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"unknown {what} {value!r}; {hint}known: {', '.join(known)}")


# --------------------------------------------------------------------------------------------
# Entry points: node and graph classification
# --------------------------------------------------------------------------------------------


def train_node_classifier(
    task: str | Data = "sbm",
    settings: TrainSettings | None = None,
    *,
    task_kwargs: dict[str, Any] | None = None,
    callback: EpochCallback | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    r"""Train ``GraphEncoder -> head`` for transductive node classification, full batch.

    Minimises the training nodes' loss (cross-entropy, or the per-node negative ELBO of the
    Bayesian head with ``num_data`` = the number of training nodes) with Adam, evaluates every
    epoch and keeps the parameters of the epoch with the best validation accuracy (ties: lower
    validation NLL); the reported test numbers are for those parameters (after temperature
    scaling for ``head="temperature"``).

    Example::

        train_node_classifier("sbm", model="gat", epochs=50, head="temperature")

    Args:
        task: A name from :data:`graphs.datasets.NODE_TASKS` (``"sbm"``, ``"karate"``) or a
            ``Data`` with ``x``, ``edge_index``, ``y`` and ``train_mask``/``val_mask``/
            ``test_mask``. (default: ``"sbm"``)
        settings: Encoder, head and optimiser; ``batch_size`` and ``readout`` must keep their
            defaults. (default: ``TrainSettings()``)
        task_kwargs: Extra arguments of the task builder when ``task`` is a name.
            (default: ``None``)
        callback: Called after every epoch with the epoch (from 1) and that epoch's metrics
            (``train_loss``, ``{train,val,test}_{accuracy,nll}``, ``test_ece``; before
            temperature scaling). (default: ``None``)
        **overrides: Fields of ``settings`` to replace, e.g. ``model="gat", epochs=50``.

    Returns:
        A dict with, on the test split, ``accuracy``, ``nll``, ``ece``, ``brier``, the predicted
        probabilities ``test_probs`` (``[N_test, C]`` numpy) and ``test_labels``; and
        ``val_accuracy``, ``val_nll``, ``train_accuracy``, ``best_epoch``, ``temperature``
        (``None`` unless fitted), ``history`` (the callback's metrics per epoch), ``epochs``,
        ``seconds``, ``model``, ``head``, ``task``, ``num_classes``.

    Raises:
        ValueError: an unknown task name or setting, or a graph-classification setting.
    """
    settings = _settings(settings, TrainSettings(), overrides)
    if settings.batch_size is not None or settings.readout != "mean":
        raise ValueError(
            "node classification is full batch with no readout: batch_size and readout apply to "
            "graph classification only (train_graph_classifier)"
        )
    task_name = task if isinstance(task, str) else "custom"
    if isinstance(task, str):
        if task not in NODE_TASKS:
            raise ValueError(f"unknown node task {task!r}; choose one of {list(NODE_TASKS)}")
        data = NODE_TASKS[task](seed=settings.seed, **(task_kwargs or {}))
    else:
        data = task
    num_classes = int(getattr(data, "num_classes", None) or int(data.y.max()) + 1)
    data = data.to(resolve_device(settings.device))
    splits = {name: (data, data[f"{name}_mask"]) for name in _SPLITS}
    return _train_classifier(
        settings,
        num_features=data.num_node_features,
        num_classes=num_classes,
        node_level=True,
        train_batches=lambda: [splits["train"]],
        splits=splits,
        num_train=int(data.train_mask.sum()),
        task_name=task_name,
        callback=callback,
    )


def train_graph_classifier(
    task: str | GraphTask = "motifs",
    settings: TrainSettings | None = None,
    *,
    task_kwargs: dict[str, Any] | None = None,
    callback: EpochCallback | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    r"""Train ``GraphEncoder (readout) -> head`` for graph classification.

    Each epoch is one pass over the training graphs in minibatches of ``batch_size`` (one full
    batch when ``None``), with Adam on the loss of :func:`train_node_classifier` (``num_data``:
    the number of training graphs); the parameters of the epoch with the best validation
    accuracy (ties: lower validation NLL) give the reported test numbers.

    Args:
        task: A name from :data:`graphs.datasets.GRAPH_TASKS` (``"motifs"``) or a
            :class:`~graphs.datasets.GraphTask`. (default: ``"motifs"``)
        settings: Encoder, readout, head and optimiser.
            (default: ``TrainSettings(model="gin", **GRAPH_SETTINGS)``)
        task_kwargs, callback, overrides: As in :func:`train_node_classifier`.

    Returns:
        The dict of :func:`train_node_classifier`.

    Raises:
        ValueError: an unknown task name or setting.
    """
    settings = _settings(settings, TrainSettings(model="gin", **GRAPH_SETTINGS), overrides)
    if isinstance(task, str):
        if task not in GRAPH_TASKS:
            raise ValueError(f"unknown graph task {task!r}; choose one of {list(GRAPH_TASKS)}")
        task = GRAPH_TASKS[task](seed=settings.seed, **(task_kwargs or {}))
    device = resolve_device(settings.device)
    batch_size = settings.batch_size
    splits = {name: (Batch.from_data_list(task.split(name)).to(device), None) for name in _SPLITS}
    train_graphs = task.split("train")

    def train_batches() -> list[tuple[Batch, None]]:
        if batch_size is None:
            return [splits["train"]]
        order = torch.randperm(len(train_graphs)).tolist()  # under the seed of _train_classifier
        return [
            (Batch.from_data_list([train_graphs[j] for j in order[i : i + batch_size]]).to(device),
             None)
            for i in range(0, len(order), batch_size)
        ]

    return _train_classifier(
        settings,
        num_features=task.num_features,
        num_classes=task.num_classes,
        node_level=False,
        train_batches=train_batches,
        splits=splits,
        num_train=len(train_graphs),
        task_name=task.name,
        callback=callback,
    )


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


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
    samples. ``head`` and ``head_kwargs`` are checked by :class:`TrainSettings`.
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
        self.encoder = encoder
        self.node_level = node_level
        self.head_name = head
        self.bayesian = head == "bayes"
        if self.bayesian:
            self.head = _bayes_head_class()(
                encoder.out_features, num_classes, **(head_kwargs or {})
            )
        else:
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


# --------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------

#: ``(data, mask)`` pairs: ``mask`` selects the nodes of a node task, ``None`` takes every graph.
_Batches = Iterable[tuple[Data | Batch, Tensor | None]]


def _train_classifier(
    settings: TrainSettings,
    *,
    num_features: int,
    num_classes: int,
    node_level: bool,
    train_batches: Callable[[], _Batches],
    splits: dict[str, tuple[Data | Batch, Tensor | None]],
    num_train: int,
    task_name: str,
    callback: EpochCallback | None,
) -> dict[str, Any]:
    """Build ``GraphEncoder -> head`` under ``settings.seed`` (the global RNG is left as it was),
    train it with :func:`_fit`, and add ``seconds``, ``model``, ``head``, ``task`` and
    ``num_classes``."""
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        encoder = GraphEncoder(
            num_features,
            settings.hidden_size,
            settings.num_layers,
            **{
                "model": settings.model,
                "readout": settings.readout,
                "dropout": settings.dropout,
                **settings.model_kwargs,
            },
        )
        net = _Classifier(encoder, num_classes, node_level, settings.head, settings.head_kwargs)
        net = net.to(resolve_device(settings.device))
        result = _fit(net, train_batches, splits, num_train, settings, callback)
    return {
        **result,
        "seconds": time.perf_counter() - start,
        "model": settings.model,
        "head": settings.head,
        "task": task_name,
        "num_classes": num_classes,
    }


def _fit(
    net: _Classifier,
    train_batches: Callable[[], _Batches],
    splits: dict[str, tuple[Data | Batch, Tensor | None]],
    num_train: int,
    settings: TrainSettings,
    callback: EpochCallback | None,
) -> dict[str, Any]:
    """The one training loop of node and graph classification.

    Each epoch: one pass over ``train_batches()`` with Adam, then an evaluation of every split.
    The parameters of the epoch with the best validation accuracy (ties: lower validation NLL)
    are restored at the end and give the test probabilities (temperature-scaled for
    ``head="temperature"``) and metrics.
    """
    from bayes import calibration

    bins, num_samples = settings.calibration_bins, settings.num_samples
    head_decay = 0.0 if net.bayesian else settings.weight_decay  # a Bayesian head has its prior
    optimizer = torch.optim.Adam(
        [
            {"params": net.encoder.parameters(), "weight_decay": settings.weight_decay},
            {"params": net.head.parameters(), "weight_decay": head_decay},
        ],
        lr=settings.lr,
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
    for epoch in range(1, settings.epochs + 1):
        net.train()
        losses = []
        for data, mask in train_batches():
            optimizer.zero_grad()
            y = data.y if mask is None else data.y[mask]
            loss = net.loss(net.embed(data, mask), y, num_train, settings.num_particles)
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
            test_log_probs.exp().double(), test_y, n_bins=bins
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
        "ece": calibration.expected_calibration_error(test_np, labels_np, n_bins=bins),
        "brier": calibration.brier_score(test_np, labels_np),
        "val_accuracy": _accuracy(val_probs, val_y),
        "val_nll": calibration.negative_log_likelihood(
            val_probs.cpu().numpy(), val_y.cpu().numpy()
        ),
        "train_accuracy": best["train_accuracy"],
        "best_epoch": int(best["best_epoch"]),
        "temperature": temperature,
        "epochs": settings.epochs,
        "test_probs": test_np.astype(np.float32),
        "test_labels": labels_np.astype(np.int64),
        "history": history,
    }


def _accuracy(scores: Tensor, y: Tensor) -> float:
    return float((scores.argmax(dim=-1) == y).float().mean()) if y.numel() else float("nan")
