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

Groups (heterogeneous teams). Agents with the same spaces form a group (the environment's
``groups``; or the user's, ``AgentBatch(env, groups={"name": [agents...]})``). Where there are two
or more, each agent's observation also gets its group's one-hot after its id, :attr:`groups`
describes them (:class:`Group`: members, own observation size, own action space) for policies
that keep one network per group (:class:`agents.groups.GroupedActorCritic`), and
:meth:`AgentBatch.group_returns` gives the mean return of each group's finished episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Group:
    """Agents of one kind, as :class:`AgentBatch` shows them.

    Attributes:
        name: The group's name (``"adversary"``).
        agents: Agent indices (``0 .. A-1``, the order of ``possible_agents``).
        observation_size: Entries of the members' own flat observation (the largest, if a group
            named by the user mixes sizes); the rest of the padded observation is zeros.
        action_space: The members' own action space (padded to the largest if mixed).
    """

    name: str
    agents: tuple[int, ...]
    observation_size: int
    action_space: gym.Space


def _flat_size(space: gym.Space) -> int:
    return int(np.prod(space.shape)) if isinstance(space, gym.spaces.Box) else 0


def _widest(spaces: list[gym.Space], padded: gym.Space) -> gym.Space:
    """The action space of a group whose members have ``spaces``: theirs if they agree, else
    the largest Discrete / Box of them (``padded``, the env's, when they are of other kinds)."""
    if all(space == spaces[0] for space in spaces):
        return spaces[0]
    if all(isinstance(space, gym.spaces.Discrete) for space in spaces):
        return gym.spaces.Discrete(max(int(space.n) for space in spaces))
    if all(isinstance(space, gym.spaces.Box) and len(space.shape) == 1 for space in spaces):
        return max(spaces, key=lambda space: space.shape[0])
    return padded


def _groups(env: BatchedEnv, named: dict[str, list[str]] | None) -> tuple[Group, ...]:
    """The groups of ``env``'s agents: ``named`` by the user, else the environment's ``groups``
    (agents with identical spaces), else one group of everyone."""
    agents = list(env.possible_agents)
    index = {name: i for i, name in enumerate(agents)}
    if named is None:
        named = getattr(env, "groups", None) or {"agents": agents}
    else:
        if not isinstance(named, dict) or not named:
            raise TypeError(f"groups must be a dict from group name to agent names, got {named!r}")
        listed = [agent for members in named.values() for agent in members]
        unknown = [agent for agent in listed if agent not in index]
        if unknown:
            raise ValueError(f"groups name unknown agents {unknown}; the agents are {agents}")
        twice = sorted({agent for agent in listed if listed.count(agent) > 1})
        missing = [agent for agent in agents if agent not in listed]
        if twice or missing:
            raise ValueError("groups must hold every agent exactly once: "
                             + (f"{twice} are in two groups" if twice else f"{missing} in none"))
    own_obs = getattr(env, "agent_observation_spaces", None) or {}
    own_act = getattr(env, "agent_action_spaces", None) or {}
    full_size = _flat_size(env.single_observation_space)
    groups = []
    for name, members in named.items():
        sizes = [_flat_size(own_obs[a]) if a in own_obs else full_size for a in members]
        spaces = [own_act.get(a, env.single_action_space) for a in members]
        groups.append(Group(str(name), tuple(index[a] for a in members),
                            max(sizes) if all(sizes) else full_size,
                            _widest(spaces, env.single_action_space)))
    return tuple(groups)


def _observation_space(env: BatchedEnv, num_groups: int = 1) -> gym.Space:
    """What the shared policy sees of one agent (see the module docstring)."""
    space, agents = env.single_observation_space, env.num_agents
    if num_groups > 1:
        agents += num_groups  # the group's one-hot follows the agent's id
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
        groups: ``{"name": [agent names]}``, every agent exactly once; None: the environment's
            groups (agents with identical spaces; see the module docstring).

    Copy ``n``'s agent ``a`` is row ``n * A + a``. Attributes mirror :class:`BatchedEnv`:
    ``num_envs`` (= N * A), ``device``, ``single_observation_space`` (observation + agent id; a
    Dict with the action mask for tasks that have one, see the module docstring),
    ``single_action_space``, ``critic_observation_space`` (state + agent id, MAPPO only),
    :attr:`groups`. ``reset`` and ``step`` infos carry ``acting`` ``[N * A]`` (the rows whose
    action counts). With two or more groups the id is the agent's one-hot followed by its
    group's, ``A + G`` entries.
    """

    kind = "single-agent"

    def __init__(self, env: BatchedEnv, centralised_critic: bool = False,
                 groups: dict[str, list[str]] | None = None):
        if getattr(env, "kind", None) != "multi-agent":
            raise TypeError(f"AgentBatch needs a multi-agent environment, got {env!r}")
        self.env = env
        self.num_agents = env.num_agents
        self.num_envs = env.num_envs * env.num_agents
        self.device = env.device
        #: The agents' groups (:class:`Group`), in order; one group when all agents look alike.
        self.groups = _groups(env, groups)
        self.single_action_space = env.single_action_space
        self.single_observation_space = _observation_space(env, len(self.groups))
        self.has_action_mask = bool(env.has_action_mask)
        self.centralised_critic = centralised_critic
        #: Entries of the tag after each observation: the agent's id (and its group's one-hot).
        self.id_size = self.num_agents + (len(self.groups) if len(self.groups) > 1 else 0)
        self.critic_observation_space = (
            _with_id_space(env.state_space, self.id_size) if centralised_critic else None
        )
        #: ``[A]``: the group number of each agent.
        self.group_of_agent = torch.zeros(self.num_agents, dtype=torch.long, device=self.device)
        for number, group in enumerate(self.groups):
            self.group_of_agent[list(group.agents)] = number
        tag = torch.eye(self.num_agents, device=self.device)
        if len(self.groups) > 1:
            tag = torch.cat((tag, torch.eye(len(self.groups), device=self.device)[
                self.group_of_agent]), dim=1)
        self._ids = tag.repeat(env.num_envs, 1)
        # [A, G]: 1 / group size where the agent is a member, for each group's mean return.
        members = torch.zeros(self.num_agents, len(self.groups), device=self.device)
        for number, group in enumerate(self.groups):
            members[list(group.agents), number] = 1.0 / len(group.agents)
        self._group_mean = members
        self._group_sums = torch.zeros(len(self.groups), device=self.device)
        self._group_episodes = torch.zeros((), device=self.device)

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
        if "agent_episode_return" in info:  # each group's mean return, summed on the device
            ended = info["_episode"].float()
            self._group_sums += (info["agent_episode_return"] * ended[:, None]).sum(0) \
                @ self._group_mean
            self._group_episodes += ended.sum()
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

    def group_returns(self) -> dict[str, float]:
        """Each group's mean episode return (the mean over its agents) over the episodes finished
        since the last call, by group name; empty when none finished (reads the device once)."""
        episodes = float(self._group_episodes)
        sums = self._group_sums.tolist()
        self._group_sums.zero_()
        self._group_episodes.zero_()
        if episodes == 0:
            return {}
        return {group.name: total / episodes for group, total in zip(self.groups, sums,
                                                                        strict=True)}

    def row_groups(self, obs: Any) -> torch.Tensor:
        """``[...]`` int64: the group number of each row of ``obs`` (this batch's observations,
        any leading shape), read from the group one-hot that ends each row's tag; a mixed team
        (two or more groups) only."""
        if len(self.groups) < 2:
            raise ValueError(f"{self!r} has one group; its rows carry no group one-hot")
        if isinstance(obs, dict):
            obs = obs[AGENT_ID_KEY] if AGENT_ID_KEY in obs else obs[OBS_KEY]
        return obs[..., -len(self.groups):].argmax(-1)

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
