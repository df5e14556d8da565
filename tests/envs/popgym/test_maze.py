"""envs.popgym.maze: the batched Hunt-and-Kill mazes against mazelib's (popgym's generator).

Every batched maze must be perfect (its open squares a spanning tree of the cells), its entrances
on opposite outer walls in front of a cell, and its distribution that of mazelib's
``HuntAndKill`` as popgym calls it: the mean shortest path start -> exit and the mean number of
dead ends agree within ``Z_TOL`` standard errors (maze_reference.py). The same statistics tell
mazelib's other generators (Prim's, the recursive backtracker) apart from Hunt-and-Kill, so the
test fails for a maze of another kind.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from maze_reference import Z_TOL, dead_ends, distances, is_perfect, mean_gap, open_squares
from mazelib import Maze
from mazelib.generate.HuntAndKill import HuntAndKill
from mazelib.generate.Prims import Prims

from envs.popgym.maze import hunt_and_kill, outer_entrances

# (cells per side, batched mazes, mazelib mazes): popgym's Easy, Medium and Hard.
SIZES = [(5, 2000, 400), (7, 800, 200), (9, 500, 120)]


def batched_mazes(cells: int, num: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    opened = hunt_and_kill(num, cells, cells, generator, torch.device("cpu"))
    start, end = outer_entrances(num, cells, cells, generator, torch.device("cpu"))
    return opened.numpy(), start.numpy(), end.numpy()


def mazelib_mazes(algorithm, cells: int, num: int, seed: int = 0):
    """popgym's calls (``popgym.core.maze.MazeEnv.reset``), seeded like popgym seeds them."""
    random.seed(seed)
    np.random.seed(seed)
    mazes = []
    for _ in range(num):
        maze = Maze()
        maze.generator = algorithm(cells, cells)
        maze.generate()
        maze.generate_entrances(start_outer=True)
        mazes.append((maze.grid == 0, maze.start, maze.end))
    return mazes


def statistics(opened: np.ndarray, start, end) -> tuple[int, int]:
    """(shortest path start -> exit, dead ends) of one maze; entrances opened for the search."""
    opened = opened.copy()
    opened[tuple(start)] = opened[tuple(end)] = True
    return int(distances(opened, tuple(start))[tuple(end)]), dead_ends(opened)


@pytest.mark.parametrize(("cells", "num", "_"), SIZES)
def test_every_maze_is_perfect_with_entrances_on_opposite_walls(cells, num, _):
    opened, start, end = batched_mazes(cells, num)
    size = 2 * cells + 1
    assert opened.shape == (num, size, size)
    assert all(is_perfect(maze) for maze in opened)
    # When its budget of hunts runs out, mazelib's Hunt-and-Kill leaves cells unvisited (closed);
    # that is rare (about 1 maze in 1,000 at 7x7 cells), and so it is here.
    assert (~opened[:, 1::2, 1::2]).any(axis=(1, 2)).mean() < 0.01
    assert not opened[:, 0].any() and not opened[:, -1].any()
    assert not opened[:, :, 0].any() and not opened[:, :, -1].any()
    on_border = (start == 0) | (start == size - 1)
    assert (on_border.sum(1) == 1).all()  # on one wall, not in a corner
    assert ((start % 2 == 1) | on_border).all()
    assert ((end % 2 == 1) | (end == 0) | (end == size - 1)).all()
    assert (np.abs(start - end).max(1) == size - 1).all()  # the exit on the opposite wall
    sides = np.select([start[:, 0] == 0, start[:, 0] == size - 1, start[:, 1] == 0], [0, 1, 2], 3)
    assert np.allclose(np.bincount(sides, minlength=4) / num, 0.25, atol=4 * np.sqrt(0.1875 / num))
    along = np.where(sides < 2, start[:, 1], start[:, 0])
    assert set(along.tolist()) == set(range(1, size, 2))


@pytest.mark.parametrize(("cells", "num", "num_ref"), SIZES)
def test_distribution_equals_mazelibs_hunt_and_kill(cells, num, num_ref):
    opened, start, end = batched_mazes(cells, num)
    ours = np.array([statistics(*maze) for maze in zip(opened, start, end, strict=True)])
    theirs = np.array([statistics(*maze) for maze in mazelib_mazes(HuntAndKill, cells, num_ref)])
    for column, what in enumerate(("shortest path start -> exit", "dead ends")):
        gap = mean_gap(ours[:, column], theirs[:, column])
        assert gap < Z_TOL, (
            f"{what}: batched mean {ours[:, column].mean():.3f} (n={num}), mazelib "
            f"{theirs[:, column].mean():.3f} (n={num_ref}), {gap:.2f} standard errors apart"
        )


def test_the_distribution_test_tells_another_generator_apart():
    """Power: the statistics above separate Hunt-and-Kill from mazelib's Prim's mazes (measured: 47
    standard errors on dead ends, 16 on the path length). mazelib's recursive backtracker, another
    random-walk generator, stays within 1.5 standard errors (measured) of Hunt-and-Kill here: these
    statistics tell walk-based mazes from Prim's short-branch mazes, not one walk from another."""
    opened, start, end = batched_mazes(5, 2000)
    ours = np.array([statistics(*maze) for maze in zip(opened, start, end, strict=True)])
    theirs = np.array([statistics(*maze) for maze in mazelib_mazes(Prims, 5, 200)])
    gaps = [mean_gap(ours[:, column], theirs[:, column]) for column in (0, 1)]
    assert max(gaps) > 2 * Z_TOL, gaps


def test_same_seed_same_mazes():
    first, second, third = batched_mazes(5, 64, 3), batched_mazes(5, 64, 3), batched_mazes(5, 64, 4)
    assert all((a == b).all() for a, b in zip(first, second, strict=True))
    assert not (first[0] == third[0]).all()
    assert len({maze.tobytes() for maze in first[0]}) == 64  # the copies differ


def test_non_square_mazes():
    generator = torch.Generator().manual_seed(0)
    opened = hunt_and_kill(200, 3, 6, generator, torch.device("cpu")).numpy()
    start, end = outer_entrances(200, 3, 6, generator, torch.device("cpu"))
    assert opened.shape == (200, 7, 13) and all(is_perfect(maze) for maze in opened)
    assert (start[:, 0] <= 6).all() and (start[:, 1] <= 12).all()
    assert (end[:, 0] <= 6).all() and (end[:, 1] <= 12).all()
    assert open_squares(1 - opened[0]).sum() == opened[0].sum()
