"""popgym/CountRecall*: the batched env against popgym's CountRecall (card_reference.py).

Exact on the same decks; in distribution for a random and a scripted policy; an exact count that
draws with replacement would fail (each shoe deals every kind C / d times in an episode)."""

from __future__ import annotations

import card_reference as cards
import numpy as np
import pytest

import envs
from envs.popgym.count_recall import CountRecall

LEVELS = {  # difficulty: keyword arguments
    "Easy": {"num_decks": 1, "deck_type": "colors"},
    "Medium": {"num_decks": 2, "deck_type": "suits"},
    "Hard": {"num_decks": 4, "deck_type": "ranks"},
}
DECKS = {"value_deck": "value_deck", "query_deck": "query_deck"}


def _package(level: str) -> str:
    return f"count_recall:CountRecall{level}"


@pytest.mark.parametrize("level", LEVELS)
def test_registered_with_popgyms_parameters(level):
    env = envs.make(f"popgym/CountRecall{level}-v0", num_envs=2)
    theirs = cards.package_env(_package(level))
    assert env.num_decks == theirs.value_deck.num_decks == LEVELS[level]["num_decks"]
    assert (env.num_kinds, env.max_card_count) == (theirs.num_distinct_cards,
                                                  theirs.max_card_count)


@pytest.mark.parametrize("level", LEVELS)
def test_same_as_popgym_on_the_same_decks(level):
    env = CountRecall(num_envs=3, **LEVELS[level])
    length = 52 * env.num_decks - 1
    assert cards.side_by_side(env, _package(level), DECKS, np.asarray, 2 * length + 5) == 6


def _one_if_alike(obs, rng):
    """1 when the query names the kind just dealt, else 0: right early in an episode only."""
    return (obs[:, 0] == obs[:, 1]).astype(np.int64)


@pytest.mark.parametrize("level", ["Easy", "Medium"])
@pytest.mark.parametrize("policy", ["random", "one if alike"])
def test_returns_match_popgym_in_distribution(level, policy):
    env = CountRecall(num_envs=500, **LEVELS[level])
    act = cards.random_policy(env.max_card_count + 1) if policy == "random" else _one_if_alike
    cards.assert_returns_match(env, _package(level), np.asarray, act, 300,
                               length=52 * env.num_decks - 1)


@pytest.mark.parametrize("level", LEVELS)
def test_each_shoe_deals_every_kind_equally_often(level):
    env = CountRecall(num_envs=16, **LEVELS[level])
    seen = cards.one_episode_observations(env, cards.random_policy(env.max_card_count + 1))
    assert seen.shape == (16, 52 * env.num_decks, 2)
    for shoe in (0, 1):
        counts = np.stack([np.bincount(row, minlength=env.num_kinds) for row in seen[:, :, shoe]])
        assert (counts == env.max_card_count).all()


@pytest.mark.parametrize("level", LEVELS)
def test_counting_scores_one(level):
    env = CountRecall(num_envs=8, **LEVELS[level])
    length = 52 * env.num_decks - 1
    env.reset(seed=0)
    for t in range(length):
        _, _, terminated, truncated, info = env.step(env.target())
        assert bool(terminated.all()) == (t == length - 1) and not truncated.any()
    assert np.allclose(info["episode_return"].numpy(), 1.0, atol=1e-4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="deck_type"):
        CountRecall(deck_type="faces")
    with pytest.raises(ValueError, match="num_decks"):
        CountRecall(num_decks=0)
