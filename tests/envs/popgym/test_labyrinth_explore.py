"""popgym/LabyrinthExplore*: equal to popgym's LabyrinthExplore step by step (the package's maze
and position copied in through ``load_state``) and in distribution (fresh mazes on both sides).
Helpers and the tolerance ``Z_TOL`` (|mean difference| < 4 standard errors): maze_reference.py;
spaces, time limit and seeding: test_contract.py."""

from __future__ import annotations

import maze_reference as mazes
import numpy as np
import pytest
import torch

import envs
from envs.popgym import package_class
from envs.popgym.labyrinth_explore import LabyrinthExplore

IDS = [f"popgym/LabyrinthExplore{d}-v0" for d in ("Easy", "Medium", "Hard")]
PATH = "popgym.envs.labyrinth_explore:LabyrinthExplore"


@pytest.mark.parametrize("env_id", IDS)
def test_parameters_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = mazes.package_env(package_class(env_id))
    assert package_class(env_id).startswith(PATH)
    assert [d // 2 for d in env.maze_dims] == ref.maze_dims
    assert env.episode_length == ref.max_episode_length


@pytest.mark.parametrize(
    ("dims", "policy", "num"),
    [((10, 10), "random", 24), ((10, 10), "wall", 24), ((18, 18), "wall", 6),
     ((6, 10), "random", 24)],
)
def test_side_by_side_with_the_package(dims, policy, num):
    """Same mazes, same actions: same observations, rewards (1 / free squares for a new square,
    -1 / episode_length otherwise), terminations (every square visited) and truncations."""
    mazes.assert_side_by_side(LabyrinthExplore, PATH, dims, policy, num, seed=200)


def test_exploring_on_the_last_step_is_terminated_and_truncated():
    mazes.assert_both_flags_on_the_last_step(LabyrinthExplore, PATH, seed=11)


def test_a_full_exploration_collects_one():
    """The new-square rewards add up to 1 (the start square is not counted)."""
    env = LabyrinthExplore(num_envs=64)
    env.reset(seed=0)
    free = (env.grid == 0).sum(dim=(1, 2)).double()
    assert torch.allclose(env.new_square_reward.double() * free, torch.ones(64, dtype=torch.double))
    # First episodes of the same seed: every square once (1 in all), -1/1024 for each other step.
    returns, lengths, ends = mazes.batched_episodes(LabyrinthExplore, {}, 64, "wall", seed=0)
    assert ends.all()
    np.testing.assert_allclose(returns, 1.0 - (lengths - free.numpy()) / 1024, atol=1e-4)


@pytest.mark.parametrize(("dims", "length", "policy", "num", "num_ref"),
                         [((10, 10), 100, "random", 600, 150), ((10, 10), 1024, "wall", 400, 200)])
def test_returns_and_lengths_match_the_package_in_distribution(dims, length, policy, num, num_ref):
    """Fresh mazes on both sides: the mean return, episode length and rate of full explorations
    of a random policy (episodes cut at 99 steps) and of the wall follower agree within Z_TOL
    standard errors."""
    kwargs = {"maze_dims": dims, "episode_length": length}
    ours = mazes.assert_same_episodes(LabyrinthExplore, PATH, kwargs, policy, num, num_ref,
                                      ended="explored")
    if policy == "wall":
        assert ours[2].all()
