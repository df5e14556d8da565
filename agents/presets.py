"""Named agents and their tuned settings: what ``--agent NAME`` means.

An agent preset is a set of :class:`~agents.ppo.PPOConfig` overrides; tuned per-environment
settings for the native tasks sit on top. Both are plain dicts, so a preset reads as its settings.
"""

from __future__ import annotations

import difflib
from typing import Any

from agents.ppo import PPOConfig

#: Agent name -> PPOConfig overrides. ``ppo`` is the feed-forward agent, an alias of ``mlp``;
#: the others name their memory core (``agents/memory.py``).
_RECURRENT = {"learning_rate": 2.5e-3, "update_epochs": 4}
AGENT_PRESETS: dict[str, dict[str, Any]] = {
    "mlp": {"core": "mlp"},
    "ppo": {"core": "mlp"},
    "lstm": {"core": "lstm", **_RECURRENT},
    "gru": {"core": "gru", **_RECURRENT},
    "transformer": {"core": "transformer", "learning_rate": 1e-3, "update_epochs": 4,
                    "core_kwargs": {"window": 64, "num_heads": 4, "num_layers": 1}},
    "linear": {"core": "linear", "learning_rate": 1e-3, "update_epochs": 4,
               "core_kwargs": {"num_heads": 4, "num_layers": 1}},
}
# Multi-agent PPO: ``ippo`` / ``mappo`` with a feed-forward core, ``ippo-gru``, ``mappo-lstm``...
# for memory cores. Agents share one policy; MAPPO's critic sees the global state.
_CORE_AGENTS = ("mlp", "lstm", "gru", "transformer", "linear")
for _algo in ("ippo", "mappo"):
    for _core in _CORE_AGENTS:
        _name = _algo if _core == "mlp" else f"{_algo}-{_core}"
        AGENT_PRESETS[_name] = {**AGENT_PRESETS[_core], "centralised_critic": _algo == "mappo"}
# Communication between agents: MAPPO whose actors pass messages with a GNN over the agents.
AGENT_PRESETS["mappo-comm"] = {**AGENT_PRESETS["mappo"], "communication": "gcn"}
AGENT_PRESETS["ippo-comm"] = {**AGENT_PRESETS["ippo"], "communication": "gcn"}
# Graph observations: the GNN of the encoder by name (``ppo`` on a graph task uses GCN).
# Where the action is a node slot they score each node from its embedding (a node head).
for _model in ("gcn", "gat", "gin", "sage"):
    AGENT_PRESETS[_model] = {"core": "mlp", "encoder_kwargs": {"model": _model}}
# The no-GNN baseline: an MLP over the flattened padding (x, edge_index, masks; no action mask).
AGENT_PRESETS["mlp-flat"] = {"core": "mlp", "encoder_kwargs": {"model": "flat"}}
# A Bayesian value head (agents/bayesian.py) on the feed-forward agent; any agent gets one with
# the config override ``value_head = "bayes"``.
AGENT_PRESETS["ppo-bayes"] = {"core": "mlp", "value_head": "bayes"}
# Thompson-style exploration: one weight sample of a Bayesian policy head per episode.
AGENT_PRESETS["ppo-thompson"] = {"core": "mlp", "thompson_policy": True}
AGENTS = tuple(AGENT_PRESETS)

#: Environment id -> tuned overrides, applied under the agent's.
_CARTPOLE = {"num_envs": 64, "num_steps": 32, "learning_rate": 5e-3, "update_epochs": 2}
_PENDULUM = {"num_envs": 64, "num_steps": 64, "gamma": 0.9, "learning_rate": 1e-3,
             "update_epochs": 10, "num_minibatches": 8, "reward_scale": 0.1}
ENV_PRESETS: dict[str, dict[str, Any]] = {
    "umbra/CartPole-v0": _CARTPOLE,
    "umbra/MaskedCartPole-v0": _CARTPOLE,
    "umbra/Pendulum-v0": _PENDULUM,
    "umbra/MaskedPendulum-v0": _PENDULUM,
}


def agent_config(agent: str, env_id: str, **overrides: Any) -> PPOConfig:
    """The config of ``agent`` on ``env_id``: defaults < env preset < agent preset < overrides.

    Raises:
        ValueError: unknown agent, naming the close matches.
    """
    if agent not in AGENT_PRESETS:
        close = difflib.get_close_matches(agent, AGENTS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown agent {agent!r}.{hint} Known agents: {', '.join(AGENTS)}")
    settings = {**ENV_PRESETS.get(env_id, {}), **AGENT_PRESETS[agent], **overrides}
    return PPOConfig.from_dict({"env_id": env_id, **settings})
