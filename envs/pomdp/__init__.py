"""Partially observable (memory) tasks: one file per family.

- ``masked.py``: CartPole and Pendulum with the velocities hidden;
- ``repeat.py``: POPGym-style sequence tasks (RepeatPrevious, RepeatFirst, CountRecall);
- ``tmaze.py``: the T-maze, a cue to carry along a corridor of chosen length;
- ``maze.py``: random key-and-door mazes seen through a window around the agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int; ``TypeError`` unless it is an int, ``ValueError`` if too small.

    The constructors of the memory tasks check their keyword arguments with this, so that a bad
    difficulty setting fails when the environment is built, with the argument's name.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)
