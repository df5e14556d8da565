"""popgym/Battleship*: the batched Battleship against popgym's (popgym.envs.battleship).

Parameters equal the package's (spaces and seeding: test_contract.py); stepped side by side from
popgym's boards, every observation, reward and end flag agrees; fresh boards follow popgym's
placement distribution (per-cell occupancy and ship cells on the border, over thousands of boards,
with a control that a plausible wrong sampler fails); random and sweeping policies get the same
returns and lengths.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from envs.popgym.battleship import Battleship
from tests.envs.popgym.boards_reference import (
    Z,
    assert_same_episodes,
    assert_same_mean,
    batched_episodes,
    mean_gap,
    package_episodes,
    reset_packages,
    side_by_side,
)

battleship = pytest.importorskip("popgym.envs.battleship")

LEVELS = ["Easy", "Medium", "Hard"]


def _package(level: str):
    return getattr(battleship, f"Battleship{level}")


@pytest.mark.parametrize("level", LEVELS)
def test_parameters_are_popgyms(level):
    package = _package(level)()
    env = envs.make(f"popgym/Battleship{level}-v0")
    assert env.board_size == package.board_size
    assert list(env.ship_sizes) == list(package.ship_sizes)


@pytest.mark.parametrize("level", LEVELS)
def test_side_by_side_from_popgyms_boards(level):
    """Same boards, same shots: same hit/miss, rewards and episode ends at every step."""
    count = 32
    packages = reset_packages(_package(level), count)
    board = torch.tensor(np.stack([p.board for p in packages]))
    env = envs.make(f"popgym/Battleship{level}-v0", num_envs=count)
    # Copy i aims at an unshot ship cell with probability aim[i], repeats a shot cell with
    # probability 0.2 and shoots at random otherwise: every branch, both kinds of episode end.
    aim = np.linspace(0.0, 0.6, count)

    def choose(packages, rng):
        actions = []
        for i, p in enumerate(packages):
            u = rng.random()
            targets = np.argwhere((p.board == 1) & (p.guesses == 0))
            shot = np.argwhere(p.guesses == 1)
            if u < aim[i] and len(targets):
                actions.append(targets[rng.integers(len(targets))])
            elif u < aim[i] + 0.2 and len(shot):
                actions.append(shot[rng.integers(len(shot))])
            else:
                actions.append(rng.integers(p.board_size, size=2))
        return np.stack(actions).astype(np.int64)

    ends = side_by_side(env, packages, {"board": board}, choose)
    assert ends["terminated"] > 0 and ends["truncated"] > 0


def test_last_ship_cell_at_the_time_limit_sets_both_flags():
    """popgym reports terminated and truncated together when the last hit comes at step B**2."""
    packages = reset_packages(battleship.BattleshipEasy, 1)
    side = packages[0].board_size
    board = np.zeros((side, side), dtype=np.int8)
    board[0, :2] = board[1, :3] = board[2, :3] = board[side - 1, side - 4 :] = 1
    packages[0].board = board.copy()
    env = Battleship(board_size=side, ship_sizes=(2, 3, 3, 4))

    def sweep(packages, rng):  # row-major: the bottom-right ship cell is shot last
        t = int(packages[0].num_steps)
        return np.array([[t // side, t % side]])

    ends = side_by_side(env, packages, {"board": torch.tensor(board[None])}, sweep)
    assert ends == {"terminated": 0, "truncated": 0, "both": 1}


# ---------------------------------------------------------------------------- placement
def _package_boards(level: str, count: int) -> np.ndarray:
    package = _package(level)()
    package.reset(seed=0)
    boards = []
    for _ in range(count):
        package.reset()
        boards.append(package.board.flatten().astype(bool))
    return np.stack(boards)


def _border(side: int) -> np.ndarray:
    edge = np.zeros((side, side), dtype=bool)
    edge[0] = edge[-1] = edge[:, 0] = edge[:, -1] = True
    return edge.flatten()


def _cells_agree(a: np.ndarray, b: np.ndarray) -> float:
    """The largest |z| over cells of the two-proportion test of per-cell occupancy."""
    pooled = (a.sum(0) + b.sum(0)) / (len(a) + len(b))
    se = np.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
    return float(np.max(np.abs(a.mean(0) - b.mean(0)) / se))


def _start_then_direction(side: int, sizes, count: int, seed: int) -> np.ndarray:
    """A plausible wrong sampler (the control): a uniform start cell, then a uniform direction
    among those that fit (segments near the edges come up too often)."""
    rng = np.random.default_rng(seed)
    directions = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    boards = np.zeros((count, side, side), dtype=bool)
    for board in boards:
        for size in sizes:
            while True:
                r, c = rng.integers(side, size=2)
                fits = [(dr, dc) for dr, dc in directions
                        if 0 <= r + dr * (size - 1) < side and 0 <= c + dc * (size - 1) < side]
                dr, dc = fits[rng.integers(len(fits))]
                rows, cols = r + dr * np.arange(size), c + dc * np.arange(size)
                if not board[rows, cols].any():
                    board[rows, cols] = True
                    break
    return boards.reshape(count, -1)


def test_placement_matches_popgyms_distribution():
    """Over 10,000 batched and 3,000 package boards (Easy, 8 x 8): every board holds 12 ship
    cells; each cell's occupancy frequency agrees (two-proportion |z| <= 4.5 in every one of the
    64 cells); the mean number of ship cells on the border agrees within 4 standard errors. The
    control: boards from a start-then-direction sampler fail the border test."""
    env = Battleship(num_envs=10_000, board_size=8)
    env.reset(seed=0)
    ours = env.place_ships().numpy()
    theirs = _package_boards("Easy", 3_000)
    assert (ours.sum(1) == 12).all() and (theirs.sum(1) == 12).all()
    assert _cells_agree(ours, theirs) <= 4.5
    border = _border(8)
    assert_same_mean(ours[:, border].sum(1), theirs[:, border].sum(1), "ship cells on the border")

    wrong = _start_then_direction(8, (2, 3, 3, 4), 2_000, seed=1)
    gap, se = mean_gap(wrong[:, border].sum(1), theirs[:, border].sum(1))
    assert abs(gap) > Z * se, "the border test cannot tell a biased sampler from popgym's"


def test_ships_are_straight_and_disjoint():
    """Each ship is a straight run: removing it by size leaves no overlap (12 cells for 4
    ships means no two overlap), and no row or column holds a gap inside one ship."""
    env = Battleship(num_envs=2_000, board_size=8, ship_sizes=(4,))
    env.reset(seed=1)
    boards = env.place_ships().view(-1, 8, 8)
    rows, cols = boards.any(dim=2).sum(1), boards.any(dim=1).sum(1)
    assert ((rows == 1) & (cols == 4) | (rows == 4) & (cols == 1)).all()
    # Horizontal and vertical equally likely, as in popgym (both give 40 segments on 8 x 8).
    horizontal = (rows == 1).double().mean().item()
    assert abs(horizontal - 0.5) <= Z * (0.25 / 2_000) ** 0.5


# ---------------------------------------------------------------------------- policies
def _random_batched(side: int):
    generator = torch.Generator().manual_seed(1)
    return lambda obs, t: torch.randint(side, (obs.shape[0], 2), generator=generator)


def _sweep_batched(side: int):
    return lambda obs, t: torch.stack((t // side, t % side), dim=1)


@pytest.mark.parametrize("policy", ["random", "sweep"])
def test_policies_get_popgyms_returns_and_lengths(policy):
    """Easy: 2,000 batched episodes (400 copies, 5 each: the boards of autoresets too) and 800
    package episodes; mean return, length and end rates agree
    within 4 standard errors. The sweep (row-major, no repeats) ends at the last ship cell, so
    its length is the placement's largest ship cell: a second check of placement."""
    side = 8
    env = Battleship(num_envs=400, board_size=side)  # 5 episodes each: autoresets' boards too
    if policy == "random":
        ours = batched_episodes(env, _random_batched(side), episodes=5)
        rng = np.random.default_rng(1)
        theirs = package_episodes(
            battleship.BattleshipEasy(), lambda p, obs, t: rng.integers(side, size=2), 800
        )
    else:
        ours = batched_episodes(env, _sweep_batched(side), episodes=5)
        theirs = package_episodes(
            battleship.BattleshipEasy(), lambda p, obs, t: np.array([t // side, t % side]), 800
        )
        assert ours.terminated.all() and theirs.terminated.all()
    assert_same_episodes(ours, theirs, f"{policy} policy")


def test_no_spare_board_serves_twice():
    """An oracle sinks every ship without a miss, so every episode lasts 12 steps, the shortest
    possible and the spares' refresh period: over 20 episodes of 64 copies, all 1,344 boards
    (64 from reset, 1,280 from autoresets) differ."""
    env = Battleship(num_envs=64, board_size=8)
    env.reset(seed=0)
    boards = [env.board.clone()]
    for _ in range(12 * 20):
        cell = (env.board & ~env.guesses).to(torch.uint8).argmax(dim=1)
        _, _, terminated, _, info = env.step(torch.stack((cell // 8, cell % 8), dim=1))
        if terminated.any():
            assert terminated.all() and (info["episode_length"] == 12).all()
            boards.append(env.board.clone())
    boards = torch.cat(boards)
    assert len(boards) == 64 * 21
    assert len(torch.unique(boards, dim=0)) == len(boards)


# ---------------------------------------------------------------------------- arguments
def test_bad_arguments_fail_at_construction():
    with pytest.raises(TypeError, match="board_size"):
        Battleship(board_size=8.0)
    with pytest.raises(ValueError, match="longer than"):
        Battleship(board_size=3, ship_sizes=(4,))
    with pytest.raises(ValueError, match="may not fit"):
        Battleship(board_size=4, ship_sizes=(4, 4, 4, 4))
    with pytest.raises(TypeError, match="ship_sizes"):
        Battleship(ship_sizes=4)
    env = Battleship(num_envs=2, board_size=4, ship_sizes=(2,))
    with pytest.raises(ValueError, match="2 ship cells"):
        env.reset(options={"board": torch.zeros(2, 4, 4, dtype=torch.bool)})
