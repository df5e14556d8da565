"""popgym/RepeatFirst*: the batched env against popgym's RepeatFirst (card_reference.py).

Exact on the same decks; in distribution for a random and a scripted policy; an exact count that
draws with replacement would fail (every suit 13 times per deck in an episode)."""

from __future__ import annotations

import card_reference as cards
import numpy as np
import pytest

import envs
from envs.popgym.repeat_first import RepeatFirst

LEVELS = {"Easy": 1, "Medium": 8, "Hard": 16}  # difficulty: num_decks


def _package(level: str) -> str:
    return f"repeat_first:RepeatFirst{level}"


@pytest.mark.parametrize("level", LEVELS)
def test_registered_with_popgyms_parameters(level):
    env = envs.make(f"popgym/RepeatFirst{level}-v0", num_envs=2)
    theirs = cards.package_env(_package(level))
    assert env.num_decks == theirs.deck.num_decks == LEVELS[level]


@pytest.mark.parametrize("level", LEVELS)
def test_same_as_popgym_on_the_same_decks(level):
    length = 52 * LEVELS[level] - 1
    env = RepeatFirst(num_envs=2, num_decks=LEVELS[level])
    assert cards.side_by_side(env, _package(level), {"deck": "deck"}, np.asarray, length + 5) == 2


def _repeat_on_show(obs, rng):
    return obs.astype(np.int64)


@pytest.mark.parametrize(("policy", "episodes"),
                         [(cards.random_policy(4), 600), (_repeat_on_show, 300)])
def test_returns_match_popgym_in_distribution(policy, episodes):
    cards.assert_returns_match(RepeatFirst(num_envs=500), _package("Easy"), np.asarray, policy,
                               episodes, length=51)


def test_repeating_the_card_on_show_scores_almost_surely_the_same():
    """Answering the suit on show is right at the first step and when a later card among the 50
    shown shares the first suit: 11 or 12 of them without replacement (return -25/51 or -27/51;
    with replacement a Binomial(50, 1/4), standard deviation 0.12)."""
    ours = cards.returns_batched(RepeatFirst(num_envs=2000), _repeat_on_show, 2000)
    assert np.allclose(np.sort(np.unique(ours.round(5))), [-27 / 51, -25 / 51], atol=1e-4)


@pytest.mark.parametrize("level", LEVELS)
def test_an_episode_deals_each_suit_13_times_per_deck(level):
    env = RepeatFirst(num_envs=8, num_decks=LEVELS[level])
    seen = cards.one_episode_observations(env, cards.random_policy(4))
    assert seen.shape == (8, 52 * LEVELS[level])
    counts = np.stack([np.bincount(row, minlength=4) for row in seen])
    assert (counts == 13 * LEVELS[level]).all()


def test_optimal_and_lengths():
    env = RepeatFirst(num_envs=8, num_decks=1)
    env.reset(seed=0)
    for t in range(51):
        _, _, terminated, truncated, info = env.step(env.target())
        assert bool(terminated.all()) == (t == 50) and not truncated.any()
    assert np.allclose(info["episode_return"].numpy(), 1.0, atol=1e-5)
    assert (info["episode_length"] == 51).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_decks"):
        RepeatFirst(num_decks=0)
