"""popgym/LabyrinthEscape*: equal to popgym's LabyrinthEscape step by step (the package's maze and
position copied in through ``load_state``) and in distribution (fresh mazes on both sides).
Helpers and the tolerance ``Z_TOL`` (|mean difference| < 4 standard errors): maze_reference.py;
spaces, time limit and seeding: test_contract.py."""

from __future__ import annotations

import maze_reference as mazes
import pytest
import torch

import envs
from envs.popgym import package_class
from envs.popgym.labyrinth_escape import LabyrinthEscape

IDS = [f"popgym/LabyrinthEscape{d}-v0" for d in ("Easy", "Medium", "Hard")]
PATH = "popgym.envs.labyrinth_escape:LabyrinthEscape"


@pytest.mark.parametrize("env_id", IDS)
def test_parameters_equal_popgyms(env_id):
    env = envs.make(env_id)
    ref = mazes.package_env(package_class(env_id))
    assert package_class(env_id).startswith(PATH)
    assert [d // 2 for d in env.maze_dims] == ref.maze_dims
    assert env.episode_length == ref.max_episode_length


@pytest.mark.parametrize(
    ("dims", "policy", "num"),
    [((10, 10), "random", 24), ((10, 10), "wall", 24), ((18, 18), "wall", 8),
     ((6, 10), "random", 24)],
)
def test_side_by_side_with_the_package(dims, policy, num):
    """Same mazes, same actions: same observations (the shifted border views included), rewards,
    terminations and truncations; random walks are cut at 60 steps, the wall follower escapes."""
    mazes.assert_side_by_side(LabyrinthEscape, PATH, dims, policy, num, seed=100)


def test_exit_on_the_last_step_is_terminated_and_truncated():
    """popgym returns both flags when the exit is reached on the step that hits the limit."""
    mazes.assert_both_flags_on_the_last_step(LabyrinthEscape, PATH, seed=7)


@pytest.mark.parametrize(("dims", "length", "policy", "num", "num_ref"),
                         [((10, 10), 100, "random", 800, 200), ((10, 10), 1024, "wall", 800, 300),
                          ((14, 14), 1024, "wall", 300, 100)])
def test_returns_and_lengths_match_the_package_in_distribution(dims, length, policy, num, num_ref):
    """Fresh mazes on both sides: the mean return, episode length and escape rate of a random
    policy (episodes cut at 99 steps) and of the wall follower agree within Z_TOL standard
    errors."""
    kwargs = {"maze_dims": dims, "episode_length": length}
    ours = mazes.assert_same_episodes(LabyrinthEscape, PATH, kwargs, policy, num, num_ref,
                                      ended="escaped")
    if policy == "wall":
        assert ours[2].all()


@pytest.mark.parametrize("indexes_resets", [True, False], ids=["cpu-pool", "accelerator-spares"])
def test_fresh_mazes_after_each_episode(indexes_resets):
    # Both ways of drawing the mazes of the copies that end inside step (maze.MazeEnv): the CPU's
    # pool, and the spares an accelerator uses (spares redrawn every 10 resets here).
    env = LabyrinthEscape(num_envs=16, episode_length=12)
    env.indexes_resets = indexes_resets
    env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    starts = [env.grid.clone()]
    for _ in range(300):
        actions = torch.randint(4, (16,), generator=generator)
        sent = actions.clone()
        info = env.step(actions)[-1]
        assert torch.equal(actions, sent)  # the caller's actions are left as they were
        starts.append(env.grid[info["_episode"]].clone())
        # every copy that ended starts again at its maze's start, with nothing explored but it
        ended = info["_episode"]
        assert (env.grid[ended, env.position[ended, 0], env.position[ended, 1]] == 2).all()
        assert (env.explored[ended].flatten(1).sum(dim=1) == 1).all()
        assert (env.last_action[ended] == 4).all()
    starts = torch.cat(starts)
    # Every episode (about 450 here, each at most 11 steps long) starts in a maze of its own: no
    # spare maze is used twice (two equal 5x5-cell mazes by chance: negligible).
    unique = {maze.numpy().tobytes() for maze in starts}
    assert len(starts) > 400 and len(unique) == len(starts)


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="even"):
        LabyrinthEscape(maze_dims=(9, 10))
    with pytest.raises(ValueError, match="at least 6"):
        LabyrinthEscape(maze_dims=(4, 10))
    with pytest.raises(TypeError, match="pair"):
        LabyrinthEscape(maze_dims=10)
    with pytest.raises(ValueError, match="episode_length"):
        LabyrinthEscape(episode_length=1)
