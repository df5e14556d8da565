"""popgym/Autoencode*: the batched env against popgym's Autoencode (card_reference.py).

popgym observes ``Tuple(Discrete(2), Discrete(4))``; the batched env the ``MultiDiscrete([2, 4])``
``[mode, suit]``, compared through ``np.array(tuple)``. Exact on the same decks; in distribution
for a random policy; a scripted policy whose return is exact only without replacement."""

from __future__ import annotations

import card_reference as cards
import numpy as np
import pytest

import envs
from envs.popgym.autoencode import Autoencode

LEVELS = {"Easy": 1, "Medium": 2, "Hard": 3}  # difficulty: num_decks


def _package(level: str) -> str:
    return f"autoencode:Autoencode{level}"


def _encode(obs) -> np.ndarray:
    return np.array(obs, dtype=np.int64)


@pytest.mark.parametrize("level", LEVELS)
def test_registered_with_popgyms_parameters(level):
    env = envs.make(f"popgym/Autoencode{level}-v0", num_envs=2)
    theirs = cards.package_env(_package(level))
    assert env.num_decks == theirs.deck.num_decks == LEVELS[level]


@pytest.mark.parametrize("level", LEVELS)
def test_same_as_popgym_on_the_same_decks(level):
    length = 2 * 52 * LEVELS[level] - 1
    env = Autoencode(num_envs=2, num_decks=LEVELS[level])
    assert cards.side_by_side(env, _package(level), {"deck": "deck"}, _encode, 2 * length + 5) == 4


def test_random_returns_match_popgym_in_distribution():
    cards.assert_returns_match(Autoencode(num_envs=500), _package("Easy"), _encode,
                               cards.random_policy(4), 400, length=103)


@pytest.mark.parametrize("level", LEVELS)
def test_always_spades_scores_exactly_minus_one_half(level):
    """A quarter of the cards are spades, exactly (with replacement the return would vary)."""
    spades = lambda obs, rng: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    ours = cards.returns_batched(Autoencode(num_envs=64, num_decks=LEVELS[level]), spades, 64)
    assert np.allclose(ours, -0.5, atol=1e-4)
    if level == "Easy":
        theirs, _ = cards.returns_package(_package(level), _encode, spades, 20)
        assert np.allclose(theirs, -0.5)


@pytest.mark.parametrize("level", LEVELS)
def test_watch_then_play(level):
    """Watch mode shows every card of the deck once (13 of each suit per deck), then play mode
    shows the last card, then nothing (suit 0)."""
    c = 52 * LEVELS[level]
    env = Autoencode(num_envs=8, num_decks=LEVELS[level])
    seen = cards.one_episode_observations(env, cards.random_policy(4))
    assert seen.shape == (8, 2 * c, 2)
    assert (seen[:, : c - 1, 0] == 1).all() and (seen[:, c - 1 :, 0] == 0).all()
    counts = np.stack([np.bincount(row, minlength=4) for row in seen[:, :c, 1]])
    assert (counts == 13 * LEVELS[level]).all()
    assert (seen[:, c:, 1] == 0).all()


def test_reciting_backwards_scores_one():
    env = Autoencode(num_envs=8, num_decks=1)
    env.reset(seed=0)
    for t in range(103):
        _, reward, terminated, truncated, info = env.step(env.target())
        assert bool(terminated.all()) == (t == 102) and not truncated.any()
        assert (reward == 0).all() == (t < 51)
    assert np.allclose(info["episode_return"].numpy(), 1.0, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(TypeError, match="num_decks"):
        Autoencode(num_decks="2")
