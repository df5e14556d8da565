"""The batched deck (envs/popgym/deck.py): popgym's card numbering, dealing without replacement,
uniform shuffles (also after a restart), masks, determinism and the stack test hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from popgym.core.deck import Deck as PopgymDeck
from scipy import stats

from envs.popgym.deck import Deck, card_table, popgym_deal_order, shuffled

#: Both ways a deck shuffles (see Deck): whole decks at restart (the CPU's) and card by card
#: (an accelerator's), each run here on the CPU.
WAYS = pytest.mark.parametrize("whole", [True, False], ids=["whole-decks", "card-by-card"])


def _all(n: int) -> torch.Tensor:
    return torch.ones(n, dtype=torch.bool)


def _deal_all(deck: Deck, generator: torch.Generator) -> torch.Tensor:
    return torch.stack([deck.deal(generator) for _ in range(deck.num_cards)], dim=1)


@pytest.mark.parametrize("num_decks", [1, 2, 3, 16])
def test_card_tables_are_popgyms(num_decks):
    theirs = PopgymDeck(num_decks)
    for attribute in ("ranks", "suits", "colors"):
        table = card_table(attribute, 52 * num_decks)
        np.testing.assert_array_equal(table.numpy(), getattr(theirs, f"{attribute}_idx"))
    deck = Deck(2, num_decks)
    np.testing.assert_array_equal(deck.suit.numpy(), theirs.suits_idx)


def test_popgym_deal_order_is_the_order_popgym_deals():
    theirs = PopgymDeck(2)
    theirs.add_players("p")
    theirs.reset(rng=np.random.default_rng(3))
    order = popgym_deal_order(theirs.idx)
    for _ in range(theirs.num_cards):
        theirs.deal("p", 1)
    np.testing.assert_array_equal(theirs["p"], order)


@pytest.mark.parametrize("num_decks", [1, 3])
@WAYS
def test_every_card_once_per_deck_also_after_restarts(num_decks, whole):
    """Without replacement: a full deal is a permutation, and so is the next deck."""
    generator = torch.Generator().manual_seed(0)
    deck = Deck(64, num_decks, shuffles_whole_decks=whole)
    deck.restart(_all(64))
    for _ in range(2):
        cards = _deal_all(deck, generator)
        expected = torch.arange(deck.num_cards).expand(64, -1)
        assert torch.equal(cards.sort(dim=1).values, expected)
        assert torch.equal(deck.order(), cards)
        assert torch.equal(deck.remaining, torch.zeros(64, dtype=torch.int64))
        assert torch.equal(deck.card_at(torch.full((64,), 5)), cards[:, 5])
        deck.restart(_all(64))
        assert torch.equal(deck.remaining, torch.full((64,), deck.num_cards))


@WAYS
def test_shuffles_are_uniform_after_restarts(whole):
    """Where card 0 lands, and whether the first two cards share a suit (12/51, not the 1/4 of
    draws with replacement), over 20,000 decks dealt after 0 and after 1 earlier deck."""
    n = 20_000
    generator = torch.Generator().manual_seed(1)
    deck = Deck(n, 1, shuffles_whole_decks=whole)
    for round_ in range(2):
        deck.restart(_all(n))
        cards = _deal_all(deck, generator)
        where = (cards == 0).int().argmax(dim=1)
        counts = torch.bincount(where, minlength=52).numpy()
        assert stats.chisquare(counts).pvalue > 1e-4, (round_, counts)
        suits = deck.suit[cards]
        same = (suits[:, 0] == suits[:, 1]).double().mean().item()
        assert abs(same - 12 / 51) < 4 * np.sqrt(12 / 51 * 39 / 51 / n), (round_, same)


def test_shuffled_is_a_uniform_permutation_per_row():
    generator = torch.Generator().manual_seed(2)
    order = shuffled(20_000, 52, generator)
    assert torch.equal(order.sort(dim=1).values, torch.arange(52).expand(20_000, -1))
    counts = torch.bincount(order[:, 0], minlength=52).numpy()
    assert stats.chisquare(counts).pvalue > 1e-4


@WAYS
def test_restart_and_deal_follow_the_mask(whole):
    generator = torch.Generator().manual_seed(3)
    deck = Deck(4, 1, shuffles_whole_decks=whole)
    deck.restart(_all(4))
    first = _deal_all(deck, generator)[:, :10]
    deck.restart(torch.tensor([True, False, True, False]))
    assert deck.position.tolist() == [0, 52, 0, 52]
    deck.restart(_all(4))
    for _ in range(10):
        deck.deal(generator, torch.tensor([True, True, False, False]))
    assert deck.position.tolist() == [10, 10, 0, 0]
    dealt = torch.stack([deck.card_at(torch.full((4,), i)) for i in range(10)], dim=1)
    assert not torch.equal(dealt[:2], first[:2])  # fresh decks (a 1 in 52!/42! coincidence)


@WAYS
def test_same_generator_state_same_cards(whole):
    decks = [Deck(8, 2, shuffles_whole_decks=whole), Deck(8, 2, shuffles_whole_decks=whole)]
    dealt = []
    for deck in decks:
        generator = torch.Generator().manual_seed(7)
        deck.restart(_all(8))
        dealt.append(_deal_all(deck, generator))
    assert torch.equal(*dealt)


@WAYS
def test_stack_deals_the_given_order_again_and_again(whole):
    generator = torch.Generator().manual_seed(4)
    deck = Deck(3, 1, shuffles_whole_decks=whole)
    order = torch.stack([torch.randperm(52, generator=generator) for _ in range(3)])
    deck.stack(order, mask=torch.tensor([True, True, False]))
    for _ in range(2):
        deck.restart(_all(3))
        cards = _deal_all(deck, generator)
        assert torch.equal(cards[:2], order[:2])
        assert not torch.equal(cards[2], order[2])
    deck.unstack()
    deck.restart(_all(3))
    assert not torch.equal(_deal_all(deck, generator)[:2], order[:2])
    # stacked between a restart and the next deal: the stacked order, not a fresh shuffle
    deck.restart(_all(3))
    deck.stack(order)
    assert torch.equal(_deal_all(deck, generator), order)
    with pytest.raises(ValueError, match="permutation"):
        deck.stack(torch.zeros(52, dtype=torch.int64))
