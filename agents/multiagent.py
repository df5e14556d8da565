"""Agents folded into the batch: how the one PPO loop trains multi-agent environments.

:class:`AgentBatch` shows a multi-agent batched environment (``[N, A, ...]``; see
docs/architecture.md, "Multi-agent environments") to PPO as a single-agent batch of ``N * A``
copies that share one policy (parameter sharing).
Each agent's observation gets its one-hot agent id appended, so a shared policy can still act
differently per agent. The critic's input is a choice, not a second loop:

- IPPO: the critic sees what the actor sees (the agent's own observation and id);
- MAPPO: the critic sees the global ``state`` plus the agent id (a centralised critic), given to
  PPO as ``info["critic_obs"]`` and ``info["final_critic_obs"]``.

Episodes end per copy, so every agent of a copy ends together; rewards are per agent.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv


def _with_id_space(space: gym.spaces.Box, num_agents: int) -> gym.spaces.Box:
    """A flat Box of ``space`` with ``num_agents`` one-hot entries appended."""
    low = np.concatenate([space.low.reshape(-1), np.zeros(num_agents, dtype=space.dtype)])
    high = np.concatenate([space.high.reshape(-1), np.ones(num_agents, dtype=space.dtype)])
    return gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)


class AgentBatch:
    """A multi-agent batched env seen as ``N * A`` single-agent copies (agent-major per copy).

    Args:
        env: A multi-agent batched environment (``env.kind == "multi-agent"``).
        centralised_critic: MAPPO when true (the critic gets the global state), IPPO otherwise.

    Copy ``n``'s agent ``a`` is row ``n * A + a``. Attributes mirror :class:`BatchedEnv`:
    ``num_envs`` (= N * A), ``device``, ``single_observation_space`` (observation + agent id),
    ``single_action_space``, ``critic_observation_space`` (state + agent id, MAPPO only).
    """

    kind = "single-agent"

    def __init__(self, env: BatchedEnv, centralised_critic: bool = False):
        if getattr(env, "kind", None) != "multi-agent":
            raise TypeError(f"AgentBatch needs a multi-agent environment, got {env!r}")
        self.env = env
        self.num_agents = env.num_agents
        self.num_envs = env.num_envs * env.num_agents
        self.device = env.device
        self.single_action_space = env.single_action_space
        self.single_observation_space = _with_id_space(env.single_observation_space,
                                                       self.num_agents)
        self.centralised_critic = centralised_critic
        self.critic_observation_space = (
            _with_id_space(env.state_space, self.num_agents) if centralised_critic else None
        )
        self._ids = torch.eye(self.num_agents, device=self.device).repeat(env.num_envs, 1)

    def _flat(self, obs: torch.Tensor) -> torch.Tensor:
        """``[N, A, ...]`` -> ``[N * A, obs + A]``."""
        return torch.cat((obs.reshape(self.num_envs, -1).float(), self._ids), dim=1)

    def _critic(self, state: torch.Tensor) -> torch.Tensor:
        """``[N, ...]`` -> ``[N * A, state + A]``: every agent of a copy sees the copy's state."""
        state = state.reshape(self.env.num_envs, 1, -1).expand(-1, self.num_agents, -1)
        return torch.cat((state.reshape(self.num_envs, -1).float(), self._ids), dim=1)

    def _per_agent(self, value: torch.Tensor) -> torch.Tensor:
        """``[N]`` -> ``[N * A]``."""
        return value.repeat_interleave(self.num_agents)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        out: dict[str, Any] = {}
        if self.centralised_critic:
            out["critic_obs"] = self._critic(info["state"])
        return self._flat(obs), out

    def step(self, actions: torch.Tensor):
        shape = (self.env.num_envs, self.num_agents, *self.single_action_space.shape)
        obs, reward, terminated, truncated, info = self.env.step(actions.reshape(shape))
        out = {
            "final_obs": self._flat(info["final_obs"]),
            "_final_obs": self._per_agent(info["_final_obs"]),
            # Episode statistics stay per copy: one entry per episode, on the copy's first agent.
            "episode_return": self._per_agent(info["episode_return"]),
            "episode_length": self._per_agent(info["episode_length"]),
            "_episode": self._first_agent(info["_episode"]),
        }
        if "agent_mask" in info:
            out["agent_mask"] = info["agent_mask"].reshape(self.num_envs)
        if self.centralised_critic:
            out["critic_obs"] = self._critic(info["state"])
            out["final_critic_obs"] = self._critic(info["final_state"])
        return (self._flat(obs), reward.reshape(self.num_envs), self._per_agent(terminated),
                self._per_agent(truncated), out)

    def _first_agent(self, mask: torch.Tensor) -> torch.Tensor:
        first = torch.zeros(self.env.num_envs, self.num_agents, dtype=torch.bool,
                            device=self.device)
        first[:, 0] = mask
        return first.reshape(self.num_envs)

    def check_deferred(self) -> None:
        """The wrapped environment's :meth:`~envs.core.BatchedEnv.check_deferred`."""
        self.env.check_deferred()

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        kind = "MAPPO" if self.centralised_critic else "IPPO"
        return f"AgentBatch({self.env!r}, {kind})"
