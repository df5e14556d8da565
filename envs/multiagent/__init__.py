"""Multi-agent tasks: one file per task, each a :class:`~envs.core.MultiAgentBatchedEnv`.

- ``spread.py``: cooperative navigation, agents cover landmarks seeing only nearby entities;
- ``pursuit.py``: predators hunt a prey on a grid through a limited view;
- ``private_info.py``: every agent holds a private symbol the team must combine (needs
  communication).

Every module also offers PettingZoo's factories, ``parallel_env(**kwargs)`` (a ``ParallelEnv``)
and ``env(**kwargs)`` (an AEC env), built from one copy with :func:`pettingzoo_factories`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envs.core import MultiAgentBatchedEnv


def pettingzoo_factories(
    cls: type[MultiAgentBatchedEnv],
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """PettingZoo's ``parallel_env(**kwargs)`` and ``env(**kwargs)`` factories for a task class.

    ``kwargs`` are the task's constructor arguments (``num_agents``, ``device``, ...); the
    factories build one copy (``num_envs=1``) and wrap it in
    :class:`envs.interop.pettingzoo.BatchedToParallelEnv` (and PettingZoo's ``parallel_to_aec``).
    """

    def parallel_env(**kwargs: Any) -> Any:
        from envs.interop.pettingzoo import BatchedToParallelEnv

        if "num_envs" in kwargs:
            raise TypeError(
                "a PettingZoo environment is one copy: drop num_envs (use envs.make for a batch)"
            )
        return BatchedToParallelEnv(cls(num_envs=1, **kwargs))

    def env(**kwargs: Any) -> Any:
        from pettingzoo.utils.conversions import parallel_to_aec

        return parallel_to_aec(parallel_env(**kwargs))

    parallel_env.__doc__ = f"One {cls.__name__} as a PettingZoo ``ParallelEnv``."
    env.__doc__ = f"One {cls.__name__} as a PettingZoo AEC env."
    return parallel_env, env
