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

Action masks and turns. A task with action masks (``has_action_mask``) is shown with a Dict
observation ``{"obs": observation + id, "action_mask": [n]}`` (a Dict observation keeps its own
entries and gets ``"agent_id"``), so the shared policy never samples an illegal action. Every step
also says which rows act: ``info["acting"]`` ``[N * A]`` (the environment's ``acting``, else its
``agent_mask``, else every row). PPO's policy loss counts only acting rows (an agent that waits
for its turn in a turn-based game, or has left the episode, takes no policy gradient from that
step); the critic learns from every row, so advantages can be bootstrapped across waiting steps.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.policies import ACTION_MASK
from envs.core import BatchedEnv

#: The Dict entry of :class:`AgentBatch`'s observation that holds the agent's own observation
#: (with its id appended) when the task has action masks.
OBS_KEY = "obs"
#: The Dict entry that holds the one-hot agent id when the task's observation is a Dict itself.
AGENT_ID_KEY = "agent_id"


def _with_id_space(space: gym.spaces.Box, num_agents: int) -> gym.spaces.Box:
    """A flat Box of ``space`` with ``num_agents`` one-hot entries appended."""
    low = np.concatenate([space.low.reshape(-1), np.zeros(num_agents, dtype=space.dtype)])
    high = np.concatenate([space.high.reshape(-1), np.ones(num_agents, dtype=space.dtype)])
    return gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)


def _observation_space(env: BatchedEnv) -> gym.Space:
    """What the shared policy sees of one agent (see the module docstring)."""
    space, agents = env.single_observation_space, env.num_agents
    ids = gym.spaces.Box(0.0, 1.0, (agents,), dtype=np.float32)
    n_actions = _mask_width(env) if env.has_action_mask else None
    if isinstance(space, gym.spaces.Dict):
        entries = dict(space.spaces)
        entries[AGENT_ID_KEY] = ids
        if n_actions is not None and ACTION_MASK not in entries:
            entries[ACTION_MASK] = gym.spaces.MultiBinary(n_actions)
        return gym.spaces.Dict(entries)
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"AgentBatch needs Box or Dict observations, got {space} from {env!r}")
    if n_actions is None:
        return _with_id_space(space, agents)
    return gym.spaces.Dict({OBS_KEY: _with_id_space(space, agents),
                            ACTION_MASK: gym.spaces.MultiBinary(n_actions)})


def _mask_width(env: BatchedEnv) -> int:
    """Entries of one agent's action mask: ``n`` for Discrete, ``sum(nvec)`` for MultiDiscrete."""
    space = env.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    raise TypeError(f"{env!r} has action masks but a {space} action space (expected Discrete or "
                    "MultiDiscrete)")


class AgentBatch:
    """A multi-agent batched env seen as ``N * A`` single-agent copies (agent-major per copy).

    Args:
        env: A multi-agent batched environment (``env.kind == "multi-agent"``).
        centralised_critic: MAPPO when true (the critic gets the global state), IPPO otherwise.

    Copy ``n``'s agent ``a`` is row ``n * A + a``. Attributes mirror :class:`BatchedEnv`:
    ``num_envs`` (= N * A), ``device``, ``single_observation_space`` (observation + agent id; a
    Dict with the action mask for tasks that have one, see the module docstring),
    ``single_action_space``, ``critic_observation_space`` (state + agent id, MAPPO only).
    ``reset`` and ``step`` infos carry ``acting`` ``[N * A]`` (the rows whose action counts).
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
        self.single_observation_space = _observation_space(env)
        self.has_action_mask = bool(env.has_action_mask)
        self.centralised_critic = centralised_critic
        self.critic_observation_space = (
            _with_id_space(env.state_space, self.num_agents) if centralised_critic else None
        )
        self._ids = torch.eye(self.num_agents, device=self.device).repeat(env.num_envs, 1)

    def _flat(self, obs: Any, mask: torch.Tensor | None = None) -> Any:
        """``[N, A, ...]`` -> ``[N * A, obs + A]``; a Dict observation entry by entry, with the
        id as its own entry; with action masks, ``mask`` ``[N, A, n]`` as ``action_mask``
        (None: every action allowed, for final observations, which are never acted on)."""
        if isinstance(obs, dict):
            out = {key: value.reshape(self.num_envs, *value.shape[2:])
                   for key, value in obs.items()}
            out[AGENT_ID_KEY] = self._ids
        else:
            flat = torch.cat((obs.reshape(self.num_envs, -1).float(), self._ids), dim=1)
            if not self.has_action_mask:
                return flat
            out = {OBS_KEY: flat}
        if self.has_action_mask and (mask is not None or ACTION_MASK not in out):
            width = self.single_observation_space[ACTION_MASK].n
            out[ACTION_MASK] = (torch.ones(self.num_envs, width, dtype=torch.int8,
                                           device=self.device) if mask is None
                                else mask.reshape(self.num_envs, width).to(torch.int8))
        return out

    def _acting(self, info: dict[str, Any]) -> torch.Tensor:
        """``[N * A]`` bool: the rows whose next action counts (see the module docstring)."""
        acting = info.get("acting", info.get("agent_mask"))
        if acting is None:
            return torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        return acting.reshape(self.num_envs)

    def _critic(self, state: torch.Tensor) -> torch.Tensor:
        """``[N, ...]`` -> ``[N * A, state + A]``: every agent of a copy sees the copy's state."""
        state = state.reshape(self.env.num_envs, 1, -1).expand(-1, self.num_agents, -1)
        return torch.cat((state.reshape(self.num_envs, -1).float(), self._ids), dim=1)

    def _per_agent(self, value: torch.Tensor) -> torch.Tensor:
        """``[N]`` -> ``[N * A]``."""
        return value.repeat_interleave(self.num_agents)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        out: dict[str, Any] = {"acting": self._acting(info)}
        if self.centralised_critic:
            out["critic_obs"] = self._critic(info["state"])
        return self._flat(obs, info.get("action_mask")), out

    def step(self, actions: torch.Tensor):
        shape = (self.env.num_envs, self.num_agents, *self.single_action_space.shape)
        obs, reward, terminated, truncated, info = self.env.step(actions.reshape(shape))
        out = {
            "final_obs": self._flat(info["final_obs"]),
            "acting": self._acting(info),
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
        return (self._flat(obs, info.get("action_mask")), reward.reshape(self.num_envs),
                self._per_agent(terminated),
                self._per_agent(truncated), out)

    def _first_agent(self, mask: torch.Tensor) -> torch.Tensor:
        first = torch.zeros(self.env.num_envs, self.num_agents, dtype=torch.bool,
                            device=self.device)
        first[:, 0] = mask
        return first.reshape(self.num_envs)

    def action_masks(self) -> torch.Tensor:
        """``[N * A, n]`` bool: the wrapped environment's action masks, one row per agent."""
        masks = self.env.action_masks()
        return masks.reshape(self.num_envs, masks.shape[-1])

    def check_deferred(self) -> None:
        """The wrapped environment's :meth:`~envs.core.BatchedEnv.check_deferred`."""
        self.env.check_deferred()

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        kind = "MAPPO" if self.centralised_critic else "IPPO"
        return f"AgentBatch({self.env!r}, {kind})"
