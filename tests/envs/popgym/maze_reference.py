"""Shared by the tests of the popgym labyrinths (LabyrinthEscape, LabyrinthExplore).

- :func:`package_env`: a popgym env, without its DeprecationWarning about mazes.
- Maze statistics on numpy grids (works for mazelib's ``grid`` and Umbra's ``env.grid``):
  :func:`is_perfect` (the open squares form a tree: connected, ``edges == squares - 1``),
  :func:`distances` (breadth-first search), :func:`dead_ends`.
- :func:`wall_follower`: a scripted policy (right hand on the wall) batched in numpy, for both
  sides: it reads the true grid and position (not the observation, which popgym shifts on the top
  and left border), walks every corridor of a perfect maze, so it reaches the exit and explores
  every square.
- :func:`side_by_side` (exact, from the package's maze and position), :func:`batched_episodes`
  and :func:`package_episodes`, and the checks both labyrinths run with them:
  :func:`assert_side_by_side`, :func:`assert_both_flags_on_the_last_step`,
  :func:`assert_same_episodes`.
- :func:`mean_gap`: the two-sample statistic ``|mean_a - mean_b| / SE`` with
  ``SE = sqrt(var_a / n_a + var_b / n_b)``; the tests require it below ``Z_TOL = 4`` (a false
  alarm about once in 16,000 comparisons).
"""

from __future__ import annotations

import collections
import importlib
import warnings

import numpy as np

Z_TOL = 4.0
OBSTACLE = 1
# Actions LEFT, RIGHT, UP, DOWN as (row, column) steps.
STEPS = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]])
RIGHT_OF = np.array([2, 3, 1, 0])  # heading left -> up, right -> down, up -> right, down -> left
LEFT_OF = np.array([3, 2, 0, 1])
BACK_OF = np.array([1, 0, 3, 2])


def package_env(path: str, **kwargs):
    """``"popgym.envs.<module>:<Class>"`` built with ``kwargs``, its maze warning silenced."""
    module, name = path.split(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(importlib.import_module(module), name)(**kwargs)


def open_squares(grid: np.ndarray) -> np.ndarray:
    return np.asarray(grid) != OBSTACLE


def is_perfect(opened: np.ndarray) -> bool:
    """Whether the open squares (bool ``[H, W]``) form a tree under 4-adjacency."""
    squares = int(opened.sum())
    edges = int((opened[1:] & opened[:-1]).sum() + (opened[:, 1:] & opened[:, :-1]).sum())
    start = tuple(np.argwhere(opened)[0])
    return edges == squares - 1 and (distances(opened, start) >= 0).sum() == squares


def distances(opened: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Moves from ``start`` to every open square (-1: unreachable)."""
    dist = np.full(opened.shape, -1)
    dist[start] = 0
    queue = collections.deque([start])
    while queue:
        y, x = queue.popleft()
        for dy, dx in STEPS:
            ny, nx = y + dy, x + dx
            if 0 <= ny < opened.shape[0] and 0 <= nx < opened.shape[1] and opened[ny, nx] \
                    and dist[ny, nx] < 0:
                dist[ny, nx] = dist[y, x] + 1
                queue.append((ny, nx))
    return dist


def dead_ends(opened: np.ndarray) -> int:
    """Cells (odd coordinates) with exactly one open neighbour."""
    cells = opened[1::2, 1::2]
    padded = np.pad(opened, 1)
    around = (padded[:-2, 1:-1].astype(int) + padded[2:, 1:-1] + padded[1:-1, :-2]
              + padded[1:-1, 2:])[1::2, 1::2]
    return int((cells & (around == 1)).sum())


def wall_follower(grid: np.ndarray, position: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Right-hand rule for a batch: the first of (right, ahead, left, back) not blocked.

    Args:
        grid: ``[B, H, W]`` cell codes; position: ``[B, 2]``; heading: ``[B]`` last move.

    Returns:
        ``[B]`` actions (the new headings).
    """
    grid, position, heading = np.asarray(grid), np.asarray(position), np.asarray(heading)
    rows = np.arange(len(grid))
    choice = BACK_OF[heading]
    for turn in (LEFT_OF, heading, RIGHT_OF):  # last assignment wins: right first
        direction = turn if turn is heading else turn[heading]
        target = position + STEPS[direction]
        inside = (target >= 0).all(1) & (target[:, 0] < grid.shape[1]) & (
            target[:, 1] < grid.shape[2])
        target = np.minimum(np.maximum(target, 0), np.array(grid.shape[1:]) - 1)
        free = inside & (grid[rows, target[:, 0], target[:, 1]] != OBSTACLE)
        choice = np.where(free, direction, choice)
    return choice


def mean_gap(a, b) -> float:
    """``|mean(a) - mean(b)| / SE`` (two independent samples)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return float(abs(a.mean() - b.mean()) / se) if se > 0 else float(a.mean() != b.mean()) * 1e9


# ---------------------------------------------------------------------- runs of both sides
def side_by_side(cls, path: str, kwargs: dict, num: int, seed: int, policy: str) -> dict:
    """``num`` package envs (reset with seeds ``seed + i``) copied into one batched env by its
    test hook ``load_state``, then stepped with the same actions until every first episode ends;
    every observation, reward, ``terminated`` and ``truncated`` is compared exactly (rewards as
    float32). ``policy``: ``"random"`` or ``"wall"`` (:func:`wall_follower`).

    Returns:
        Counts of the episode ends seen: ``{"terminated": ..., "truncated": ..., "both": ...}``.
    """
    import torch

    refs = [package_env(path, **kwargs) for _ in range(num)]
    first = np.stack([ref.reset(seed=seed + i)[0] for i, ref in enumerate(refs)])
    env = cls(num_envs=num, **kwargs)
    env.reset(seed=seed)
    env.load_state(np.stack([ref.maze.grid for ref in refs]),
                   np.stack([ref.position for ref in refs]))
    np.testing.assert_array_equal(env._observe().numpy(), first)
    rng = np.random.default_rng(seed)
    heading = np.full(num, 2)
    running = np.ones(num, dtype=bool)
    counts = {"terminated": 0, "truncated": 0, "both": 0}
    while running.any():
        if policy == "random":
            actions = rng.integers(4, size=num)
        else:
            grids = np.stack([ref.maze.grid for ref in refs])
            heading = wall_follower(grids, np.stack([ref.position for ref in refs]), heading)
            actions = heading
        obs, reward, terminated, truncated, info = env.step(torch.as_tensor(actions))
        final = info["final_obs"].numpy()
        for i in np.flatnonzero(running):
            ref_obs, ref_reward, ref_term, ref_trunc, _ = refs[i].step(int(actions[i]))
            mine = final[i]
            assert (mine == ref_obs).all(), (i, mine, ref_obs)
            assert reward[i].item() == np.float32(ref_reward), (i, reward[i], ref_reward)
            assert (bool(terminated[i]), bool(truncated[i])) == (ref_term, ref_trunc), i
            if ref_term or ref_trunc:
                running[i] = False
                counts["terminated"] += ref_term
                counts["truncated"] += ref_trunc
                counts["both"] += ref_term and ref_trunc
    return counts


def package_episodes(path: str, kwargs: dict, episodes: int, policy: str, seed: int = 0):
    """``(returns, lengths, terminated)`` of ``episodes`` package episodes."""
    ref = package_env(path, **kwargs)
    ref.reset(seed=seed)
    rng = np.random.default_rng(seed)
    returns, lengths, ends = [], [], []
    for _ in range(episodes):
        ref.reset()
        total, steps, heading, done = 0.0, 0, np.full(1, 2), False
        while not done:
            if policy == "random":
                action = int(rng.integers(4))
            else:
                heading = wall_follower(ref.maze.grid[None], np.array([ref.position]), heading)
                action = int(heading[0])
            _, reward, terminated, truncated, _ = ref.step(action)
            total, steps, done = total + reward, steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
        ends.append(terminated)
    return np.array(returns), np.array(lengths), np.array(ends)


def batched_episodes(cls, kwargs: dict, num: int, policy: str, seed: int = 0):
    """``(returns, lengths, terminated)`` of the first episode of each of ``num`` copies."""
    import torch

    env = cls(num_envs=num, **kwargs)
    env.reset(seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)
    heading = np.full(num, 2)
    running = np.ones(num, dtype=bool)
    returns, lengths, ends = np.zeros(num), np.zeros(num, dtype=int), np.zeros(num, dtype=bool)
    while running.any():
        if policy == "random":
            actions = torch.randint(4, (num,), generator=generator)
        else:
            heading = wall_follower(env.grid.numpy(), env.position.numpy(), heading)
            actions = torch.as_tensor(heading)
        _, _, terminated, _, info = env.step(actions)
        ended = info["_episode"].numpy() & running
        returns[ended] = info["episode_return"].numpy()[ended]
        lengths[ended] = info["episode_length"].numpy()[ended]
        ends[ended] = terminated.numpy()[ended]
        running &= ~ended
    return returns, lengths, ends


# ---------------------------------------------------------------------- checks of both labyrinths
def assert_side_by_side(cls, path: str, dims: tuple[int, int], policy: str, num: int,
                        seed: int) -> None:
    """:func:`side_by_side` on mazes of ``dims``: random walks are cut at 60 steps (some episodes
    truncated), the wall follower ends every episode by termination (1,024 steps allowed)."""
    length = 61 if policy == "random" else 1024
    counts = side_by_side(cls, path, {"maze_dims": dims, "episode_length": length}, num=num,
                          seed=seed, policy=policy)
    if policy == "wall":
        assert counts["terminated"] == num
    else:
        assert counts["truncated"] > 0


def assert_both_flags_on_the_last_step(cls, path: str, seed: int) -> None:
    """The wall follower ends the package's maze of ``seed`` in ``n`` steps; with
    ``episode_length = n + 1`` that end comes on the last step: terminated and truncated both."""
    ref = package_env(path)
    ref.reset(seed=seed)
    heading, steps = np.full(1, 2), 0
    while True:  # the wall follower's number of steps in this maze
        heading = wall_follower(ref.maze.grid[None], np.array([ref.position]), heading)
        steps += 1
        if ref.step(int(heading[0]))[2]:
            break
    counts = side_by_side(cls, path, {"episode_length": steps + 1}, num=1, seed=seed,
                          policy="wall")
    assert counts == {"terminated": 1, "truncated": 1, "both": 1}


def assert_same_episodes(cls, path: str, kwargs: dict, policy: str, num: int, num_ref: int,
                         ended: str) -> tuple:
    """``num`` batched first episodes against ``num_ref`` package episodes: mean return, length
    and rate of ``ended`` (termination) within ``Z_TOL`` standard errors. Returns the batched
    ``(returns, lengths, terminated)``."""
    ours = batched_episodes(cls, kwargs, num, policy)
    theirs = package_episodes(path, kwargs, num_ref, policy)
    for what, a, b in zip(("return", "length", ended), ours, theirs, strict=True):
        gap = mean_gap(a, b)
        assert gap < Z_TOL, f"{what}: batched {a.mean():.4f} (n={num}), package {b.mean():.4f} " \
            f"(n={num_ref}), {gap:.2f} standard errors apart"
    return ours
