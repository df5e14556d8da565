"""The batched torch environment contract (DESIGN.md, contract 1).

A native Umbra environment is a batch of ``num_envs`` independent copies whose state lives in torch
tensors on one device. It follows Gymnasium's vector API with torch tensors instead of numpy arrays:

- ``reset(seed=, options=) -> (obs, info)`` and ``step(actions) -> (obs, reward, terminated,
  truncated, info)``;
- autoreset is SAME_STEP: a copy that ends is reset inside the same ``step``, ``obs`` holds the new
  episode's first observation and ``info["final_obs"]`` the last observation of the ended one
  (for every copy; ``info["_final_obs"]`` marks the copies where it matters);
- episode statistics are computed on device: ``info["episode_return"]`` and
  ``info["episode_length"]`` are valid where the mask ``info["_episode"]`` is true;
- randomness comes from ``self.generator``, a ``torch.Generator`` seeded by ``reset(seed=)``.

To write an environment, subclass :class:`BatchedEnv`, set the two single spaces and
``max_episode_steps``, and implement three methods (see ``envs/classic.py`` for two examples):

- ``_reset_copies(mask)``: draw a fresh initial state for the copies where ``mask`` is true;
- ``_advance(actions) -> (reward, terminated)``: move every copy one step;
- ``_observe()``: the observation of every copy.

None of them may loop over copies in Python or synchronise with the device (no ``.item()``, no
``if mask.any()``); write resets as ``torch.where(mask, fresh, old)``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

Obs = torch.Tensor | dict[str, torch.Tensor]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. Asking for CUDA on a machine
    without it is an error rather than a silent fallback.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu', 'cuda' or a torch.device, got {device!r}")
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"unknown device {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for CUDA, but torch.cuda.is_available() is False on this "
            "machine: use device='cpu' or device='auto'"
        )
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def torch_dtype(space: gym.Space) -> torch.dtype:
    """The torch dtype that holds one element of a Box, Discrete or MultiDiscrete space."""
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
        return torch.int64
    if isinstance(space, gym.spaces.MultiBinary):
        return torch.int8
    if isinstance(space, gym.spaces.Box):
        return torch.from_numpy(np.zeros((), dtype=space.dtype)).dtype
    raise TypeError(f"no torch dtype for space {space}")


def check_num_envs(num_envs: int) -> int:
    """Return ``num_envs`` as an int; ``TypeError``/``ValueError`` unless it is an int >= 1."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
        raise TypeError(f"num_envs must be a positive int, got {num_envs!r}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    return int(num_envs)


class BatchedEnv:
    """Base class of every native Umbra environment: ``num_envs`` copies stepped as tensors.

    Args:
        num_envs: Number of independent copies, at least 1.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``; every tensor the
            environment returns lives there.
        debug: Check every action passed to ``step`` (shape, dtype, device, range, NaN). These
            checks synchronise with the device, so they are off by default in the hot loop; the
            Gymnasium, numpy and SB3 adapters always check.

    Subclasses set ``single_observation_space``, ``single_action_space`` and
    ``max_episode_steps`` (``None`` for no time limit) before calling ``super().__init__``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    single_observation_space: gym.Space
    single_action_space: gym.Space
    max_episode_steps: int | None = None
    #: One line that ``python -m benchmarks.run --list`` prints.
    description: str = ""
    #: "single-agent", "multi-agent" or "graph".
    kind: str = "single-agent"

    def __init__(self, num_envs: int = 1, device: str | torch.device = "cpu", debug: bool = False):
        self.num_envs = check_num_envs(num_envs)
        self.device = resolve_device(device)
        self.debug = bool(debug)
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._action_dtype = torch_dtype(self.single_action_space)
        self._episode_return = torch.zeros(self.num_envs, device=self.device)
        self._episode_length = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._all = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self._has_reset = False

    # ------------------------------------------------------------------ to implement
    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        """Draw fresh initial states where ``mask`` ([num_envs] bool) is true."""
        raise NotImplementedError

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step every copy; return ``(reward [num_envs] float32, terminated [num_envs] bool)``."""
        raise NotImplementedError

    def _observe(self) -> Obs:
        """Observation of every copy, batched along the first axis."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the vector API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy. ``seed`` reseeds ``self.generator``: same seed, same trajectory."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"seed must be an int or None, got {seed!r}")
            self.generator.manual_seed(int(seed))
        self._reset_copies(self._all, options)
        self._episode_return.zero_()
        self._episode_length.zero_()
        self._has_reset = True
        return self._observe(), {}

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy by one action each; copies that end are reset in the same call."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        if self.debug:
            self.check_actions(actions)
        reward, terminated = self._advance(actions)
        self._episode_return += reward
        self._episode_length += 1
        if self.max_episode_steps is None:
            truncated = torch.zeros_like(terminated)
        else:
            truncated = self._episode_length >= self.max_episode_steps
        done = terminated | truncated
        info = {
            "final_obs": self._observe(),
            "_final_obs": done,
            "episode_return": self._episode_return.clone(),
            "episode_length": self._episode_length.clone(),
            "_episode": done,
        }
        self._reset_copies(done)
        self._episode_return.masked_fill_(done, 0.0)
        self._episode_length.masked_fill_(done, 0)
        return self._observe(), reward, terminated, truncated, info

    def close(self) -> None:
        """Release resources (nothing to release for pure tensor environments)."""

    @property
    def unwrapped(self) -> BatchedEnv:
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_envs={self.num_envs}, device={self.device})"

    # ------------------------------------------------------------------ input validation
    def check_actions(self, actions: Any) -> None:
        """Raise a clear ``TypeError``/``ValueError`` unless ``actions`` is a valid batch.

        Valid means: a torch tensor on ``self.device`` of shape ``[num_envs, *action_shape]``, with
        the action space's dtype kind (integer for discrete spaces, floating for boxes), no NaN,
        and every entry inside the action space.
        """
        space = self.single_action_space
        expected_shape = (self.num_envs, *space.shape)
        if not isinstance(actions, torch.Tensor):
            raise TypeError(
                f"actions must be a torch.Tensor of shape {expected_shape}, got "
                f"{type(actions).__name__}; the Gymnasium and SB3 adapters accept numpy arrays"
            )
        if actions.device != self.device:
            raise ValueError(f"actions are on {actions.device}, the environment on {self.device}")
        if tuple(actions.shape) != expected_shape:
            raise ValueError(
                f"actions must have shape {expected_shape}, got {tuple(actions.shape)}"
            )
        if self._action_dtype.is_floating_point:
            if not actions.is_floating_point():
                raise TypeError(f"actions for {space} must be floating point, got {actions.dtype}")
            if torch.isnan(actions).any():
                raise ValueError("actions contain NaN")
            low = torch.as_tensor(space.low, device=self.device, dtype=actions.dtype)
            high = torch.as_tensor(space.high, device=self.device, dtype=actions.dtype)
            if ((actions < low) | (actions > high)).any():
                raise ValueError(
                    f"actions must lie in [{space.low.tolist()}, {space.high.tolist()}], got "
                    f"min {actions.min().item():.4g}, max {actions.max().item():.4g}"
                )
        else:
            if actions.is_floating_point() or actions.dtype == torch.bool:
                raise TypeError(
                    f"actions for {space} must be an integer tensor, got {actions.dtype}"
                )
            if isinstance(space, gym.spaces.Discrete):
                low, high = int(space.start), int(space.start + space.n - 1)
            elif isinstance(space, gym.spaces.MultiDiscrete):
                low, high = space.start.tolist(), (space.start + space.nvec - 1).tolist()
            else:
                low, high = 0, 1
            low_t = torch.as_tensor(low, device=self.device)
            high_t = torch.as_tensor(high, device=self.device)
            if ((actions < low_t) | (actions > high_t)).any():
                raise ValueError(
                    f"actions must be integers in [{low}, {high}], got min "
                    f"{actions.min().item()}, max {actions.max().item()}"
                )
