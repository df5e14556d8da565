"""Padded graphs <-> PyG batches: equality with Batch.from_data_list, inverses, clear errors."""

import doctest

import pytest
import torch
from torch_geometric.data import Batch, Data

import graphs.batching
from graphs.batching import from_pyg_batch, pad_graphs, to_padded, to_pyg_batch


def random_padded(
    gen: torch.Generator,
    num_graphs: int,
    max_nodes: int,
    max_edges: int,
    num_features: int = 3,
    edge_dim: int | None = 2,
) -> dict[str, torch.Tensor]:
    """Random padded graphs: holes anywhere in both masks, junk in every masked slot."""
    x = torch.randn(num_graphs, max_nodes, num_features, generator=gen)
    keep = torch.rand(num_graphs, 1, generator=gen)  # per-graph density, some graphs empty
    node_mask = torch.rand(num_graphs, max_nodes, generator=gen) < keep
    edge_index = torch.full((num_graphs, 2, max_edges), -7, dtype=torch.long)  # junk
    edge_mask = torch.zeros(num_graphs, max_edges, dtype=torch.bool)
    for b in range(num_graphs):
        kept = node_mask[b].nonzero().squeeze(1)
        if kept.numel() == 0:
            continue
        slots = torch.rand(max_edges, generator=gen) < 0.7
        ends = kept[torch.randint(kept.numel(), (2, max_edges), generator=gen)]
        edge_index[b, :, slots] = ends[:, slots]
        edge_mask[b] = slots
    padded = {"x": x, "edge_index": edge_index, "node_mask": node_mask, "edge_mask": edge_mask}
    if edge_dim is not None:
        padded["edge_attr"] = torch.randn(num_graphs, max_edges, edge_dim, generator=gen)
    return padded


def data_list_of(padded: dict[str, torch.Tensor]) -> list[Data]:
    """The reference: each graph on its own, built with a plain loop."""
    graphs = []
    for b in range(padded["x"].shape[0]):
        nodes = padded["node_mask"][b].nonzero().squeeze(1)
        renumber = torch.full((padded["x"].shape[1],), -1, dtype=torch.long)
        renumber[nodes] = torch.arange(nodes.numel())
        edges = padded["edge_mask"][b].nonzero().squeeze(1)
        data = Data(x=padded["x"][b, nodes], edge_index=renumber[padded["edge_index"][b][:, edges]])
        if "edge_attr" in padded:
            data.edge_attr = padded["edge_attr"][b, edges]
        graphs.append(data)
    return graphs


def random_cases(count: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        num_graphs = int(torch.randint(1, 7, (1,), generator=gen))
        max_nodes = int(torch.randint(1, 9, (1,), generator=gen))
        max_edges = int(torch.randint(0, 13, (1,), generator=gen))
        edge_dim = None if torch.rand(1, generator=gen) < 0.3 else 2
        yield random_padded(gen, num_graphs, max_nodes, max_edges, edge_dim=edge_dim)


def assert_same_batch(ours: Batch, ref: Batch) -> None:
    assert set(ours.keys()) == set(ref.keys())
    for key in ref.keys():
        assert torch.equal(ours[key], ref[key]), key
    assert ours.num_graphs == ref.num_graphs
    for mine, theirs in zip(ours.to_data_list(), ref.to_data_list(), strict=True):
        for key in theirs.keys():
            assert torch.equal(mine[key], theirs[key]), key


def test_equals_batch_from_data_list_on_random_graphs():
    for padded in random_cases(150):
        ours = to_pyg_batch(**padded)
        assert_same_batch(ours, Batch.from_data_list(data_list_of(padded)))
        assert ours.edge_index.dtype == torch.int64


def test_to_padded_inverts_the_node_part():
    for padded in random_cases(60, seed=1):
        batch = to_pyg_batch(**padded)
        mask = padded["node_mask"]
        back = to_padded(batch.x, batch.batch, mask)
        assert torch.equal(back, padded["x"] * mask.unsqueeze(-1))
        # Any trailing shape, e.g. per-node matrices.
        values = torch.randn(batch.num_nodes, 2, 3)
        padded_values = to_padded(values, batch.batch, mask)
        assert padded_values.shape == (*mask.shape, 2, 3)
        assert torch.equal(padded_values[mask], values)
        assert not padded_values[~mask].any()


def test_to_padded_with_no_kept_node():
    mask = torch.zeros(2, 3, dtype=torch.bool)
    out = to_padded(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), mask)
    assert out.shape == (2, 3, 4) and not out.any()


def test_pad_graphs_round_trip():
    for padded in random_cases(40, seed=2):
        graphs = data_list_of(padded)
        repadded = pad_graphs(graphs, max_nodes=9, max_edges=13)
        assert repadded["x"].shape[1] == 9 and repadded["edge_index"].shape[2] == 13
        assert_same_batch(to_pyg_batch(**repadded), Batch.from_data_list(graphs))
        # With sizes left to infer, the padding is as tight as the largest graph.
        tight = pad_graphs(graphs)
        assert tight["node_mask"].sum(1).max() == tight["node_mask"].shape[1]


def test_from_pyg_batch_handles_edges_not_grouped_by_graph():
    graphs = [
        Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1, 2], [1, 2, 0]])),
        Data(x=torch.randn(2, 2), edge_index=torch.tensor([[0, 1], [1, 0]])),
    ]
    batch = Batch.from_data_list(graphs)
    shuffled = batch.clone()
    shuffled.edge_index = batch.edge_index[:, torch.tensor([3, 0, 4, 1, 2])]
    padded = from_pyg_batch(shuffled)
    assert torch.equal(padded["edge_mask"].sum(1), torch.tensor([3, 2]))
    assert torch.equal(padded["edge_index"][1, :, :2], torch.tensor([[0, 1], [1, 0]]))
    assert torch.equal(to_pyg_batch(**padded).x, batch.x)
    single = from_pyg_batch(graphs[0])
    assert single["x"].shape == (1, 3, 2)


def test_pad_limits_are_clear_errors():
    graphs = [Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]))]
    with pytest.raises(ValueError, match="4 nodes but max_nodes is 3"):
        pad_graphs(graphs, max_nodes=3)
    with pytest.raises(ValueError, match="3 edges but max_edges is 2"):
        pad_graphs(graphs, max_edges=2)


def small_padded() -> dict[str, torch.Tensor]:
    return {
        "x": torch.randn(3, 4, 2),
        "edge_index": torch.tensor(
            [[[0, 1, 9], [1, 2, 9]], [[0, 0, 0], [1, 1, 1]], [[0, 1, 2], [1, 0, 2]]]
        ),
        "node_mask": torch.tensor(
            [[True, True, True, False], [True, True, False, False], [True, True, True, True]]
        ),
        "edge_mask": torch.tensor([[True, True, False], [True, False, False], [True, True, True]]),
    }


def test_masked_edge_slots_may_hold_junk():
    batch = to_pyg_batch(**small_padded())  # graph 0's third slot points at node 9: masked
    assert batch.edge_index.shape == (2, 6)


def test_edge_at_a_masked_node_names_graph_and_edge():
    padded = small_padded()
    padded["edge_index"][1, 1, 0] = 3  # graph 1 keeps nodes 0 and 1 only
    with pytest.raises(ValueError, match=r"graph 1: edge 0 \(0 -> 3\) points at masked node 3"):
        to_pyg_batch(**padded)
    padded["edge_index"][1, :, 0] = torch.tensor([2, 0])
    with pytest.raises(ValueError, match=r"masked node 2 \(node_mask\[1, 2\] is False\)"):
        to_pyg_batch(**padded)


@pytest.mark.parametrize("bad_node", [4, 100, -1])
def test_edge_outside_the_padding_names_graph_and_edge(bad_node):
    padded = small_padded()
    padded["edge_index"][2, 0, 2] = bad_node
    with pytest.raises(ValueError, match=r"graph 2: edge 2 .* outside the padding \[0, 4\)"):
        to_pyg_batch(**padded)


def test_validate_false_skips_the_value_checks():
    padded = small_padded()
    padded["edge_index"][1, 1, 0] = 3  # at a masked node: no error without validation
    batch = to_pyg_batch(**padded, validate=False)
    assert batch.edge_index.shape == (2, 6)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("x", torch.randn(3, 4), r"x must have shape \[B, N_max, F\]"),
        (
            "node_mask",
            torch.ones(3, 5, dtype=torch.bool),
            r"node_mask must have shape \[B, N_max\]",
        ),
        ("node_mask", torch.ones(2, 4, dtype=torch.bool), r"node_mask must have shape"),
        ("edge_index", torch.zeros(3, 3, 3, dtype=torch.long), r"edge_index must have shape"),
        ("edge_mask", torch.ones(3, 4, dtype=torch.bool), r"edge_mask must have shape"),
        ("edge_attr", torch.ones(3, 2, 5), r"edge_attr must have shape \[B, E_max, D\]"),
    ],
)
def test_shape_mismatches_are_value_errors(key, value, message):
    padded = small_padded()
    padded[key] = value
    with pytest.raises(ValueError, match=message):
        to_pyg_batch(**padded)


def test_wrong_dtypes_are_type_errors():
    padded = small_padded()
    with pytest.raises(TypeError, match="node_mask must be a bool tensor"):
        to_pyg_batch(**{**padded, "node_mask": padded["node_mask"].float()})
    with pytest.raises(TypeError, match="edge_index must be an integer"):
        to_pyg_batch(**{**padded, "edge_index": padded["edge_index"].float()})
    int32 = to_pyg_batch(**{**padded, "edge_index": padded["edge_index"].int()})
    assert int32.edge_index.dtype == torch.int64


def test_to_padded_checks_that_values_follow_the_mask():
    padded = small_padded()
    batch = to_pyg_batch(**padded)
    with pytest.raises(ValueError, match="node_values has 8 rows but node_mask keeps 9 nodes"):
        to_padded(batch.x[:-1], None, padded["node_mask"])
    with pytest.raises(ValueError, match="batch does not match node_mask"):
        to_padded(batch.x, batch.batch.flip(0), padded["node_mask"])
    with pytest.raises(ValueError, match="one entry per row"):
        to_padded(batch.x, batch.batch[:-1], padded["node_mask"])


def test_gradients_flow_through_both_directions():
    padded = small_padded()
    x = padded["x"].requires_grad_()
    batch = to_pyg_batch(**padded)
    back = to_padded(batch.x * 2, batch.batch, padded["node_mask"])
    back.sum().backward()
    expected = 2 * padded["node_mask"].unsqueeze(-1).expand_as(x).float()
    assert torch.equal(x.grad, expected)


def test_docstring_examples_run():
    results = doctest.testmod(graphs.batching, extraglobs={"torch": torch})
    assert results.attempted > 0 and results.failed == 0
