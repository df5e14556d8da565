"""popgym/LabyrinthEscape*: equal to popgym's LabyrinthEscape step by step (the package's maze and
position copied in through ``load_state``) and in distribution (fresh mazes on both sides).
Helpers and the tolerance ``Z_TOL`` (|mean difference| < 4 standard errors): maze_reference.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from maze_reference import (
    Z_TOL,
    batched_episodes,
    mean_gap,
    package_env,
    package_episodes,
    side_by_side,
    wall_follower,
)

import envs
from envs.popgym import package_class
from envs.popgym.labyrinth_escape import LabyrinthEscape

IDS = [f"popgym/LabyrinthEscape{d}-v0" for d in ("Easy", "Medium", "Hard")]
PATH = "popgym.envs.labyrinth_escape:LabyrinthEscape"


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_parameters_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = package_env(package_class(env_id))
    assert package_class(env_id).startswith(PATH)
    assert env.single_observation_space == ref.observation_space
    assert env.single_action_space == ref.action_space
    assert [d // 2 for d in env.maze_dims] == ref.maze_dims
    assert env.episode_length == ref.max_episode_length
    assert env.max_episode_steps == ref.max_episode_length - 1  # popgym's curr_step == L - 1


@pytest.mark.parametrize(
    ("dims", "policy", "num"),
    [((10, 10), "random", 24), ((10, 10), "wall", 24), ((18, 18), "wall", 8),
     ((6, 10), "random", 24)],
)
def test_side_by_side_with_the_package(dims, policy, num):
    """Same mazes, same actions: same observations (the shifted border views included), rewards,
    terminations and truncations; random walks are cut at 60 steps, the wall follower escapes."""
    length = 61 if policy == "random" else 1024
    counts = side_by_side(LabyrinthEscape, PATH, {"maze_dims": dims, "episode_length": length},
                          num=num, seed=100, policy=policy)
    if policy == "wall":
        assert counts["terminated"] == num
    else:
        assert counts["truncated"] > 0


def test_exit_on_the_last_step_is_terminated_and_truncated():
    """popgym returns both flags when the exit is reached on the step that hits the limit."""
    ref = package_env(PATH)
    ref.reset(seed=7)
    heading, steps = np.full(1, 2), 0
    while True:  # the wall follower's number of steps in this maze
        heading = wall_follower(ref.maze.grid[None], np.array([ref.position]), heading)
        steps += 1
        if ref.step(int(heading[0]))[2]:
            break
    counts = side_by_side(LabyrinthEscape, PATH, {"episode_length": steps + 1}, num=1, seed=7,
                          policy="wall")
    assert counts == {"terminated": 1, "truncated": 1, "both": 1}


@pytest.mark.parametrize(("dims", "length", "policy", "num", "num_ref"),
                         [((10, 10), 100, "random", 800, 200), ((10, 10), 1024, "wall", 800, 300),
                          ((14, 14), 1024, "wall", 300, 100)])
def test_returns_and_lengths_match_the_package_in_distribution(dims, length, policy, num, num_ref):
    """Fresh mazes on both sides: the mean return, episode length and escape rate of a random
    policy (episodes cut at 99 steps) and of the wall follower agree within Z_TOL standard
    errors."""
    kwargs = {"maze_dims": dims, "episode_length": length}
    ours = batched_episodes(LabyrinthEscape, kwargs, num, policy)
    theirs = package_episodes(PATH, kwargs, num_ref, policy)
    for what, a, b in zip(("return", "length", "escaped"), ours, theirs, strict=True):
        gap = mean_gap(a, b)
        assert gap < Z_TOL, f"{what}: batched {a.mean():.4f} (n={num}), package {b.mean():.4f} " \
            f"(n={num_ref}), {gap:.2f} standard errors apart"
    if policy == "wall":
        assert ours[2].all()


def test_same_seed_same_trajectory_and_fresh_mazes_after_each_episode():
    def run(seed):
        env = LabyrinthEscape(num_envs=16, episode_length=12)  # spares redrawn every 10 resets
        obs, _ = env.reset(seed=seed)
        generator = torch.Generator().manual_seed(0)
        trajectory, starts = [obs], [env.grid.clone()]
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(
                torch.randint(4, (16,), generator=generator))
            trajectory += [obs, reward, terminated, truncated]
            starts.append(env.grid[info["_episode"]].clone())
        return trajectory, torch.cat(starts)

    first, mazes = run(0)
    second, _ = run(0)
    third, _ = run(1)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, third, strict=True))
    # Every episode (about 450 here, each at most 11 steps long) starts in a maze of its own: no
    # spare maze is used twice (two equal 5x5-cell mazes by chance: negligible).
    unique = {maze.numpy().tobytes() for maze in mazes}
    assert len(mazes) > 400 and len(unique) == len(mazes)


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="even"):
        LabyrinthEscape(maze_dims=(9, 10))
    with pytest.raises(ValueError, match="at least 6"):
        LabyrinthEscape(maze_dims=(4, 10))
    with pytest.raises(TypeError, match="pair"):
        LabyrinthEscape(maze_dims=10)
    with pytest.raises(ValueError, match="episode_length"):
        LabyrinthEscape(episode_length=1)
