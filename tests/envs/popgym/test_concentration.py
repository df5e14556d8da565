"""popgym/Concentration*: the batched Concentration against popgym's (popgym.envs.concentration).

Parameters equal the package's (spaces and seeding: test_contract.py); stepped side by side from
popgym's shuffled decks, every observation, reward and end flag agrees; the deck is a permutation
(each face exactly ``n / V`` times, and two positions share a face with the without-replacement
probability); a random policy and a perfect-memory player get the package's returns and lengths, and
the same player on a deck drawn with replacement (the control) does not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from envs.popgym.concentration import Concentration
from tests.envs.popgym.boards_reference import (
    Z,
    assert_same_episodes,
    batched_episodes,
    mean_gap,
    package_episodes,
    reset_packages,
    side_by_side,
)

concentration = pytest.importorskip("popgym.envs.concentration")

LEVELS = ["Easy", "Medium", "Hard"]


def _package(level: str):
    return getattr(concentration, f"Concentration{level}")


@pytest.mark.parametrize("level", LEVELS)
def test_parameters_are_popgyms(level):
    package = _package(level)()
    env = envs.make(f"popgym/Concentration{level}-v0")
    assert env.num_cards == package.deck.num_cards
    assert env.num_faces == package.facedown_card
    assert env.success_reward == pytest.approx(package.success_reward_scale)
    assert env.failure_reward == pytest.approx(package.failure_reward_scale)
    np.testing.assert_array_equal(env.faces.numpy(), package.deck_idx_type)


@pytest.mark.parametrize("level", LEVELS)
def test_side_by_side_from_popgyms_decks(level):
    """Same decks, same flips: same observations, rewards and episode ends at every step."""
    count = 24
    packages = reset_packages(_package(level), count)
    cards = torch.tensor(np.stack([p.deck.idx for p in packages]))
    env = envs.make(f"popgym/Concentration{level}-v0", num_envs=count)
    # Copy i plays well with probability aim[i] (a face-down card, then its match); otherwise
    # it may flip the same card twice, a face-up card, or any card: every branch, both kinds of
    # episode end.
    aim = np.linspace(0.0, 1.0, count)

    def choose(packages, rng):
        actions = []
        for i, p in enumerate(packages):
            in_play, up = p.deck["in_play_idx"], p.deck["face_up_idx"]
            down = np.setdiff1d(np.arange(p.deck.num_cards), up)
            u = rng.random()
            if down.size == 0:  # this package's episode has ended
                actions.append(0)
            elif u < aim[i] and in_play:
                same = np.flatnonzero(p.state == p.state[in_play[0]])
                actions.append(rng.choice(np.setdiff1d(np.intersect1d(same, down), in_play)))
            elif u < aim[i]:
                actions.append(rng.choice(down))
            elif in_play and u < aim[i] + 0.05:
                actions.append(in_play[0])
            elif up and u < aim[i] + 0.1:
                actions.append(rng.choice(up))
            else:
                actions.append(rng.integers(p.deck.num_cards))
        return np.array(actions, dtype=np.int64)

    ends = side_by_side(env, packages, {"cards": cards}, choose)
    assert ends["terminated"] > 0 and ends["truncated"] > 0


def test_last_pair_at_the_time_limit_sets_both_flags():
    """26 wasted turns (a card flipped twice), then 26 pairs: the last pair at step 104 = L."""
    packages = reset_packages(concentration.ConcentrationEasy, 1)
    package = packages[0]
    order = np.argsort(package.state, kind="stable")  # positions grouped by face
    pairs = order.reshape(-1, 2)

    def script(packages, rng):
        t = package.curr_step
        if t < 52:
            return np.array([t // 2])
        return np.array([pairs[(t - 52) // 2, t % 2]])

    env = Concentration(num_decks=1, deck_type="colors")
    cards = torch.tensor(package.deck.idx[None])
    assert side_by_side(env, packages, {"cards": cards}, script) == {
        "terminated": 0, "truncated": 0, "both": 1
    }


# ---------------------------------------------------------------------------- the deck
@pytest.mark.parametrize("deck_type", ["colors", "ranks"])
def test_the_deck_is_dealt_without_replacement(deck_type):
    """Flip every position once, in order (4,000 copies): every card id is dealt exactly once, so
    every face appears exactly n / V times, and two neighbouring positions show the same face
    with probability (n/V - 1) / (n - 1) (25/51 for colours, 3/51 for ranks), not 1/V as with
    replacement: measured over the 51 neighbouring pairs of every layout."""
    env = Concentration(num_envs=4_000, deck_type=deck_type)
    env.reset(seed=0)
    n, faces = env.num_cards, env.num_faces
    for position in range(n):
        *_, terminated, _, _ = env.step(torch.full((env.num_envs,), position))
        assert not terminated.any()  # no copy matched all its pairs in a row
    assert (env.cards.sort(dim=1).values == torch.arange(n)).all()
    values = env.faces[env.cards]
    counts = torch.zeros(env.num_envs, faces, dtype=torch.int64)
    counts.scatter_add_(1, values, torch.ones_like(values))
    assert (counts == n // faces).all()
    same = (values[:, 1:] == values[:, :-1]).double()
    expected = (n // faces - 1) / (n - 1)
    per_deck = same.mean(dim=1)  # one value per deck: decks are independent
    se = per_deck.std().item() / env.num_envs**0.5
    assert abs(per_deck.mean().item() - expected) <= Z * se
    assert abs(expected - 1 / faces) > 2 * Z * se  # the test tells the two apart


def test_cards_are_dealt_when_first_flipped():
    """A position gets its card at its first flip and keeps it; unflipped positions have none."""
    env = Concentration(num_envs=64, num_decks=2, deck_type="colors")
    env.reset(seed=0)
    assert (env.cards == -1).all()
    env.step(torch.full((64,), 5))
    dealt = env.cards[:, 5].clone()
    assert (dealt >= 0).all() and (env.cards[:, :5] == -1).all()
    env.step(torch.full((64,), 9))
    env.step(torch.full((64,), 5))
    assert torch.equal(env.cards[:, 5], dealt)
    assert ((env.cards >= 0).sum(dim=1) == 2).all()


# ---------------------------------------------------------------------------- policies
class PerfectMemory:
    """The batched perfect-memory player: remember every face seen; on a turn's first flip turn a
    known face-down pair if there is one, else the lowest unknown position; on the second flip
    turn a known match of the first card, else the lowest unknown position. It never flips a
    face-up card, so turns alternate with the step index."""

    def __init__(self, env: Concentration):
        self.env = env
        self.known = torch.full((env.num_envs, env.num_cards), -1, dtype=torch.int64)
        self.first = torch.zeros(env.num_envs, dtype=torch.int64)

    def __call__(self, obs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        env, positions = self.env, torch.arange(self.env.num_cards)
        self.known = torch.where((t == 0)[:, None], -1, self.known)
        self.known = torch.where(obs != env.num_faces, obs, self.known)
        unknown = self.known < 0
        known_down = ~unknown & ~env.face_up
        face = self.known.clamp(min=0)
        counts = torch.zeros(env.num_envs, env.num_faces, dtype=torch.int64)
        counts.scatter_add_(1, face, known_down.long())
        pair = known_down & (counts.gather(1, face) >= 2)
        opening = torch.where(pair.any(1), _lowest(pair), _lowest(unknown))
        first_face = self.known.gather(1, self.first[:, None])
        other = positions != self.first[:, None]
        mate = known_down & (self.known == first_face) & other
        closing = torch.where(mate.any(1), _lowest(mate), _lowest(unknown & other))
        action = torch.where(t % 2 == 1, closing, opening)
        self.first = action
        return action


def _lowest(mask: torch.Tensor) -> torch.Tensor:
    return mask.to(torch.uint8).argmax(dim=1)


def _perfect_memory_package():
    """The same player for one package environment."""
    memory = {}

    def policy(package, obs, t):
        if t == 0:
            memory["known"] = np.full(package.deck.num_cards, -1)
        known = memory["known"]
        shown = obs != package.facedown_card
        known[shown] = obs[shown]
        up = np.zeros(known.size, dtype=bool)
        up[package.deck["face_up_idx"]] = True
        unknown, known_down = known < 0, (known >= 0) & ~up
        if t % 2 == 0:
            counts = np.bincount(known[known_down], minlength=package.facedown_card)
            pair = known_down & (counts[np.maximum(known, 0)] >= 2)
            action = np.argmax(pair) if pair.any() else np.argmax(unknown)
        else:
            first = memory["first"]
            other = np.arange(known.size) != first
            mate = known_down & (known == known[first]) & other
            action = np.argmax(mate) if mate.any() else np.argmax(unknown & other)
        memory["first"] = int(action)
        return int(action)

    return policy


@pytest.mark.parametrize("level", ["Easy", "Hard"])
def test_perfect_memory_gets_popgyms_returns_and_lengths(level):
    """1,000 batched episodes (250 copies, 4 episodes each: decks restarted by autoresets
    too) and 250 package episodes: mean return, length and end rates agree within 4 standard
    errors (the player always clears the deck within popgym's time limit). The control: the
    same player on 250 decks drawn with replacement (``options`` cards from ``randint``) ends
    differently, by more than 4 standard errors."""
    env = envs.make(f"popgym/Concentration{level}-v0", num_envs=250)  # 4 episodes each
    ours = batched_episodes(env, PerfectMemory(env), episodes=4)
    assert ours.terminated.all()
    theirs = package_episodes(_package(level)(), _perfect_memory_package(), 250)
    assert_same_episodes(ours, theirs, f"perfect memory, {level}")

    generator = torch.Generator().manual_seed(3)
    drawn = torch.randint(env.num_cards, (env.num_envs, env.num_cards), generator=generator)
    wrong = batched_episodes(env, PerfectMemory(env), episodes=1, options={"cards": drawn})
    gap, se = mean_gap(wrong.returns, theirs.returns)
    assert abs(gap) > Z * se, "a deck with replacement passes for popgym's"


def test_random_policy_gets_popgyms_returns():
    """Easy, uniform random flips: 2,000 batched and 400 package episodes agree within 4 SE."""
    env = envs.make("popgym/ConcentrationEasy-v0", num_envs=2_000)
    generator = torch.Generator().manual_seed(1)
    ours = batched_episodes(
        env, lambda obs, t: torch.randint(52, (obs.shape[0],), generator=generator), episodes=1
    )
    rng = np.random.default_rng(1)
    theirs = package_episodes(
        concentration.ConcentrationEasy(), lambda p, obs, t: int(rng.integers(52)), 400
    )
    assert_same_episodes(ours, theirs, "random policy")


# ---------------------------------------------------------------------------- arguments
def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="deck_type"):
        Concentration(deck_type="suits")
    with pytest.raises(ValueError, match="num_decks"):
        Concentration(num_decks=0)
    env = Concentration(num_envs=2)
    with pytest.raises(ValueError, match="card ids"):
        env.reset(options={"cards": torch.full((2, 52), 52)})
