"""Graph learning: generated tasks are what they claim, and every encoder learns them quickly."""

import numpy as np
import pytest
import torch
from torch_geometric.utils import to_dense_adj

from bayes.calibration import negative_log_likelihood
from graphs.encoders import MODELS
from graphs.tasks import (
    GRAPH_TASK_AGENTS,
    GraphTaskConfig,
    graph_task_config,
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


#: An SBM where an unregularised GCN overfits its small training split: overconfident.
OVERCONFIDENT = dict(
    hidden_size=64,
    epochs=60,
    seed=1,
    dropout=0.0,
    weight_decay=0.0,
    task_kwargs=dict(feature_noise=2.0, p_in=0.04, p_out=0.01, block_size=50),
)


def test_temperature_scaling_keeps_accuracy_and_lowers_nll_when_overconfident():
    plain = train_node_classifier("sbm", "gcn", head="linear", **OVERCONFIDENT)
    scaled = train_node_classifier("sbm", "gcn", head="temperature", **OVERCONFIDENT)
    assert plain["temperature"] is None and scaled["temperature"] > 1.5  # it was overconfident
    assert scaled["accuracy"] == plain["accuracy"]
    np.testing.assert_array_equal(scaled["test_probs"].argmax(1), plain["test_probs"].argmax(1))
    assert scaled["nll"] < plain["nll"] - 0.2 and scaled["ece"] < plain["ece"]


def test_results_carry_test_probabilities_calibration_and_a_per_epoch_history():
    seen = []
    result = train_graph_classifier(
        "motifs",
        "gin",
        hidden_size=8,
        epochs=3,
        seed=0,
        task_kwargs={"num_graphs": 40},
        callback=lambda epoch, m: seen.append((epoch, m)),
    )
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    assert [m for _, m in seen] == result["history"]
    assert {"train_loss", "val_accuracy", "test_nll", "test_ece"} <= set(seen[0][1])
    probs, labels = result["test_probs"], result["test_labels"]
    assert probs.shape == (labels.shape[0], 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    assert result["nll"] == pytest.approx(negative_log_likelihood(probs, labels), rel=1e-4)
    assert 0 <= result["ece"] <= 1 and 0 <= result["brier"] <= 2


def test_agents_name_a_model_and_a_head_on_tasks_named_like_environments():
    config = graph_task_config("sage-temperature", "graphs/Motifs", epochs=5)
    assert (config.model, config.head, config.epochs, config.num_layers) == (
        "sage",
        "temperature",
        5,
        3,
    )  # the task's default of 3 layers
    assert GraphTaskConfig.from_dict(config.to_dict()) == config
    assert set(GRAPH_TASK_AGENTS) >= {"gcn", "gat", "gin", "sage", "gcn-bayes"}
    with pytest.raises(ValueError, match="did you mean 'graphs/KarateClub'"):
        graph_task_config("gcn", "graphs/Karate")
    with pytest.raises(ValueError, match="unknown GraphTaskConfig field 'lr_decay'"):
        graph_task_config("gcn", "graphs/SBM", lr_decay=0.5)
    with pytest.raises(ValueError, match="graph classification only"):
        graph_task_config("gcn", "graphs/SBM", batch_size=8)


def _has_bayes_classifier() -> bool:
    from graphs.tasks import _bayes_head_class

    try:
        _bayes_head_class()
    except ValueError:
        return False
    return True


@pytest.mark.skipif(not _has_bayes_classifier(), reason="no Bayesian classifier in bayes.heads")
def test_a_bayesian_head_trains_jointly_with_the_encoder():
    result = train_node_classifier(
        "sbm", "gcn", hidden_size=16, epochs=40, seed=0, head="bayes", num_samples=8
    )
    assert result["accuracy"] > 0.8, result
    assert np.allclose(result["test_probs"].sum(1), 1, atol=1e-5)
