"""Graph-learning tasks by id, for benchmarks: one config per trial, agents as model + head.

Benchmarks address the tasks of :mod:`graphs.datasets` like environments, by id (:data:`TASKS`:
``graphs/SBM``, ``graphs/KarateClub``, ``graphs/Motifs``). A trial's :class:`GraphTaskConfig`
(from :func:`graph_task_config`, which maps an agent name such as ``gcn`` or ``gcn-temperature``
to a model and a head) is the :class:`~graphs.training.TrainSettings` of the run plus the task,
and :func:`train_task` runs it with :func:`~graphs.training.train_node_classifier` or
:func:`~graphs.training.train_graph_classifier`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from graphs.datasets import GRAPH_TASKS, NODE_TASKS
from graphs.encoders import MODELS
from graphs.training import (
    GRAPH_SETTINGS,
    HEADS,
    EpochCallback,
    TrainSettings,
    check_choice,
    train_graph_classifier,
    train_node_classifier,
)

__all__ = [
    "GRAPH_TASK_AGENTS",
    "TASKS",
    "TASK_NAMESPACE",
    "GraphTaskConfig",
    "TaskSpec",
    "graph_task_config",
    "is_graph_task",
    "train_task",
]

#: The namespace of learning-task ids: ``graphs/<Name>``.
TASK_NAMESPACE = "graphs/"


@dataclass(frozen=True)
class TaskSpec:
    """A graph-learning task addressed by id (a key of :data:`TASKS`).

    Attributes:
        kind: ``"node"`` (node classification, :func:`~graphs.training.train_node_classifier`)
            or ``"graph"`` (graph classification,
            :func:`~graphs.training.train_graph_classifier`).
        name: The builder's name in :data:`graphs.datasets.NODE_TASKS` or
            :data:`graphs.datasets.GRAPH_TASKS`.
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
        {**GRAPH_SETTINGS, "epochs": 40},
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
class GraphTaskConfig(TrainSettings):
    """Everything that defines one graph-learning trial. Logged with the run as ``config.json``.

    The fields of :class:`~graphs.training.TrainSettings` (model, head, optimiser, seed,
    device) and the task. Benchmarks build it with :func:`graph_task_config` and run it with
    :func:`train_task`.
    """

    task_id: str = "graphs/SBM"
    """A key of :data:`TASKS`."""
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments of the task's builder (a suite's ``env_kwargs``), e.g. ``feature_noise``."""

    def __post_init__(self) -> None:
        super().__post_init__()  # the types (agents/configs.py) and the training settings
        check_choice("learning task", self.task_id, list(TASKS))
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
    check_choice("learning task", task_id, list(TASKS))
    check_choice(f"agent for the learning task {task_id}", agent, list(GRAPH_TASK_AGENTS))
    model, _, head = agent.partition("-")
    settings = {**TASKS[task_id].defaults, "model": model, "head": head or "linear", **overrides}
    return GraphTaskConfig.from_dict({"task_id": task_id, **settings})


def train_task(config: GraphTaskConfig, callback: EpochCallback | None = None) -> dict[str, Any]:
    """Train ``config`` on its task: the config is the training settings.

    Args:
        config: The trial's config.
        callback: Called after every epoch with the epoch and its metrics.

    Returns:
        The dict of :func:`~graphs.training.train_node_classifier`.
    """
    spec = TASKS[config.task_id]
    train = train_node_classifier if spec.kind == "node" else train_graph_classifier
    return train(spec.name, config, task_kwargs=dict(config.task_kwargs), callback=callback)
