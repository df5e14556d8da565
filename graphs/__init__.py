"""Graph learning with PyTorch Geometric: padded graph batches, GNN encoders, graph tasks.

- :mod:`graphs.batching`: the padded graph form of graph observations (docs/architecture.md,
  "Graph observations") <-> a :class:`torch_geometric.data.Batch`, vectorised
  (:func:`to_pyg_batch`, :func:`to_padded`, :func:`from_pyg_batch`, :func:`pad_graphs`).
- :mod:`graphs.encoders`: :class:`GraphEncoder`, PyG's GCN/GAT/GATv2/GIN/GraphSAGE plus a
  mean/max/attention readout, on padded graphs with any leading batch axes.
- :mod:`graphs.communication`: :class:`AgentCommunication`, message passing between the agents
  of each copy over a complete, k-nearest-neighbour or radius graph of their positions
  (:func:`communication_graph`).
- :mod:`graphs.datasets`: the data of graph learning, generated or shipped with PyG: node
  classification (stochastic block model, karate club) and graph classification (structural
  motifs), with seeded splits.
- :mod:`graphs.training`: :func:`train_node_classifier` and :func:`train_graph_classifier`
  (linear, temperature-scaled or Bayesian heads) under :class:`TrainSettings`, with test
  accuracy and calibration.
- :mod:`graphs.tasks`: the same tasks by id (:data:`TASKS`: ``graphs/SBM``...) for benchmark
  suites, with :class:`GraphTaskConfig`, :func:`graph_task_config` and :func:`train_task`.
"""

from graphs.batching import from_pyg_batch, pad_graphs, to_padded, to_pyg_batch
from graphs.communication import (
    COMMUNICATION_GRAPHS,
    AgentCommunication,
    communication_graph,
    communication_options,
)
from graphs.datasets import (
    GRAPH_TASKS,
    NODE_TASKS,
    GraphTask,
    load_planetoid,
    make_karate_task,
    make_motif_task,
    make_sbm_task,
)
from graphs.encoders import MODELS, READOUTS, GraphEncoder
from graphs.tasks import (
    GRAPH_TASK_AGENTS,
    TASKS,
    GraphTaskConfig,
    TaskSpec,
    graph_task_config,
    is_graph_task,
    train_task,
)
from graphs.training import HEADS, TrainSettings, train_graph_classifier, train_node_classifier

__all__ = [
    "COMMUNICATION_GRAPHS",
    "GRAPH_TASKS",
    "GRAPH_TASK_AGENTS",
    "HEADS",
    "MODELS",
    "NODE_TASKS",
    "READOUTS",
    "TASKS",
    "AgentCommunication",
    "GraphEncoder",
    "GraphTask",
    "GraphTaskConfig",
    "TaskSpec",
    "TrainSettings",
    "communication_graph",
    "communication_options",
    "from_pyg_batch",
    "graph_task_config",
    "is_graph_task",
    "load_planetoid",
    "make_karate_task",
    "make_motif_task",
    "make_sbm_task",
    "pad_graphs",
    "to_padded",
    "to_pyg_batch",
    "train_graph_classifier",
    "train_node_classifier",
    "train_task",
]
