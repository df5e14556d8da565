"""POPGym's ``PreviousAction`` wrapper, batched: the observation also carries the last action."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, Obs

#: Keys of the wrapped observation.
OBS = "obs"
PREVIOUS_ACTION = "previous_action"


def null_action(space: gym.Space) -> np.ndarray:
    """popgym's null action (``PreviousAction.get_null_action``): 0 (an int, or zeros of the
    space's shape) when the space holds it, else the lowest action (``start`` of a ``Discrete``,
    ``low`` / ``start`` of a ``Box`` / ``MultiDiscrete``)."""
    if isinstance(space, gym.spaces.Discrete):
        return np.asarray(0 if space.contains(0) else int(space.start), dtype=np.int64)
    if isinstance(space, (gym.spaces.MultiBinary, gym.spaces.MultiDiscrete, gym.spaces.Box)):
        zero = np.zeros(space.shape, space.dtype)
        if space.contains(zero):
            return zero
        low = space.low if isinstance(space, gym.spaces.Box) else space.start
        return np.asarray(low, dtype=space.dtype)
    raise TypeError(
        f"PreviousAction needs a Discrete, MultiDiscrete, MultiBinary or Box action space, got "
        f"{space}"
    )


class PreviousAction(BatchedEnv):
    """Add the previous action to every observation, as popgym's baselines do.

    Mirrors ``popgym.wrappers.PreviousAction`` (popgym 1.0.7) for a batched environment. popgym
    makes the observation a ``Tuple`` (observation, previous action) (or adds a ``prev_action``
    key to a Dict); Umbra's policies encode Dicts, so here it is a Dict::

        {"obs": <env.single_observation_space>, "previous_action": <env.single_action_space>}

    ``previous_action`` is the action of the step that produced the observation, in the action
    space itself (its tensor dtype: int64 for ``Discrete`` / ``MultiDiscrete``, float32 for
    ``Box``); the policy's :class:`agents.policies.DictEncoder` one-hots ``Discrete`` and
    ``MultiDiscrete`` entries and flattens ``Box`` ones. At the start of every episode it is
    popgym's null action (:func:`null_action`: 0 when the action space holds it, else its lowest
    action): after ``reset``, and in the copies that SAME_STEP autoreset inside ``step`` (their
    ``obs`` is the new episode's first observation with the null action, while
    ``info["final_obs"]`` holds the last observation of the ended episode with the action that
    ended it).

    Everything else is the wrapped environment's: ``reset`` (and its seed), ``step``, rewards,
    episode ends and statistics, action checks (:meth:`check_actions`, :meth:`check_deferred`)
    and any other attribute (``wrapper.k`` reads ``env.k``). The action of one step lives on the
    device: no synchronisation is added.

    ``envs.make("popgym/<Id>", num_envs=..., previous_action=True)`` builds it for any
    ``popgym/`` id (see :mod:`envs.popgym`).

    Args:
        env: A single-agent :class:`~envs.core.BatchedEnv` whose observations are tensors (not
            Dicts).
    """

    def __init__(self, env: BatchedEnv):
        if not isinstance(env, BatchedEnv):
            raise TypeError(f"PreviousAction wraps an envs.core.BatchedEnv, got {env!r}")
        if env.kind != "single-agent":
            raise TypeError(
                f"PreviousAction wraps a single-agent environment, got a {env.kind} one"
            )
        if isinstance(env.single_observation_space, gym.spaces.Dict):
            raise TypeError(
                "PreviousAction wraps an environment with tensor observations, got "
                f"{env.single_observation_space}"
            )
        self.env = env
        self.single_observation_space = gym.spaces.Dict(
            {OBS: env.single_observation_space, PREVIOUS_ACTION: env.single_action_space}
        )
        self.single_action_space = env.single_action_space
        self.max_episode_steps = env.max_episode_steps
        self.description = env.description + " (with the previous action)"
        self.metadata = dict(env.metadata)
        super().__init__(env.num_envs, env.device, env.debug)
        self.generator = env.generator
        self.defers_action_checks = env.defers_action_checks
        self.null_action = torch.as_tensor(
            null_action(env.single_action_space), dtype=self._action_dtype, device=self.device
        )
        self._previous = self.null_action.expand(self.num_envs, *self.null_action.shape).clone()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the wrapper lacks: the wrapped environment's (env.k, ...).
        if name.startswith("_") or name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def _wrap(self, obs: torch.Tensor, previous: torch.Tensor) -> dict[str, torch.Tensor]:
        return {OBS: obs, PREVIOUS_ACTION: previous}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._has_reset = True
        self._previous = self.null_action.expand(self.num_envs, *self.null_action.shape).clone()
        return self._wrap(obs, self._previous), info

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step the wrapped environment; the observations carry ``actions`` (null where a copy
        was reset in this step)."""
        obs, reward, terminated, truncated, info = self.env.step(actions)
        taken = actions.to(self._action_dtype)
        if not self._action_dtype.is_floating_point:  # as the env, for a deferred check
            taken = torch.clamp(taken, self._action_low, self._action_high)
        ended = info.get("_final_obs", terminated | truncated)  # the copies reset in this step
        ended = ended.view(-1, *([1] * (taken.dim() - 1)))
        self._previous = torch.where(ended, self.null_action, taken)
        info = dict(info)
        if "final_obs" in info:
            info["final_obs"] = self._wrap(info["final_obs"], taken)
        return self._wrap(obs, self._previous), reward, terminated, truncated, info

    def check_actions(self, actions: Any) -> None:
        self.env.check_actions(actions)

    def check_deferred(self) -> None:
        self.env.check_deferred()

    def close(self) -> None:
        self.env.close()

    def __repr__(self) -> str:
        return f"PreviousAction({self.env!r})"
