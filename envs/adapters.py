"""Where the adapters used to live; they are in :mod:`envs.interop`, one module per ecosystem.

``from envs.adapters import BatchedToSB3VecEnv`` keeps working: each name is looked up in its new
module on first use, so importing this module imports neither stable-baselines3 nor PettingZoo.
New code imports from the new modules:

- ``envs.interop.gymnasium``: ``BatchedToGymEnv``, ``BatchedToNumpyVecEnv``,
  ``GymnasiumToBatched``;
- ``envs.interop.graph_padding``: ``GraphPadding``;
- ``envs.interop.sb3``: ``BatchedToSB3VecEnv``;
- ``envs.interop.pettingzoo``: ``BatchedToParallelEnv``, ``PettingZooToBatched``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name of the old module -> the module that holds it now.
_MOVED = {
    "BatchedToGymEnv": "envs.interop.gymnasium",
    "BatchedToNumpyVecEnv": "envs.interop.gymnasium",
    "GymnasiumToBatched": "envs.interop.gymnasium",
    "GraphPadding": "envs.interop.graph_padding",
    "BatchedToSB3VecEnv": "envs.interop.sb3",
    "BatchedToParallelEnv": "envs.interop.pettingzoo",
    "PettingZooToBatched": "envs.interop.pettingzoo",
}

__all__ = sorted(_MOVED)


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MOVED[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_MOVED])
