"""GraphEncoder: shapes, masks, permutation invariance/equivariance, gradients, errors."""

import doctest

import pytest
import torch
from torch_geometric.data import Batch, Data

import graphs.encoders
from graphs.batching import pad_graphs
from graphs.encoders import MODELS, READOUTS, GraphEncoder

ALL = [(model, readout) for model in MODELS for readout in READOUTS]
FEATURES = 3


def random_padded(gen, num_graphs=4, max_nodes=7, max_edges=16, edge_dim=None):
    """Random graphs with holes in both masks and junk in masked slots."""
    x = torch.randn(num_graphs, max_nodes, FEATURES, generator=gen)
    node_mask = torch.rand(num_graphs, max_nodes, generator=gen) < 0.7
    node_mask[:, 0] = True
    edge_index = torch.randint(-5, 50, (num_graphs, 2, max_edges), generator=gen)
    edge_mask = torch.rand(num_graphs, max_edges, generator=gen) < 0.8
    for b in range(num_graphs):
        kept = node_mask[b].nonzero().squeeze(1)
        pick = torch.randint(kept.numel(), (2, max_edges), generator=gen)
        edge_index[b, :, edge_mask[b]] = kept[pick][:, edge_mask[b]]
    # No self-loops: with several weighted self-loops on one node, GCN's add_remaining_self_loops
    # keeps whichever comes last, so edge order would matter.
    edge_mask &= edge_index[:, 0] != edge_index[:, 1]
    padded = {"x": x, "edge_index": edge_index, "node_mask": node_mask, "edge_mask": edge_mask}
    if edge_dim is not None:
        padded["edge_attr"] = torch.randn(num_graphs, max_edges, edge_dim, generator=gen)
    return padded


def permute(padded, gen):
    """Move every graph's nodes to other slots and reorder its edge slots."""
    num_graphs, max_nodes = padded["node_mask"].shape
    max_edges = padded["edge_mask"].shape[1]
    node_perm = torch.stack([torch.randperm(max_nodes, generator=gen) for _ in range(num_graphs)])
    edge_perm = torch.stack([torch.randperm(max_edges, generator=gen) for _ in range(num_graphs)])
    inverse = torch.argsort(node_perm, dim=1)  # old slot -> new slot
    edge_index = padded["edge_index"].clamp(0, max_nodes - 1)
    edge_index = torch.stack([inverse.gather(1, edge_index[:, i]) for i in range(2)], dim=1)
    out = {
        "x": padded["x"].gather(1, node_perm.unsqueeze(-1).expand_as(padded["x"])),
        "node_mask": padded["node_mask"].gather(1, node_perm),
        "edge_index": edge_index.gather(2, edge_perm.unsqueeze(1).expand(-1, 2, -1)),
        "edge_mask": padded["edge_mask"].gather(1, edge_perm),
    }
    if "edge_attr" in padded:
        attr = padded["edge_attr"]
        out["edge_attr"] = attr.gather(1, edge_perm.unsqueeze(-1).expand_as(attr))
    return out, node_perm


def make(model, readout, **kwargs):
    return GraphEncoder(
        FEATURES, hidden_size=16, num_layers=2, model=model, readout=readout, **kwargs
    )


@pytest.mark.parametrize(("model", "readout"), ALL)
def test_permutation_invariance_and_equivariance(model, readout):
    gen = torch.Generator().manual_seed(0)
    edge_dim = 2 if model in ("gat", "gatv2") else 1 if model == "gcn" else None
    padded = random_padded(gen, edge_dim=edge_dim)
    if model == "gcn":
        padded["edge_attr"] = padded["edge_attr"].abs()  # edge weights
    encoder = make(model, readout, edge_dim=edge_dim).eval()
    nodes, graph = encoder(padded)
    permuted, node_perm = permute(padded, gen)
    p_nodes, p_graph = encoder(permuted)
    torch.testing.assert_close(p_graph, graph, atol=1e-5, rtol=1e-5)
    expected = nodes.gather(1, node_perm.unsqueeze(-1).expand_as(nodes))
    torch.testing.assert_close(p_nodes, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("model", "readout"), ALL)
def test_matches_pyg_on_the_unpadded_graphs(model, readout):
    gen = torch.Generator().manual_seed(1)
    graphs = []
    for n in (5, 1, 3):
        edge_index = torch.randint(n, (2, 2 * n), generator=gen)
        graphs.append(Data(x=torch.randn(n, FEATURES, generator=gen), edge_index=edge_index))
    encoder = make(model, readout).eval()
    nodes, graph = encoder(pad_graphs(graphs, max_nodes=6, max_edges=12))
    ref_nodes, ref_graph = encoder.encode_data(Batch.from_data_list(graphs))
    torch.testing.assert_close(graph, ref_graph)
    mask = torch.tensor([[True] * 5 + [False], [True] + [False] * 5, [True] * 3 + [False] * 3])
    torch.testing.assert_close(nodes[mask], ref_nodes)
    assert not nodes[~mask].any()


def test_leading_axes_are_flattened_and_restored():
    gen = torch.Generator().manual_seed(2)
    padded = random_padded(gen, num_graphs=6)
    encoder = make("gin", "attention")
    time_major = {key: value.reshape(2, 3, *value.shape[1:]) for key, value in padded.items()}
    nodes, graph = encoder(time_major)
    assert nodes.shape == (2, 3, 7, 16) and graph.shape == (2, 3, 16)
    flat_nodes, flat_graph = encoder(padded)
    torch.testing.assert_close(nodes.reshape(6, 7, 16), flat_nodes)
    torch.testing.assert_close(graph.reshape(6, 16), flat_graph)


def test_padding_content_has_no_influence():
    gen = torch.Generator().manual_seed(3)
    padded = random_padded(gen)
    encoder = make("gatv2", "max")
    nodes, graph = encoder(padded)
    junk = dict(padded)
    junk["x"] = torch.where(padded["node_mask"].unsqueeze(-1), padded["x"], 1e3)
    junk["edge_index"] = torch.where(padded["edge_mask"].unsqueeze(1), padded["edge_index"], -9)
    junk_nodes, junk_graph = encoder(junk)
    torch.testing.assert_close(junk_nodes, nodes)
    torch.testing.assert_close(junk_graph, graph)
    assert not nodes[~padded["node_mask"]].any()


@pytest.mark.parametrize("readout", READOUTS)
def test_a_graph_with_no_node_is_zero_and_isolated(readout):
    gen = torch.Generator().manual_seed(4)
    padded = random_padded(gen, num_graphs=3)
    encoder = make("sage", readout)
    nodes, graph = encoder(padded)
    empty = {key: value.clone() for key, value in padded.items()}
    empty["node_mask"][1] = False
    empty["edge_mask"][1] = False
    e_nodes, e_graph = encoder(empty)
    assert not e_nodes[1].any() and not e_graph[1].any()
    torch.testing.assert_close(e_graph[[0, 2]], graph[[0, 2]])
    torch.testing.assert_close(e_nodes[[0, 2]], nodes[[0, 2]])


@pytest.mark.parametrize(
    ("num_graphs", "max_nodes", "max_edges"), [(0, 4, 3), (2, 0, 0), (2, 3, 0)]
)
def test_degenerate_sizes(num_graphs, max_nodes, max_edges):
    encoder = make("gat", "attention")
    nodes, graph = encoder(
        {
            "x": torch.randn(num_graphs, max_nodes, FEATURES),
            "edge_index": torch.zeros(num_graphs, 2, max_edges, dtype=torch.long),
            "node_mask": torch.zeros(num_graphs, max_nodes, dtype=torch.bool),
            "edge_mask": torch.zeros(num_graphs, max_edges, dtype=torch.bool),
        }
    )
    assert nodes.shape == (num_graphs, max_nodes, 16) and graph.shape == (num_graphs, 16)
    assert not nodes.any() and not graph.any()


def test_numeric_masks_and_float_edge_index_from_buffers():
    gen = torch.Generator().manual_seed(5)
    padded = random_padded(gen)
    encoder = make("gcn", "mean")
    stored = {
        "x": padded["x"],
        "edge_index": padded["edge_index"].float(),
        "node_mask": padded["node_mask"].float(),
        "edge_mask": padded["edge_mask"].to(torch.uint8),
    }
    for got, want in zip(encoder(stored), encoder(padded), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("model", MODELS)
def test_gradients_reach_every_parameter_and_only_kept_nodes(model):
    gen = torch.Generator().manual_seed(6)
    padded = random_padded(gen)
    x = padded["x"].requires_grad_()
    encoder = make(model, "attention")
    nodes, graph = encoder(padded)
    (nodes.pow(2).sum() + graph.pow(2).sum()).backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert not x.grad[~padded["node_mask"]].any()
    assert x.grad[padded["node_mask"]].abs().sum() > 0


@pytest.mark.parametrize(("model", "edge_dim"), [("gat", 3), ("gatv2", 3), ("gcn", 1)])
def test_edge_attr_is_used_when_asked(model, edge_dim):
    gen = torch.Generator().manual_seed(7)
    padded = random_padded(gen, edge_dim=edge_dim)
    padded["edge_attr"] = padded["edge_attr"].abs()
    other = {**padded, "edge_attr": padded["edge_attr"] * 3 + 1}
    with_attr = make(model, "mean", edge_dim=edge_dim)
    assert not torch.allclose(with_attr(padded)[1], with_attr(other)[1])
    ignoring = make(model, "mean")
    torch.testing.assert_close(ignoring(padded)[1], ignoring(other)[1])


def test_configuration_errors_name_the_choices():
    with pytest.raises(ValueError, match=r"unknown model 'gcm' \(did you mean 'gcn'\?\).*'sage'"):
        GraphEncoder(3, model="gcm")
    with pytest.raises(ValueError, match=r"unknown readout 'sum'.*'mean', 'max', 'attention'"):
        GraphEncoder(3, readout="sum")
    with pytest.raises(ValueError, match="'gin' cannot use edge features"):
        GraphEncoder(3, model="gin", edge_dim=2)
    with pytest.raises(ValueError, match="'gcn' cannot use edge features of size 2"):
        GraphEncoder(3, model="gcn", edge_dim=2)


def test_input_errors_are_clear():
    gen = torch.Generator().manual_seed(8)
    padded = random_padded(gen)
    encoder = make("gcn", "mean")
    with pytest.raises(ValueError, match=r"missing \['edge_mask'\]"):
        encoder({k: v for k, v in padded.items() if k != "edge_mask"})
    with pytest.raises(ValueError, match="x has 4 features, the encoder expects 3"):
        encoder({**padded, "x": torch.randn(4, 7, 4)})
    with pytest.raises(ValueError, match="at least one batch axis"):
        encoder({**padded, "x": padded["x"][0]})
    with pytest.raises(ValueError, match=r"node_mask must have shape \[4, 7\]"):
        encoder({**padded, "node_mask": padded["node_mask"][:, :5]})
    bad = {key: value.clone() for key, value in padded.items()}
    bad["edge_index"][2, 0, 0], bad["edge_mask"][2, 0] = 30, True
    with pytest.raises(ValueError, match="graph 2: edge 0 .* outside the padding"):
        encoder(bad)


def test_reset_parameters_and_repr():
    encoder = make("gat", "attention", heads=2)
    before = [p.detach().clone() for p in encoder.parameters()]
    encoder.reset_parameters()
    after = list(encoder.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert repr(encoder) == "GraphEncoder(3, 16, num_layers=2, model='gat', readout='attention')"
    assert encoder.out_features == 16


def test_docstring_examples_run():
    results = doctest.testmod(graphs.encoders, extraglobs={"torch": torch})
    assert results.attempted > 0 and results.failed == 0
