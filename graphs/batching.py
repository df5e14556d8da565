r"""The padded graph form <-> :class:`torch_geometric.data.Batch`, without a loop over graphs.

Environments hand out graphs in one fixed-size *padded form* (docs/architecture.md, "Graph
observations") so that batches of graphs stack like any other observation:

=============  ======================  =========================================================
key            shape                   meaning
=============  ======================  =========================================================
``x``          ``[B, N_max, F]``       node features; rows of masked nodes are ignored
``edge_index`` ``[B, 2, E_max]`` int   ``(source, target)`` as *local* node indices in
                                       ``[0, N_max)``; columns of masked edges are ignored
``node_mask``  ``[B, N_max]`` bool     which node slots hold a node
``edge_mask``  ``[B, E_max]`` bool     which edge slots hold an edge
``edge_attr``  ``[B, E_max, D]``       optional edge features
=============  ======================  =========================================================

Masks may have holes anywhere (a node removed from the middle of a graph keeps its slot), so
:func:`torch_geometric.utils.to_dense_batch`, which assumes each graph's nodes fill a prefix of
the padding, is not enough to come back; :func:`to_padded` is its masked counterpart.

Everything here is a handful of tensor kernels. The one host synchronisation that cannot be avoided
is reading the total numbers of kept nodes and edges, which size the output tensors of
:func:`to_pyg_batch`; validation is folded into that same read, so turning it on costs no second
synchronisation on an accelerator (only when an input is wrong is more read back, to name it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

__all__ = ["from_pyg_batch", "pad_graphs", "to_padded", "to_pyg_batch"]


def _shape(t: Tensor) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def _indices_of_true(mask: Tensor, count: int) -> Tensor:
    """Positions of the ``count`` true entries of a 1-D ``mask``, in order, without a sync."""
    try:
        return torch.nonzero_static(mask, size=count).squeeze(1)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - backends without the op
        return mask.nonzero().squeeze(1)


def _check_padded(
    x: Tensor,
    edge_index: Tensor,
    node_mask: Tensor,
    edge_mask: Tensor,
    edge_attr: Tensor | None,
) -> None:
    """Static checks (shapes, dtypes, devices): they never read tensor values."""
    if x.dim() < 3:
        raise ValueError(f"x must have shape [B, N_max, F], got {_shape(x)}")
    num_graphs, max_nodes = x.shape[:2]
    if node_mask.shape != (num_graphs, max_nodes):
        raise ValueError(
            f"node_mask must have shape [B, N_max] = [{num_graphs}, {max_nodes}] to match x "
            f"{_shape(x)}, got {_shape(node_mask)}"
        )
    if edge_index.dim() != 3 or edge_index.shape[:2] != (num_graphs, 2):
        raise ValueError(
            f"edge_index must have shape [B, 2, E_max] with B = {num_graphs}, "
            f"got {_shape(edge_index)}"
        )
    max_edges = edge_index.shape[2]
    if edge_mask.shape != (num_graphs, max_edges):
        raise ValueError(
            f"edge_mask must have shape [B, E_max] = [{num_graphs}, {max_edges}] to match "
            f"edge_index {_shape(edge_index)}, got {_shape(edge_mask)}"
        )
    if edge_attr is not None and (edge_attr.dim() < 2 or edge_attr.shape[:2] != edge_mask.shape):
        raise ValueError(
            f"edge_attr must have shape [B, E_max, D] = [{num_graphs}, {max_edges}, D], "
            f"got {_shape(edge_attr)}"
        )
    for name, mask in (("node_mask", node_mask), ("edge_mask", edge_mask)):
        if mask.dtype != torch.bool:
            raise TypeError(f"{name} must be a bool tensor, got {mask.dtype}; use `{name} != 0`")
    if edge_index.dtype.is_floating_point or edge_index.dtype.is_complex:
        raise TypeError(f"edge_index must be an integer (int64) tensor, got {edge_index.dtype}")
    tensors = {"edge_index": edge_index, "node_mask": node_mask, "edge_mask": edge_mask}
    if edge_attr is not None:
        tensors["edge_attr"] = edge_attr
    for name, t in tensors.items():
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}; move both to one")


def _bad_edges(edge_index: Tensor, node_mask: Tensor, edge_mask: Tensor) -> Tensor:
    """``[B, E_max]`` bool: kept edges with an end outside ``[0, N_max)`` or at a masked node."""
    num_graphs, max_nodes = node_mask.shape
    in_range = (edge_index >= 0) & (edge_index < max_nodes)
    if max_nodes == 0:
        return edge_mask.clone()
    safe = edge_index.clamp(0, max_nodes - 1).reshape(num_graphs, 2 * edge_index.shape[2])
    at_node = node_mask.gather(1, safe).reshape(edge_index.shape)
    return edge_mask & ~(in_range & at_node).all(dim=1)


def _raise_bad_edge(bad: Tensor, edge_index: Tensor, node_mask: Tensor) -> None:
    graph, edge = (int(i) for i in bad.nonzero()[0])
    max_nodes = node_mask.shape[1]
    src, dst = (int(i) for i in edge_index[graph, :, edge])
    for end in (src, dst):
        if not 0 <= end < max_nodes:
            raise ValueError(
                f"graph {graph}: edge {edge} ({src} -> {dst}) points at node {end}, outside the "
                f"padding [0, {max_nodes}); raise N_max or drop the edge with edge_mask"
            )
    masked = dst if bool(node_mask[graph, src]) else src
    raise ValueError(
        f"graph {graph}: edge {edge} ({src} -> {dst}) points at masked node {masked} "
        f"(node_mask[{graph}, {masked}] is False); mask the edge too (edge_mask[{graph}, {edge}] "
        "= False) or unmask the node"
    )


def to_pyg_batch(
    x: Tensor,
    edge_index: Tensor,
    node_mask: Tensor,
    edge_mask: Tensor,
    edge_attr: Tensor | None = None,
    *,
    validate: bool = True,
) -> Batch:
    r"""Turn a padded batch of graphs into one :class:`torch_geometric.data.Batch`.

    Masked node slots and masked edge slots are dropped; every kept edge is renumbered from local
    padded indices to indices into the concatenated node list. With the exclusive prefix count
    :math:`c_{b,i} = \sum_{(b',i') < (b,i)} m_{b',i'}` over the node mask :math:`m` in row-major
    order, kept node :math:`(b, i)` becomes node :math:`c_{b,i}` and a kept edge
    :math:`(b, s \to t)` becomes :math:`c_{b,s} \to c_{b,t}`. Graph :math:`b`'s nodes fill
    :math:`[\mathrm{ptr}_b, \mathrm{ptr}_{b+1})` with
    :math:`\mathrm{ptr}_b = \sum_{b' < b} \sum_i m_{b',i}`, in the order of their slots.

    The result equals ``Batch.from_data_list`` of the graphs taken one by one (same tensors,
    same ``batch``/``ptr``), including the bookkeeping that makes ``batch.to_data_list()`` and
    ``batch.get_example(i)`` work; a graph with no kept node is an empty graph in the batch.

    Note:
        One host synchronisation is unavoidable: the totals :math:`N` and :math:`E` size the
        outputs. They are read together in one transfer, and validation's count of bad edges
        rides along in it; everything else (the index remap, ``batch``, ``ptr``, the
        ``nonzero_static`` selections) stays on the device without waiting.

    Args:
        x: Node features.
        edge_index: ``(source, target)`` local node indices of each graph (any integer dtype;
            returned as int64).
        node_mask: Which node slots hold a node.
        edge_mask: Which edge slots hold an edge.
        edge_attr: Optional edge features. (default: ``None``)
        validate: Check that every kept edge points at kept nodes inside the padding and raise a
            ``ValueError`` naming the graph and the edge otherwise. It adds no host
            synchronisation (see the module docstring). With ``False``, such an edge gives
            undefined results (an index error, or an edge into another graph).
            (default: ``True``)

    Returns:
        A ``Batch`` with ``x``, ``edge_index``, ``edge_attr`` (when given), ``batch`` and ``ptr``.

    Raises:
        ValueError: Shapes that do not fit together, tensors on different devices, or (with
            ``validate``) an edge outside ``[0, N_max)`` or at a masked node.
        TypeError: Masks that are not bool, a floating-point ``edge_index``.

    Shapes:
        - **x** ``[B, N_max, F]`` (any trailing feature shape)
        - **edge_index** ``[B, 2, E_max]``, **node_mask** ``[B, N_max]``,
          **edge_mask** ``[B, E_max]``, **edge_attr** ``[B, E_max, D]``
        - **output** ``x`` ``[N, F]``, ``edge_index`` ``[2, E]``, ``edge_attr`` ``[E, D]``,
          ``batch`` ``[N]``, ``ptr`` ``[B + 1]``, where ``N = node_mask.sum()`` and
          ``E = edge_mask.sum()``.

    Example:
        >>> x = torch.randn(2, 3, 4)
        >>> edge_index = torch.tensor([[[0, 1], [1, 2]], [[0, 0], [1, 0]]])
        >>> node_mask = torch.tensor([[True, True, True], [True, True, False]])
        >>> edge_mask = torch.tensor([[True, True], [True, False]])
        >>> to_pyg_batch(x, edge_index, node_mask, edge_mask)
        DataBatch(x=[5, 4], edge_index=[2, 3], batch=[5], ptr=[3])
    """
    _check_padded(x, edge_index, node_mask, edge_mask, edge_attr)
    edge_index = edge_index.long()
    num_graphs, max_nodes = node_mask.shape
    max_edges = edge_mask.shape[1]
    device = x.device

    node_counts = node_mask.sum(dim=1)
    edge_counts = edge_mask.sum(dim=1)
    counts = [node_counts.sum(), edge_counts.sum()]
    bad = None
    if validate:
        bad = _bad_edges(edge_index, node_mask, edge_mask)
        counts.append(bad.sum())
    # The one unavoidable host sync: the output sizes (and, folded in, the number of bad edges).
    num_nodes, num_edges, *num_bad = torch.stack(counts).tolist()
    if bad is not None and num_bad[0] > 0:
        _raise_bad_edge(bad, edge_index, node_mask)

    flat_node_mask = node_mask.reshape(-1)
    node_slots = _indices_of_true(flat_node_mask, num_nodes)  # [N] into B * N_max
    edge_slots = _indices_of_true(edge_mask.reshape(-1), num_edges)  # [E] into B * E_max
    new_index = torch.cumsum(flat_node_mask, dim=0) - 1  # slot -> position among kept nodes

    edge_graph = edge_slots // max_edges if max_edges else edge_slots
    local = edge_index.transpose(0, 1).reshape(2, -1)[:, edge_slots]  # [2, E]
    new_edge_index = new_index[local + edge_graph * max_nodes] if num_edges else local

    zero = torch.zeros(1, dtype=torch.long, device=device)
    ptr = torch.cat([zero, torch.cumsum(node_counts, dim=0)])
    edge_ptr = torch.cat([zero, torch.cumsum(edge_counts, dim=0)])
    batch_vector = node_slots // max_nodes if max_nodes else node_slots

    attrs = {
        "x": x.reshape(num_graphs * max_nodes, *x.shape[2:])[node_slots],
        "edge_index": new_edge_index,
    }
    if edge_attr is not None:
        attrs["edge_attr"] = edge_attr.reshape(num_graphs * max_edges, *edge_attr.shape[2:])[
            edge_slots
        ]
    out = Batch(**attrs, batch=batch_vector, ptr=ptr)

    # The bookkeeping Batch.from_data_list leaves, so that to_data_list()/get_example() work.
    no_increment = torch.zeros(num_graphs, dtype=torch.long, device=device)
    out._num_graphs = num_graphs
    out._slice_dict = {"x": ptr, "edge_index": edge_ptr}
    out._inc_dict = {"x": no_increment, "edge_index": ptr[:-1]}
    if edge_attr is not None:
        out._slice_dict["edge_attr"] = edge_ptr
        out._inc_dict["edge_attr"] = no_increment
    return out


def to_padded(
    node_values: Tensor,
    batch: Tensor | None,
    node_mask: Tensor,
    *,
    validate: bool = True,
) -> Tensor:
    r"""Put node-level values of a batch made by :func:`to_pyg_batch` back into the padding.

    The inverse of the node part of :func:`to_pyg_batch`: with the same prefix count
    :math:`c_{b,i}`, the output is :math:`\mathrm{out}_{b,i} = v_{c_{b,i}}` where
    :math:`m_{b,i}` holds and :math:`0` at masked slots. It is a gather (no host sync, gradients
    flow to ``node_values``), unlike :func:`torch_geometric.utils.to_dense_batch`, which assumes
    that each graph's nodes fill a prefix of the padding.

    Args:
        node_values: One row per kept node, in the order of the batch (e.g. node embeddings).
        batch: The batch's ``batch`` vector, used only to check that ``node_values`` follow
            ``node_mask``; ``None`` skips that check.
        node_mask: The node mask the batch was made from.
        validate: Check that ``node_values`` has one row per kept node and that ``batch`` agrees
            with ``node_mask`` (reads tensor values, so it synchronises).
            (default: ``True``)

    Returns:
        The padded values, zeros at masked slots.

    Raises:
        ValueError: ``node_values``, ``batch`` and ``node_mask`` do not describe the same nodes.

    Shapes:
        - **node_values** ``[N, ...]``, **batch** ``[N]``, **node_mask** ``[B, N_max]``
        - **output** ``[B, N_max, ...]``
    """
    if node_mask.dim() != 2 or node_mask.dtype != torch.bool:
        raise ValueError(
            f"node_mask must be a bool tensor of shape [B, N_max], got {node_mask.dtype} "
            f"{_shape(node_mask)}"
        )
    if node_values.dim() < 1:
        raise ValueError("node_values must have a leading node axis [N, ...], got a scalar")
    if batch is not None and batch.shape != node_values.shape[:1]:
        raise ValueError(
            f"batch {_shape(batch)} must have one entry per row of node_values "
            f"{_shape(node_values)}"
        )
    num_graphs, max_nodes = node_mask.shape
    flat_mask = node_mask.reshape(-1)
    if validate:
        expected = int(flat_mask.sum())
        if node_values.shape[0] != expected:
            raise ValueError(
                f"node_values has {node_values.shape[0]} rows but node_mask keeps {expected} "
                "nodes; pass the node_mask the batch was made from"
            )
        if batch is not None:
            graph_of_slot = torch.arange(num_graphs, device=node_mask.device).repeat_interleave(
                max_nodes
            )
            if not torch.equal(batch, graph_of_slot[flat_mask]):
                raise ValueError(
                    "batch does not match node_mask: nodes must be ordered by graph and, within "
                    "a graph, by slot, as to_pyg_batch makes them"
                )
    trailing = node_values.shape[1:]
    if node_values.shape[0] == 0:
        return node_values.new_zeros(num_graphs, max_nodes, *trailing)
    position = (torch.cumsum(flat_mask, dim=0) - 1).clamp(min=0)
    gathered = node_values.index_select(0, position)
    keep = flat_mask.reshape(-1, *([1] * len(trailing)))
    out = torch.where(keep, gathered, gathered.new_zeros(()))
    return out.reshape(num_graphs, max_nodes, *trailing)


def from_pyg_batch(
    batch: Batch | Data,
    max_nodes: int | None = None,
    max_edges: int | None = None,
) -> dict[str, Tensor]:
    r"""Pad a PyG batch (or one graph) into the padded form: the inverse of :func:`to_pyg_batch`.

    Graph :math:`b`'s nodes go to slots :math:`0, \dots, n_b - 1` and its edges to slots
    :math:`0, \dots, e_b - 1` (in their order in the batch); ``edge_index`` is made local by
    subtracting :math:`\mathrm{ptr}_b`. Vectorised; the sizes are read once when
    ``max_nodes``/``max_edges`` are left to be inferred, and the limits are checked.

    Args:
        batch: A ``Batch`` (e.g. from ``Batch.from_data_list``) or one ``Data``; node features
            ``x`` are required, ``edge_attr`` is carried when present.
        max_nodes: ``N_max``; the largest graph's node count when ``None``. (default: ``None``)
        max_edges: ``E_max``; the largest graph's edge count when ``None``. (default: ``None``)

    Returns:
        The padded form: a dict with ``x``, ``edge_index``, ``node_mask``, ``edge_mask`` and,
        when the batch has them, ``edge_attr``.

    Raises:
        ValueError: A graph has more nodes than ``max_nodes`` or more edges than ``max_edges``.

    Shapes:
        - **output** ``x`` ``[B, N_max, F]``, ``edge_index`` ``[B, 2, E_max]``,
          ``node_mask`` ``[B, N_max]``, ``edge_mask`` ``[B, E_max]``, ``edge_attr``
          ``[B, E_max, D]``.
    """
    x = batch.x
    if x is None:
        raise ValueError("the batch has no node features x; set data.x before padding")
    device = x.device
    num_nodes = x.shape[0]
    node_batch = getattr(batch, "batch", None)
    if node_batch is None:
        node_batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    num_graphs = batch.num_graphs if isinstance(batch, Batch) else 1
    edge_index = batch.edge_index
    if edge_index is None:
        edge_index = torch.zeros(2, 0, dtype=torch.long, device=device)
    edge_attr = getattr(batch, "edge_attr", None)

    node_counts = torch.bincount(node_batch, minlength=num_graphs)
    ptr = torch.cat([node_counts.new_zeros(1), torch.cumsum(node_counts, 0)])
    edge_graph = node_batch[edge_index[0]]
    order = torch.argsort(edge_graph, stable=True)
    edge_graph, edge_index = edge_graph[order], edge_index[:, order]
    if edge_attr is not None:
        edge_attr = edge_attr[order]
    edge_counts = torch.bincount(edge_graph, minlength=num_graphs)
    edge_ptr = torch.cat([edge_counts.new_zeros(1), torch.cumsum(edge_counts, 0)])

    most_nodes, most_edges = (
        torch.stack([node_counts.max(), edge_counts.max()]).tolist() if num_graphs else (0, 0)
    )
    max_nodes = most_nodes if max_nodes is None else max_nodes
    max_edges = most_edges if max_edges is None else max_edges
    if most_nodes > max_nodes:
        raise ValueError(f"a graph has {most_nodes} nodes but max_nodes is {max_nodes}; raise it")
    if most_edges > max_edges:
        raise ValueError(f"a graph has {most_edges} edges but max_edges is {max_edges}; raise it")

    node_slot = torch.arange(num_nodes, device=device) - ptr[node_batch]
    edge_slot = torch.arange(edge_index.shape[1], device=device) - edge_ptr[edge_graph]
    out_x = x.new_zeros(num_graphs, max_nodes, *x.shape[1:])
    out_x[node_batch, node_slot] = x
    node_mask = torch.zeros(num_graphs, max_nodes, dtype=torch.bool, device=device)
    node_mask[node_batch, node_slot] = True
    out_edges = torch.zeros(num_graphs, 2, max_edges, dtype=torch.long, device=device)
    out_edges[edge_graph, :, edge_slot] = edge_index.t() - ptr[edge_graph].unsqueeze(1)
    edge_mask = torch.zeros(num_graphs, max_edges, dtype=torch.bool, device=device)
    edge_mask[edge_graph, edge_slot] = True
    padded = {"x": out_x, "edge_index": out_edges, "node_mask": node_mask, "edge_mask": edge_mask}
    if edge_attr is not None:
        out_attr = edge_attr.new_zeros(num_graphs, max_edges, *edge_attr.shape[1:])
        out_attr[edge_graph, edge_slot] = edge_attr
        padded["edge_attr"] = out_attr
    return padded


def pad_graphs(
    data_list: Sequence[Data],
    max_nodes: int | None = None,
    max_edges: int | None = None,
) -> dict[str, Tensor]:
    """Pad a list of graphs into the padded form (``from_pyg_batch(Batch.from_data_list(...))``).

    Args:
        data_list: Graphs with node features ``x`` (and optionally ``edge_attr``).
        max_nodes: ``N_max``; the largest graph's node count when ``None``. (default: ``None``)
        max_edges: ``E_max``; the largest graph's edge count when ``None``. (default: ``None``)

    Returns:
        The padded form, as :func:`from_pyg_batch` returns it.

    Shapes:
        - **output** ``x`` ``[len(data_list), N_max, F]``, the rest as in :func:`from_pyg_batch`.
    """
    if len(data_list) == 0:
        raise ValueError("data_list is empty; pad at least one graph")
    return from_pyg_batch(Batch.from_data_list(list(data_list)), max_nodes, max_edges)
