"""Heterogeneous agents in one batch: each agent's own spaces padded to one space, and back.

Every multi-agent adapter (:class:`~envs.interop.pettingzoo.PettingZooToBatched`,
:class:`~envs.interop.turn_based.AECToBatched`, :class:`~envs.interop.vmas.VmasToBatched`) pads
with these two classes, and :class:`~envs.interop.pettingzoo.BatchedToParallelEnv` undoes the
padding with :func:`unpad_observation`, :func:`pad_action` and :func:`unpad_action_mask`. The
rules (docs/architecture.md, "Heterogeneous agents"):

- observations: when the agents' spaces differ, each agent's observation is flattened
  (``gymnasium.spaces.flatten``) to float32 and zero-padded at the end to the largest flattened
  size; ``mask`` ``[A, size]`` is true where an agent's own entries are. Dict observations can
  only be batched when every agent has the same one.
- actions: ``Discrete`` spaces of different ``n`` (one common ``start``) become
  ``Discrete(max n)`` with a static mask of the actions each agent has; an action an agent lacks
  acts as its first action (``start``). ``MultiDiscrete`` spaces are padded per entry likewise
  (entries an agent lacks allow only 0). 1-D ``Box`` spaces become one Box of the largest size,
  bounded by the widest of the agents' bounds; each agent's action is sliced to its size and
  clipped to its own bounds. Any other mix is a ``TypeError``.

Nothing here imports an optional ecosystem; spaces are gymnasium spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

__all__ = [
    "ActionPadding", "ObservationPadding", "pad_action", "unpad_action_mask", "unpad_observation",
]


def _all_equal(agent_spaces: Sequence[gym.Space]) -> bool:
    return all(space == agent_spaces[0] for space in agent_spaces[1:])


def _describe(names: Sequence[str], agent_spaces: Sequence[gym.Space]) -> str:
    return ", ".join(f"{name}: {space}" for name, space in zip(names, agent_spaces, strict=True))


class ObservationPadding:
    """The agents' observation spaces as one space (padded when they differ).

    Args:
        names: The agents' names, in batch order.
        agent_spaces: Each agent's own observation space, in the same order.

    Attributes:
        padded: Whether the spaces differ (observations are flattened and padded).
        single_space: The one space of the batch: the common space, or a float32
            ``Box((size,))`` bounded by the widest of the agents' flattened bounds (and 0).
        sizes: Each agent's flattened size; ``size`` the largest.
        mask: ``[A, size]`` bool (CPU) where each agent's own entries are; ``None`` unless
            ``padded``.

    Raises:
        TypeError: the spaces differ and one of them is a Dict (or cannot be flattened).
    """

    def __init__(self, names: Sequence[str], agent_spaces: Sequence[gym.Space]):
        self.names = list(names)
        self.agent_spaces = list(agent_spaces)
        self.padded = not _all_equal(self.agent_spaces)
        self.mask: torch.Tensor | None = None
        if not self.padded:
            self.single_space = self.agent_spaces[0]
            self.sizes = [spaces.flatdim(self.single_space)] * len(self.names) \
                if not isinstance(self.single_space, spaces.Dict) else []
            self.size = self.sizes[0] if self.sizes else 0
            return
        for name, space in zip(self.names, self.agent_spaces, strict=True):
            if not isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete,
                                      spaces.MultiBinary)):
                raise TypeError(
                    f"{name} has observation space {space}: agents with different observation "
                    f"spaces are padded into one flat Box, which needs Box, Discrete, "
                    f"MultiDiscrete or MultiBinary spaces (Dict observations batch only when "
                    f"every agent has the same one). The spaces: "
                    f"{_describe(self.names, self.agent_spaces)}"
                )
        flat = [spaces.flatten_space(space) for space in self.agent_spaces]
        self.sizes = [int(space.shape[0]) for space in flat]
        self.size = max(self.sizes)
        low = np.zeros((len(flat), self.size), dtype=np.float64)
        high = np.zeros((len(flat), self.size), dtype=np.float64)
        for i, space in enumerate(flat):
            low[i, : self.sizes[i]], high[i, : self.sizes[i]] = space.low, space.high
        self.single_space = spaces.Box(low.min(axis=0).astype(np.float32),
                                       high.max(axis=0).astype(np.float32), dtype=np.float32)
        self.mask = torch.arange(self.size)[None] < torch.tensor(self.sizes)[:, None]

    def pad(self, index: int, obs: Any) -> np.ndarray:
        """Agent ``index``'s observation flattened and zero-padded, ``[size]`` float32."""
        out = np.zeros(self.size, dtype=np.float32)
        out[: self.sizes[index]] = spaces.flatten(self.agent_spaces[index], obs)
        return out

    def pad_tensors(self, per_agent: Sequence[torch.Tensor]) -> torch.Tensor:
        """``[N, ...]`` per agent (in batch order) -> ``[N, A, size]`` float32, padded."""
        flat = [obs.reshape(obs.shape[0], -1) for obs in per_agent]
        flat = [F.pad(obs, (0, self.size - obs.shape[1])) for obs in flat]
        return torch.stack(flat, dim=1).to(torch.float32)


class ActionPadding:
    """The agents' action spaces as one space (padded when they differ).

    Args:
        names: The agents' names, in batch order.
        agent_spaces: Each agent's own action space, in the same order.

    Attributes:
        padded: Whether the spaces differ.
        single_space: The one action space of the batch.
        mask: ``[A, n]`` bool (CPU): each agent's own actions (``Discrete``: ``n = max n``;
            ``MultiDiscrete``: the entries' masks concatenated); ``None`` when no action is
            missing for any agent (Box, or equal discrete spaces).
        sizes: ``Box``: each agent's action size; ``MultiDiscrete``: each agent's number of
            entries; ``Discrete``: 1 each.

    Raises:
        TypeError: the spaces differ and are not all Discrete (one ``start``), all
            MultiDiscrete (start 0) or all 1-D Boxes; e.g. Discrete for some agents and Box for
            others.
    """

    def __init__(self, names: Sequence[str], agent_spaces: Sequence[gym.Space]):
        self.names = list(names)
        self.agent_spaces = list(agent_spaces)
        self.padded = not _all_equal(self.agent_spaces)
        self.mask: torch.Tensor | None = None
        self.sizes: list[int] = []
        self._limit: torch.Tensor | None = None  # Discrete: [A] n; MultiDiscrete: [A, L] nvec
        self._device_tensors: dict[torch.device, tuple[torch.Tensor, ...]] = {}
        if not self.padded:
            self.single_space = self.agent_spaces[0]
            return
        kinds = {type(space) for space in self.agent_spaces}
        if kinds == {spaces.Discrete}:
            self._pad_discrete()
        elif kinds == {spaces.MultiDiscrete}:
            self._pad_multi_discrete()
        elif kinds == {spaces.Box}:
            self._pad_box()
        else:
            raise TypeError(
                "agents with different kinds of action spaces cannot share one batch (mixing "
                "Discrete and Box, or MultiBinary of different sizes, is not supported): "
                f"{_describe(self.names, self.agent_spaces)}"
            )

    def _pad_discrete(self) -> None:
        starts = {int(space.start) for space in self.agent_spaces}
        if len(starts) > 1:
            raise TypeError(
                "agents with Discrete actions of different starts cannot be padded into one "
                f"Discrete space: {_describe(self.names, self.agent_spaces)}"
            )
        ns = [int(space.n) for space in self.agent_spaces]
        n = max(ns)
        self.start = starts.pop()
        self.sizes = [1] * len(ns)
        self.single_space = spaces.Discrete(n, start=self.start)
        self._limit = torch.tensor(ns)
        self.mask = torch.arange(n)[None] < self._limit[:, None]

    def _pad_multi_discrete(self) -> None:
        if any(np.any(space.start != 0) for space in self.agent_spaces):
            raise TypeError(
                "agents with MultiDiscrete actions are padded only when every start is 0: "
                f"{_describe(self.names, self.agent_spaces)}"
            )
        nvecs = [[int(v) for v in space.nvec.reshape(-1)] for space in self.agent_spaces]
        length = max(len(nvec) for nvec in nvecs)
        padded = torch.ones(len(nvecs), length, dtype=torch.int64)
        for i, nvec in enumerate(nvecs):
            padded[i, : len(nvec)] = torch.tensor(nvec)
        widest = padded.max(dim=0).values
        self.start = 0
        self.sizes = [len(nvec) for nvec in nvecs]
        self.single_space = spaces.MultiDiscrete(widest.numpy())
        self._limit = padded
        self.mask = torch.cat(
            [torch.arange(int(k))[None] < padded[:, j, None] for j, k in enumerate(widest)], dim=1
        )

    def _pad_box(self) -> None:
        for name, space in zip(self.names, self.agent_spaces, strict=True):
            if len(space.shape) != 1:
                raise TypeError(
                    f"{name} has action space {space}: agents with different Box actions are "
                    "padded only when every Box is one-dimensional: "
                    f"{_describe(self.names, self.agent_spaces)}"
                )
        self.sizes = [int(space.shape[0]) for space in self.agent_spaces]
        size = max(self.sizes)
        low = np.full((len(self.sizes), size), np.inf, dtype=np.float32)
        high = np.full((len(self.sizes), size), -np.inf, dtype=np.float32)
        for i, space in enumerate(self.agent_spaces):
            low[i, : self.sizes[i]], high[i, : self.sizes[i]] = space.low, space.high
        widest_low, widest_high = low.min(axis=0), high.max(axis=0)
        # Entries an agent lacks are dropped: their per-agent bounds can be anything.
        self._low = np.where(np.isinf(low), widest_low, low)
        self._high = np.where(np.isinf(high), widest_high, high)
        self.single_space = spaces.Box(widest_low, widest_high, dtype=np.float32)
        self._low_t, self._high_t = torch.from_numpy(self._low), torch.from_numpy(self._high)

    def _on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The bounds (Box) or limits (discrete) on ``device``, copied there once."""
        cache = self._device_tensors
        if device not in cache:
            if isinstance(self.single_space, spaces.Box):
                cache[device] = (self._low_t.to(device), self._high_t.to(device))
            else:
                cache[device] = ((self._limit + self.start).to(device),)
        return cache[device]

    @property
    def has_mask(self) -> bool:
        """Whether some agent lacks some action of ``single_space`` (an action mask is needed)."""
        return self.mask is not None and not bool(self.mask.all())

    def unpad(self, index: int, action: np.ndarray) -> Any:
        """Agent ``index``'s own action from its row of a padded action (numpy).

        An action the agent lacks acts as its first one (``start``).
        """
        if not self.padded:
            return action
        space = self.agent_spaces[index]
        if isinstance(space, spaces.Discrete):
            value = int(action)
            own = value if value - self.start < space.n else self.start
            return np.asarray(own, dtype=space.dtype)
        if isinstance(space, spaces.MultiDiscrete):
            limit = self._limit[index].numpy()
            own = np.where(action < limit, action, 0)[: self.sizes[index]]
            return own.astype(space.dtype).reshape(space.shape)
        own = np.clip(action, self._low[index], self._high[index])[: self.sizes[index]]
        return own.astype(space.dtype)

    def unpad_tensors(self, actions: torch.Tensor) -> list[torch.Tensor]:
        """``[N, A, ...]`` padded actions -> one ``[N, ...]`` tensor per agent, in its own space.

        Discrete: ``[N]`` each; MultiDiscrete and Box: ``[N, own size]``. An action an agent
        lacks acts as its first one; Box actions are clipped to the agent's own bounds.
        """
        if self.padded and isinstance(self.single_space, spaces.Box):
            low, high = self._on(actions.device)
            actions = torch.maximum(torch.minimum(actions, high), low)
        elif self._limit is not None:
            (limit,) = self._on(actions.device)
            actions = torch.where(actions < limit, actions, self.start)
        if not self.padded or actions.dim() == 2:  # one space, or Discrete
            return [actions[:, i] for i in range(actions.shape[1])]
        return [actions[:, i, :size] for i, size in enumerate(self.sizes)]


def unpad_observation(own: gym.Space, padded_space: gym.Space, obs: Any) -> Any:
    """One agent's own observation from its padded one (the inverse of the padding)."""
    if own == padded_space:
        return obs
    size = spaces.flatdim(own)
    return spaces.unflatten(own, np.asarray(obs)[:size].astype(spaces.flatten_space(own).dtype))


def pad_action(own: gym.Space, padded_space: gym.Space, action: np.ndarray) -> np.ndarray:
    """One agent's own action as an action of the padded space (what its row of the batch holds).

    Discrete actions keep their value; the entries an agent lacks are 0 (clipped into the padded
    Box), which the padding ignores.
    """
    if own == padded_space or isinstance(own, spaces.Discrete):
        return action
    if isinstance(padded_space, spaces.Box):
        out = np.clip(np.zeros(padded_space.shape, dtype=padded_space.dtype),
                      padded_space.low, padded_space.high)
    else:
        out = np.zeros(padded_space.shape, dtype=padded_space.dtype)
    flat = np.asarray(action).reshape(-1)
    out[: flat.size] = flat
    return out


def unpad_action_mask(own: gym.Space, padded_space: gym.Space, mask: np.ndarray) -> np.ndarray:
    """One agent's own action mask from its row of the padded mask."""
    if own == padded_space:
        return mask
    if isinstance(own, spaces.Discrete):
        return mask[: own.n]
    if isinstance(own, spaces.MultiDiscrete):
        pieces, offset = [], 0
        own_nvec = own.nvec.reshape(-1)
        for j, width in enumerate(padded_space.nvec.reshape(-1)):
            if j < own_nvec.size:
                pieces.append(mask[offset: offset + own_nvec[j]])
            offset += int(width)
        return np.concatenate(pieces)
    return mask
