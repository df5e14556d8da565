"""Adapters between Umbra's batched torch environments and the Gymnasium / SB3 ecosystems.

From a native :class:`~envs.core.BatchedEnv` (numpy in, numpy out; every action is checked):

- :class:`BatchedToGymEnv`: one copy as a ``gymnasium.Env`` (what ``gymnasium.make("umbra/...")``
  returns); passes ``gymnasium.utils.env_checker.check_env`` and SB3's ``check_env``.
- :class:`BatchedToNumpyVecEnv`: the batch as a numpy ``gymnasium.vector.VectorEnv`` with
  SAME_STEP autoreset (what ``gymnasium.make_vec("umbra/...", vectorization_mode=
  "vector_entry_point")`` returns).
- :class:`BatchedToSB3VecEnv`: the batch as a stable-baselines3 ``VecEnv``, with the episode
  information that SB3's ``Monitor`` would add.

From a native :class:`~envs.core.MultiAgentBatchedEnv`:

- :class:`BatchedToParallelEnv`: one copy as a PettingZoo ``ParallelEnv`` (and, through
  PettingZoo's ``parallel_to_aec``, an AEC env); passes PettingZoo's API and seed tests.

The other way round:

- :class:`GymnasiumToBatched`: any third-party ``gymnasium.Env`` as a batched environment with the
  same contract as the native ones (torch tensors, SAME_STEP autoreset, episode statistics). The
  copies step in numpy on the CPU; only their results move to ``device``.
- :class:`PettingZooToBatched`: any third-party PettingZoo ``ParallelEnv`` as a multi-agent
  batched environment, likewise.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env import VecEnv

from envs.core import (
    BatchedEnv,
    MultiAgentBatchedEnv,
    Obs,
    check_finite,
    check_num_envs,
    resolve_device,
    torch_dtype,
)

__all__ = [
    "BatchedToGymEnv",
    "BatchedToNumpyVecEnv",
    "BatchedToParallelEnv",
    "BatchedToSB3VecEnv",
    "GraphPadding",
    "GymnasiumToBatched",
    "PettingZooToBatched",
]

_DISCRETE_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
_SUPPORTED = "Box, Discrete, MultiDiscrete, MultiBinary (or a Dict of these)"


# ---------------------------------------------------------------------------- conversions
def _to_numpy(space: gym.Space, value: Obs) -> Any:
    """A fresh numpy copy of a batched tensor (or dict of tensors), in the space's dtype."""
    if isinstance(space, spaces.Dict):
        return {key: _to_numpy(sub, value[key]) for key, sub in space.spaces.items()}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    return array.astype(space.dtype) if space.dtype is not None else array.copy()


def _copy_at(space: gym.Space, batch: Any, index: int) -> Any:
    """Copy ``index`` of a batched numpy observation, shaped like one element of ``space``."""
    if isinstance(space, spaces.Dict):
        return {key: _copy_at(sub, batch[key], index) for key, sub in space.spaces.items()}
    item = batch[index]
    return item.copy() if isinstance(item, np.ndarray) else item


def _to_tensor(space: gym.Space, value: Any, device: torch.device) -> Obs:
    """A fresh tensor (or dict of tensors) on ``device`` from a batched numpy value."""
    if isinstance(space, spaces.Dict):
        return {key: _to_tensor(sub, value[key], device) for key, sub in space.spaces.items()}
    return torch.tensor(np.asarray(value), dtype=torch_dtype(space), device=device)


def _torch_space(space: gym.Space) -> gym.Space:
    """``space`` with float64 boxes narrowed to float32; anything torch cannot hold is an error."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict({key: _torch_space(sub) for key, sub in space.spaces.items()})
    if isinstance(space, spaces.Box) and space.dtype == np.float64:
        info = np.finfo(np.float32)

        def narrow(bound: np.ndarray) -> np.ndarray:
            clipped = np.where(np.isfinite(bound), np.clip(bound, info.min, info.max), bound)
            return clipped.astype(np.float32)

        return spaces.Box(narrow(space.low), narrow(space.high), dtype=np.float32)
    if isinstance(space, (spaces.Box, *_DISCRETE_SPACES)):
        return space
    raise TypeError(f"batched environments support {_SUPPORTED} spaces, got {space}")


def _actions_to_tensor(
    space: gym.Space, actions: Any, batch_shape: tuple[int, ...], device: torch.device
) -> torch.Tensor:
    """Check the type, shape and dtype of numpy ``actions`` and turn them into a tensor.

    Args:
        space: The single action space.
        actions: A numpy array (or numpy scalar, Python int/float for a scalar space, or tensor).
        batch_shape: ``()`` for one copy, ``(num_envs,)`` for a batch.
        device: Where the returned tensor lives.

    Returns:
        A tensor of shape ``(*batch_shape, *space.shape)`` in the space's torch dtype; the range
        and NaN checks are left to :meth:`~envs.core.BatchedEnv.check_actions`.
    """
    expected_shape = (*batch_shape, *space.shape)
    dtype = np.dtype(space.dtype)
    if isinstance(actions, torch.Tensor):
        array = actions.detach().cpu().numpy()
    elif isinstance(actions, (np.ndarray, np.generic)):
        array = np.asarray(actions)
    elif isinstance(actions, (int, float)) and not isinstance(actions, bool) and not expected_shape:
        array = np.asarray(actions)
    else:
        what = "an int, a numpy scalar or a numpy array" if not expected_shape else "a numpy array"
        raise TypeError(
            f"actions for {space} must be {what} of shape {expected_shape} and dtype {dtype}, "
            f"got {type(actions).__name__}"
        )
    if array.shape != expected_shape:
        raise ValueError(f"actions for {space} must have shape {expected_shape}, got {array.shape}")
    if isinstance(space, spaces.MultiBinary):
        # Any dtype holding only 0 and 1 will do: SB3's Bernoulli distribution hands over floats.
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"actions for {space} must be 0 or 1, got {array}")
    elif dtype.kind == "f" and array.dtype.kind != "f":
        raise TypeError(
            f"actions for {space} must be floating point (e.g. np.float32), got dtype {array.dtype}"
        )
    elif dtype.kind in "iu" and array.dtype.kind not in "iu":
        raise TypeError(
            f"actions for {space} must be integers (e.g. np.int64), got dtype {array.dtype}"
        )
    elif dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)  # narrowing must not wrap an out-of-range action into range
        if array.min() < info.min or array.max() > info.max:
            raise ValueError(
                f"actions for {space} must lie in the space, got min {array.min()}, "
                f"max {array.max()}"
            )
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype)
    return torch.as_tensor(converted, dtype=torch_dtype(space)).to(device)


def _per_copy(value: Any, num_envs: int, indices: Iterable[int]) -> list[Any]:
    """Split a batched value (leading axis ``num_envs``) into per-copy values; repeat the rest."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == num_envs:
        return [np.array(value[i]) for i in indices]
    return [value for _ in indices]


def _native_spec(batched: BatchedEnv) -> gym.envs.registration.EnvSpec | None:
    """The Gymnasium spec of the one ``umbra/`` id registered for ``batched``'s class, if any."""
    from envs.registry import list_ids, spec

    cls = type(batched)
    entry_point = f"{cls.__module__}:{cls.__qualname__}"
    matches = [i for i in list_ids() if spec(i).entry_point == entry_point and not spec(i).kwargs]
    return copy.deepcopy(gym.spec(matches[0])) if len(matches) == 1 else None


# ---------------------------------------------------------------------------- batched -> Env
class BatchedToGymEnv(gym.Env):
    """One copy of a batched environment as a single ``gymnasium.Env`` (numpy in, numpy out).

    ``gymnasium.make("umbra/CartPole-v0")`` returns this adapter (inside Gymnasium's usual
    ``OrderEnforcing`` wrapper). Observations are numpy arrays of the observation space's dtype,
    rewards Python floats, ``terminated``/``truncated`` Python bools.

    The batched environment resets a copy inside the step that ends it; this adapter hides that:
    the step that ends an episode returns the episode's last observation (``info["final_obs"]`` of
    the batched step) and ``info`` holds ``episode_return`` and ``episode_length``; the next
    :meth:`reset` starts a new episode. Stepping an ended episode without ``reset`` is an error.

    ``reset(seed=s)`` seeds both Gymnasium's ``np_random`` and the batched environment's
    generator, so the same seed gives the same trajectory as ``batched.reset(seed=s)``;
    ``reset()`` continues from the generator's current state.

    Args:
        batched: A :class:`~envs.core.BatchedEnv` with ``num_envs == 1``.

    Raises:
        TypeError: ``batched`` is not a :class:`~envs.core.BatchedEnv`.
        ValueError: ``batched.num_envs != 1``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, batched: BatchedEnv):
        _check_single_agent(batched, "BatchedToGymEnv")
        if batched.num_envs != 1:
            raise ValueError(
                f"BatchedToGymEnv wraps one copy: build the batched env with num_envs=1, got "
                f"num_envs={batched.num_envs} (for a batch, use BatchedToNumpyVecEnv or "
                "BatchedToSB3VecEnv)"
            )
        self.batched = batched
        self.observation_space = batched.single_observation_space
        self.action_space = batched.single_action_space
        self.metadata = {"render_modes": []}
        self.render_mode = None
        self.spec = _native_spec(batched)
        self._needs_reset = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start a new episode; ``seed`` reseeds ``np_random`` and the batched generator."""
        obs, _ = self.batched.reset(seed=seed, options=options)  # checks the seed's type
        super().reset(seed=None if seed is None else int(seed))
        self._needs_reset = False
        return _copy_at(self.observation_space, _to_numpy(self.observation_space, obs), 0), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the copy by ``action`` (checked: type, shape, dtype, range, NaN)."""
        if self._needs_reset:
            raise RuntimeError(
                "the episode has ended (or never started): call reset() before step()"
            )
        actions = _actions_to_tensor(self.action_space, action, (), self.batched.device)[None]
        self.batched.check_actions(actions)
        obs, reward, terminated, truncated, batch_info = self.batched.step(actions)
        term, trunc = bool(terminated[0]), bool(truncated[0])
        info: dict[str, Any] = {}
        if term or trunc:
            obs = batch_info["final_obs"]
            info["episode_return"] = float(batch_info["episode_return"][0])
            info["episode_length"] = int(batch_info["episode_length"][0])
            self._needs_reset = True
        observation = _copy_at(self.observation_space, _to_numpy(self.observation_space, obs), 0)
        return observation, float(reward[0]), term, trunc, info

    def action_masks(self) -> np.ndarray:
        """Valid actions of the copy (sb3-contrib's MaskablePPO asks for them), as numpy bool.

        Raises:
            AttributeError: the environment has no action masks.
        """
        if not hasattr(self.batched, "action_masks"):
            raise AttributeError(f"{type(self.batched).__name__} has no action masks")
        return self.batched.action_masks()[0].cpu().numpy().astype(bool)

    def close(self) -> None:
        """Close the batched environment."""
        self.batched.close()


# ---------------------------------------------------------------------------- batched -> VectorEnv
class BatchedToNumpyVecEnv(gym.vector.VectorEnv):
    """A batched environment as a numpy ``gymnasium.vector.VectorEnv`` with SAME_STEP autoreset.

    ``gymnasium.make_vec("umbra/CartPole-v0", num_envs=8, vectorization_mode="vector_entry_point")``
    returns this adapter. Actions are numpy arrays of shape ``(num_envs, *action_shape)``, checked
    and moved to the batched environment's device; observations come back as numpy arrays,
    rewards as float64, ``terminated``/``truncated`` as bool arrays.

    ``info`` follows ``gymnasium.vector.SyncVectorEnv`` with ``autoreset_mode=SAME_STEP``: it is
    empty on steps where no copy ends; otherwise ``info["final_obs"]`` is an object array holding
    the last observation of each ended copy (``None`` elsewhere), ``info["final_info"]`` is ``{}``,
    and each carries its ``_``-prefixed mask. The episode statistics of the ended copies ride
    along as ``info["episode_return"]`` (float64) and ``info["episode_length"]`` (int64), zero
    elsewhere, with the masks ``_episode_return`` and ``_episode_length``; the ``episode`` key of
    ``gymnasium.wrappers.vector.RecordEpisodeStatistics`` stays free for that wrapper.

    Args:
        batched: Any :class:`~envs.core.BatchedEnv`.
    """

    def __init__(self, batched: BatchedEnv):
        _check_single_agent(batched, "BatchedToNumpyVecEnv")
        self.batched = batched
        self.num_envs = batched.num_envs
        self.single_observation_space = batched.single_observation_space
        self.single_action_space = batched.single_action_space
        self.observation_space = batched.observation_space
        self.action_space = batched.action_space
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
        self.render_mode = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every copy; one int ``seed`` seeds the whole batch (``np_random`` included)."""
        if isinstance(seed, (list, tuple)):
            raise TypeError(
                "a batched environment has one generator for all copies: pass one int seed (or "
                f"None), got {seed!r}"
            )
        obs, _ = self.batched.reset(seed=seed, options=options)  # checks the seed's type
        super().reset(seed=None if seed is None else int(seed))
        return _to_numpy(self.single_observation_space, obs), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy; copies that end are reset in the same call (SAME_STEP)."""
        tensor = _actions_to_tensor(
            self.single_action_space, actions, (self.num_envs,), self.batched.device
        )
        self.batched.check_actions(tensor)
        obs, reward, terminated, truncated, batch_info = self.batched.step(tensor)
        terminated = terminated.cpu().numpy()
        truncated = truncated.cpu().numpy()
        done = terminated | truncated
        info: dict[str, Any] = {}
        if done.any():
            final = _to_numpy(self.single_observation_space, batch_info["final_obs"])
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = _copy_at(self.single_observation_space, final, i)
            episode_return = batch_info["episode_return"].cpu().numpy().astype(np.float64)
            episode_length = batch_info["episode_length"].cpu().numpy().astype(np.int64)
            info = {
                "final_obs": final_obs,
                "_final_obs": done.copy(),
                "final_info": {},
                "_final_info": done.copy(),
                "episode_return": np.where(done, episode_return, 0.0),
                "_episode_return": done.copy(),
                "episode_length": np.where(done, episode_length, 0),
                "_episode_length": done.copy(),
            }
        return (
            _to_numpy(self.single_observation_space, obs),
            reward.detach().cpu().numpy().astype(np.float64),
            terminated,
            truncated,
            info,
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close the batched environment."""
        self.batched.close()


# ---------------------------------------------------------------------------- batched -> SB3
class BatchedToSB3VecEnv(VecEnv):
    """A batched environment as a stable-baselines3 ``VecEnv`` (numpy in, numpy out).

    Follows SB3's conventions: ``reset()`` returns the observations only; ``step_async`` /
    ``step_wait``; ``dones = terminated | truncated``; ``infos`` is a list of one dict per copy,
    where a copy that ended carries ``"terminal_observation"`` (its last observation; the returned
    observation already starts the next episode), ``"TimeLimit.truncated"`` (truncated and not
    terminated) and ``"episode": {"r", "l", "t"}`` exactly as SB3's ``Monitor`` writes it. Because
    of the latter, ``env_is_wrapped(Monitor)`` is ``True``: ``evaluate_policy`` and the training
    logs read true episode returns without an extra wrapper.

    ``seed(s)`` makes the next ``reset()`` call ``batched.reset(seed=s)``. The batch shares one
    object, so ``get_attr`` / ``env_method`` call it once and split values with a leading axis of
    size ``num_envs`` (torch or numpy) into per-copy numpy values, repeating anything else;
    ``set_attr`` sets the attribute for all copies at once.

    Args:
        batched: Any :class:`~envs.core.BatchedEnv`.
    """

    def __init__(self, batched: BatchedEnv):
        _check_single_agent(batched, "BatchedToSB3VecEnv")
        self.batched = batched
        self._actions: torch.Tensor | None = None
        self._t_start = time.time()
        super().__init__(
            batched.num_envs, batched.single_observation_space, batched.single_action_space
        )

    def reset(self) -> Any:
        """Reset every copy with the seed (and options) set by ``seed()`` (``set_options()``)."""
        options = self._options[0] or None
        obs, _ = self.batched.reset(seed=self._seeds[0], options=options)
        self._actions = None  # a reset cancels a pending step_async
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return _to_numpy(self.observation_space, obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Check ``actions`` (shape ``(num_envs, *action_shape)``) and keep them for step_wait."""
        tensor = _actions_to_tensor(
            self.action_space, actions, (self.num_envs,), self.batched.device
        )
        self.batched.check_actions(tensor)
        self._actions = tensor

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every copy with the actions of ``step_async``."""
        if self._actions is None:
            raise RuntimeError("call step_async(actions) before step_wait()")
        actions, self._actions = self._actions, None
        obs, reward, terminated, truncated, batch_info = self.batched.step(actions)
        terminated = terminated.cpu().numpy()
        truncated = truncated.cpu().numpy()
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final = _to_numpy(self.observation_space, batch_info["final_obs"])
            episode_return = batch_info["episode_return"].cpu().numpy()
            episode_length = batch_info["episode_length"].cpu().numpy()
            elapsed = round(time.time() - self._t_start, 6)
            for i in np.flatnonzero(dones):
                infos[i] = {
                    "terminal_observation": _copy_at(self.observation_space, final, i),
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {
                        "r": float(episode_return[i]),
                        "l": int(episode_length[i]),
                        "t": elapsed,
                    },
                }
        rewards = reward.detach().cpu().numpy().astype(np.float32)
        return _to_numpy(self.observation_space, obs), rewards, dones, infos

    def close(self) -> None:
        """Close the batched environment."""
        self.batched.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The attribute of the batched environment, per copy (see the class docstring)."""
        if attr_name == "render_mode" and not hasattr(self.batched, "render_mode"):
            value = None  # the batched contract does not render
        else:
            value = getattr(self.batched, attr_name)
        return _per_copy(value, self.num_envs, self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the batched environment; only all copies at once are possible."""
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(
                f"the {self.num_envs} copies share one batched environment: set_attr can only "
                f"set {attr_name!r} for all of them (indices=None), got indices={indices!r}"
            )
        setattr(self.batched, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the batched environment once; the result per copy (see above)."""
        result = getattr(self.batched, method_name)(*method_args, **method_kwargs)
        return _per_copy(result, self.num_envs, self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        """``True`` for SB3's ``Monitor`` (this adapter writes its episode info), else ``False``."""
        from stable_baselines3.common.monitor import Monitor

        wrapped = isinstance(wrapper_class, type) and issubclass(Monitor, wrapper_class)
        return [wrapped for _ in self._get_indices(indices)]

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next ``reset()``; also seeds the action space, as ``DummyVecEnv`` users expect.

        Returns:
            ``[seed, seed + 1, ...]`` as SB3's ``VecEnv.seed`` does; the batch uses ``seed``.
        """
        seeds = super().seed(seed)
        self.action_space.seed(seeds[0])
        return seeds


# ---------------------------------------------------------------------------- Graph -> padded
#: ``GymnasiumToBatched``'s default padding of ``gymnasium.spaces.Graph`` observations.
DEFAULT_MAX_NODES = 64
DEFAULT_MAX_EDGES = 256
#: The keys of the padded graph form (DESIGN.md contract 1).
_GRAPH_KEYS = ("x", "edge_index", "node_mask", "edge_mask", "edge_attr")


def _check_padding(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _feature_size(space: gym.Space, what: str) -> int:
    """Width of one node's (or edge's) features: one-hot for Discrete, flattened for Box."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    raise TypeError(f"gymnasium.spaces.Graph {what} must be a Box or Discrete, got {space}")


def _feature_box(space: gym.Space, rows: int) -> spaces.Box:
    """The float32 Box of ``rows`` padded feature rows of ``space`` (padding rows are zeros)."""
    if isinstance(space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, (rows, int(space.n)), np.float32)
    info = np.finfo(np.float32)

    def bound(values: np.ndarray, pick: Any) -> np.ndarray:
        flat = pick(np.asarray(values, dtype=np.float64).reshape(-1), 0.0)  # padding is 0
        flat = np.where(np.isfinite(flat), np.clip(flat, info.min, info.max), flat)
        return np.tile(flat.astype(np.float32), (rows, 1))

    return spaces.Box(bound(space.low, np.minimum), bound(space.high, np.maximum), dtype=np.float32)


def _features(space: gym.Space, values: Any, count: int, what: str) -> np.ndarray:
    """``[count, width]`` float32 features of ``count`` nodes (or edges) of a ``GraphInstance``."""
    if isinstance(space, spaces.Discrete):
        index = np.asarray(values, dtype=np.int64).reshape(-1) - int(space.start)
        if index.shape != (count,) or ((index < 0) | (index >= space.n)).any():
            raise ValueError(
                f"graph {what} must be {count} values of {space}, got {np.asarray(values)!r}"
            )
        return np.eye(int(space.n), dtype=np.float32)[index]
    array = np.asarray(values, dtype=np.float32)
    if array.shape != (count, *space.shape):
        raise ValueError(
            f"graph {what} must have shape {(count, *space.shape)} for {space}, got {array.shape}"
        )
    return array.reshape(count, -1)


class GraphPadding(gym.ObservationWrapper):
    """A ``gymnasium.spaces.Graph`` observation (or a Dict with one Graph entry) in the padded form.

    :class:`GymnasiumToBatched` wraps every copy whose observation space holds a Graph in this
    wrapper; it is a plain ``gymnasium.ObservationWrapper`` and works on its own too. A
    ``GraphInstance`` with ``n`` nodes and ``m`` edges becomes (DESIGN.md contract 1):

    - ``x`` ``[max_nodes, F]`` float32: ``nodes`` in rows ``0 .. n-1``, flattened per node (a
      Box node space of shape ``s`` gives ``F = prod(s)``; a ``Discrete(k)`` one gives a one-hot,
      ``F = k``); zeros below;
    - ``edge_index`` ``[2, max_edges]`` int64: ``edge_links`` transposed in columns
      ``0 .. m-1`` (source, target), zeros after;
    - ``node_mask`` ``[max_nodes]`` and ``edge_mask`` ``[max_edges]`` int8: 1 on the first
      ``n`` nodes and ``m`` edges;
    - ``edge_attr`` ``[max_edges, D]`` float32, only when the Graph has an edge space: ``edges``
      flattened (Box) or one-hot (Discrete), zeros after row ``m``.

    In a Dict, the Graph entry is replaced by these keys next to the other entries (e.g.
    ``action_mask``), which must not use their names.

    Args:
        env: The environment whose observation space is a Graph or a Dict with one Graph entry.
        max_nodes: ``N_max``, the padded number of nodes. (default: ``64``)
        max_edges: ``E_max``, the padded number of edges (links, as the env gives them; an
            undirected edge stored in both directions counts twice). (default: ``256``)

    Raises:
        TypeError: The space holds no Graph, or more than one; node or edge spaces that are not
            Box or Discrete; ``max_nodes`` / ``max_edges`` not ints.
        ValueError: A Dict key collides with the padded keys; on ``reset``/``step``, a graph with
            more than ``max_nodes`` nodes or ``max_edges`` edges (the message names the option to
            raise), links outside ``[0, n)``, or features that do not fit the space.
    """

    def __init__(
        self, env: gym.Env, max_nodes: int = DEFAULT_MAX_NODES, max_edges: int = DEFAULT_MAX_EDGES
    ):
        super().__init__(env)
        self.max_nodes = _check_padding("max_nodes", max_nodes)
        self.max_edges = _check_padding("max_edges", max_edges)
        space = env.observation_space
        if isinstance(space, spaces.Graph):
            self._graph_key: str | None = None
            graph, rest = space, {}
        elif isinstance(space, spaces.Dict):
            keys = [k for k, sub in space.spaces.items() if isinstance(sub, spaces.Graph)]
            if len(keys) != 1:
                raise TypeError(
                    f"GraphPadding pads a Dict observation with exactly one Graph entry, got "
                    f"{len(keys)} in {space}"
                )
            self._graph_key = keys[0]
            graph = space[keys[0]]
            rest = {k: sub for k, sub in space.spaces.items() if k != keys[0]}
            clash = sorted(set(rest) & set(_GRAPH_KEYS))
            if clash:
                raise ValueError(
                    f"the Dict observation has entries {clash} next to its Graph entry "
                    f"{keys[0]!r}: these names are taken by the padded graph form {_GRAPH_KEYS}"
                )
        else:
            raise TypeError(f"GraphPadding needs a gymnasium.spaces.Graph observation, got {space}")
        self.graph_space: spaces.Graph = graph
        self.num_node_features = _feature_size(graph.node_space, "node_space")
        self.num_edge_features = (
            None if graph.edge_space is None else _feature_size(graph.edge_space, "edge_space")
        )
        padded: dict[str, gym.Space] = {
            "x": _feature_box(graph.node_space, self.max_nodes),
            "edge_index": spaces.Box(0, self.max_nodes - 1, (2, self.max_edges), np.int64),
            "node_mask": spaces.Box(0, 1, (self.max_nodes,), np.int8),
            "edge_mask": spaces.Box(0, 1, (self.max_edges,), np.int8),
        }
        if graph.edge_space is not None:
            padded["edge_attr"] = _feature_box(graph.edge_space, self.max_edges)
        self.observation_space = spaces.Dict({**padded, **rest})

    def observation(self, observation: Any) -> dict[str, Any]:
        """Pad one observation (see the class docstring)."""
        if self._graph_key is None:
            return self.pad(observation)
        rest = {k: v for k, v in observation.items() if k != self._graph_key}
        return {**self.pad(observation[self._graph_key]), **rest}

    def pad(self, graph: spaces.GraphInstance) -> dict[str, np.ndarray]:
        """The padded form of one ``GraphInstance``."""
        space = self.graph_space
        nodes = np.asarray(graph.nodes)
        num_nodes = int(nodes.shape[0]) if nodes.ndim else 0
        if num_nodes > self.max_nodes:
            raise ValueError(
                f"the observation graph has {num_nodes} nodes, more than max_nodes="
                f"{self.max_nodes}: raise max_nodes (GymnasiumToBatched(..., max_nodes=...), or "
                "envs.make(..., graph_padding={'max_nodes': ...}))"
            )
        links = (
            np.zeros((0, 2), dtype=np.int64)
            if graph.edge_links is None
            else np.asarray(graph.edge_links, dtype=np.int64)
        )
        if links.ndim != 2 or links.shape[1] != 2:
            raise ValueError(f"graph edge_links must have shape [m, 2], got {links.shape}")
        num_edges = int(links.shape[0])
        if num_edges > self.max_edges:
            raise ValueError(
                f"the observation graph has {num_edges} edges, more than max_edges="
                f"{self.max_edges}: raise max_edges (GymnasiumToBatched(..., max_edges=...), or "
                "envs.make(..., graph_padding={'max_edges': ...}))"
            )
        if num_edges and (links.min() < 0 or links.max() >= num_nodes):
            bad = int(np.flatnonzero(((links < 0) | (links >= num_nodes)).any(axis=1))[0])
            raise ValueError(
                f"graph edge {bad} links nodes {links[bad].tolist()}, but the graph has "
                f"{num_nodes} nodes (valid: 0 .. {num_nodes - 1})"
            )
        x = np.zeros((self.max_nodes, self.num_node_features), dtype=np.float32)
        x[:num_nodes] = _features(space.node_space, nodes, num_nodes, "nodes")
        edge_index = np.zeros((2, self.max_edges), dtype=np.int64)
        edge_index[:, :num_edges] = links.T
        node_mask = np.zeros(self.max_nodes, dtype=np.int8)
        node_mask[:num_nodes] = 1
        edge_mask = np.zeros(self.max_edges, dtype=np.int8)
        edge_mask[:num_edges] = 1
        out = {"x": x, "edge_index": edge_index, "node_mask": node_mask, "edge_mask": edge_mask}
        if space.edge_space is not None:
            edge_attr = np.zeros((self.max_edges, self.num_edge_features), dtype=np.float32)
            if num_edges:
                if graph.edges is None:
                    raise ValueError(
                        f"the graph has {num_edges} edge_links but no edges (features) for its "
                        f"edge space {space.edge_space}"
                    )
                edge_attr[:num_edges] = _features(space.edge_space, graph.edges, num_edges,
                                                  "edges")
            out["edge_attr"] = edge_attr
        return out


def _holds_graph(space: gym.Space) -> bool:
    return isinstance(space, spaces.Graph) or (
        isinstance(space, spaces.Dict)
        and any(isinstance(sub, spaces.Graph) for sub in space.spaces.values())
    )


def _with_graph_padding(
    fn: Callable[[], gym.Env], max_nodes: int, max_edges: int
) -> Callable[[], gym.Env]:
    """``fn``, with its env wrapped in :class:`GraphPadding` when its observations hold a Graph."""

    def make_env() -> gym.Env:
        env = fn()
        if isinstance(env, gym.Env) and _holds_graph(env.observation_space):
            try:
                return GraphPadding(env, max_nodes, max_edges)
            except (TypeError, ValueError):
                env.close()
                raise
        return env

    return make_env


# ---------------------------------------------------------------------------- Env -> batched
class GymnasiumToBatched(BatchedEnv):
    """Any third-party ``gymnasium.Env`` as a batched environment (torch tensors, SAME_STEP).

    The copies step in numpy on the CPU inside ``gymnasium.vector.SyncVectorEnv`` with SAME_STEP
    autoreset; this adapter returns its results as tensors on ``device`` with exactly the keys and
    meaning of :meth:`envs.core.BatchedEnv.step`: ``info["final_obs"]`` is a full batch (the last
    observation where ``info["_final_obs"]``, the current one elsewhere), and
    ``episode_return``/``episode_length`` (valid where ``_episode``) are counted here. The
    wrapped vector env's own ``info`` of the last call is kept in :attr:`last_vector_info`.

    Observations: float64 boxes become float32 (``single_observation_space`` says so), discrete
    spaces int64; Dicts of these are dicts of tensors. A ``gymnasium.spaces.Graph`` observation
    (or a Dict with one Graph entry) comes in the padded graph form of DESIGN.md contract 1
    (``x``, ``edge_index``, ``node_mask``, ``edge_mask``, and ``edge_attr`` when the Graph has an
    edge space; see :class:`GraphPadding`), padded to ``max_nodes`` nodes and ``max_edges``
    edges, so Umbra's policies pick their GNN encoder for it. A graph larger than that is a
    ``ValueError`` naming the option to raise. A ``Discrete(n)`` action that names one of the
    graph's nodes gets Umbra's node head (one logit per node from its GNN embedding) on its own
    when ``max_nodes = n``; under the default 64 slots, ask for it with ``encoder_kwargs=
    {"node_head": True}`` (the padding is not changed unasked: ``Discrete(n)`` may as well be a
    class or a direction, and graphs of more than ``n`` nodes would then fail). Actions are
    tensors on ``device`` of shape
    ``[num_envs, *action_shape]``, int64 for discrete spaces, floating for boxes, and are always
    checked (the numpy conversion synchronises anyway).

    ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` (Gymnasium's convention) and
    ``self.generator`` with ``s``: the same seed gives the same trajectory.

    Args:
        env_fns: One callable per copy, each returning a new ``gymnasium.Env``
            (``envs.make("CartPole-v1", num_envs=4)`` builds them from an id).
        device: Where the returned tensors live (``"cpu"``, ``"cuda"``, ``"auto"``).
        max_nodes: Padded number of nodes of Graph observations (ignored without one).
            (default: ``64``)
        max_edges: Padded number of edges of Graph observations (ignored without one).
            (default: ``256``)

    Raises:
        ValueError: ``env_fns`` is empty, ``device`` is not available, or ``max_nodes`` /
            ``max_edges`` is not positive.
        TypeError: an entry of ``env_fns`` is not callable, or a space is not one of Box,
            Discrete, MultiDiscrete, MultiBinary, Graph (Box or Discrete nodes and edges) or a
            Dict of these (at most one Graph).
    """

    description = "A third-party Gymnasium environment, stepped in numpy on the CPU."

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        device: str | torch.device = "cpu",
        max_nodes: int = DEFAULT_MAX_NODES,
        max_edges: int = DEFAULT_MAX_EDGES,
    ):
        env_fns = list(env_fns)
        if not env_fns:
            raise ValueError("env_fns is empty: pass one callable per copy (num_envs >= 1)")
        for fn in env_fns:
            if not callable(fn):
                raise TypeError(f"env_fns must be callables returning a gymnasium.Env, got {fn!r}")
        num_envs = check_num_envs(len(env_fns))
        resolved = resolve_device(device)
        self.max_nodes = _check_padding("max_nodes", max_nodes)
        self.max_edges = _check_padding("max_edges", max_edges)
        env_fns = [_with_graph_padding(fn, self.max_nodes, self.max_edges) for fn in env_fns]
        self.vector_env = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
        try:
            self._gym_observation_space = self.vector_env.single_observation_space
            self.single_observation_space = _torch_space(self._gym_observation_space)
            self.single_action_space = self.vector_env.single_action_space
            _torch_space(self.single_action_space)  # unsupported action spaces fail here
        except TypeError:
            self.vector_env.close()
            raise
        first = self.vector_env.envs[0]
        self.spec = first.spec
        self.max_episode_steps = first.spec.max_episode_steps if first.spec else None
        #: The ``info`` that the wrapped ``SyncVectorEnv`` returned on the last reset/step.
        self.last_vector_info: dict[str, Any] = {}
        super().__init__(num_envs, resolved, debug=True)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy; ``seed`` seeds copy ``i`` with ``seed + i``."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"seed must be an int or None, got {seed!r}")
            seed = int(seed)
            self.generator.manual_seed(seed)
        obs, self.last_vector_info = self.vector_env.reset(seed=seed, options=options)
        self._episode_return.zero_()
        self._episode_length.zero_()
        self._has_reset = True
        obs_t = _to_tensor(self.single_observation_space, obs, self.device)
        check_finite(repr(self), "reset()", observations=obs_t)
        return obs_t, {}

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy; copies that end are reset in the same call (SAME_STEP)."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        self.check_actions(actions)
        self._step_calls += 1
        np_actions = actions.detach().cpu().numpy().astype(self.single_action_space.dtype)
        obs, reward, terminated, truncated, vinfo = self.vector_env.step(np_actions)
        self.last_vector_info = vinfo
        done = np.logical_or(terminated, truncated)
        space = self._gym_observation_space
        if done.any():
            items = [
                vinfo["final_obs"][i] if done[i] else _copy_at(space, obs, i)
                for i in range(self.num_envs)
            ]
            final = gym.vector.utils.concatenate(
                space, items, gym.vector.utils.create_empty_array(space, self.num_envs)
            )
        else:
            final = obs
        reward_t = torch.as_tensor(np.asarray(reward, dtype=np.float32), device=self.device)
        terminated_t = torch.as_tensor(np.asarray(terminated, dtype=bool), device=self.device)
        truncated_t = torch.as_tensor(np.asarray(truncated, dtype=bool), device=self.device)
        done_t = terminated_t | truncated_t
        self._episode_return += reward_t
        self._episode_length += 1
        info = {
            "final_obs": _to_tensor(self.single_observation_space, final, self.device),
            "_final_obs": done_t,
            "episode_return": self._episode_return.clone(),
            "episode_length": self._episode_length.clone(),
            "_episode": done_t,
        }
        self._episode_return.masked_fill_(done_t, 0.0)
        self._episode_length.masked_fill_(done_t, 0)
        obs_t = _to_tensor(self.single_observation_space, obs, self.device)
        check_finite(repr(self), f"step() call {self._step_calls}", rewards=reward_t,
                     observations=obs_t, final_observations=info["final_obs"])
        return obs_t, reward_t, terminated_t, truncated_t, info

    def close(self) -> None:
        """Close every copy."""
        self.vector_env.close()

    def __repr__(self) -> str:
        first = self.vector_env.envs[0].unwrapped
        name = self.spec.id if self.spec is not None else type(first).__name__
        return f"GymnasiumToBatched({name}, num_envs={self.num_envs}, device={self.device})"


# ---------------------------------------------------------------------------- PettingZoo
def _default_action(space: gym.Space) -> np.ndarray:
    """A valid action that the batched step is given for absent agents (and then ignores)."""
    if isinstance(space, spaces.Discrete):
        return np.asarray(space.start, dtype=space.dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype).copy()
    if isinstance(space, spaces.MultiBinary):
        return np.zeros(space.shape, dtype=space.dtype)
    return np.clip(np.zeros(space.shape, dtype=space.dtype), space.low, space.high)


def _require_multi_agent(batched: Any, adapter: str) -> MultiAgentBatchedEnv:
    if not isinstance(batched, MultiAgentBatchedEnv):
        raise TypeError(
            f"{adapter} wraps an envs.core.MultiAgentBatchedEnv, got {type(batched).__name__}"
        )
    return batched


def _check_single_agent(batched: BatchedEnv, adapter: str) -> None:
    """``TypeError`` unless ``batched`` is a single-agent :class:`~envs.core.BatchedEnv`."""
    if not isinstance(batched, BatchedEnv):
        raise TypeError(f"expected an envs.core.BatchedEnv, got {type(batched).__name__}")
    if isinstance(batched, MultiAgentBatchedEnv):
        raise TypeError(
            f"{adapter} wraps single-agent environments; {batched!r} is multi-agent: use "
            "BatchedToParallelEnv (envs.make_pettingzoo) for PettingZoo"
        )


class BatchedToParallelEnv(ParallelEnv):
    """One copy of a multi-agent batched environment as a PettingZoo ``ParallelEnv``.

    ``envs.make_pettingzoo(env_id)`` and each task module's ``parallel_env(**kwargs)`` return
    this adapter; PettingZoo's ``parallel_to_aec`` of it is the AEC env. Dicts are keyed by the
    agent names of ``possible_agents``; observations are numpy arrays of the observation space's
    dtype, rewards Python floats, terminations and truncations Python bools. ``infos[agent]`` is
    ``{}``, or ``{"action_mask": int8 array}`` for tasks with action masks. :meth:`state` is the
    global state of the copy, ``state_space`` its space.

    Agents leave ``agents`` when the episode ends (all of them at once) or when the batched
    environment's ``agent_mask`` drops them (their termination is then ``True``). The step that
    ends the episode returns the episode's last observations (the batched ``final_obs``).

    Every ``step`` is checked: one action per live agent, no action for unknown or departed
    agents, each of the right shape, dtype and range; a ``ValueError``/``TypeError`` names the
    agent.

    ``reset(seed=s)`` seeds the batched environment's generator. ``reset()`` without a seed
    continues from it; after an episode ended, it starts the episode that the batched
    environment's autoreset has already drawn, so the ``ParallelEnv`` and the batched
    environment with ``num_envs=1`` go through the same episodes for the same seed and actions.

    Args:
        batched: A :class:`~envs.core.MultiAgentBatchedEnv` with ``num_envs == 1``.

    Raises:
        TypeError: ``batched`` is not multi-agent.
        ValueError: ``batched.num_envs != 1``.
    """

    def __init__(self, batched: MultiAgentBatchedEnv):
        batched = _require_multi_agent(batched, "BatchedToParallelEnv")
        if batched.num_envs != 1:
            raise ValueError(
                f"BatchedToParallelEnv wraps one copy: build the batched env with num_envs=1, got "
                f"num_envs={batched.num_envs}"
            )
        self.batched = batched
        self.possible_agents = list(batched.possible_agents)
        self.agents: list[str] = []
        self.render_mode = None
        native = _native_spec(batched)
        self.metadata = {
            "name": native.id if native is not None else type(batched).__name__,
            "render_modes": [],
            "is_parallelizable": True,
        }
        self.state_space = batched.state_space
        # One space object per agent, so that seeding one agent's space leaves the others alone.
        self._observation_spaces = {
            agent: copy.deepcopy(batched.single_observation_space) for agent in self.possible_agents
        }
        self._action_spaces = {
            agent: copy.deepcopy(batched.single_action_space) for agent in self.possible_agents
        }
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._default = _default_action(batched.single_action_space)
        self._state: np.ndarray | None = None
        self._next_episode: tuple[Any, dict[str, Any]] | None = None

    def observation_space(self, agent: str) -> gym.Space:
        """The observation space of ``agent`` (the same object on every call)."""
        return self._observation_spaces[self._known(agent)]

    def action_space(self, agent: str) -> gym.Space:
        """The action space of ``agent`` (the same object on every call)."""
        return self._action_spaces[self._known(agent)]

    def _known(self, agent: Any) -> str:
        if agent not in self._index:
            raise ValueError(f"unknown agent {agent!r}; possible_agents: {self.possible_agents}")
        return agent

    # ------------------------------------------------------------------ conversions
    def _split(self, obs: Obs, agents: Sequence[str]) -> dict[str, Any]:
        space = self.batched.single_observation_space
        batch = _to_numpy(self.batched.observation_space, obs)
        return {agent: _copy_at(space, _copy_at(space, batch, 0), self._index[agent])
                for agent in agents}

    def _infos(self, info: dict[str, Any], agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        if "action_mask" not in info:
            return {agent: {} for agent in agents}
        mask = info["action_mask"][0].cpu().numpy().astype(np.int8)
        return {agent: {"action_mask": mask[self._index[agent]].copy()} for agent in agents}

    def _start(self, obs: Obs, info: dict[str, Any]) -> tuple[dict, dict]:
        alive = info["agent_mask"][0].cpu().numpy()
        self.agents = [a for a in self.possible_agents if alive[self._index[a]]]
        self._state = info["state"][0].cpu().numpy().copy()
        return self._split(obs, self.agents), self._infos(info, self.agents)

    # ------------------------------------------------------------------ the ParallelEnv API
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Start an episode; ``seed`` reseeds the batched generator (see the class docstring)."""
        if seed is None and not options and self._next_episode is not None:
            obs, info = self._next_episode
        else:
            obs, info = self.batched.reset(seed=seed, options=options)
        self._next_episode = None
        return self._start(obs, info)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Step every live agent by its action (checked; see the class docstring)."""
        if not self.agents:
            raise RuntimeError("no agent is alive (the episode has ended): call reset() first")
        tensor = self._actions_to_tensor(actions)
        obs, reward, terminated, truncated, info = self.batched.step(tensor)
        live = self.agents
        ended = bool(terminated[0]) or bool(truncated[0])
        if ended:
            last_obs, alive = info["final_obs"], np.zeros(len(self.possible_agents), dtype=bool)
            self._state = info["final_state"][0].cpu().numpy().copy()
            self._next_episode = (obs, info)
        else:
            last_obs, alive = obs, info["agent_mask"][0].cpu().numpy()
            self._state = info["state"][0].cpu().numpy().copy()
        rewards = reward[0].cpu().numpy().astype(np.float64)
        gone = {agent for agent in live if not alive[self._index[agent]]}
        observations = self._split(last_obs, live)
        rewards_d = {agent: float(rewards[self._index[agent]]) for agent in live}
        trunc = bool(truncated[0]) and not bool(terminated[0])
        terminations = {agent: agent in gone and not trunc for agent in live}
        truncations = {agent: trunc for agent in live}
        infos = self._infos(info, live) if not ended else {agent: {} for agent in live}
        self.agents = [agent for agent in live if agent not in gone]
        return observations, rewards_d, terminations, truncations, infos

    def _actions_to_tensor(self, actions: Any) -> torch.Tensor:
        if not isinstance(actions, dict):
            raise TypeError(
                f"actions must be a dict from agent name to action, got {type(actions).__name__}"
            )
        for agent in actions:
            if agent not in self._index:
                raise ValueError(
                    f"action for unknown agent {agent!r}; possible_agents: {self.possible_agents}"
                )
            if agent not in self.agents:
                raise ValueError(
                    f"action for {agent}, which is no longer alive (terminated or truncated); "
                    f"send actions only for the live agents {self.agents}"
                )
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(
                f"no action for {', '.join(missing)}: ParallelEnv.step needs one action per live "
                f"agent {self.agents}"
            )
        space = self.batched.single_action_space
        rows = []
        for agent in self.possible_agents:
            if agent not in actions:
                rows.append(torch.as_tensor(self._default, dtype=torch_dtype(space)))
                continue
            try:
                rows.append(_actions_to_tensor(space, actions[agent], (), torch.device("cpu")))
            except (TypeError, ValueError) as err:
                raise type(err)(f"action for {agent}: {err}") from None
        tensor = torch.stack(rows)[None].to(self.batched.device)
        self.batched.check_actions(tensor)
        return tensor

    def state(self) -> np.ndarray:
        """The global state of the copy (after the last step or reset)."""
        if self._state is None:
            raise RuntimeError("call reset() before state()")
        return self._state.copy()

    def render(self) -> None:
        """Batched environments do not render (``render_mode`` is ``None``)."""
        return None

    def close(self) -> None:
        """Close the batched environment."""
        self.batched.close()

    def __str__(self) -> str:
        return self.metadata["name"]


class PettingZooToBatched(MultiAgentBatchedEnv):
    """Any third-party PettingZoo ``ParallelEnv`` as a multi-agent batched environment.

    The copies step one by one in numpy on the CPU; this adapter returns their results as
    tensors on ``device`` with the keys and meaning of
    :meth:`envs.core.MultiAgentBatchedEnv.step` (SAME_STEP autoreset per copy, ``final_obs``,
    ``state``/``final_state``, ``agent_mask``, episode statistics counted here).

    - Agents: ``possible_agents`` of the wrapped env, fixed; every agent must have the same
      observation and action space (pad heterogeneous ones first, e.g. with SuperSuit). An agent
      that is absent at a step (not yet there, or gone) sees zeros, has ``agent_mask`` False and
      gets reward 0; its action is dropped.
    - A copy's episode ends when its ``agents`` list becomes empty; it counts as truncated if
      any agent that left at that step was truncated and none terminated, else as terminated.
    - State: the wrapped env's ``state()`` when it has a ``state_space``; otherwise the
      concatenation of all agents' flattened observations.
    - Observations: float64 boxes become float32, discrete spaces int64; a Dict observation
      with an ``"action_mask"`` key also gives ``info["action_mask"]`` and :meth:`action_masks`.

    ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` and ``self.generator`` with ``s``.
    Actions are always checked.

    Args:
        env_fns: One callable per copy, each returning a new ``pettingzoo.ParallelEnv``
            (``envs.make("mpe2.simple_spread_v3:parallel_env", num_envs=4)`` builds them).
        device: Where the returned tensors live.

    Raises:
        ValueError: ``env_fns`` is empty; copies disagree on ``possible_agents``.
        TypeError: an entry is not callable or returns no ``ParallelEnv``; agents have different
            spaces; a space is not one of Box, Discrete, MultiDiscrete, MultiBinary (or a Dict).
    """

    description = "A third-party PettingZoo ParallelEnv, stepped in numpy on the CPU."

    def __init__(
        self, env_fns: Sequence[Callable[[], ParallelEnv]], device: str | torch.device = "cpu"
    ):
        env_fns = list(env_fns)
        if not env_fns:
            raise ValueError("env_fns is empty: pass one callable per copy (num_envs >= 1)")
        for fn in env_fns:
            if not callable(fn):
                raise TypeError(f"env_fns must be callables returning a ParallelEnv, got {fn!r}")
        resolved = resolve_device(device)
        self.envs: list[ParallelEnv] = []
        try:
            for fn in env_fns:
                par_env = fn()
                self.envs.append(par_env)
                if not isinstance(par_env, ParallelEnv):
                    raise TypeError(
                        f"env_fns must return pettingzoo ParallelEnvs, got "
                        f"{type(par_env).__name__} (for an AEC env, use PettingZoo's "
                        "aec_to_parallel)"
                    )
            self._build_spaces()
        except (TypeError, ValueError):
            self.close()
            raise
        self.max_episode_steps = None
        super().__init__(len(self._agent_names), len(self.envs), resolved, debug=True)
        self.possible_agents = list(self._agent_names)
        self._agents_alive = np.zeros((self.num_envs, self.num_agents), dtype=bool)

    def _build_spaces(self) -> None:
        first = self.envs[0]
        self._agent_names = list(first.possible_agents)
        for par_env in self.envs[1:]:
            if list(par_env.possible_agents) != self._agent_names:
                raise ValueError(
                    f"the copies disagree on possible_agents: {self._agent_names} and "
                    f"{list(par_env.possible_agents)}"
                )
        obs_space = first.observation_space(self._agent_names[0])
        act_space = first.action_space(self._agent_names[0])
        for agent in self._agent_names[1:]:
            if first.observation_space(agent) != obs_space:
                raise TypeError(
                    f"{agent} has observation space {first.observation_space(agent)}, "
                    f"{self._agent_names[0]} has {obs_space}: batching needs one space for all "
                    "agents (pad them, e.g. supersuit.pad_observations_v0)"
                )
            if first.action_space(agent) != act_space:
                raise TypeError(
                    f"{agent} has action space {first.action_space(agent)}, "
                    f"{self._agent_names[0]} has {act_space}: batching needs one space for all "
                    "agents (pad them, e.g. supersuit.pad_action_space_v0)"
                )
        self._gym_observation_space = obs_space
        self.single_observation_space = _torch_space(obs_space)
        self.single_action_space = act_space
        _torch_space(act_space)  # unsupported action spaces fail here
        native_state = getattr(first, "state_space", None)
        self._native_state = isinstance(native_state, spaces.Box)
        if self._native_state:
            self.state_space = _torch_space(native_state)
        else:
            flat = spaces.flatten_space(obs_space)
            self.state_space = _torch_space(
                spaces.Box(
                    np.tile(flat.low, len(self._agent_names)),
                    np.tile(flat.high, len(self._agent_names)),
                    dtype=flat.dtype,
                )
            )
        self.has_action_mask = (
            isinstance(obs_space, spaces.Dict) and "action_mask" in obs_space.spaces
        )

    # ------------------------------------------------------------------ conversions
    def _stack(self, per_copy: list[dict[str, Any]]) -> Any:
        """Numpy batch ``[N, A, ...]`` of agent-keyed observations; absent agents are zeros."""
        space = self._gym_observation_space
        zero = _copy_at(space, gym.vector.utils.create_empty_array(space, 1), 0)
        items = [obs.get(agent, zero) for obs in per_copy for agent in self._agent_names]
        out = gym.vector.utils.create_empty_array(space, len(items))
        flat = gym.vector.utils.concatenate(space, items, out)
        reshape = (self.num_envs, self.num_agents)
        if isinstance(flat, dict):
            return {key: value.reshape(*reshape, *value.shape[1:]) for key, value in flat.items()}
        return flat.reshape(*reshape, *flat.shape[1:])

    def _state_of(self, par_env: ParallelEnv, obs: dict[str, Any]) -> np.ndarray:
        if self._native_state:
            return np.asarray(par_env.state(), dtype=np.float32)
        space = self._gym_observation_space
        zero = np.zeros(spaces.flatdim(space), dtype=np.float32)
        return np.concatenate([
            spaces.flatten(space, obs[agent]).astype(np.float32) if agent in obs else zero
            for agent in self._agent_names
        ])

    def _tensor(self, value: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), dtype=dtype, device=self.device)

    def _observations(self, per_copy: list[dict[str, Any]]) -> Obs:
        return _to_tensor(self.single_observation_space, self._stack(per_copy), self.device)

    def _alive(self) -> np.ndarray:
        return np.array(
            [[agent in par_env.agents for agent in self._agent_names] for par_env in self.envs],
            dtype=bool,
        )

    def _with_masks(self, info: dict[str, Any], obs: Obs) -> dict[str, Any]:
        if self.has_action_mask:
            self._last_action_mask = obs["action_mask"].to(torch.bool)
            info["action_mask"] = self._last_action_mask
        return info

    def action_masks(self) -> torch.Tensor:
        """The action masks of the last observations, ``[N, A, n_actions]`` bool."""
        if not self.has_action_mask:
            raise AttributeError("the wrapped environment has no action_mask observations")
        return self._last_action_mask

    # ------------------------------------------------------------------ the batched API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy; ``seed`` seeds copy ``i`` with ``seed + i``."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"seed must be an int or None, got {seed!r}")
            seed = int(seed)
            self.generator.manual_seed(seed)
        observations = []
        states = []
        for i, par_env in enumerate(self.envs):
            obs, _ = par_env.reset(seed=None if seed is None else seed + i, options=options)
            observations.append(obs)
            states.append(self._state_of(par_env, obs))
        self._agents_alive = self._alive()
        self._episode_return.zero_()
        self._episode_length.zero_()
        self._has_reset = True
        obs_t = self._observations(observations)
        info = {"state": self._tensor(np.stack(states)), "agent_mask": self._tensor(
            self._agents_alive, torch.bool)}
        check_finite(repr(self), "reset()", observations=obs_t, states=info["state"])
        return obs_t, self._with_masks(info, obs_t)

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy; copies whose agents are all gone are reset in the same call."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        self.check_actions(actions)
        self._step_calls += 1
        np_actions = actions.detach().cpu().numpy().astype(self.single_action_space.dtype)
        n, a = self.num_envs, self.num_agents
        rewards = np.zeros((n, a), dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        observations, final_observations, states, final_states = [], [], [], []
        for i, par_env in enumerate(self.envs):
            live = [agent for agent in self._agent_names if agent in par_env.agents]
            step_actions = {agent: np_actions[i, self._agent_names.index(agent)] for agent in live}
            obs, reward, term, trunc, _ = par_env.step(step_actions)
            for j, agent in enumerate(self._agent_names):
                rewards[i, j] = float(reward.get(agent, 0.0))
            final_observations.append(obs)
            final_states.append(self._state_of(par_env, obs))
            if par_env.agents:
                obs = {agent: obs[agent] for agent in par_env.agents if agent in obs}
                states.append(final_states[-1])
            else:
                left = [agent for agent in live if term.get(agent) or trunc.get(agent)]
                any_term = any(term.get(agent, False) for agent in left)
                truncated[i] = not any_term and any(trunc.get(agent, False) for agent in left)
                terminated[i] = not truncated[i]
                obs, _ = par_env.reset()
                states.append(self._state_of(par_env, obs))
            observations.append(obs)
        self._agents_alive = self._alive()
        reward_t = self._tensor(rewards)
        terminated_t = self._tensor(terminated, torch.bool)
        truncated_t = self._tensor(truncated, torch.bool)
        done_t = terminated_t | truncated_t
        self._episode_return += reward_t
        self._episode_length += 1
        info = {
            "final_obs": self._observations(final_observations),
            "final_state": self._tensor(np.stack(final_states)),
            "_final_obs": done_t,
            "episode_return": self._episode_return.mean(dim=1),
            "agent_episode_return": self._episode_return.clone(),
            "episode_length": self._episode_length.clone(),
            "_episode": done_t,
            "state": self._tensor(np.stack(states)),
            "agent_mask": self._tensor(self._agents_alive, torch.bool),
        }
        self._episode_return.masked_fill_(done_t[:, None], 0.0)
        self._episode_length.masked_fill_(done_t, 0)
        obs_t = self._observations(observations)
        check_finite(repr(self), f"step() call {self._step_calls}", rewards=reward_t,
                     observations=obs_t, final_observations=info["final_obs"],
                     states=info["state"])
        return obs_t, reward_t, terminated_t, truncated_t, self._with_masks(info, obs_t)

    def close(self) -> None:
        """Close every copy."""
        for par_env in getattr(self, "envs", []):
            par_env.close()

    def __repr__(self) -> str:
        name = type(self.envs[0].unwrapped).__name__
        metadata = getattr(self.envs[0], "metadata", None) or {}
        return (
            f"PettingZooToBatched({metadata.get('name', name)}, num_envs={self.num_envs}, "
            f"num_agents={self.num_agents}, device={self.device})"
        )
