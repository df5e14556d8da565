"""Every agent on every kind of environment: it trains, or it is refused before anything runs.

``benchmarks.runner.check_trials`` checks each agent against what its config needs of the
environment; a mismatch is an error naming the agent before the suite starts, never a traceback in
the middle of it nor a silently different agent (a GNN agent training an MLP on vectors).
"""

from __future__ import annotations

import importlib

import gymnasium as gym
import pytest

import envs
from agents import sb3
from agents.ppo import PPOConfig, train
from agents.presets import AGENTS
from benchmarks.run import main
from benchmarks.runner import check_trials
from benchmarks.suites import Trial
from envs.interop.sb3 import BatchedToSB3VecEnv

#: One environment of each kind: single-agent with Discrete actions, Box actions, multi-agent,
#: graph observations.
ENVS = ("umbra/CartPole-v0", "umbra/Pendulum-v0", "umbra/CooperativeNavigation-v0",
        "umbra/GraphNavigation-v0")
#: One rollout of 2 copies x 4 steps, one epoch, one minibatch.
TINY_UMBRA = {"num_steps": 4, "num_minibatches": 1, "update_epochs": 1, "hidden_size": 16}
TINY_SB3 = {"n_steps": 4, "batch_size": 8, "n_epochs": 1}


def expected_refusal(agent: str, env_id: str) -> bool:
    """What a user expects, written from the agents' names rather than their configs."""
    kind = envs.spec(env_id).kind
    if agent.startswith("mappo") or agent.endswith("-comm"):
        return kind != "multi-agent"  # a centralised critic or messages between agents
    if agent in ("gcn", "gat", "gin", "sage", "mlp-flat"):
        return kind != "graph"  # a GNN (or the flattened graph) needs graph observations
    if agent == "ppo-thompson":  # samples a linear head's weights; a graph task has a node head
        return kind == "graph"
    if agent in sb3.SB3_AGENTS:
        box = env_id == "umbra/Pendulum-v0"
        return kind == "multi-agent" or (agent == "sb3-maskable-ppo" and box)
    return False


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("agent", [*AGENTS, *sb3.SB3_AGENTS])
def test_every_agent_trains_or_is_refused_naming_what_it_needs(agent, env_id):
    tiny = TINY_SB3 if agent in sb3.SB3_AGENTS else TINY_UMBRA
    trial = Trial(env_id, agent, seed=0, steps=8, num_envs=2, config=tiny)
    try:
        [config] = check_trials([trial], device="cpu")
    except ValueError as err:
        message = str(err)
        assert expected_refusal(agent, env_id), f"{agent} on {env_id} refused: {message}"
        assert f"agent {agent!r} needs " in message and env_id in message
        assert "pick" in message or "add --set" in message  # says what to do instead
        return
    assert not expected_refusal(agent, env_id), f"{agent} on {env_id} was not refused"
    trainer = train if isinstance(config, PPOConfig) else sb3.train
    result = trainer(config)  # a tiny training really starts, and ends
    assert result.metrics["steps"] >= 8


def test_every_baseline_declares_its_action_spaces_as_its_algorithm_checks_them():
    assert set(sb3.SB3_ACTION_SPACES) == set(sb3.SB3_AGENTS)
    for agent, (module, class_name, policy, _) in sb3.SB3_AGENTS.items():
        algorithm = getattr(importlib.import_module(module), class_name)
        for env_id in ("umbra/CartPole-v0", "umbra/Pendulum-v0"):
            venv = BatchedToSB3VecEnv(envs.make(env_id, num_envs=2))
            declared = isinstance(venv.action_space, sb3.SB3_ACTION_SPACES[agent])
            try:
                algorithm(policy, venv, n_steps=4, batch_size=8, device="cpu")
                accepted = True
            except AssertionError as err:  # stable-baselines3's supported_action_spaces check
                assert "action space" in str(err)
                accepted = False
            assert declared == accepted, (agent, env_id, venv.action_space)


def test_a_mismatch_stops_the_whole_suite_before_it_starts(tmp_path, capsys):
    suite = tmp_path / "mixed.toml"
    suite.write_text('agents = ["ppo", "mappo"]\nsteps = 64\nnum_envs = 2\n'
                     '[[envs]]\nid = "umbra/CartPole-v0"\n')
    assert main(["--suite", str(suite), "--logdir", str(tmp_path / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "agent 'mappo' needs a multi-agent environment" in err
    assert "umbra/CartPole-v0 is single-agent" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists(), "nothing may run before the check"


def test_the_check_reads_the_action_space_of_the_environment_as_configured():
    """A space decided by env_kwargs is the one checked (the env is built with them)."""
    refused = Trial("umbra/Pendulum-v0", "sb3-maskable-ppo", 0, steps=8, num_envs=2)
    with pytest.raises(ValueError, match=r"needs Discrete, MultiDiscrete or MultiBinary"):
        check_trials([refused])
    assert isinstance(envs.make("umbra/CartPole-v0").single_action_space, gym.spaces.Discrete)
    check_trials([Trial("umbra/CartPole-v0", "sb3-maskable-ppo", 0, steps=8, num_envs=2)])
