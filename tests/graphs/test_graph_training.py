"""Graph-learning training: every encoder learns the tasks quickly, seeded, with calibration."""

import numpy as np
import pytest
import torch

from bayes.calibration import brier_score, expected_calibration_error, negative_log_likelihood
from graphs.datasets import make_motif_task
from graphs.encoders import MODELS
from graphs.training import (
    TrainSettings,
    train_graph_classifier,
    train_node_classifier,
)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_solves_the_sbm(model):
    result = train_node_classifier("sbm", model=model, hidden_size=32, epochs=80, seed=0)
    assert result["accuracy"] > 0.9, result


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_karate_club_beats_chance(model):
    result = train_node_classifier("karate", model=model, hidden_size=16, epochs=100, seed=0)
    assert result["accuracy"] > 0.6, result  # largest class: 13 / 34 = 0.38


@pytest.mark.parametrize(("model", "readout"), [("gin", "mean"), ("gcn", "max")])
def test_graph_classification_beats_chance_clearly(model, readout):
    result = train_graph_classifier(
        "motifs", model=model, hidden_size=32, epochs=40, seed=0, readout=readout
    )
    assert result["accuracy"] > 0.85, result


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first = train_node_classifier("karate", model="sage", hidden_size=8, epochs=5, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = train_node_classifier("karate", model="sage", hidden_size=8, epochs=5, seed=3)
    for key in ("accuracy", "nll", "val_accuracy", "best_epoch"):
        assert first[key] == second[key]
    assert {"accuracy", "nll", "train_accuracy", "seconds", "model", "task"} <= set(first)


def test_minibatch_graph_training_and_unknown_tasks():
    task = make_motif_task(num_graphs=30, seed=0)
    result = train_graph_classifier(task, model="sage", hidden_size=8, epochs=2, batch_size=8)
    assert result["task"] == "motifs" and len(result["history"]) == 2
    probs, labels = result["test_probs"], result["test_labels"]
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    with pytest.raises(ValueError, match="unknown node task 'cora'"):
        train_node_classifier("cora")
    with pytest.raises(ValueError, match="unknown graph task 'mutag'"):
        train_graph_classifier("mutag")


def test_settings_are_one_record_and_overrides_name_its_fields():
    settings = TrainSettings(model="sage", hidden_size=8, epochs=2, seed=3)
    by_record = train_node_classifier("karate", settings)
    by_name = train_node_classifier("karate", model="sage", hidden_size=8, epochs=2, seed=3)
    assert by_record["history"] == by_name["history"]
    with pytest.raises(ValueError, match="unknown TrainSettings field 'epoch'; did you mean"):
        train_node_classifier("karate", epoch=3)
    with pytest.raises(TypeError, match="model='gat'"):
        train_node_classifier("karate", "gat")
    with pytest.raises(ValueError, match="graph classification only"):
        train_node_classifier("karate", batch_size=8)
    with pytest.raises(ValueError, match="head_kwargs apply to head='bayes' only"):
        TrainSettings(head_kwargs={"prior_scale": 2.0})
    with pytest.raises(ValueError, match="TrainSettings.epochs must be a positive integer"):
        TrainSettings(epochs=0)


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
    plain = train_node_classifier("sbm", model="gcn", head="linear", **OVERCONFIDENT)
    scaled = train_node_classifier("sbm", model="gcn", head="temperature", **OVERCONFIDENT)
    assert plain["temperature"] is None and scaled["temperature"] > 1.5  # it was overconfident
    assert scaled["accuracy"] == plain["accuracy"]
    np.testing.assert_array_equal(scaled["test_probs"].argmax(1), plain["test_probs"].argmax(1))
    assert scaled["nll"] < plain["nll"] - 0.2 and scaled["ece"] < plain["ece"]


def test_results_carry_test_probabilities_calibration_and_a_per_epoch_history():
    seen = []
    result = train_graph_classifier(
        "motifs",
        model="gin",
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
    assert result["ece"] == pytest.approx(expected_calibration_error(probs, labels))
    assert result["brier"] == pytest.approx(brier_score(probs, labels))


def test_a_bayesian_head_trains_jointly_with_the_encoder():
    result = train_node_classifier(
        "sbm", model="gcn", hidden_size=16, epochs=40, seed=0, head="bayes", num_samples=8
    )
    assert result["accuracy"] > 0.8, result
    assert np.allclose(result["test_probs"].sum(1), 1, atol=1e-5)
