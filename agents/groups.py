"""One policy per group of agents, trained together: :class:`GroupedActorCritic`.

A heterogeneous team (predators and prey, a speaker and a listener) is folded into one batch by
:class:`agents.multiagent.AgentBatch`, padded to the largest observation and action, with each
agent's id and group one-hot after its observation. :class:`GroupedActorCritic` keeps one
:class:`~agents.policies.ActorCritic` per group (:attr:`AgentBatch.groups
<agents.multiagent.AgentBatch.groups>`), each built for its group's own observation size and
action space, and answers for the whole batch with the interface of one ``ActorCritic``, so the
rollout, the loss and the checkpoints are those of any PPO run.

Every group's network runs on every row, and each row takes the outputs of its own group
(``torch.where`` on the row's group, read from its one-hot: no host synchronisation, no
scatter); the cost is one forward per group. A row's group is fixed, so the other groups'
outputs on it never reach the loss: each group's parameters learn only from its own agents.
Recurrent states are kept per group for every row (the foreign rows' states are never read).
:meth:`GroupedActorCritic.evaluate` also returns each sample's group, so that PPO's loss
normalises advantages within each group (as separate learners would), not across the team.

Communication crosses groups: every group's encoder maps its agents' observations to the common
``hidden_size``; each row takes its own group's features, one
:class:`graphs.communication.AgentCommunication` passes messages between all the agents of a copy,
and each group's core and heads continue from the result (without running the encoder again).

Not supported with groups (a ``ValueError`` says so): Bayesian value heads and Thompson
policies; use ``group_policies = False`` (one shared policy over the padded observations) for
those.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from agents.multiagent import OBS_KEY, Group
from agents.policies import (
    ACTION_MASK,
    ActorCritic,
    ActStep,
    Evaluation,
    PolicyState,
    tree_map,
    unsqueeze0,
)


class _Core:
    """What the PPO loop asks of ``policy.core``: whether it is recurrent."""

    def __init__(self, recurrent: bool):
        self.recurrent = recurrent


class _Messages(nn.Module):
    """Stands in for a group policy's communication: hands back the features after message
    passing across every group, computed by :class:`GroupedActorCritic` before the call. As
    ``precomputed`` says, the policy then skips its own encoder (the features already went
    through it). Each prepared output serves one call."""

    precomputed = True

    def __init__(self) -> None:
        super().__init__()
        self.output: torch.Tensor | None = None

    def forward(self, features: None, obs: Any) -> torch.Tensor:
        output, self.output = self.output, None
        if output is None:
            raise RuntimeError("GroupedActorCritic prepares the messages before each call")
        return output


class GroupedActorCritic(nn.Module):
    """One :class:`~agents.policies.ActorCritic` per group, as one policy (see the module
    docstring).

    Args:
        observation_space: :class:`~agents.multiagent.AgentBatch`'s observation space: a flat Box
            (padded observation, then the tag of ``tag_size`` entries: agent id and group
            one-hot) or a Dict whose ``"obs"`` entry is that Box, beside ``"action_mask"``.
        action_space: The padded action space (Discrete or a 1-d Box).
        groups: The groups, in the order of their one-hot.
        num_agents: Agents per copy (the first entries of the tag are the agent's id).
        tag_size: Entries after the padded observation.
        **policy_kwargs: :class:`~agents.policies.ActorCritic`'s arguments (``core``,
            ``hidden_size``, ``core_kwargs``, ``shared_trunk``, ``critic_observation_space``),
            the same for every group.

    Raises:
        ValueError: fewer than two groups, a Bayesian value head or a Thompson policy, or a
            Dict observation of another layout.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 groups: tuple[Group, ...], num_agents: int, tag_size: int, **policy_kwargs: Any):
        super().__init__()
        if len(groups) < 2:
            raise ValueError(f"GroupedActorCritic needs two or more groups, got {len(groups)}")
        unsupported = [name for name, off in (("value_head", "linear"),
                                              ("thompson_policy", False))
                       if policy_kwargs.get(name, off) != off]
        if unsupported:
            raise ValueError(f"one policy per group does not support {', '.join(unsupported)}; "
                             "set group_policies = False for one shared policy")
        self.masked = isinstance(observation_space, gym.spaces.Dict)
        flat = observation_space[OBS_KEY] if self.masked else observation_space
        if self.masked and set(observation_space.spaces) != {OBS_KEY, ACTION_MASK}:
            raise ValueError(f"GroupedActorCritic reads a flat observation (or 'obs' beside "
                             f"'action_mask'), got {observation_space}")
        self.groups = groups
        self.num_agents, self.tag_size = num_agents, tag_size
        self.padded_size = int(flat.shape[0]) - tag_size
        self.action_space = action_space
        communication = policy_kwargs.pop("communication", None)
        self.policies = nn.ModuleList(
            ActorCritic(self._group_observation_space(group), group.action_space,
                        **policy_kwargs)
            for group in groups
        )
        self.communication = None
        if communication:
            from graphs.communication import AgentCommunication

            self.communication = AgentCommunication(policy_kwargs.get("hidden_size", 64),
                                                    **communication)
            for policy in self.policies:
                policy.communication = _Messages()
        group_of_agent = torch.zeros(num_agents, dtype=torch.long)
        for number, group in enumerate(groups):
            group_of_agent[list(group.agents)] = number
        self.register_buffer("group_of_agent", group_of_agent, persistent=False)
        self.core = _Core(self.policies[0].core.recurrent)
        self.bayesian_value = False
        self.critic_observation_space = policy_kwargs.get("critic_observation_space")
        states = [policy.initial_state(1) for policy in self.policies]
        #: How many actor / critic state tensors each group's policy has (to split the state).
        self._state_sizes = [(len(state.actor), len(state.critic)) for state in states]

    def _group_observation_space(self, group: Group) -> gym.Space:
        size = group.observation_size + self.tag_size
        box = gym.spaces.Box(-np.inf, np.inf, (size,), dtype=np.float32)
        if not self.masked:
            return box
        return gym.spaces.Dict({OBS_KEY: box,
                                ACTION_MASK: gym.spaces.MultiBinary(_mask_width(group))})

    # ------------------------------------------------------------------ routing
    def _flat(self, obs: Any) -> torch.Tensor:
        return obs[OBS_KEY] if self.masked else obs

    def _row_groups(self, obs: Any) -> torch.Tensor:
        """``[...]``: each row's group number, from its agent id."""
        ids = self._flat(obs)[..., self.padded_size: self.padded_size + self.num_agents]
        return self.group_of_agent[ids.argmax(-1)]

    def _group_obs(self, obs: Any, number: int, mine: torch.Tensor) -> Any:
        """What group ``number``'s policy sees: its members' own entries and the tag; foreign rows
        get every action allowed (their outputs are discarded; a mask of theirs could forbid
        every action of this group's head)."""
        group = self.groups[number]
        flat = self._flat(obs)
        own = torch.cat((flat[..., : group.observation_size], flat[..., self.padded_size:]), -1)
        if not self.masked:
            return own
        mask = obs[ACTION_MASK][..., : _mask_width(group)]
        return {OBS_KEY: own, ACTION_MASK: torch.where(mine[..., None], mask, 1).to(mask.dtype)}

    def _group_action(self, action: torch.Tensor, number: int) -> torch.Tensor:
        """The padded ``action`` in group ``number``'s own space (foreign rows made valid)."""
        space = self.groups[number].action_space
        if isinstance(space, gym.spaces.Discrete):
            return action.clamp(max=int(space.n) - 1)
        return action[..., : space.shape[0]]

    def _padded_action(self, action: torch.Tensor, number: int) -> torch.Tensor:
        """Group ``number``'s action in the padded action space."""
        if isinstance(self.groups[number].action_space, gym.spaces.Discrete):
            return action
        width = self.action_space.shape[0] - action.shape[-1]
        return nn.functional.pad(action, (0, width))

    def _split(self, state: PolicyState) -> list[PolicyState]:
        parts, actor, critic = [], list(state.actor), list(state.critic)
        for n_actor, n_critic in self._state_sizes:
            parts.append(PolicyState(tuple(actor[:n_actor]), tuple(critic[:n_critic])))
            actor, critic = actor[n_actor:], critic[n_critic:]
        return parts

    @staticmethod
    def _join(states: list[PolicyState]) -> PolicyState:
        return PolicyState(tuple(t for s in states for t in s.actor),
                           tuple(t for s in states for t in s.critic))

    @staticmethod
    def _pick(groups: torch.Tensor, values: list[torch.Tensor]) -> torch.Tensor:
        """Each row's value from its own group's ``values`` (``[...]`` or ``[..., d]``)."""
        out = values[0]
        for number, value in enumerate(values[1:], start=1):
            mine = groups == number
            out = torch.where(mine.reshape(mine.shape + (1,) * (value.dim() - mine.dim())),
                              value, out)
        return out

    def _prepare_messages(self, obs: Any, groups: torch.Tensor, sequence: bool) -> None:
        """With communication: each row's own group's encoder features, passed between the
        agents of each copy, handed to every group's policy (``sequence``: ``obs`` is ``[T, B,
        ...]``, else ``[B, ...]``)."""
        if self.communication is None:
            return
        if not sequence:
            obs, groups = tree_map(unsqueeze0, obs), groups.unsqueeze(0)
        features = [policy.encoder(self._group_obs(obs, n, groups == n))
                    for n, policy in enumerate(self.policies)]
        output = self.communication(self._pick(groups, features), obs)
        for policy in self.policies:
            policy.communication.output = output

    # ------------------------------------------------------------------ the policy interface
    def initial_state(self, batch: int) -> PolicyState:
        return self._join([policy.initial_state(batch) for policy in self.policies])

    def act(self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
            critic_obs: torch.Tensor | None = None,
            policy_noise: torch.Tensor | None = None) -> ActStep:
        groups = self._row_groups(obs)
        self._prepare_messages(obs, groups, sequence=False)
        steps = [policy.act(self._group_obs(obs, n, groups == n), part, episode_start,
                            critic_obs)
                 for n, (policy, part) in enumerate(zip(self.policies, self._split(state),
                                                        strict=True))]
        action = self._pick(groups, [self._padded_action(step.action, n)
                                     for n, step in enumerate(steps)])
        return ActStep(action, self._pick(groups, [step.logprob for step in steps]),
                       self._pick(groups, [step.value for step in steps]),
                       self._join([step.state for step in steps]), steps[0].inputs)

    def value_and_std(self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
                      critic_obs: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        groups = self._row_groups(obs)
        if self.policies[0].critic_core is None:  # the value reads the actor's trunk (messages)
            self._prepare_messages(obs, groups, sequence=True)
        values = [policy.value(self._group_obs(obs, n, groups == n), part, episode_start,
                               critic_obs)
                  for n, (policy, part) in enumerate(zip(self.policies, self._split(state),
                                                         strict=True))]
        return self._pick(groups, values), None

    def value(self, obs: Any, state: PolicyState, episode_start: torch.Tensor,
              critic_obs: torch.Tensor | None = None) -> torch.Tensor:
        return self.value_and_std(obs, state, episode_start, critic_obs)[0]

    def evaluate(self, obs: Any, action: torch.Tensor, state: PolicyState,
                 episode_start: torch.Tensor, inputs: dict[str, torch.Tensor] | None = None,
                 num_data: int = 1) -> Evaluation:
        groups = self._row_groups(obs)
        self._prepare_messages(obs, groups, sequence=True)
        parts = [policy.evaluate(self._group_obs(obs, n, groups == n),
                                 self._group_action(action, n), part, episode_start, inputs,
                                 num_data)
                 for n, (policy, part) in enumerate(zip(self.policies, self._split(state),
                                                        strict=True))]
        return Evaluation(self._pick(groups, [p.logprob for p in parts]),
                          self._pick(groups, [p.entropy for p in parts]),
                          self._pick(groups, [p.value for p in parts]), groups=groups)

    @torch.no_grad()
    def predict(self, obs: Any, state: PolicyState | None = None,
                episode_start: torch.Tensor | None = None,
                deterministic: bool = True) -> tuple[torch.Tensor, PolicyState]:
        groups = self._row_groups(obs)
        if state is None:
            state = self.initial_state(groups.shape[0])
        self._prepare_messages(obs, groups, sequence=False)
        outs = [policy.predict(self._group_obs(obs, n, groups == n), part, episode_start,
                               deterministic)
                for n, (policy, part) in enumerate(zip(self.policies, self._split(state),
                                                       strict=True))]
        action = self._pick(groups, [self._padded_action(a, n) for n, (a, _) in enumerate(outs)])
        return action, self._join([s for _, s in outs])


def _mask_width(group: Group) -> int:
    space = group.action_space
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    raise ValueError(f"group {group.name!r} has action masks but a {space} action space "
                     "(expected Discrete)")
