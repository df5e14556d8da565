"""The batched torch environment contract.

How the rest of Umbra relies on it: docs/architecture.md, "The batched environment contract".

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

- ``_reset_copies(mask)``: draw a fresh initial state for the copies where ``mask`` is true
  (``step`` calls it with the copies that ended; with ``skips_idle_resets``, on the CPU, only
  when at least one did);
- ``_advance(actions) -> (reward, terminated)``: move every copy one step;
- ``_observe()``: the observation of every copy.

None of them may loop over copies in Python or synchronise with the device (no ``.item()``, no
``if mask.any()``); write resets as ``torch.where(mask, fresh, old)``.
"""

from __future__ import annotations

import math
import os
import re
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


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int; ``TypeError`` unless it is an int, ``ValueError`` if too small.

    Environment constructors check their keyword arguments with these ``check_*`` helpers, so
    that a bad setting fails when the environment is built, naming the argument.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float; ``TypeError`` unless it is a number, ``ValueError`` unless > 0.

    ``math.inf`` is accepted (e.g. an unlimited view radius).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be greater than 0, got {value}")
    return float(value)


def check_nonnegative(name: str, value: Any) -> float:
    """Return ``value`` as a float; ``TypeError`` unless it is a number, ``ValueError`` unless
    it is finite and >= 0 (penalties, costs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite float >= 0, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int | None:
    """``seed`` as an int (None stays None); ``TypeError`` for anything else (bools too)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    return int(seed)


def check_num_envs(num_envs: int) -> int:
    """Return ``num_envs`` as an int; ``TypeError``/``ValueError`` unless it is an int >= 1."""
    return check_int("num_envs", num_envs, 1)


def integer_action_bounds(space: gym.Space) -> tuple[Any, Any]:
    """Inclusive ``(low, high)`` of a Discrete, MultiDiscrete or MultiBinary action space."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.start), int(space.start + space.n - 1)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return space.start.tolist(), (space.start + space.nvec - 1).tolist()
    return 0, 1


class BatchedEnv:
    """Base class of every native Umbra environment: ``num_envs`` copies stepped as tensors.

    Args:
        num_envs: Number of independent copies, at least 1.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or a ``torch.device``; every tensor the
            environment returns lives there.
        debug: Check the values of every action at once, also on an accelerator. Every action
            passed to ``step`` is always checked (see :meth:`check_actions`): its type, shape,
            dtype and device at once (these cost nothing); its values (range, NaN) at once on
            the CPU, where that costs no synchronisation. On an accelerator the default folds
            the value check into a device-side flag that :meth:`check_deferred` examines at the
            next point that synchronises anyway (PPO calls it after every rollout; the
            Gymnasium, numpy and SB3 adapters check at once); meanwhile out-of-range integer
            actions are clamped into the space, so they cannot fault the device. ``debug=True``
            checks the values at every step on every device (one synchronisation per step).

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
    #: Whether ``step`` on the CPU skips ``_reset_copies`` when no copy ended (the card games and
    #: boards of envs/popgym set it). It changes which random numbers a seed gives, so the other
    #: tasks keep calling it every step and their seeded trajectories stay as they were.
    skips_idle_resets: bool = False

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
        self._action_low, self._action_high = _action_bound_tensors(
            self.single_action_space, self.device
        )
        #: ``(low, high)`` as Python numbers when every entry shares them, else None: one
        #: ``aminmax`` then checks a whole batch (a quarter of the generic check's time).
        self._uniform_bounds = _uniform(self._action_low, self._action_high)
        #: Accelerators only: whether an invalid action was seen since the last
        #: :meth:`check_deferred`, and the ``step`` call (counted from 1) that first passed one.
        self._deferred_invalid = torch.zeros((), dtype=torch.bool, device=self.device)
        self._deferred_first_call = torch.zeros((), dtype=torch.int64, device=self.device)
        self._step_calls = 0
        #: Whether ``step`` defers the value check of actions (accelerators without ``debug``).
        self.defers_action_checks = not self.debug and self.device.type != "cpu"
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
        seed = check_seed(seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        self._reset_copies(self._all, options)
        self._start_episodes()
        return self._observe(), self._current_info()

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy by one action each; copies that end are reset in the same call."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        actions = self._validate_actions(actions)
        reward, terminated = self._advance(actions)
        if self.max_episode_steps is None:
            truncated = torch.zeros_like(terminated)
        else:  # the length the episode reaches with this step
            truncated = self._episode_length + 1 >= self.max_episode_steps
        info = self._finish_step(reward, terminated, truncated, self._observe(), self._final_info())
        ended = info["_episode"]
        # On the CPU, reading whether any copy ended costs no synchronisation: where the class
        # allows it, a step where none did (most steps of fixed-length episodes) skips the reset.
        if not self.skips_idle_resets or self.device.type != "cpu" or bool(ended.any()):
            self._reset_copies(ended)
        info.update(self._current_info())
        return self._observe(), reward, terminated, truncated, info

    # ------------------------------------------------------------------ episode bookkeeping
    # Native environments and the adapters of third-party ones (envs/interop) share these two
    # methods, so that episode statistics mean the same everywhere.
    def _start_episodes(self) -> None:
        """Start a new episode in every copy: zero the statistics (``reset`` calls this)."""
        self._episode_return.zero_()
        self._episode_length.zero_()
        self._has_reset = True

    def _finish_step(
        self,
        reward: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        final_obs: Obs,
        final_info: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """Count one step into the running episodes; the ``info`` of the step's end.

        Adds ``reward`` and one step to every copy's episode statistics, builds the ``info``
        entries that describe the step's end, then zeroes the statistics of the copies that ended
        (``terminated | truncated``). Resetting those copies themselves, and adding the info about
        the state after the reset (:meth:`_current_info`), is left to the caller.

        Args:
            reward: The step's rewards, ``[N]`` float32 (``[N, A]`` with agents).
            terminated: ``[N]`` bool.
            truncated: ``[N]`` bool.
            final_obs: Every copy's observation before the copies that ended are reset.
            final_info: More info about the step's end (e.g. ``final_state``).

        Returns:
            ``final_obs``, its mask ``_final_obs`` (the copies that ended), the entries of
            ``final_info``, the episode statistics of :meth:`_episode_info` and their mask
            ``_episode`` (the same tensor as ``_final_obs``).
        """
        self._episode_return += reward
        self._episode_length += 1
        done = terminated | truncated
        info = {
            "final_obs": final_obs,
            "_final_obs": done,
            **(final_info or {}),
            **self._episode_info(),
            "_episode": done,
        }
        ended = done.view(-1, *([1] * (self._episode_return.dim() - 1)))
        self._episode_return.masked_fill_(ended, 0.0)
        self._episode_length.masked_fill_(done, 0)
        return info

    def _episode_info(self) -> dict[str, torch.Tensor]:
        """The statistics of every copy's episode so far: ``episode_return``, ``episode_length``."""
        return {
            "episode_return": self._episode_return.clone(),
            "episode_length": self._episode_length.clone(),
        }

    def _final_info(self) -> dict[str, torch.Tensor]:
        """Info about the step's end, before the copies that ended are reset."""
        return {}

    def _current_info(self) -> dict[str, torch.Tensor]:
        """Info about the current (after-reset) state, returned by ``reset`` and ``step``."""
        return {}

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
        and every entry inside the action space. Checks the values at once (on an accelerator
        this synchronises; ``step`` defers that part unless ``debug=True``).
        """
        self._check_action_form(actions)
        if self._uniform_bounds is not None and actions.numel():
            smallest, largest = torch.aminmax(actions)  # NaN fails both comparisons
            inside = smallest.item() >= self._uniform_bounds[0] and \
                largest.item() <= self._uniform_bounds[1]
        else:
            inside = bool(self._actions_inside(actions))
        if not inside:
            self._raise_outside(actions)

    def check_deferred(self) -> None:
        """Raise the error of an invalid action passed to ``step`` since the last call.

        Only accelerators defer the value check of actions (see the class docstring); on the CPU
        every action was checked at once and this never raises. One synchronisation: call it
        where the caller synchronises anyway (PPO: after every rollout).

        Raises:
            ValueError: an action outside the action space (or NaN) was passed to ``step``.
        """
        if not self.defers_action_checks or not bool(self._deferred_invalid):
            return
        first = int(self._deferred_first_call)
        self._deferred_invalid.zero_()
        self._deferred_first_call.zero_()
        raise ValueError(
            f"{self!r}: an action outside {self.single_action_space} (or NaN) was passed to "
            f"step() call {first} (counting from the environment's creation); on {self.device} "
            "action values are checked after the fact. Build the environment with debug=True "
            "to check every step at once and see the offending values."
        )

    def _validate_actions(self, actions: Any) -> torch.Tensor:
        """Check ``actions`` as ``step`` does (see the ``debug`` argument); the actions to use."""
        self._step_calls += 1
        if not self.defers_action_checks:
            self.check_actions(actions)
            return actions
        self._check_action_form(actions)
        bad = ~self._actions_inside(actions)
        first = self._deferred_first_call
        first.copy_(torch.where(bad & ~self._deferred_invalid, self._step_calls, first))
        self._deferred_invalid |= bad
        if self._action_dtype.is_floating_point:
            return actions
        # An out-of-range index would fault the device before the flag is read: clamp it.
        return torch.clamp(actions, self._action_low, self._action_high)

    def _actions_inside(self, actions: torch.Tensor) -> torch.Tensor:
        """A bool scalar tensor: every entry inside the space (NaN is not). No synchronisation."""
        return ((actions >= self._action_low) & (actions <= self._action_high)).all()

    def _expected_action_shape(self) -> tuple[int, ...]:
        return (self.num_envs, *self.single_action_space.shape)

    def _check_action_form(self, actions: Any) -> None:
        """Type, device, shape and dtype of ``actions`` (no synchronisation)."""
        expected_shape = self._expected_action_shape()
        if not isinstance(actions, torch.Tensor):
            raise TypeError(self._action_type_error(expected_shape, actions))
        if actions.device != self.device:
            raise ValueError(f"actions are on {actions.device}, the environment on {self.device}")
        if tuple(actions.shape) != expected_shape:
            raise ValueError(self._action_shape_error(expected_shape, tuple(actions.shape)))
        self._check_action_dtype(actions)

    def _action_type_error(self, expected_shape: tuple[int, ...], actions: Any) -> str:
        return (f"actions must be a torch.Tensor of shape {expected_shape}, got "
                f"{type(actions).__name__}; the Gymnasium and SB3 adapters accept numpy arrays")

    def _action_shape_error(self, expected_shape: tuple[int, ...], got: tuple[int, ...]) -> str:
        return f"actions must have shape {expected_shape}, got {got}"

    def _check_action_dtype(self, actions: torch.Tensor) -> None:
        space = self.single_action_space
        if self._action_dtype.is_floating_point:
            if not actions.is_floating_point():
                raise TypeError(f"actions for {space} must be floating point, got {actions.dtype}")
        elif actions.is_floating_point() or actions.is_complex() or actions.dtype == torch.bool:
            raise TypeError(f"actions for {space} must be an integer tensor, got {actions.dtype}")

    def _raise_outside(self, actions: torch.Tensor) -> None:
        """The error for ``actions`` that failed :meth:`_actions_inside` (slow path)."""
        space = self.single_action_space
        if self._action_dtype.is_floating_point:
            nan = torch.isnan(actions)
            if nan.any():
                raise ValueError(f"actions contain NaN (copies {rows_where(nan)})")
            outside = (actions < self._action_low) | (actions > self._action_high)
            raise ValueError(
                f"actions must lie in [{space.low.tolist()}, {space.high.tolist()}], got "
                f"min {actions.min().item():.4g}, max {actions.max().item():.4g} (copies "
                f"{rows_where(outside)})"
            )
        low, high = integer_action_bounds(space)
        outside = (actions < self._action_low) | (actions > self._action_high)
        raise ValueError(
            f"actions must be integers in [{low}, {high}], got min {actions.min().item()}, "
            f"max {actions.max().item()} (copies {rows_where(outside)})"
        )


def _uniform(low: torch.Tensor, high: torch.Tensor) -> tuple[float, float] | None:
    """``(low, high)`` as numbers when all entries of each bound are equal (infinite ones too)."""
    if low.numel() == 0 or not (bool((low == low.flatten()[0]).all())
                                and bool((high == high.flatten()[0]).all())):
        return None
    return low.flatten()[0].item(), high.flatten()[0].item()


def _action_bound_tensors(space: gym.Space, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Inclusive lower and upper bounds of one action of ``space``, broadcastable to a batch."""
    if isinstance(space, gym.spaces.Box):
        dtype = torch_dtype(space)
        return (torch.as_tensor(space.low, dtype=dtype, device=device),
                torch.as_tensor(space.high, dtype=dtype, device=device))
    low, high = integer_action_bounds(space)
    return (torch.as_tensor(low, dtype=torch.int64, device=device),
            torch.as_tensor(high, dtype=torch.int64, device=device))


def check_finite(source: str, when: str, **values: Obs | None) -> None:
    """Raise ``ValueError`` if a floating value holds NaN or inf, naming where it came from.

    Args:
        source: Who produced the values (an environment's repr).
        when: When (e.g. ``"step() call 12"``).
        **values: Batched tensors or dicts of tensors (leading axis: copies), by what they are
            (``observations=...``, ``rewards=...``); ``None`` and integer tensors are skipped.

    One synchronisation per floating tensor: call it where the caller synchronises anyway.
    """
    for name, value in values.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, tensor in items:
            if tensor is None or not tensor.is_floating_point():
                continue
            bad = ~torch.isfinite(tensor)
            if bool(bad.any()):
                what = name if key is None else f"{name}[{key!r}]"
                raise ValueError(
                    f"{source} returned non-finite {what} (NaN or inf) at {when}, copies "
                    f"{rows_where(bad)}: the environment produced them, not the learner; fix "
                    "or wrap the environment (e.g. a Gymnasium wrapper that clips or replaces "
                    "such values)"
                )


def rows_where(mask: torch.Tensor, limit: int = 8) -> str:
    """The first indices along the first (copy) axis where ``mask`` is true anywhere, as text."""
    rows = mask.reshape(mask.shape[0], -1).any(dim=1).nonzero()[:, 0].tolist()
    return ", ".join(map(str, rows[:limit])) + (", ..." if len(rows) > limit else "")


_AGENT_NUMBER = re.compile(r"_\d+$")


def group_agents(
    observation_spaces: dict[str, gym.Space], action_spaces: dict[str, gym.Space]
) -> dict[str, list[str]]:
    """The agents with identical observation and action spaces, grouped; how every env groups.

    Groups come in the order of their first agent, agents in the order of the dicts (the env's
    ``possible_agents``). A group's name is the common prefix of its agents' names once a last
    ``_<digits>`` is removed, without a trailing ``_`` or ``-`` (``adversary_0, adversary_1 ->
    "adversary"``, ``agent_0 -> "agent"``); ``"group"`` when that prefix is empty (``bob_0,
    alice_0``). A name already taken gets ``_1``, ``_2``, ... (``agent``, ``agent_1``).

    Args:
        observation_spaces: Each agent's own observation space, keyed by agent name.
        action_spaces: Each agent's own action space, with the same keys in the same order.

    Returns:
        Group name -> the names of its agents.

    Raises:
        ValueError: the two dicts do not name the same agents in the same order.
    """
    agents = list(observation_spaces)
    if list(action_spaces) != agents:
        raise ValueError(
            f"observation and action spaces must name the same agents in the same order, got "
            f"{agents} and {list(action_spaces)}"
        )
    members: list[list[str]] = []
    keys: list[tuple[gym.Space, gym.Space]] = []
    for agent in agents:
        key = (observation_spaces[agent], action_spaces[agent])
        for i, other in enumerate(keys):
            if other[0] == key[0] and other[1] == key[1]:
                members[i].append(agent)
                break
        else:
            keys.append(key)
            members.append([agent])
    groups: dict[str, list[str]] = {}
    for names in members:
        stems = [_AGENT_NUMBER.sub("", name) for name in names]
        base = os.path.commonprefix(stems).rstrip("_-") or "group"
        name, suffix = base, 0
        while name in groups:
            suffix += 1
            name = f"{base}_{suffix}"
        groups[name] = names
    return groups


class MultiAgentBatchedEnv(BatchedEnv):
    """Base class of the multi-agent environments: the batched contract with an agent axis.

    ``num_envs`` copies of a task played by ``num_agents`` agents at once. Everything of
    :class:`BatchedEnv` holds (torch tensors on one device, SAME_STEP autoreset per copy, episode
    statistics on device, ``self.generator``), with one more axis after the copy axis:

    - ``possible_agents``: the fixed agent names ``["agent_0", "agent_1", ...]``; agent ``i`` of
      every tensor below is ``possible_agents[i]``.
    - ``single_observation_space`` and ``single_action_space`` are those of ONE agent (all agents
      share them); ``observation_space`` and ``action_space`` are batched to
      ``[num_envs, num_agents, ...]``. ``state_space`` (a Box) is the global state of one copy,
      for centralised critics.
    - ``reset(seed=, options=) -> (obs [N, A, *obs_shape], info)``.
    - ``step(actions [N, A, *act_shape]) -> (obs [N, A, ...], reward [N, A] float32,
      terminated [N] bool, truncated [N] bool, info)``. Termination and truncation are per copy:
      an episode ends for all its agents at once; a copy that ends is reset in the same step.

    ``info`` of ``step`` (every value batched over all copies, valid where its mask says):

    - ``state`` ``[N, *state_shape]``: the global state that goes with ``obs`` (after autoreset:
      the new episode's); ``final_state``: the global state before the reset, for bootstrapping a
      centralised critic (equal to ``state`` for copies that did not end);
    - ``final_obs`` ``[N, A, ...]`` and its mask ``_final_obs`` ``[N]``, as in :class:`BatchedEnv`;
    - ``agent_mask`` ``[N, A]`` bool: the agents present (alive) in ``obs``; absent agents see
      zeros, get zero reward, and their actions are ignored. Tasks without deaths keep it all true;
    - ``acting`` ``[N, A]`` bool: the agents whose actions the next ``step`` uses; every present
      agent (``agent_mask``) here, one agent per copy in a turn-based game
      (:class:`envs.interop.turn_based.AECToBatched`);
    - ``episode_return`` ``[N]``: the mean over agents of each agent's return (the team return for
      a shared reward); ``agent_episode_return`` ``[N, A]``; ``episode_length`` ``[N]`` int64;
      all valid where ``_episode`` ``[N]`` is true;
    - ``action_mask`` ``[N, A, n_actions]`` bool, only for tasks with action masks (then
      :meth:`action_masks` returns the current one too); a masked-out action is legal input and
      behaves as documented by the task.

    ``info`` of ``reset`` holds ``state``, ``agent_mask``, ``acting`` (and ``action_mask``).

    Heterogeneous agents (docs/architecture.md, "Heterogeneous agents"): agents may have
    different spaces; they are then shown in one padded batch, with the facts that undo the
    padding:

    - ``agent_observation_spaces`` and ``agent_action_spaces``: each agent's OWN (unpadded)
      spaces, ``dict[str, gym.Space]`` keyed by ``possible_agents``; by default (homogeneous
      tasks) every agent maps to ``single_observation_space`` / ``single_action_space``.
    - ``groups``: ``dict[str, list[str]]``, the agents with identical observation and action
      spaces (:func:`group_agents`); one group of everyone for homogeneous tasks.
      ``group_index``: ``[A]`` int64 on ``device``, each agent's group number in ``groups`` order.
    - Padded observations: when the agents' observation spaces differ, ``single_observation_space``
      is a flat float32 Box of the largest flattened size and each agent's observation is
      flattened and zero-padded at the end; ``observation_mask`` ``[A, obs_size]`` bool is true
      where an agent's own entries are (``observation_mask[a].sum()`` is its flattened size). By
      default (one observation space) it is all true, ``[A, *obs_shape]``; ``None`` for Dict
      observations (which cannot be padded: heterogeneous Dicts are a ``TypeError``).
    - Padded actions: ``Discrete`` spaces of different ``n`` become ``Discrete(max n)`` with
      ``has_action_mask = True`` and an ``action_mask`` that forbids the actions an agent lacks
      (and whatever the env forbids); ``Box`` spaces of different sizes become one Box of the
      largest size whose extra entries are ignored (each agent's action is sliced and clipped to
      its own box). Discrete for some agents and Box for others is a ``TypeError``.
    - ``state`` is the env's own global state where it has one; where an adapter builds it by
      concatenating observations, it concatenates the padded ones (``[A * obs_size]``).

    To write a task, subclass this, set ``single_observation_space``, ``single_action_space``,
    ``state_space`` and ``max_episode_steps`` and call ``super().__init__(num_agents, num_envs,
    device, debug)``; then implement:

    - ``_reset_copies(mask)``: fresh initial states where ``mask`` ``[N]`` is true;
    - ``_advance(actions [N, A, ...]) -> (reward [N, A] float32, terminated [N] bool)``;
    - ``_observe() -> [N, A, ...]``; ``_state() -> [N, *state_shape]``;
    - optionally ``_agent_mask() -> [N, A]`` (tasks where agents die) and ``_action_mask() ->
      [N, A, n]`` (tasks with action masks; set ``has_action_mask = True``);
    - optionally ``agent_position_slice`` when each agent's observation holds its position.

    None of them may loop over copies in Python or synchronise with the device.

    Args:
        num_agents: Number of agents, at least 1.
        num_envs: Number of independent copies, at least 1.
        device: Where the tensors live (see :class:`BatchedEnv`).
        debug: Check the values of every action at once, also on an accelerator (see
            :class:`BatchedEnv`).
    """

    kind: str = "multi-agent"
    state_space: gym.spaces.Box
    #: Whether ``info["action_mask"]`` and :meth:`action_masks` exist.
    has_action_mask: bool = False
    #: Where an agent's own position sits in its flat observation, ``(start, stop)`` (negative
    #: bounds count from the end), for communication graphs built from positions (k nearest
    #: neighbours, radius); ``None`` when the observation holds no position.
    agent_position_slice: tuple[int, int | None] | None = None

    def __init__(
        self,
        num_agents: int,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
    ):
        if isinstance(num_agents, bool) or not isinstance(num_agents, (int, np.integer)):
            raise TypeError(f"num_agents must be a positive int, got {num_agents!r}")
        if num_agents < 1:
            raise ValueError(f"num_agents must be at least 1, got {num_agents}")
        self.num_agents = int(num_agents)
        self.possible_agents = [f"agent_{i}" for i in range(self.num_agents)]
        super().__init__(num_envs, device, debug)
        per_copy_obs = gym.vector.utils.batch_space(self.single_observation_space, self.num_agents)
        per_copy_act = gym.vector.utils.batch_space(self.single_action_space, self.num_agents)
        self.observation_space = gym.vector.utils.batch_space(per_copy_obs, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(per_copy_act, self.num_envs)
        # Returns per agent: the base class's bookkeeping works on this [N, A] tensor too.
        self._episode_return = torch.zeros(self.num_envs, self.num_agents, device=self.device)

    # ------------------------------------------------------------------ to implement
    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Step every copy; return ``(reward [N, A] float32, terminated [N] bool)``."""
        raise NotImplementedError

    def _observe(self) -> Obs:
        """Observation of every agent of every copy, ``[N, A, *obs_shape]``."""
        raise NotImplementedError

    def _state(self) -> torch.Tensor:
        """Global state of every copy, ``[N, *state_shape]``."""
        raise NotImplementedError

    def _agent_mask(self) -> torch.Tensor:
        """Agents present in every copy, ``[N, A]`` bool; all of them unless overridden."""
        return torch.ones(self.num_envs, self.num_agents, dtype=torch.bool, device=self.device)

    def _action_mask(self) -> torch.Tensor:
        """Legal actions, ``[N, A, n_actions]`` bool; only tasks with ``has_action_mask``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the vector API
    def action_masks(self) -> torch.Tensor:
        """The current action masks ``[N, A, n_actions]`` (as sb3-contrib's MaskablePPO asks)."""
        if not self.has_action_mask:
            raise AttributeError(f"{type(self).__name__} has no action masks")
        return self._action_mask()

    def _current_info(self) -> dict[str, torch.Tensor]:
        agent_mask = self._agent_mask()
        # Every present agent acts at every step; turn-based games override ``acting``.
        info = {"state": self._state(), "agent_mask": agent_mask, "acting": agent_mask.clone()}
        if self.has_action_mask:
            info["action_mask"] = self._action_mask()
        return info

    def _final_info(self) -> dict[str, torch.Tensor]:
        return {"final_state": self._state()}

    def _episode_info(self) -> dict[str, torch.Tensor]:
        """``episode_return`` (mean over agents), ``agent_episode_return``, ``episode_length``."""
        return {
            "episode_return": self._episode_return.mean(dim=1),
            "agent_episode_return": self._episode_return.clone(),
            "episode_length": self._episode_length.clone(),
        }

    # ------------------------------------------------------------------ heterogeneous agents
    @property
    def agent_observation_spaces(self) -> dict[str, gym.Space]:
        """Each agent's own (unpadded) observation space, keyed by ``possible_agents``."""
        own = getattr(self, "_agent_observation_spaces", None)
        if own is not None:
            return own
        return dict.fromkeys(self.possible_agents, self.single_observation_space)

    @agent_observation_spaces.setter
    def agent_observation_spaces(self, value: dict[str, gym.Space]) -> None:
        self._agent_observation_spaces = dict(value)

    @property
    def agent_action_spaces(self) -> dict[str, gym.Space]:
        """Each agent's own (unpadded) action space, keyed by ``possible_agents``."""
        own = getattr(self, "_agent_action_spaces", None)
        if own is not None:
            return own
        return dict.fromkeys(self.possible_agents, self.single_action_space)

    @agent_action_spaces.setter
    def agent_action_spaces(self, value: dict[str, gym.Space]) -> None:
        self._agent_action_spaces = dict(value)

    @property
    def groups(self) -> dict[str, list[str]]:
        """Agents with identical own spaces, by group name (:func:`group_agents`)."""
        return group_agents(self.agent_observation_spaces, self.agent_action_spaces)

    @property
    def group_index(self) -> torch.Tensor:
        """Each agent's group number (in ``groups`` order), ``[A]`` int64 on ``device``."""
        groups = self.groups
        key = tuple(tuple(members) for members in groups.values())
        cached = getattr(self, "_group_index", None)
        if cached is None or cached[0] != key:
            number = {agent: g for g, members in enumerate(key) for agent in members}
            index = torch.tensor([number[agent] for agent in self.possible_agents],
                                 dtype=torch.int64, device=self.device)
            self._group_index = cached = (key, index)
        return cached[1]

    @property
    def observation_mask(self) -> torch.Tensor | None:
        """Where each agent's own observation entries are, ``[A, obs_size]`` bool on ``device``.

        All true ``[A, *obs_shape]`` unless the adapter padded the observations; ``None`` for
        Dict observations.
        """
        mask = getattr(self, "_observation_mask", None)
        if mask is None and not isinstance(self.single_observation_space, gym.spaces.Dict):
            shape = (self.num_agents, *self.single_observation_space.shape)
            mask = torch.ones(shape, dtype=torch.bool, device=self.device)
            self._observation_mask = mask
        return mask

    @observation_mask.setter
    def observation_mask(self, value: torch.Tensor) -> None:
        self._observation_mask = value

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_envs={self.num_envs}, num_agents={self.num_agents}, "
            f"device={self.device})"
        )

    # ------------------------------------------------------------------ input validation
    # check_actions / check_deferred / the deferred flag are BatchedEnv's; only the expected
    # shape and the wording (agent names) differ here.
    def _expected_action_shape(self) -> tuple[int, ...]:
        return (self.num_envs, self.num_agents, *self.single_action_space.shape)

    def _action_type_error(self, expected_shape: tuple[int, ...], actions: Any) -> str:
        shape = ", *action_shape" if self.single_action_space.shape else ""
        return (f"actions must be a torch.Tensor of shape {expected_shape} (num_envs, num_agents"
                f"{shape}), got {type(actions).__name__}")

    def _action_shape_error(self, expected_shape: tuple[int, ...], got: tuple[int, ...]) -> str:
        space = self.single_action_space
        return (f"actions must have shape {expected_shape}: (num_envs={self.num_envs}, "
                f"num_agents={self.num_agents}{', *' + str(space.shape) if space.shape else ''})"
                f" for agents {self.possible_agents}; got {got}")

    def _raise_outside(self, actions: torch.Tensor) -> None:
        """The error for ``actions`` outside the space, naming the agents at fault."""
        space = self.single_action_space
        if self._action_dtype.is_floating_point:
            nan = torch.isnan(actions)
            if nan.any():
                raise ValueError(f"actions of {self._agents_at(nan)} contain NaN")
            what = f"lie in [{space.low.tolist()}, {space.high.tolist()}]"
        else:
            low, high = integer_action_bounds(space)
            what = f"be integers in [{low}, {high}]"
        outside = (actions < self._action_low) | (actions > self._action_high)
        bad = actions[outside]
        raise ValueError(
            f"actions of {self._agents_at(outside)} must {what}, got {bad[0].item():.4g}"
            f" (min {bad.min().item():.4g}, max {bad.max().item():.4g}; copies "
            f"{rows_where(outside)})"
        )

    def _agents_at(self, mask: torch.Tensor) -> str:
        """The names of the agents where ``mask`` ``[N, A, ...]`` is true anywhere."""
        per_agent = mask.reshape(self.num_envs, self.num_agents, -1).any(dim=2).any(dim=0)
        return ", ".join(self.possible_agents[i] for i in per_agent.nonzero()[:, 0].tolist())
