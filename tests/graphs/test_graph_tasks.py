"""Graph learning: generated tasks are what they claim, and every encoder learns them quickly."""

import pytest
import torch
from torch_geometric.utils import to_dense_adj

from graphs.encoders import MODELS
from graphs.tasks import (
    make_karate_task,
    make_motif_task,
    make_sbm_task,
    train_graph_classifier,
    train_node_classifier,
)


def assert_partition(*masks):
    total = torch.stack(masks).sum(0)
    assert torch.equal(total, torch.ones_like(total)), "splits must be disjoint and cover"


def test_sbm_task_is_seeded_and_split():
    data = make_sbm_task(num_blocks=3, block_size=20, seed=1)
    again = make_sbm_task(num_blocks=3, block_size=20, seed=1)
    other = make_sbm_task(num_blocks=3, block_size=20, seed=2)
    assert torch.equal(data.edge_index, again.edge_index) and torch.equal(data.x, again.x)
    assert not torch.equal(data.x, other.x)
    assert data.num_nodes == 60 and data.num_classes == 3
    assert_partition(data.train_mask, data.val_mask, data.test_mask)
    assert data.is_undirected()
    src, dst = data.edge_index
    assert (data.y[src] == data.y[dst]).float().mean() > 0.7  # assortative blocks


def test_karate_task():
    data = make_karate_task(seed=0)
    assert data.num_nodes == 34 and data.num_classes == 4
    assert_partition(data.train_mask, data.val_mask, data.test_mask)
    for label in range(4):  # stratified: every community is in training
        assert data.train_mask[data.y == label].any()


def test_motif_task_label_is_the_triangle_only():
    task = make_motif_task(num_graphs=40, seed=3)
    assert_partition(
        *[
            torch.zeros(40, dtype=torch.bool).index_fill_(0, idx, True)
            for idx in (task.train, task.val, task.test)
        ]
    )
    assert task.num_classes == 2 and task.num_features == 6
    for graph in task.graphs:
        adj = to_dense_adj(graph.edge_index, max_num_nodes=graph.num_nodes)[0]
        triangles = int(torch.trace(adj @ adj @ adj)) // 6
        assert triangles == int(graph.y)
        motif_degrees = sorted(adj.sum(1)[-5:].long().tolist())
        assert motif_degrees == [2, 2, 2, 3, 4]  # same in both classes (4: the link to the tree)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_solves_the_sbm(model):
    result = train_node_classifier("sbm", model, hidden_size=32, epochs=80, seed=0)
    assert result["accuracy"] > 0.9, result


def test_features_alone_do_not_solve_the_sbm():
    data = make_sbm_task(seed=0)
    from_features = (data.x[:, :4].argmax(1) == data.y).float().mean()
    assert from_features < 0.7  # so the >0.9 above comes from the graph


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_karate_club_beats_chance(model):
    result = train_node_classifier("karate", model, hidden_size=16, epochs=100, seed=0)
    assert result["accuracy"] > 0.6, result  # largest class: 13 / 34 = 0.38


@pytest.mark.parametrize(("model", "readout"), [("gin", "mean"), ("gcn", "max")])
def test_graph_classification_beats_chance_clearly(model, readout):
    result = train_graph_classifier(
        "motifs", model, hidden_size=32, epochs=40, seed=0, readout=readout
    )
    assert result["accuracy"] > 0.85, result


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = train_node_classifier("karate", "sage", hidden_size=8, epochs=5, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = train_node_classifier("karate", "sage", hidden_size=8, epochs=5, seed=3)
    for key in ("accuracy", "nll", "val_accuracy", "best_epoch"):
        assert first[key] == second[key]
    assert {"accuracy", "nll", "train_accuracy", "seconds", "model", "task"} <= set(first)


def test_minibatch_graph_training_and_unknown_tasks():
    task = make_motif_task(num_graphs=30, seed=0)
    result = train_graph_classifier(task, "sage", hidden_size=8, epochs=2, batch_size=8)
    assert 0 <= result["accuracy"] <= 1 and result["task"] == "motifs"
    with pytest.raises(ValueError, match="unknown node task 'cora'"):
        train_node_classifier("cora")
    with pytest.raises(ValueError, match="unknown graph task 'mutag'"):
        train_graph_classifier("mutag")
