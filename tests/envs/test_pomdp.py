"""The memory tasks: scripted policies with memory solve them, policies without it get chance.

Each task is checked the same way: an oracle that remembers (from the observation history, or from
the environment's state where that is the point) gets the maximal return; memoryless policies get
the chance level written in the manual; the observations after the cue carry no information about
it; difficulty and bad keyword arguments behave as documented.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

import envs
from envs.pomdp.maze import KeyDoorMaze, maze_edges, random_spanning_trees
from envs.pomdp.repeat import CountRecall, RepeatFirst, RepeatPrevious
from envs.pomdp.tmaze import TMaze


def _episode_returns(env, policy, episodes: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Run ``policy(obs, t) -> actions`` until every copy has finished ``episodes`` episodes.

    ``t`` is each copy's step index in its episode. Returns the returns and lengths of the first
    ``episodes`` episodes of every copy, ``[num_envs, episodes]``, and whether they terminated.
    """
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    t = torch.zeros(n, dtype=torch.int64)
    returns = torch.zeros(n, episodes)
    lengths = torch.zeros(n, episodes, dtype=torch.int64)
    terminal = torch.zeros(n, episodes, dtype=torch.bool)
    count = torch.zeros(n, dtype=torch.int64)
    while (count < episodes).any():
        obs, _, terminated, _, info = env.step(policy(obs, t))
        t += 1
        done = info["_episode"] & (count < episodes)
        rows, cols = done.nonzero()[:, 0], count[done]
        returns[rows, cols] = info["episode_return"][done]
        lengths[rows, cols] = info["episode_length"][done]
        terminal[rows, cols] = terminated[done]
        count += done.long()
        t[info["_episode"]] = 0
    return returns, lengths, terminal


def _constant(action: int):
    return lambda obs, t: torch.full((obs.shape[0],), action, dtype=torch.int64)


def _uniform(n: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return lambda obs, t: torch.randint(n, (obs.shape[0],), generator=generator)


# ---------------------------------------------------------------------------- RepeatPrevious
class HistoryOracle:
    """Remembers the symbols of the current episode (from the one-hot observations)."""

    def __init__(self, num_envs: int, num_symbols: int, episode_length: int):
        self.num_symbols = num_symbols
        self.seen = torch.zeros(num_envs, episode_length + 1, dtype=torch.int64)

    def observe(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        symbol = obs[:, : self.num_symbols].argmax(dim=1)
        self.seen[torch.arange(len(t)), t] = symbol
        return symbol


@pytest.mark.parametrize(("k", "length"), [(1, 10), (4, 52), (32, 104)])
def test_repeat_previous_oracle_gets_the_maximal_return(k, length):
    env = RepeatPrevious(num_envs=32, k=k, episode_length=length)
    memory = HistoryOracle(32, 4, length)

    def oracle(obs, t):
        memory.observe(obs, t)
        return memory.seen[torch.arange(32), (t - k).clamp(min=0)]

    returns, lengths, terminal = _episode_returns(env, oracle, episodes=2)
    torch.testing.assert_close(returns, torch.ones_like(returns))
    assert (lengths == length).all() and not terminal.any()  # fixed length: truncation


def test_repeat_previous_first_k_steps_are_not_scored():
    env = RepeatPrevious(num_envs=64, k=5, episode_length=20)
    env.reset(seed=0)
    for t in range(20):
        _, reward, _, truncated, _ = env.step(torch.zeros(64, dtype=torch.int64))
        if t < 5:
            assert (reward == 0).all()
        else:
            torch.testing.assert_close(reward.abs(), torch.full((64,), 1 / 15))
        assert truncated.all().item() == (t == 19)


@pytest.mark.parametrize("num_symbols", [2, 4, 8])
def test_repeat_previous_memoryless_policies_get_chance(num_symbols):
    """Answering the symbol on show, a constant or a random symbol: return 2 / n - 1."""
    env = RepeatPrevious(num_envs=1024, num_symbols=num_symbols, k=3, episode_length=43)
    chance = 2 / num_symbols - 1
    echo = lambda obs, t: obs.argmax(dim=1)  # noqa: E731
    for policy in (echo, _constant(1), _uniform(num_symbols)):
        returns, _, _ = _episode_returns(env, policy, episodes=1)
        assert abs(returns.mean().item() - chance) < 0.03


# ---------------------------------------------------------------------------- RepeatFirst
def test_repeat_first_oracle_and_chance():
    env = RepeatFirst(num_envs=1024, num_symbols=4, episode_length=20)
    first = torch.zeros(1024, dtype=torch.int64)

    def oracle(obs, t):
        is_first = obs[:, 4] == 1
        assert torch.equal(is_first, t == 0)  # the flag marks exactly the first step
        first[is_first] = obs[is_first, :4].argmax(dim=1)
        return first.clone()

    returns, lengths, _ = _episode_returns(env, oracle, episodes=2)
    torch.testing.assert_close(returns, torch.ones_like(returns))
    assert (lengths == 20).all()

    # Without memory: right at the first step (the flag says which), chance afterwards.
    chance = (1 + 19 * (2 / 4 - 1)) / 20
    echo = lambda obs, t: obs[:, :4].argmax(dim=1)  # noqa: E731
    returns, _, _ = _episode_returns(env, echo, episodes=1)
    assert abs(returns.mean().item() - chance) < 0.03


# ---------------------------------------------------------------------------- CountRecall
@pytest.mark.parametrize(("num_symbols", "length", "max_count"), [(4, 32, 8), (2, 40, 3)])
def test_count_recall_oracle_gets_the_maximal_return(num_symbols, length, max_count):
    """Counting from the observations solves it, clipping at ``max_count`` included."""
    n = 64
    env = CountRecall(
        num_envs=n, num_symbols=num_symbols, episode_length=length, max_count=max_count
    )
    counts = torch.zeros(n, num_symbols, dtype=torch.int64)
    answers = []

    def oracle(obs, t):
        counts[t == 0] = 0
        symbol = obs.argmax(dim=1)
        answer = counts[torch.arange(n), symbol].clamp(max=max_count)
        counts[torch.arange(n), symbol] += 1
        answers.append(answer)
        return answer

    returns, _, _ = _episode_returns(env, oracle, episodes=2)
    torch.testing.assert_close(returns, torch.ones_like(returns))
    if max_count == 3:  # 40 steps over 2 symbols: the clipped answer was needed
        assert (torch.stack(answers) == 3).any()


def test_count_recall_random_policy_gets_chance():
    env = CountRecall(num_envs=1024, num_symbols=4, episode_length=32, max_count=8)
    returns, _, _ = _episode_returns(env, _uniform(9), episodes=1)
    assert abs(returns.mean().item() - (2 / 9 - 1)) < 0.03


# ---------------------------------------------------------------------------- T-maze
@pytest.mark.parametrize("length", [1, 5, 200])
def test_tmaze_oracle_always_turns_right(length):
    n = 64
    env = TMaze(num_envs=n, length=length)
    cue = torch.zeros(n, dtype=torch.int64)

    def oracle(obs, t):
        start = t == 0
        cue[start] = obs[start, :2].argmax(dim=1)  # 0: left, 1: right
        assert (obs[~start, :2] == 0).all()
        return torch.where(obs[:, 3] == 1, cue, 0)

    returns, lengths, terminal = _episode_returns(env, oracle, episodes=2)
    assert (returns == 1).all()
    assert (lengths == length + 1).all() and terminal.all()


@pytest.mark.parametrize("policy", ["left", "right", "random"])
def test_tmaze_memoryless_policies_succeed_half_the_time(policy):
    n = 2048
    env = TMaze(num_envs=n, length=10)
    act = {"left": _constant(0), "right": _constant(1), "random": _uniform(2)}[policy]
    returns, _, terminal = _episode_returns(env, act, episodes=1)
    assert terminal.all() and set(returns.unique().tolist()) == {-1.0, 1.0}
    success = (returns == 1).float().mean().item()
    assert abs(success - 0.5) < 0.05


def test_tmaze_observations_after_the_cue_do_not_depend_on_it():
    """Every copy sees the same observations from step 1 on, whatever its cue."""
    n, length = 64, 30
    env = TMaze(num_envs=n, length=length)
    obs, _ = env.reset(seed=0)
    cue = env.cue.clone()
    assert 0 < cue.sum() < n  # both cues present
    torch.testing.assert_close(obs[:, :2].argmax(dim=1), cue)
    actions = torch.zeros(n, dtype=torch.int64)
    for t in range(1, length + 1):
        obs, reward, terminated, _, info = env.step(actions)
        assert (obs == obs[0]).all(), f"step {t}: observations differ between copies"
        expected = [0, 0, 0, 1] if t == length else [0, 0, 1, 0]
        assert obs[0].tolist() == expected and (reward == 0).all() and not terminated.any()
    _, reward, terminated, _, info = env.step(actions)
    assert terminated.all() and (info["final_obs"] == info["final_obs"][0]).all()
    torch.testing.assert_close(reward, torch.where(cue == 0, 1.0, -1.0))


@pytest.mark.parametrize(("suffix", "length"), [("Easy", 5), ("Medium", 50), ("Hard", 200)])
def test_tmaze_difficulty_ids(suffix, length):
    env = envs.make(f"umbra/TMaze{suffix}-v0", num_envs=2)
    assert env.length == length
    assert envs.make(f"umbra/TMaze{suffix}-v0", length=3).length == 3  # kwargs override


# ---------------------------------------------------------------------------- maze
MOVES = {(-1, 0): 0, (0, 1): 1, (1, 0): 2, (0, -1): 3}


def _bfs(walls: np.ndarray, start: tuple[int, int]) -> dict[tuple[int, int], tuple[int, int]]:
    """Parent of every square reachable from ``start`` (the start is its own parent)."""
    parent = {start: start}
    queue = deque([start])
    while queue:
        square = queue.popleft()
        for dr, dc in MOVES:
            nxt = (square[0] + dr, square[1] + dc)
            if not walls[nxt] and nxt not in parent:
                parent[nxt] = square
                queue.append(nxt)
    return parent


def _path(walls: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple]:
    parent = _bfs(walls, start)
    path = [goal]
    while path[-1] != start:
        path.append(parent[path[-1]])
    return path[::-1]


@pytest.mark.parametrize("size", [5, 7, 11, 15])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_maze_is_a_perfect_maze_with_key_and_door_reachable(size, seed):
    """Every free square is reachable from the start, and there are exactly cells + (cells - 1)
    of them: the passages form a spanning tree (one path between any two squares)."""
    env = KeyDoorMaze(num_envs=32, size=size)
    env.reset(seed=seed)
    layout = env.layout()
    cells = ((size - 1) // 2) ** 2
    for i in range(32):
        walls = layout["walls"][i].numpy()
        assert walls.shape == (size, size)
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        reachable = _bfs(walls, tuple(layout["agent"][i].tolist()))
        assert len(reachable) == int((~walls).sum()) == 2 * cells - 1
        squares = {tuple(layout[name][i].tolist()) for name in ("agent", "key", "door")}
        assert len(squares) == 3 and squares <= set(reachable)
        assert all(r % 2 == 1 and c % 2 == 1 for r, c in squares)  # on cells


def test_random_spanning_trees_are_trees_and_vary():
    u, v = maze_edges(6)
    trees = random_spanning_trees(200, u, v, 36, torch.Generator().manual_seed(0))
    assert (trees.sum(dim=1) == 35).all()
    assert len({tuple(row.tolist()) for row in trees}) == 200
    # Every edge of the grid is used by some trees and not by others: no fixed bias.
    usage = trees.float().mean(dim=0)
    assert (usage > 0.2).all() and (usage < 0.95).all()


@pytest.mark.parametrize("size", [7, 11])
def test_maze_observation_is_the_window_around_the_agent(size):
    env = KeyDoorMaze(num_envs=16, size=size, view_size=5)
    obs, _ = env.reset(seed=3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        layout = env.layout()
        for i in range(16):
            walls = np.pad(layout["walls"][i].numpy(), 2, constant_values=True)
            planes = np.zeros((3, *walls.shape), dtype=bool)
            planes[0] = walls
            if not layout["has_key"][i]:
                planes[1][tuple(layout["key"][i] + 2)] = True
            planes[2][tuple(layout["door"][i] + 2)] = True
            r, c = layout["agent"][i].tolist()
            window = planes[:, r : r + 5, c : c + 5]
            np.testing.assert_array_equal(obs[i, :75].numpy().reshape(3, 5, 5), window)
            assert obs[i, 75] == float(layout["has_key"][i])
        obs, *_ = env.step(torch.randint(4, (16,), generator=generator))


@pytest.mark.parametrize(("size", "key_reward"), [(7, 0.1), (11, 0.0), (15, 0.5)])
def test_maze_shortest_path_oracle_gets_the_maximal_return(size, key_reward):
    """Walking the shortest paths start -> key -> door (planned on :meth:`layout`, taken with the
    actions of the agent's frame) ends the episode with ``key_reward + 1 - 0.9 * steps / limit``,
    the best any policy can do."""
    n = 8
    env = KeyDoorMaze(num_envs=n, size=size, key_reward=key_reward)
    env.reset(seed=size)
    layout = env.layout()
    plans, best = [], []
    for i in range(n):
        walls = layout["walls"][i].numpy()
        agent, key, door = (tuple(layout[name][i].tolist()) for name in ("agent", "key", "door"))
        path = _path(walls, agent, key) + _path(walls, key, door)[1:]
        steps = zip(path[:-1], path[1:], strict=True)
        plans.append([MOVES[(b[0] - a[0], b[1] - a[1])] for a, b in steps])
        best.append(key_reward + 1 - 0.9 * (len(path) - 1) / env.time_limit)
    finished = torch.zeros(n, dtype=torch.bool)
    for t in range(max(map(len, plans))):
        actions = torch.tensor([plan[t] if t < len(plan) else 0 for plan in plans])
        _, reward, terminated, truncated, info = env.step(actions)
        ends_now = torch.tensor([len(plan) == t + 1 for plan in plans])
        assert torch.equal(terminated & ~finished, ends_now) and not truncated.any()
        for i in ends_now.nonzero()[:, 0].tolist():
            assert info["episode_length"][i] == len(plans[i])
            assert info["episode_return"][i].item() == pytest.approx(best[i], abs=1e-5)
        finished |= ends_now
    assert finished.all()


def test_maze_memoryless_policies_rarely_succeed():
    """A constant move or a random walk in the Hard maze: far below the oracle's return."""
    env = envs.make("umbra/KeyDoorMazeHard-v0", num_envs=256)
    for policy in (_constant(0), _uniform(4)):
        returns, lengths, terminal = _episode_returns(env, policy, episodes=1)
        assert terminal.float().mean() < 0.1 and returns.mean() < 0.1
        assert (lengths[~terminal] == env.time_limit).all()


def test_maze_stays_fixed_during_an_episode_while_the_pool_refreshes():
    """Resets draw from chunks of mazes regenerated on a ring; no maze changes under a copy."""
    n = 32
    env = KeyDoorMaze(num_envs=n, size=9, time_limit=20)
    assert env.num_chunks * env.refresh_every > env.refresh_every + env.time_limit
    env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    walls = env.layout()["walls"]
    mazes_seen = set()
    for _ in range(4 * env.num_chunks * env.refresh_every):
        _, _, _, _, info = env.step(torch.randint(4, (n,), generator=generator))
        now = env.layout()["walls"]
        same = ~info["_episode"]
        assert torch.equal(now[same], walls[same])
        walls = now
        mazes_seen.update(tuple(w.flatten().tolist()) for w in now)
    assert len(mazes_seen) > 200  # fresh mazes keep coming


def test_maze_same_seed_same_mazes_across_refreshes():
    def run(seed):
        env = KeyDoorMaze(num_envs=8, size=11, time_limit=30)
        env.reset(seed=seed)
        generator = torch.Generator().manual_seed(0)
        layouts = []
        for _ in range(100):
            env.step(torch.randint(4, (8,), generator=generator))
            layouts.append(env.layout()["walls"])
        return torch.stack(layouts)

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


@pytest.mark.parametrize(
    ("suffix", "size", "time_limit"), [("Easy", 7, 45), ("Medium", 11, 125), ("Hard", 15, 245)]
)
def test_maze_difficulty_ids(suffix, size, time_limit):
    env = envs.make(f"umbra/KeyDoorMaze{suffix}-v0", num_envs=2)
    assert (env.size, env.time_limit, env.max_episode_steps) == (size, time_limit, time_limit)
    assert env.single_observation_space.shape == (76,)
    assert env.layout()["walls"].shape == (2, size, size)
    small = envs.make(f"umbra/KeyDoorMaze{suffix}-v0", view_size=3, time_limit=7)
    assert small.single_observation_space.shape == (28,) and small.max_episode_steps == 7


# ---------------------------------------------------------------------------- difficulty, errors
@pytest.mark.parametrize(
    ("env_id", "attributes"),
    [
        ("umbra/RepeatPreviousEasy-v0", {"k": 4, "episode_length": 52, "num_symbols": 4}),
        ("umbra/RepeatPreviousMedium-v0", {"k": 32, "episode_length": 104}),
        ("umbra/RepeatPreviousHard-v0", {"k": 64, "episode_length": 156}),
        ("umbra/RepeatFirstEasy-v0", {"episode_length": 52, "num_symbols": 4}),
        ("umbra/RepeatFirstMedium-v0", {"episode_length": 104}),
        ("umbra/RepeatFirstHard-v0", {"episode_length": 156}),
        ("umbra/CountRecallEasy-v0", {"num_symbols": 4, "episode_length": 32, "max_count": 8}),
        ("umbra/CountRecallMedium-v0", {"num_symbols": 8, "episode_length": 64}),
        ("umbra/CountRecallHard-v0", {"num_symbols": 16, "episode_length": 128}),
    ],
)
def test_sequence_task_difficulty_ids(env_id, attributes):
    env = envs.make(env_id, num_envs=2)
    for name, value in attributes.items():
        assert getattr(env, name) == value
    assert env.max_episode_steps == env.episode_length
    assert env.single_action_space.n == getattr(env, "max_count", env.num_symbols - 1) + 1


def test_sequence_task_kwargs_set_the_spaces():
    env = envs.make("umbra/RepeatPreviousEasy-v0", num_symbols=7, k=2, episode_length=9)
    assert env.single_observation_space.shape == (7,) and env.single_action_space.n == 7
    assert env.max_episode_steps == 9
    assert envs.make("umbra/RepeatFirstEasy-v0", num_symbols=3).single_observation_space.shape == (
        4,
    )
    assert envs.make("umbra/CountRecallEasy-v0", max_count=2).single_action_space.n == 3


@pytest.mark.parametrize(
    ("env_id", "kwargs", "error", "pattern"),
    [
        ("umbra/RepeatPreviousEasy-v0", {"k": 0}, ValueError, "k must be at least 1, got 0"),
        ("umbra/RepeatPreviousEasy-v0", {"k": 52}, ValueError, "greater than k"),
        ("umbra/RepeatPreviousEasy-v0", {"num_symbols": 1}, ValueError, "num_symbols must be at"),
        ("umbra/RepeatPreviousEasy-v0", {"k": 2.5}, TypeError, "k must be an int"),
        ("umbra/RepeatFirstEasy-v0", {"episode_length": 0}, ValueError, "episode_length must be"),
        ("umbra/RepeatFirstEasy-v0", {"num_symbols": 1}, ValueError, "num_symbols must be at"),
        ("umbra/CountRecallEasy-v0", {"max_count": 0}, ValueError, "max_count must be at least"),
        ("umbra/CountRecallEasy-v0", {"num_symbols": 1}, ValueError, "num_symbols must be at"),
        ("umbra/TMazeEasy-v0", {"length": 0}, ValueError, "length must be at least 1, got 0"),
        ("umbra/TMazeEasy-v0", {"length": True}, TypeError, "length must be an int"),
        ("umbra/KeyDoorMazeEasy-v0", {"size": 8}, ValueError, "size must be odd, got 8"),
        ("umbra/KeyDoorMazeEasy-v0", {"size": 3}, ValueError, "size must be at least 5"),
        ("umbra/KeyDoorMazeEasy-v0", {"view_size": 4}, ValueError, "view_size must be odd"),
        ("umbra/KeyDoorMazeEasy-v0", {"time_limit": 0}, ValueError, "time_limit must be at"),
        ("umbra/KeyDoorMazeEasy-v0", {"key_reward": float("nan")}, ValueError, "key_reward"),
    ],
)
def test_bad_kwargs_raise_clear_errors(env_id, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        envs.make(env_id, **kwargs)
