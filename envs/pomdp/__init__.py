"""Partially observable (memory) tasks: one file per family.

- ``masked.py``: CartPole and Pendulum with the velocities hidden;
- ``repeat.py``: POPGym-style sequence tasks (RepeatPrevious, RepeatFirst, CountRecall);
- ``tmaze.py``: the T-maze, a cue to carry along a corridor of chosen length;
- ``maze.py``: random key-and-door mazes seen through a window around the agent.
"""

from __future__ import annotations
