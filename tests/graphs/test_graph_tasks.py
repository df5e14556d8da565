"""Graph-learning tasks by id: agents name a model and a head, a config is the run's settings."""

import pytest

from graphs.tasks import (
    GRAPH_TASK_AGENTS,
    GraphTaskConfig,
    graph_task_config,
    train_task,
)
from graphs.training import GRAPH_SETTINGS, TrainSettings, train_graph_classifier


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


def test_a_task_config_is_the_training_settings_plus_the_task():
    config = graph_task_config("gin", "graphs/Motifs", epochs=2, hidden_size=8,
                               task_kwargs={"num_graphs": 30})
    assert isinstance(config, TrainSettings)
    assert {key: getattr(config, key) for key in GRAPH_SETTINGS} == GRAPH_SETTINGS
    direct = train_graph_classifier("motifs", model="gin", epochs=2, hidden_size=8,
                                    task_kwargs={"num_graphs": 30})
    assert train_task(config)["history"] == direct["history"]
    with pytest.raises(ValueError, match="GraphTaskConfig.epochs must be a positive integer"):
        graph_task_config("gin", "graphs/Motifs", epochs=0)
