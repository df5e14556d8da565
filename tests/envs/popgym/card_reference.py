"""Shared machinery of the card-game tests: the batched env beside popgym's, on the same decks.

``side_by_side`` stacks each package env's shuffled deck(s) into one row of the batched env (the
test hook ``envs.popgym.deck.Deck.stack``), then steps both with the same actions and demands the
same observations, rewards, terminations and truncations, through episode ends (a stacked row
deals the same order again, the package env is reset with the same seed). ``returns_batched`` and
``returns_package`` play a policy for many episodes on each side, ``assert_same_mean`` compares
the two samples' means within four standard errors of their difference, and
``assert_returns_match`` does both for a family's distribution test. Spaces and seeding are
checked for every id in test_contract.py.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import torch

from envs.popgym.deck import popgym_deal_order

#: A policy sees a batch of observations (numpy, the batched env's encoding) and a numpy
#: Generator, and returns a batch of actions.
Policy = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def package_env(name: str):
    """``"module:Class"`` of ``popgym.envs`` -> a new instance."""
    module, cls = name.split(":")
    return getattr(importlib.import_module(f"popgym.envs.{module}"), cls)()


def random_policy(n: int) -> Policy:
    return lambda obs, rng: rng.integers(0, n, size=len(obs))


def side_by_side(
    batched,
    package_name: str,
    decks: dict[str, str],
    encode: Callable[[object], np.ndarray],
    steps: int,
    seed: int = 0,
) -> int:
    """Step ``batched`` (``num_envs`` rows) beside as many package envs on the same decks.

    Args:
        batched: The batched env, fresh.
        package_name: ``"module:Class"`` in ``popgym.envs``.
        decks: Batched deck attribute -> package deck attribute (``{"deck": "deck"}``).
        encode: A package observation -> the batched env's encoding of it.
        steps: Steps to take (several episodes, to cross episode ends).
        seed: Seeds the package envs (row ``i`` gets ``seed + i``) and the actions.

    Returns:
        The number of episode ends compared.
    """
    n = batched.num_envs
    package = [package_env(package_name) for _ in range(n)]
    first_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(package)]
    for ours, theirs in decks.items():
        orders = np.stack([popgym_deal_order(getattr(env, theirs).idx) for env in package])
        getattr(batched, ours).stack(orders)
    obs, _ = batched.reset(seed=seed)
    np.testing.assert_array_equal(obs.numpy(), np.stack([encode(o) for o in first_obs]))
    rng = np.random.default_rng(seed)
    ends = 0
    for step in range(steps):
        actions = rng.integers(0, batched.single_action_space.n, size=n)
        obs, reward, terminated, truncated, info = batched.step(torch.as_tensor(actions))
        for i, env in enumerate(package):
            p_obs, p_reward, p_terminated, p_truncated, _ = env.step(int(actions[i]))
            where = f"row {i}, step {step}"
            assert np.float32(p_reward) == reward[i].item(), where
            assert p_terminated == bool(terminated[i]) and p_truncated == bool(truncated[i]), where
            if p_terminated or p_truncated:
                np.testing.assert_array_equal(info["final_obs"][i].numpy(), encode(p_obs), where)
                p_obs = env.reset(seed=seed + i)[0]  # the same deck: the row is stacked
                ends += 1
            np.testing.assert_array_equal(obs[i].numpy(), encode(p_obs), where)
    return ends


def returns_batched(batched, policy: Policy, episodes: int, seed: int = 0) -> np.ndarray:
    """Returns of the first ``episodes // num_envs`` episodes of every copy."""
    per_copy = -(-episodes // batched.num_envs)
    rng = np.random.default_rng(seed)
    obs, _ = batched.reset(seed=seed)
    count = np.zeros(batched.num_envs, dtype=np.int64)
    out: list[np.ndarray] = []
    while (count < per_copy).any():
        actions = policy(obs.numpy(), rng)
        obs, _, _, _, info = batched.step(torch.as_tensor(actions))
        done = info["_episode"].numpy() & (count < per_copy)
        out.append(info["episode_return"].numpy()[done])
        count += done
    return np.concatenate(out)


def returns_package(
    package_name: str, encode, policy: Policy, episodes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of ``episodes`` episodes of the package env under ``policy``."""
    env = package_env(package_name)
    rng = np.random.default_rng(seed)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        done = False
        while not done:
            action = int(policy(encode(obs)[None], rng)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[e] += reward
            lengths[e] += 1
            done = terminated or truncated
    return returns, lengths


def assert_same_mean(ours: np.ndarray, theirs: np.ndarray, sigmas: float = 4.0) -> str:
    """``|mean difference| < sigmas`` standard errors of the difference; the numbers, as text."""
    diff = ours.mean() - theirs.mean()
    se = float(np.sqrt(ours.var(ddof=1) / len(ours) + theirs.var(ddof=1) / len(theirs)))
    text = (f"batched {ours.mean():.4f} (n={len(ours)}) vs package {theirs.mean():.4f} "
            f"(n={len(theirs)}), difference {diff:.4f}, standard error {se:.4f}")
    assert abs(diff) < sigmas * se + 1e-9, text
    return text


def assert_returns_match(batched, package_name: str, encode, policy: Policy, episodes: int,
                         length: int, batched_episodes: int = 4000) -> None:
    """``batched_episodes`` episodes of ``batched`` against ``episodes`` of the package under
    ``policy``: the same mean return (:func:`assert_same_mean`, printed), and every package
    episode ``length`` steps long."""
    ours = returns_batched(batched, policy, batched_episodes)
    theirs, lengths = returns_package(package_name, encode, policy, episodes)
    print(assert_same_mean(ours, theirs))
    assert set(lengths.tolist()) == {length}


def one_episode_observations(batched, policy: Policy, seed: int = 0) -> list[np.ndarray]:
    """Every copy's observations through its first episode, reset one included (the last one
    from ``final_obs``): ``[num_envs, length + 1, *obs_shape]`` when lengths are equal."""
    rng = np.random.default_rng(seed)
    obs, _ = batched.reset(seed=seed)
    seen = [obs.numpy()]
    while True:
        actions = torch.as_tensor(policy(obs.numpy(), rng))
        obs, _, terminated, truncated, info = batched.step(actions)
        done = (terminated | truncated).numpy()
        seen.append(np.where(done.reshape(-1, *[1] * (obs.dim() - 1)),
                             info["final_obs"].numpy(), obs.numpy()))
        if done.all():
            return np.stack(seen, axis=1)
        assert not done.any(), "copies of a card game end at the same step"
