"""Presets: what ``--agent NAME`` means on each environment, tuned entries included."""

import inspect

import pytest

from agents import presets
from agents.presets import AGENT_PRESETS, TUNED_PRESETS, agent_config


@pytest.mark.parametrize(("agent", "env_id"), sorted(TUNED_PRESETS))
def test_a_tuned_entry_applies_to_its_agent_on_its_environment_only(agent, env_id):
    tuned = TUNED_PRESETS[(agent, env_id)]
    config = agent_config(agent, env_id)
    for key, value in tuned.items():
        if isinstance(value, dict):  # a table updates the preset's entry by entry
            assert config.to_dict()[key] == {**AGENT_PRESETS[agent].get(key, {}), **value}
        else:
            assert getattr(config, key) == value, key
    elsewhere = agent_config(agent, "umbra/TMazeEasy-v0")
    assert any(getattr(elsewhere, key) != value for key, value in tuned.items()
               if not isinstance(value, dict))
    key = next(iter(tuned))  # an explicit override still wins
    assert agent_config(agent, env_id, seed=5, **{key: tuned[key]}).seed == 5


def test_each_tuned_entry_names_the_command_that_produced_it():
    source = inspect.getsource(presets)
    for agent, env_id in TUNED_PRESETS:
        assert f"python -m benchmarks.tune --env {env_id} --agent {agent} " in source, (agent,
                                                                                       env_id)


def test_the_memory_cores_are_tuned_together_on_the_same_task():
    # Equal tuning budgets ("GRU beats the transformer" must not mean "GRU got luckier
    # settings"): where one memory core has a tuned entry, presets.py names the same tuning
    # command for all four (a core whose best config did not beat its preset keeps the preset,
    # and the comment says so).
    source = inspect.getsource(presets)
    cores = ("gru", "lstm", "transformer", "linear")
    for env_id in {env for agent, env in TUNED_PRESETS if agent in cores}:
        commands = [f"python -m benchmarks.tune --env {env_id} --agent {core} " for core in cores]
        lines = [line for line in source.splitlines() if any(c in line for c in commands)]
        assert len(lines) == len(cores), (env_id, lines)
        assert len({line.split("--agent ")[1].split(" ", 1)[1] for line in lines}) == 1, lines
