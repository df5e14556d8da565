"""popgym/LabyrinthExplore*: equal to popgym's LabyrinthExplore step by step (the package's maze
and position copied in through ``load_state``) and in distribution (fresh mazes on both sides).
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
from envs.popgym.labyrinth_explore import LabyrinthExplore

IDS = [f"popgym/LabyrinthExplore{d}-v0" for d in ("Easy", "Medium", "Hard")]
PATH = "popgym.envs.labyrinth_explore:LabyrinthExplore"


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
    [((10, 10), "random", 24), ((10, 10), "wall", 24), ((18, 18), "wall", 6),
     ((6, 10), "random", 24)],
)
def test_side_by_side_with_the_package(dims, policy, num):
    """Same mazes, same actions: same observations, rewards (1 / free squares for a new square,
    -1 / episode_length otherwise), terminations (every square visited) and truncations."""
    length = 61 if policy == "random" else 1024
    counts = side_by_side(LabyrinthExplore, PATH, {"maze_dims": dims, "episode_length": length},
                          num=num, seed=200, policy=policy)
    if policy == "wall":
        assert counts["terminated"] == num
    else:
        assert counts["truncated"] > 0


def test_exploring_on_the_last_step_is_terminated_and_truncated():
    ref = package_env(PATH)
    ref.reset(seed=11)
    heading, steps = np.full(1, 2), 0
    while True:
        heading = wall_follower(ref.maze.grid[None], np.array([ref.position]), heading)
        steps += 1
        if ref.step(int(heading[0]))[2]:
            break
    counts = side_by_side(LabyrinthExplore, PATH, {"episode_length": steps + 1}, num=1, seed=11,
                          policy="wall")
    assert counts == {"terminated": 1, "truncated": 1, "both": 1}


def test_a_full_exploration_collects_one():
    """The new-square rewards add up to 1 (the start square is not counted)."""
    env = LabyrinthExplore(num_envs=64)
    env.reset(seed=0)
    free = (env.grid == 0).sum(dim=(1, 2)).double()
    assert torch.allclose(env.new_square_reward.double() * free, torch.ones(64, dtype=torch.double))
    # First episodes of the same seed: every square once (1 in all), -1/1024 for each other step.
    returns, lengths, ends = batched_episodes(LabyrinthExplore, {}, 64, "wall", seed=0)
    assert ends.all()
    np.testing.assert_allclose(returns, 1.0 - (lengths - free.numpy()) / 1024, atol=1e-4)


@pytest.mark.parametrize(("dims", "length", "policy", "num", "num_ref"),
                         [((10, 10), 100, "random", 600, 150), ((10, 10), 1024, "wall", 400, 200)])
def test_returns_and_lengths_match_the_package_in_distribution(dims, length, policy, num, num_ref):
    """Fresh mazes on both sides: the mean return, episode length and rate of full explorations
    of a random policy (episodes cut at 99 steps) and of the wall follower agree within Z_TOL
    standard errors."""
    kwargs = {"maze_dims": dims, "episode_length": length}
    ours = batched_episodes(LabyrinthExplore, kwargs, num, policy)
    theirs = package_episodes(PATH, kwargs, num_ref, policy)
    for what, a, b in zip(("return", "length", "explored"), ours, theirs, strict=True):
        gap = mean_gap(a, b)
        assert gap < Z_TOL, f"{what}: batched {a.mean():.4f} (n={num}), package {b.mean():.4f} " \
            f"(n={num_ref}), {gap:.2f} standard errors apart"
    if policy == "wall":
        assert ours[2].all()


def test_same_seed_same_trajectory():
    def run(seed):
        env = LabyrinthExplore(num_envs=16, episode_length=12)
        obs, _ = env.reset(seed=seed)
        generator = torch.Generator().manual_seed(0)
        trajectory = [obs]
        for _ in range(100):
            trajectory += list(env.step(torch.randint(4, (16,), generator=generator))[:4])
        return trajectory

    first, second, third = run(0), run(0), run(1)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, third, strict=True))
