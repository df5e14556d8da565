"""Shared by the tests of the popgym board and bandit families (Battleship, Concentration,
MineSweeper, MultiarmedBandit): side-by-side runs and distribution comparisons against the package.

- :func:`side_by_side`: ``K`` package environments are reset with their own generators, their
  state (board, deck, minefield, arms) is copied into a batched environment of ``K`` copies
  through its documented ``reset(options=...)`` hook, and both are stepped with the same actions
  until every package episode has ended; observation, reward, terminated and truncated must agree
  at every step (rewards within ``REWARD_ATOL``: float32 against popgym's float64).
- :func:`batched_episodes` / :func:`package_episodes`: the returns, lengths and end flags of many
  episodes of a policy, batched side and package side.
- :func:`assert_same_mean`: the two-sample test ``|mean_a - mean_b| <= Z * SE`` with
  ``SE = sqrt(var_a / n_a + var_b / n_b)`` and ``Z = 4`` (a false alarm about once in 16,000
  runs; the tests use fixed seeds, so a pass is reproducible).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

#: Float32 (Umbra) against float64 (popgym) rewards.
REWARD_ATOL = 1e-6
#: Standard errors that a difference of means may reach.
Z = 4.0


@dataclass
class Episodes:
    """Per-episode results, numpy arrays of one entry per episode."""

    returns: np.ndarray
    lengths: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


def side_by_side(
    batched,
    packages: list,
    options: dict,
    choose: Callable[[list, np.random.Generator], np.ndarray],
    seed: int = 0,
) -> dict[str, int]:
    """Step ``packages`` and ``batched`` (reset with ``options`` that copy the packages' state) in
    lockstep with the actions ``choose(packages, rng) -> [K, ...]``; assert equal results.

    The packages must have been reset already; their first observations are compared too.
    Returns how many package episodes ended terminated, truncated, and both.
    """
    rng = np.random.default_rng(seed)
    obs, _ = batched.reset(seed=seed, options=options)
    first = np.stack([np.asarray(package.last_reset_obs) for package in packages])
    np.testing.assert_array_equal(obs.numpy(), first)
    live = np.ones(len(packages), dtype=bool)
    ends = {"terminated": 0, "truncated": 0, "both": 0}
    for t in range(10_000):
        actions = choose(packages, rng)
        _, reward, terminated, truncated, info = batched.step(torch.as_tensor(actions))
        final_obs = info["final_obs"].numpy()
        for i in np.flatnonzero(live):
            p_obs, p_reward, p_term, p_trunc, _ = packages[i].step(actions[i])
            where = f"copy {i}, step {t + 1}, action {actions[i]}"
            np.testing.assert_array_equal(final_obs[i], np.asarray(p_obs), err_msg=where)
            assert abs(float(reward[i]) - p_reward) <= REWARD_ATOL, (where, reward[i], p_reward)
            assert (bool(terminated[i]), bool(truncated[i])) == (p_term, p_trunc), where
            if p_term or p_trunc:
                live[i] = False
                ends["both" if p_term and p_trunc else "terminated" if p_term else "truncated"] += 1
        if not live.any():
            return ends
    raise AssertionError("some package episodes never ended")


def reset_packages(cls: type, count: int, seed: int = 0) -> list:
    """``count`` package environments of ``cls``, reset with seeds ``seed, seed + 1, ...``; each
    keeps its first observation as ``last_reset_obs``."""
    packages = []
    for i in range(count):
        package = cls()
        package.last_reset_obs, _ = package.reset(seed=seed + i)
        packages.append(package)
    return packages


def batched_episodes(
    env,
    policy: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    episodes: int,
    seed: int = 0,
    options: dict | None = None,
) -> Episodes:
    """The first ``episodes`` episodes of every copy of ``env`` under ``policy(obs, t)``.

    ``t`` is each copy's step index in its episode (0 at its first step), so a policy with memory
    resets its memory where ``t == 0``.
    """
    obs, _ = env.reset(seed=seed, options=options)
    n = env.num_envs
    t = torch.zeros(n, dtype=torch.int64)
    shape = (n, episodes)
    returns, lengths = torch.zeros(shape), torch.zeros(shape, dtype=torch.int64)
    term, trunc = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    count = torch.zeros(n, dtype=torch.int64)
    while bool((count < episodes).any()):
        obs, _, terminated, truncated, info = env.step(policy(obs, t))
        t += 1
        done = info["_episode"] & (count < episodes)
        rows, cols = done.nonzero()[:, 0], count[done]
        returns[rows, cols] = info["episode_return"][done]
        lengths[rows, cols] = info["episode_length"][done]
        term[rows, cols] = terminated[done]
        trunc[rows, cols] = truncated[done]
        count += done.long()
        t[info["_episode"]] = 0
    return Episodes(
        returns.flatten().numpy().astype(np.float64),
        lengths.flatten().numpy(),
        term.flatten().numpy(),
        trunc.flatten().numpy(),
    )


def package_episodes(
    package, policy: Callable[[object, object, int], object], episodes: int, seed: int = 0
) -> Episodes:
    """``episodes`` episodes of one package environment under ``policy(package, obs, t)``."""
    returns, lengths, term, trunc = [], [], [], []
    obs, _ = package.reset(seed=seed)
    for _ in range(episodes):
        total, t, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = package.step(policy(package, obs, t))
            total += reward
            t += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(t)
        term.append(terminated)
        trunc.append(truncated)
        obs, _ = package.reset()
    return Episodes(np.array(returns), np.array(lengths), np.array(term), np.array(trunc))


def mean_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(mean_a - mean_b, SE)`` of two independent samples."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    se = float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
    return float(a.mean() - b.mean()), se


def assert_same_mean(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Two-sample test: ``|mean_a - mean_b| <= Z * SE``."""
    gap, se = mean_gap(a, b)
    assert abs(gap) <= Z * se, (
        f"{what}: means {np.mean(a):.5f} (n={np.size(a)}) vs {np.mean(b):.5f} (n={np.size(b)}) "
        f"differ by {gap:.5f}, more than {Z} standard errors ({se:.5f})"
    )


def assert_same_episodes(batched: Episodes, package: Episodes, what: str) -> None:
    """Same mean return, mean length and rate of each kind of episode end."""
    assert_same_mean(batched.returns, package.returns, f"{what}: return")
    assert_same_mean(batched.lengths, package.lengths, f"{what}: length")
    assert_same_mean(batched.terminated, package.terminated, f"{what}: terminated")
    assert_same_mean(batched.truncated, package.truncated, f"{what}: truncated")
