r"""GNN encoders for graphs in the padded form, built on PyTorch Geometric's own models.

:class:`GraphEncoder` is a PyG message-passing model (``GCN``, ``GAT``, ``GATv2``, ``GIN`` or
``GraphSAGE`` from :mod:`torch_geometric.nn.models`) followed by a PyG readout. It takes the padded
graph observations (:mod:`graphs.batching`; docs/architecture.md, "Graph observations") with
any leading batch axes (e.g. ``[T, B, ...]`` from a rollout) and returns node embeddings, for
node-selection actions, and a graph embedding.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import AttentionalAggregation, global_max_pool, global_mean_pool
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE
from torch_geometric.nn.models.basic_gnn import BasicGNN

from graphs.batching import to_padded, to_pyg_batch

__all__ = ["MODELS", "READOUTS", "GraphEncoder"]

#: Model names and the PyG model (with fixed keyword arguments) each one builds.
MODELS: dict[str, tuple[type[BasicGNN], dict[str, Any]]] = {
    "gcn": (GCN, {}),
    "gat": (GAT, {}),
    "gatv2": (GAT, {"v2": True}),
    "gin": (GIN, {}),
    "sage": (GraphSAGE, {}),
}

#: Readout names: how node embeddings become one graph embedding.
READOUTS: tuple[str, ...] = ("mean", "max", "attention")

#: The keys of a padded graph observation; ``edge_attr`` is optional.
PADDED_KEYS: tuple[str, ...] = ("x", "edge_index", "node_mask", "edge_mask")


def _unknown(kind: str, name: str, choices: tuple[str, ...] | list[str]) -> ValueError:
    close = difflib.get_close_matches(str(name), choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    options = ", ".join(repr(c) for c in choices)
    return ValueError(f"unknown {kind} {name!r}{hint}; choose one of {options}")


class GraphEncoder(nn.Module):
    r"""A PyG GNN plus a readout: padded graphs -> node embeddings and a graph embedding.

    With :math:`h^{(0)}_v = x_v`, each of the ``num_layers`` layers of the chosen model updates

    .. math::
        h^{(\ell+1)}_v = \phi^{(\ell)}\Big(h^{(\ell)}_v,\
            \bigoplus_{u \in \mathcal{N}(v)} \psi^{(\ell)}(h^{(\ell)}_u, h^{(\ell)}_v, e_{uv})\Big)

    (GCN: symmetric-normalised sum with self-loops, Kipf & Welling 2017; GAT/GATv2: attention-
    weighted sum, Velickovic et al. 2018 / Brody et al. 2022; GIN: sum into an MLP, Xu et al.
    2019; GraphSAGE: mean plus a root weight, Hamilton et al. 2017), with ``act`` (and dropout)
    between layers and none after the last. Messages only travel along kept edges between kept
    nodes of the same graph. The graph embedding is a readout over graph :math:`b`'s kept nodes
    :math:`V_b`:

    .. math::
        g_b = \frac{1}{|V_b|} \sum_{v \in V_b} h_v \ (\text{mean}), \qquad
        g_b = \max_{v \in V_b} h_v \ (\text{max}), \qquad
        g_b = \sum_{v \in V_b} \operatorname{softmax}_{v \in V_b}(w^\top h_v + c)\, h_v
        \ (\text{attention})

    (:func:`~torch_geometric.nn.global_mean_pool`, :func:`~torch_geometric.nn.global_max_pool`,
    :class:`~torch_geometric.nn.aggr.AttentionalAggregation`, Li et al. 2016). A graph with no
    kept node gets :math:`g_b = 0`. Node embeddings are invariant to where the nodes sit in the
    padding and equivariant to their order; graph embeddings are invariant to both.

    Args:
        in_features: Node feature size :math:`F`.
        hidden_size: Size :math:`H` of every layer and of both embeddings. (default: ``64``)
        num_layers: Number of message-passing layers. (default: ``2``)
        model: One of :data:`MODELS`: ``"gcn"``, ``"gat"``, ``"gatv2"``, ``"gin"``, ``"sage"``.
            (default: ``"gcn"``)
        readout: One of :data:`READOUTS`: ``"mean"``, ``"max"``, ``"attention"``.
            (default: ``"mean"``)
        edge_dim: Size :math:`D` of ``edge_attr`` to use it: edge features for ``"gat"`` and
            ``"gatv2"``, edge weights for ``"gcn"`` (``edge_dim=1``). ``None`` ignores
            ``edge_attr``. (default: ``None``)
        dropout: Dropout between layers (and on attention coefficients for GAT).
            (default: ``0.0``)
        act: Activation between layers, any name PyG resolves. (default: ``"relu"``)
        validate: Check that edges point at kept nodes inside the padding (no extra host
            synchronisation; see :func:`graphs.batching.to_pyg_batch`). (default: ``True``)
        **model_kwargs: Passed on to the PyG model, e.g. ``heads=4`` for GAT or ``norm=...``.

    Raises:
        ValueError: Unknown ``model`` or ``readout`` (the message names the choices), or an
            ``edge_dim`` the model cannot use.

    Shapes:
        - **input** a mapping with ``x`` ``[*, N_max, F]``, ``edge_index`` ``[*, 2, E_max]``,
          ``node_mask`` ``[*, N_max]``, ``edge_mask`` ``[*, E_max]`` and optionally
          ``edge_attr`` ``[*, E_max, D]``, where ``*`` is one or more leading batch axes.
          Masks may be bool or numeric (non-zero = kept) and ``edge_index`` may be stored as
          floats, as rollout buffers often do.
        - **output** ``(node_embeddings [*, N_max, H], graph_embedding [*, H])``; node
          embeddings are zero at masked slots.

    Example:
        >>> encoder = GraphEncoder(4, hidden_size=32, model="gin", readout="max")
        >>> obs = {
        ...     "x": torch.randn(5, 8, 3, 4),  # [T, B, N_max, F]
        ...     "edge_index": torch.zeros(5, 8, 2, 6, dtype=torch.long),
        ...     "node_mask": torch.ones(5, 8, 3, dtype=torch.bool),
        ...     "edge_mask": torch.zeros(5, 8, 6, dtype=torch.bool),
        ... }
        >>> nodes, graph = encoder(obs)
        >>> nodes.shape, graph.shape
        (torch.Size([5, 8, 3, 32]), torch.Size([5, 8, 32]))
    """

    def __init__(
        self,
        in_features: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        model: str = "gcn",
        readout: str = "mean",
        *,
        edge_dim: int | None = None,
        dropout: float = 0.0,
        act: str = "relu",
        validate: bool = True,
        **model_kwargs: Any,
    ) -> None:
        super().__init__()
        if model not in MODELS:
            raise _unknown("model", model, list(MODELS))
        if readout not in READOUTS:
            raise _unknown("readout", readout, READOUTS)
        if in_features < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(
                "in_features, hidden_size and num_layers must be positive, got "
                f"{in_features}, {hidden_size}, {num_layers}"
            )
        model_cls, fixed = MODELS[model]
        kwargs = {**fixed, **model_kwargs}
        if edge_dim is not None:
            if model in ("gat", "gatv2"):
                kwargs["edge_dim"] = edge_dim
            elif model == "gcn" and edge_dim == 1:
                pass  # a scalar edge feature is GCN's edge weight
            else:
                raise ValueError(
                    f"model {model!r} cannot use edge features of size {edge_dim}: use 'gat' or "
                    "'gatv2' (any edge_dim) or 'gcn' (edge_dim=1, edge weights), or leave "
                    "edge_dim=None to ignore edge_attr"
                )
        self.in_features = in_features
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.model = model
        self.readout = readout
        self.edge_dim = edge_dim
        self.validate = validate
        self.gnn = model_cls(
            in_features, hidden_size, num_layers, dropout=dropout, act=act, **kwargs
        )
        self.attention = (
            AttentionalAggregation(gate_nn=nn.Linear(hidden_size, 1))
            if readout == "attention"
            else None
        )
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        """Size ``H`` of the node and graph embeddings."""
        return self.hidden_size

    def reset_parameters(self) -> None:
        """Re-initialise the GNN and the readout as PyG does."""
        self.gnn.reset_parameters()
        if self.attention is not None:
            self.attention.reset_parameters()

    def encode(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
        edge_attr: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Embed graphs already in PyG's form (concatenated nodes, global ``edge_index``).

        Args:
            x: Node features.
            edge_index: Edges as indices into ``x``.
            batch: Graph of each node; ``None`` for a single graph.
            num_graphs: Number of graphs ``B`` (``1`` when ``batch`` is ``None``). Give it to
                avoid a host sync and to keep trailing empty graphs.
            edge_attr: Edge features, used when ``edge_dim`` was set.

        Returns:
            ``(node_embeddings, graph_embedding)``.

        Shapes:
            - **x** ``[N, F]``, **edge_index** ``[2, E]``, **batch** ``[N]``,
              **edge_attr** ``[E, D]``
            - **output** ``([N, H], [B, H])``
        """
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            num_graphs = 1
        elif num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        gnn_kwargs: dict[str, Tensor] = {}
        if self.edge_dim is not None and edge_attr is not None:
            if self.model == "gcn":
                gnn_kwargs["edge_weight"] = edge_attr.reshape(-1)
            else:
                gnn_kwargs["edge_attr"] = edge_attr.reshape(edge_attr.shape[0], -1)
        nodes = self.gnn(x, edge_index, **gnn_kwargs)
        if self.readout == "mean":
            graph = global_mean_pool(nodes, batch, size=num_graphs)
        elif self.readout == "max":
            graph = global_max_pool(nodes, batch, size=num_graphs)
        else:
            graph = self.attention(nodes, index=batch, dim_size=num_graphs)
        return nodes, graph

    def encode_data(self, data: Data | Batch) -> tuple[Tensor, Tensor]:
        """:meth:`encode` a PyG ``Data`` (one graph) or ``Batch`` (many graphs).

        Shapes:
            - **output** ``([num_nodes, H], [num_graphs, H])``
        """
        batch = data.batch if isinstance(data, Batch) else None
        num_graphs = data.num_graphs if isinstance(data, Batch) else None
        return self.encode(
            data.x, data.edge_index, batch, num_graphs, getattr(data, "edge_attr", None)
        )

    def forward(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Embed a batch of padded graphs.

        Leading axes are flattened into one batch of graphs, turned into a PyG batch with
        :func:`~graphs.batching.to_pyg_batch` (one host sync for its sizes), encoded by
        :meth:`encode` and put back with :func:`~graphs.batching.to_padded` (a gather). PyG's
        layers may synchronise inside too (e.g. GCN's self-loop insertion).

        Args:
            obs: The padded graphs: ``x``, ``edge_index``, ``node_mask``, ``edge_mask`` and
                optionally ``edge_attr`` (used when ``edge_dim`` was set).

        Returns:
            ``(node_embeddings, graph_embedding)``; node embeddings are zero at masked slots and
            a graph with no kept node has a zero graph embedding.

        Raises:
            ValueError: Missing keys, shapes that do not fit together, the wrong feature size,
                or (with ``validate``) an edge outside the padding or at a masked node.

        Shapes:
            - **obs** ``x`` ``[*, N_max, F]``, ``edge_index`` ``[*, 2, E_max]``, ``node_mask``
              ``[*, N_max]``, ``edge_mask`` ``[*, E_max]``, ``edge_attr`` ``[*, E_max, D]``
            - **output** ``([*, N_max, H], [*, H])``
        """
        missing = [key for key in PADDED_KEYS if key not in obs]
        if missing:
            raise ValueError(
                f"a padded graph observation needs keys {list(PADDED_KEYS)} (and optionally "
                f"'edge_attr'); missing {missing}"
            )
        x = obs["x"]
        if x.dim() < 3:
            raise ValueError(
                f"x must have shape [*batch, N_max, F] with at least one batch axis, got "
                f"{list(x.shape)}; add a batch axis with x.unsqueeze(0)"
            )
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"x has {x.shape[-1]} features, the encoder expects {self.in_features}"
            )
        lead, (max_nodes, num_features) = x.shape[:-2], x.shape[-2:]
        edge_index, node_mask, edge_mask = obs["edge_index"], obs["node_mask"], obs["edge_mask"]
        edge_attr = obs.get("edge_attr")
        max_edges = edge_index.shape[-1]
        for name, t, tail in (
            ("edge_index", edge_index, (2, max_edges)),
            ("node_mask", node_mask, (max_nodes,)),
            ("edge_mask", edge_mask, (max_edges,)),
        ):
            if t.shape[: len(lead)] != lead or t.shape[len(lead) :] != tail:
                expected = [*lead, *tail]
                raise ValueError(
                    f"{name} must have shape {expected} to match x, got {list(t.shape)}"
                )
        if edge_index.dtype.is_floating_point:
            edge_index = edge_index.round()
        if node_mask.dtype != torch.bool:
            node_mask = node_mask != 0
        if edge_mask.dtype != torch.bool:
            edge_mask = edge_mask != 0
        if not x.dtype.is_floating_point:
            x = x.float()
        flat = math.prod(lead)  # explicit, as -1 is ambiguous for empty tensors
        if edge_attr is not None and self.edge_dim is not None:
            edge_attr = edge_attr.reshape(flat, max_edges, *edge_attr.shape[len(lead) + 1 :])
        else:
            edge_attr = None

        node_mask = node_mask.reshape(flat, max_nodes)
        batch = to_pyg_batch(
            x.reshape(flat, max_nodes, num_features),
            edge_index.reshape(flat, 2, max_edges).long(),
            node_mask,
            edge_mask.reshape(flat, max_edges),
            edge_attr,
            validate=self.validate,
        )
        nodes, graph = self.encode(
            batch.x, batch.edge_index, batch.batch, batch.num_graphs, batch.get("edge_attr")
        )
        nodes = to_padded(nodes, batch.batch, node_mask, validate=False)
        return (
            nodes.reshape(*lead, max_nodes, self.hidden_size),
            graph.reshape(*lead, self.hidden_size),
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_features}, {self.hidden_size}, "
            f"num_layers={self.num_layers}, model={self.model!r}, readout={self.readout!r})"
        )
