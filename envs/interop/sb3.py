"""Umbra's batched environments as stable-baselines3 ``VecEnv``s.

- :class:`BatchedToSB3VecEnv`: the batch as a stable-baselines3 ``VecEnv`` (numpy in, numpy out;
  actions checked), with the episode information that SB3's ``Monitor`` would add.

The only module of ``envs`` that imports stable-baselines3.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from envs.core import BatchedEnv
from envs.interop._convert import actions_to_tensor, check_single_agent, copy_at, to_numpy

__all__ = ["BatchedToSB3VecEnv"]


def _per_copy(value: Any, num_envs: int, indices: Iterable[int]) -> list[Any]:
    """Split a batched value (leading axis ``num_envs``) into per-copy values; repeat the rest."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == num_envs:
        return [np.array(value[i]) for i in indices]
    return [value for _ in indices]



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
        check_single_agent(batched, "BatchedToSB3VecEnv")
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
        return to_numpy(self.observation_space, obs)

    def step_async(self, actions: np.ndarray) -> None:
        """Check ``actions`` (shape ``(num_envs, *action_shape)``) and keep them for step_wait."""
        tensor = actions_to_tensor(
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
            final = to_numpy(self.observation_space, batch_info["final_obs"])
            episode_return = batch_info["episode_return"].cpu().numpy()
            episode_length = batch_info["episode_length"].cpu().numpy()
            elapsed = round(time.time() - self._t_start, 6)
            for i in np.flatnonzero(dones):
                infos[i] = {
                    "terminal_observation": copy_at(self.observation_space, final, i),
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "episode": {
                        "r": float(episode_return[i]),
                        "l": int(episode_length[i]),
                        "t": elapsed,
                    },
                }
        rewards = reward.detach().cpu().numpy().astype(np.float32)
        return to_numpy(self.observation_space, obs), rewards, dones, infos

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

