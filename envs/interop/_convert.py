"""Conversions shared by the adapters of ``envs.interop``: numpy <-> torch, spaces and actions.

Nothing here imports an optional ecosystem; every adapter module builds on these helpers.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from envs.core import BatchedEnv, MultiAgentBatchedEnv, Obs, torch_dtype

_DISCRETE_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
_SUPPORTED = "Box, Discrete, MultiDiscrete, MultiBinary (or a Dict of these)"

def to_numpy(space: gym.Space, value: Obs) -> Any:
    """A fresh numpy copy of a batched tensor (or dict of tensors), in the space's dtype."""
    if isinstance(space, spaces.Dict):
        return {key: to_numpy(sub, value[key]) for key, sub in space.spaces.items()}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    return array.astype(space.dtype) if space.dtype is not None else array.copy()


def copy_at(space: gym.Space, batch: Any, index: int) -> Any:
    """Copy ``index`` of a batched numpy observation, shaped like one element of ``space``."""
    if isinstance(space, spaces.Dict):
        return {key: copy_at(sub, batch[key], index) for key, sub in space.spaces.items()}
    item = batch[index]
    return item.copy() if isinstance(item, np.ndarray) else item


def to_tensor(space: gym.Space, value: Any, device: torch.device) -> Obs:
    """A fresh tensor (or dict of tensors) on ``device`` from a batched numpy value."""
    if isinstance(space, spaces.Dict):
        return {key: to_tensor(sub, value[key], device) for key, sub in space.spaces.items()}
    return torch.tensor(np.asarray(value), dtype=torch_dtype(space), device=device)


def torch_space(space: gym.Space) -> gym.Space:
    """``space`` with float64 boxes narrowed to float32; anything torch cannot hold is an error."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict({key: torch_space(sub) for key, sub in space.spaces.items()})
    if isinstance(space, spaces.Box) and space.dtype == np.float64:
        info = np.finfo(np.float32)

        def narrow(bound: np.ndarray) -> np.ndarray:
            clipped = np.where(np.isfinite(bound), np.clip(bound, info.min, info.max), bound)
            return clipped.astype(np.float32)

        return spaces.Box(narrow(space.low), narrow(space.high), dtype=np.float32)
    if isinstance(space, (spaces.Box, *_DISCRETE_SPACES)):
        return space
    raise TypeError(f"batched environments support {_SUPPORTED} spaces, got {space}")


def actions_to_tensor(
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



def check_single_agent(batched: BatchedEnv, adapter: str) -> None:
    """``TypeError`` unless ``batched`` is a single-agent :class:`~envs.core.BatchedEnv`."""
    if not isinstance(batched, BatchedEnv):
        raise TypeError(f"expected an envs.core.BatchedEnv, got {type(batched).__name__}")
    if isinstance(batched, MultiAgentBatchedEnv):
        raise TypeError(
            f"{adapter} wraps single-agent environments; {batched!r} is multi-agent: use "
            "BatchedToParallelEnv (envs.make_pettingzoo) for PettingZoo"
        )


