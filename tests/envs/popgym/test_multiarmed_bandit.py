"""popgym/MultiarmedBandit*: the batched bandit against popgym's (popgym.envs.multiarmed_bandit).

Parameters equal the package's (spaces and seeding: test_contract.py); stepped side by side with
arms that pay always or never (so that popgym's payout draws do not matter), every observation,
reward and end flag agrees; each pull pays with its arm's probability; fresh arms are uniform like
popgym's; random and explore-then-commit policies get the package's returns.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from envs.popgym.multiarmed_bandit import MultiarmedBandit
from tests.envs.popgym.boards_reference import (
    Z,
    assert_same_episodes,
    assert_same_mean,
    batched_episodes,
    package_episodes,
    reset_packages,
    side_by_side,
)

bandit = pytest.importorskip("popgym.envs.multiarmed_bandit")

LEVELS = ["Easy", "Medium", "Hard"]


def _package(level: str):
    return getattr(bandit, f"MultiarmedBandit{level}")


@pytest.mark.parametrize("level", LEVELS)
def test_parameters_are_popgyms(level):
    package = _package(level)()
    env = envs.make(f"popgym/MultiarmedBandit{level}-v0")
    assert env.num_bandits == package.num_bandits


@pytest.mark.parametrize("level", LEVELS)
def test_side_by_side_with_sure_arms(level):
    """Arms that pay with probability 0 or 1 (set in both): same payouts, rewards and ends."""
    count = 8
    packages = reset_packages(_package(level), count)
    rng = np.random.default_rng(0)
    sure = (rng.random((count, packages[0].num_bandits)) < 0.5).astype(np.float32)
    for package, arms in zip(packages, sure, strict=True):
        package.bandits = arms.copy()
    env = envs.make(f"popgym/MultiarmedBandit{level}-v0", num_envs=count)

    def choose(packages, rng):
        return rng.integers(packages[0].num_bandits, size=len(packages))

    ends = side_by_side(env, packages, {"bandits": torch.tensor(sure)}, choose)
    assert ends == {"terminated": 0, "truncated": count, "both": 0}


def test_each_pull_pays_with_its_arms_probability():
    """10 arms with probabilities 0.05 .. 0.95, 2,000 copies pulling them in turn for 200 steps:
    each arm's payout frequency lies within 4.5 binomial standard errors of its probability."""
    env = MultiarmedBandit(num_envs=2_000)
    chances = torch.linspace(0.05, 0.95, 10)
    env.reset(seed=0, options={"bandits": chances.expand(2_000, 10)})
    paid = torch.zeros(10)
    for t in range(200):
        *_, info = env.step(torch.full((2_000,), t % 10))
        paid[t % 10] += info["final_obs"].sum()  # the last step's payout, before the reset
    pulls = 2_000 * 20
    se = (chances * (1 - chances) / pulls).sqrt()
    assert ((paid / pulls - chances).abs() <= 4.5 * se).all()


def test_fresh_arms_are_popgyms():
    """Each arm uniform in [0, 1): 4,000 batched and 4,000 package draws (Easy) agree in the
    mean arm and the mean best arm within 4 standard errors."""
    env = MultiarmedBandit(num_envs=4_000)
    env.reset(seed=0)
    ours = env.bandits.double().numpy()
    package = bandit.MultiarmedBanditEasy()
    package.reset(seed=0)
    theirs = []
    for _ in range(4_000):
        package.reset()
        theirs.append(package.bandits.copy())
    theirs = np.stack(theirs)
    assert ours.min() >= 0.0 and ours.max() < 1.0
    assert_same_mean(ours.mean(1), theirs.mean(1), "mean arm")
    assert_same_mean(ours.max(1), theirs.max(1), "best arm")


# ---------------------------------------------------------------------------- policies
def _commit_batched(arms: int, tries: int):
    """Pull each arm ``tries`` times in turn, then always the arm that paid most (the lowest
    such arm on ties)."""
    state = {}

    def policy(obs, t):
        n = obs.shape[0]
        if "paid" not in state:
            state["paid"] = torch.zeros(n, arms)
            state["last"] = torch.zeros(n, dtype=torch.int64)
        paid = torch.where((t == 0)[:, None], 0.0, state["paid"])
        paid = paid.scatter_add(1, state["last"][:, None], ((t > 0) & (obs == 1)).float()[:, None])
        explore = t < arms * tries
        action = torch.where(explore, t % arms, paid.argmax(dim=1))
        state["paid"], state["last"] = paid, action
        return action

    return policy


def _commit_package(arms: int, tries: int):
    state = {}

    def policy(package, obs, t):
        if t == 0:
            state["paid"] = np.zeros(arms)
        elif obs == 1:
            state["paid"][state["last"]] += 1
        action = t % arms if t < arms * tries else int(np.argmax(state["paid"]))
        state["last"] = action
        return action

    return policy


@pytest.mark.parametrize("policy", ["random", "explore-then-commit"])
def test_policies_get_popgyms_returns(policy):
    """Easy: 2,000 batched and 500 package episodes; mean return (and length, end rates) agree
    within 4 standard errors."""
    env = envs.make("popgym/MultiarmedBanditEasy-v0", num_envs=2_000)
    if policy == "random":
        generator = torch.Generator().manual_seed(1)
        ours = batched_episodes(
            env, lambda obs, t: torch.randint(10, (obs.shape[0],), generator=generator), 1
        )
        rng = np.random.default_rng(1)
        theirs = package_episodes(
            bandit.MultiarmedBanditEasy(), lambda p, obs, t: int(rng.integers(10)), 500
        )
    else:
        ours = batched_episodes(env, _commit_batched(10, 3), episodes=1)
        theirs = package_episodes(bandit.MultiarmedBanditEasy(), _commit_package(10, 3), 500)
        assert ours.returns.mean() > Z * ours.returns.std() / len(ours.returns) ** 0.5
    assert (ours.lengths == 200).all() and ours.truncated.all()
    assert_same_episodes(ours, theirs, policy)


# ---------------------------------------------------------------------------- arguments
def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="num_bandits"):
        MultiarmedBandit(num_bandits=0)
    with pytest.raises(TypeError, match="episode_length"):
        MultiarmedBandit(episode_length=2.5)
    env = MultiarmedBandit(num_envs=2, num_bandits=3)
    with pytest.raises(ValueError, match="probabilities"):
        env.reset(options={"bandits": torch.full((2, 3), 1.5)})
