"""popgym/RepeatPrevious*: the batched env against popgym's RepeatPrevious (card_reference.py).

Exact on the same decks; in distribution for a random and a scripted policy; an exact count that
draws with replacement would fail (every suit 13 times per deck in an episode)."""

from __future__ import annotations

import card_reference as cards
import numpy as np
import pytest

import envs
from envs.popgym.repeat_previous import RepeatPrevious

LEVELS = {  # difficulty: (keyword arguments, episode length)
    "Easy": ({"num_decks": 1, "k": 4}, 51),
    "Medium": ({"num_decks": 2, "k": 32}, 103),
    "Hard": ({"num_decks": 3, "k": 64}, 155),
}


def _package(level: str) -> str:
    return f"repeat_previous:RepeatPrevious{level}"


@pytest.mark.parametrize("level", LEVELS)
def test_registered_with_popgyms_parameters(level):
    env = envs.make(f"popgym/RepeatPrevious{level}-v0", num_envs=2)
    theirs = cards.package_env(_package(level))
    assert (env.num_decks, env.k) == (theirs.deck.num_decks, theirs.k)


@pytest.mark.parametrize("level", LEVELS)
def test_same_as_popgym_on_the_same_decks(level):
    kwargs, length = LEVELS[level]
    env = RepeatPrevious(num_envs=3, **kwargs)
    ends = cards.side_by_side(env, _package(level), {"deck": "deck"}, np.asarray, 2 * length + 7)
    assert ends == 6


def _repeat_on_show(obs, rng):
    return obs.astype(np.int64)


@pytest.mark.parametrize(("policy", "episodes"),
                         [(cards.random_policy(4), 600), (_repeat_on_show, 400)])
def test_returns_match_popgym_in_distribution(policy, episodes):
    cards.assert_returns_match(RepeatPrevious(num_envs=500), _package("Easy"), np.asarray, policy,
                               episodes, length=51)


def test_repeating_the_card_on_show_is_worse_than_chance():
    """Answering the suit on show is right when the card 3 back has the same suit: 12/51 of the
    time without replacement (mean return -0.529), 1/4 with it (-0.5)."""
    ours = cards.returns_batched(RepeatPrevious(num_envs=4000), _repeat_on_show, 4000)
    se = ours.std() / np.sqrt(len(ours))
    assert abs(ours.mean() - (2 * 12 / 51 - 1)) < 4 * se
    assert abs(ours.mean() + 0.5) > 4 * se


@pytest.mark.parametrize("level", LEVELS)
def test_an_episode_deals_each_suit_13_times_per_deck(level):
    kwargs, length = LEVELS[level]
    env = RepeatPrevious(num_envs=32, **kwargs)
    seen = cards.one_episode_observations(env, cards.random_policy(4))
    assert seen.shape == (32, length + 1)
    counts = np.stack([np.bincount(row, minlength=4) for row in seen])
    assert (counts == 13 * kwargs["num_decks"]).all()


def test_optimal_and_lengths():
    env = RepeatPrevious(num_envs=8, num_decks=2, k=32)
    obs, _ = env.reset(seed=0)
    for t in range(103):
        obs, reward, terminated, truncated, info = env.step(env.target())
        assert bool(terminated.all()) == (t == 102) and not truncated.any()
    assert np.allclose(info["episode_return"].numpy(), 1.0, atol=1e-5)
    assert (info["episode_length"] == 103).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be below"):
        RepeatPrevious(num_decks=1, k=52)
    with pytest.raises(ValueError, match="k must be at least 1"):
        RepeatPrevious(k=0)
    with pytest.raises(TypeError, match="num_decks"):
        RepeatPrevious(num_decks=1.5)
