"""popgym/HigherLower*: the batched env against popgym's HigherLower (card_reference.py).

Exact on the same decks; in distribution for a random and a scripted policy; an exact count that
draws with replacement would fail (every rank 4 times per deck in an episode)."""

from __future__ import annotations

import card_reference as cards
import numpy as np
import pytest
import torch

import envs
from envs.popgym.higher_lower import HigherLower

LEVELS = {"Easy": 1, "Medium": 2, "Hard": 3}  # difficulty: num_decks


def _package(level: str) -> str:
    return f"higher_lower:HigherLower{level}"


@pytest.mark.parametrize("level", LEVELS)
def test_registered_with_popgyms_parameters(level):
    env = envs.make(f"popgym/HigherLower{level}-v0", num_envs=2)
    theirs = cards.package_env(_package(level))
    assert env.num_decks == theirs.num_decks == LEVELS[level]


@pytest.mark.parametrize("level", LEVELS)
def test_same_as_popgym_on_the_same_decks(level):
    length = 52 * LEVELS[level] - 1
    env = HigherLower(num_envs=3, num_decks=LEVELS[level])
    ends = cards.side_by_side(env, _package(level), {"deck": "deck"}, np.asarray, 2 * length + 5)
    assert ends == 6


def _by_the_middle(obs, rng):
    """Higher (0) below a seven, lower (1) from it: the best guess without counting."""
    return (obs >= 6).astype(np.int64)


@pytest.mark.parametrize(("policy", "episodes"),
                         [(cards.random_policy(2), 600), (_by_the_middle, 400)])
def test_returns_match_popgym_in_distribution(policy, episodes):
    cards.assert_returns_match(HigherLower(num_envs=500), _package("Easy"), np.asarray, policy,
                               episodes, length=51)


def test_counting_cards_beats_guessing_by_the_middle():
    """The memory the task rewards: a policy that counts the ranks left (from the observations)
    and bets on the likelier side scores more than the best memoryless one."""
    env = HigherLower(num_envs=2000)
    obs, _ = env.reset(seed=0)
    left = torch.full((2000, 13), 4)
    ranks = torch.arange(13)
    for _ in range(51):
        left -= (obs[:, None] == ranks).long()
        higher = (left * (ranks > obs[:, None])).sum(1)
        lower = (left * (ranks < obs[:, None])).sum(1)
        obs, _, _, _, info = env.step((lower > higher).long())
    counting = info["episode_return"]
    guessing = cards.returns_batched(HigherLower(num_envs=2000), _by_the_middle, 2000)
    # Measured: 0.525 against 0.495, standard errors about 0.002.
    assert counting.mean().item() > guessing.mean() + 0.015, (counting.mean(), guessing.mean())


@pytest.mark.parametrize("level", LEVELS)
def test_an_episode_deals_each_rank_4_times_per_deck(level):
    env = HigherLower(num_envs=16, num_decks=LEVELS[level])
    seen = cards.one_episode_observations(env, cards.random_policy(2))
    assert seen.shape == (16, 52 * LEVELS[level])
    counts = np.stack([np.bincount(row, minlength=13) for row in seen])
    assert (counts == 4 * LEVELS[level]).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_decks"):
        HigherLower(num_decks=0)
