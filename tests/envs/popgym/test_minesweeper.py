"""popgym/MineSweeper*: the batched MineSweeper against popgym's (popgym.envs.minesweeper).

Parameters equal the package's (spaces and seeding: test_contract.py); stepped side by side from
popgym's minefields, every observation (mine counts), reward and end flag agrees, including popgym's
rule that a step that terminates is never also truncated; fresh minefields hold exactly
``num_mines`` distinct mines, uniform over the cells, with the without-replacement co-occurrence of
two cells; random and sweeping policies get the package's returns and lengths.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from envs.popgym.minesweeper import MineSweeper
from tests.envs.popgym.boards_reference import (
    Z,
    assert_same_episodes,
    batched_episodes,
    package_episodes,
    reset_packages,
    side_by_side,
)

minesweeper = pytest.importorskip("popgym.envs.minesweeper")

LEVELS = ["Easy", "Medium", "Hard"]
MINE, VIEWED = 1, 2  # popgym's HiddenSquare


def _package(level: str):
    return getattr(minesweeper, f"MineSweeper{level}")


def _mines(packages) -> torch.Tensor:
    return torch.tensor(np.stack([p.hidden_grid == MINE for p in packages]))


@pytest.mark.parametrize("level", LEVELS)
def test_parameters_are_popgyms(level):
    package = _package(level)()
    env = envs.make(f"popgym/MineSweeper{level}-v0")
    assert (env.rows, env.columns) == tuple(package.dims)
    assert env.num_mines == package.num_mines
    assert env.success_reward == pytest.approx(package.success_reward_scale)
    assert env.mine_reward == pytest.approx(package.fail_reward_scale)
    assert env.repeat_reward == pytest.approx(package.bad_action_reward_scale)


@pytest.mark.parametrize("level", LEVELS)
def test_side_by_side_from_popgyms_minefields(level):
    """Same minefields, same clicks: same counts, rewards and episode ends at every step."""
    count = 32
    packages = reset_packages(_package(level), count)
    env = envs.make(f"popgym/MineSweeper{level}-v0", num_envs=count)
    # Copy i clicks a fresh free cell with probability aim[i], repeats a clicked cell with
    # probability 0.3 and clicks at random otherwise: every branch, every kind of episode end.
    aim = np.linspace(0.0, 0.7, count)

    def choose(packages, rng):
        actions = []
        for i, p in enumerate(packages):
            u = rng.random()
            fresh, seen = np.argwhere(p.hidden_grid == 0), np.argwhere(p.hidden_grid == VIEWED)
            if u < aim[i] and len(fresh):
                actions.append(fresh[rng.integers(len(fresh))])
            elif u < aim[i] + 0.3 and len(seen):
                actions.append(seen[rng.integers(len(seen))])
            else:
                actions.append(rng.integers(p.dims, size=2))
        return np.stack(actions).astype(np.int64)

    ends = side_by_side(env, packages, {"mines": _mines(packages)}, choose)
    assert ends["terminated"] > 0 and ends["truncated"] > 0 and ends["both"] == 0


@pytest.mark.parametrize("last", ["free", "mine"])
def test_an_end_at_the_time_limit_is_terminated_only(last):
    """Clicking every free cell once ends at step F, the time limit: popgym (and this class)
    report terminated and not truncated; so does a mine clicked at step F."""
    packages = reset_packages(minesweeper.MineSweeperEasy, 1)
    package = packages[0]
    free = np.argwhere(package.hidden_grid == 0)  # F cells, row-major
    mine = np.argwhere(package.hidden_grid == MINE)[:1]
    script = free if last == "free" else np.concatenate((free[:-1], mine))

    def play(packages, rng):
        return script[packages[0].timestep][None].astype(np.int64)

    env = MineSweeper()
    assert side_by_side(env, packages, {"mines": _mines(packages)}, play) == {
        "terminated": 1, "truncated": 0, "both": 0
    }


# ---------------------------------------------------------------------------- placement
def test_mines_are_distinct_and_uniform():
    """Hard (8 x 8, 10 mines), 10,000 minefields: exactly 10 mines each; every cell a mine with
    probability 10/64 (|z| <= 4.5 in each of the 64 cells); two cells both mines with
    probability 10*9 / (64*63) (mines without replacement), not (10/64)**2: measured over
    the 63 pairs of neighbouring cells in row-major order."""
    env = envs.make("popgym/MineSweeperHard-v0", num_envs=10_000)
    env.reset(seed=0)
    mines = env.mines.double()
    n, cells, k = env.num_envs, 64, 10
    assert (mines.sum(1) == k).all()
    p = k / cells
    z = (mines.mean(0) - p) / (p * (1 - p) / n) ** 0.5
    assert z.abs().max().item() <= 4.5
    both = (mines[:, 1:] * mines[:, :-1]).mean(1)  # one value per minefield
    se = both.std().item() / n**0.5
    expected = k * (k - 1) / (cells * (cells - 1))
    assert abs(both.mean().item() - expected) <= Z * se
    assert abs(expected - p**2) > 2 * Z * se  # the test tells the two apart


def test_counts_include_the_cell_itself():
    """A lone mine reports 1 at its own cell and its 8 neighbours (popgym counts the centre)."""
    env = MineSweeper(rows=4, columns=4, num_mines=1)
    mines = torch.zeros(1, 4, 4, dtype=torch.bool)
    mines[0, 1, 1] = True
    env.reset(options={"mines": mines})
    expected = torch.zeros(4, 4, dtype=torch.int64)
    expected[:3, :3] = 1
    assert torch.equal(env.counts.view(4, 4), expected)


# ---------------------------------------------------------------------------- policies
@pytest.mark.parametrize(("level", "policy"), [("Easy", "random"), ("Hard", "sweep")])
def test_policies_get_popgyms_returns_and_lengths(level, policy):
    """2,000 batched episodes (400 copies, 5 episodes each: autoresets' minefields too) and
    1,000 package episodes: mean return, length and end rates agree within 4 standard errors.
    The sweep (row-major) stops at the first mine, so its length is the placement's first mine:
    a second check of placement, against its closed form too."""
    env = envs.make(f"popgym/MineSweeper{level}-v0", num_envs=400)  # 5 episodes each
    rows, columns = env.rows, env.columns
    if policy == "random":
        generator = torch.Generator().manual_seed(1)
        high = torch.tensor([rows, columns])

        def ours_policy(obs, t):
            return (torch.rand(obs.shape[0], 2, generator=generator) * high).long()

        rng = np.random.default_rng(1)
        theirs_policy = lambda p, obs, t: rng.integers((rows, columns))  # noqa: E731
    else:
        ours_policy = lambda obs, t: torch.stack((t // columns, t % columns), dim=1)  # noqa: E731
        theirs_policy = lambda p, obs, t: np.array([t // columns, t % columns])  # noqa: E731
    ours = batched_episodes(env, ours_policy, episodes=5)
    theirs = package_episodes(_package(level)(), theirs_policy, 1_000)
    assert_same_episodes(ours, theirs, f"{policy} policy, {level}")
    if policy == "sweep":  # the first of k uniform distinct cells of c: mean (c + 1) / (k + 1)
        expected = (rows * columns + 1) / (env.num_mines + 1)
        se = ours.lengths.std() / len(ours.lengths) ** 0.5
        assert abs(ours.lengths.mean() - expected) <= Z * se


# ---------------------------------------------------------------------------- arguments
def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="at least 3 are needed"):
        MineSweeper(rows=2, columns=2, num_mines=2)
    with pytest.raises(TypeError, match="rows"):
        MineSweeper(rows="4")
    env = MineSweeper(num_envs=2)
    with pytest.raises(ValueError, match="num_mines=2"):
        env.reset(options={"mines": torch.zeros(2, 4, 4, dtype=torch.bool)})
