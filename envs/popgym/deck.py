"""Batched decks of playing cards, dealt without replacement: the tensor form of
``popgym.core.deck.Deck``.

A card is an integer id ``c`` in ``[0, 52 * num_decks)``, numbered as popgym numbers them::

    rank(c)  = (c // 4) % 13     # 0 = ace, 1 = "2", ..., 9 = "10", 10 = jack, 11 = queen, 12 = king
    suit(c)  = c % 4             # 0 = spades, 1 = diamonds, 2 = clubs, 3 = hearts
    color(c) = c % 2             # 0 = black, 1 = red

(popgym's ``Deck.ranks_idx``, ``Deck.suits_idx`` and ``Deck.colors_idx``; :func:`card_table`
returns these lookups as tensors.) So a game that only shows suits, ranks or colours sees exactly
the counts of popgym's decks: 13 of each suit, 4 of each rank and 26 of each colour per deck.

Two ways to shuffle, both drawing only from the ``torch.Generator`` passed in:

- :func:`shuffled` returns a whole permutation per copy at once (``rand().argsort()``), for games
  that lay out every card at the start (e.g. a Concentration board);
- :class:`Deck` deals one card per copy at a time, as the card games do. On an accelerator
  ``deal`` is one step of a Fisher-Yates shuffle, so each step costs O(num_envs) whatever the deck
  size, and a fresh deck (``restart``) costs O(num_envs) too, with no synchronisation (see the
  class for how). On the CPU, where reading which copies restarted costs nothing, the copies that
  restart get a whole shuffled deck at once (:func:`shuffled`) and ``deal`` reads the next card.

Example::

    deck = Deck(num_envs=4096, num_decks=2, device="cuda")
    deck.restart(torch.ones(4096, dtype=torch.bool, device="cuda"))   # every copy: a fresh deck
    card = deck.deal(generator)             # [4096] card ids, each copy's next card
    suits = deck.suit[card]                 # [4096] popgym's suits_idx of those cards
    first = deck.card_at(torch.zeros_like(deck.position))   # each copy's first card this deck

For tests against the package, :func:`popgym_deal_order` turns a popgym ``Deck.idx`` into the
order its cards are dealt in, and :meth:`Deck.stack` makes a batched deck deal that order.
"""

from __future__ import annotations

import numpy as np
import torch

#: Cards in one deck, ranks, suits and colours: popgym's ``DECK_SIZE``, ``RANKS.size``,
#: ``SUITS.size``, ``COLORS.size``.
DECK_SIZE, NUM_RANKS, NUM_SUITS, NUM_COLORS = 52, 13, 4, 2

#: The attributes a card game can show, with the number of values each takes.
ATTRIBUTES = {"ranks": NUM_RANKS, "suits": NUM_SUITS, "colors": NUM_COLORS}


def card_table(attribute: str, num_cards: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Card id -> its rank, suit or colour index, as popgym's ``Deck.<attribute>_idx``.

    Args:
        attribute: ``"ranks"``, ``"suits"`` or ``"colors"``.
        num_cards: ``52 * num_decks``.
        device: Where the table lives.

    Returns:
        ``[num_cards]`` int64: ``table[c]`` is card ``c``'s index (see the module docstring).
    """
    cards = torch.arange(num_cards, device=device)
    if attribute == "ranks":
        return (cards // NUM_SUITS) % NUM_RANKS
    if attribute == "suits":
        return cards % NUM_SUITS
    if attribute == "colors":
        return cards % NUM_COLORS
    raise ValueError(f"attribute must be one of {sorted(ATTRIBUTES)}, got {attribute!r}")


def shuffled(
    num_envs: int, num_cards: int, generator: torch.Generator, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """One uniformly random permutation of ``range(num_cards)`` per copy, all at once.

    Sorts ``float64`` uniforms (a tie, which would bias the order, has probability below
    ``num_cards**2 / 2**53``). Costs ``O(num_envs * num_cards * log num_cards)``; to deal one card
    per step, :class:`Deck` costs less.

    Returns:
        ``[num_envs, num_cards]`` int64; row ``i`` is copy ``i``'s cards in the order dealt.
    """
    keys = torch.rand(
        (num_envs, num_cards), generator=generator, device=device, dtype=torch.float64
    )
    return keys.argsort(dim=1)


def popgym_deal_order(idx: np.ndarray) -> np.ndarray:
    """The order in which a popgym ``Deck`` with shuffled ``idx`` deals its cards.

    popgym's ``Deck.deal`` takes cards from the end of ``Deck.idx``: the first card dealt after
    ``reset`` is ``idx[-1]``. Test hook for :meth:`Deck.stack`.
    """
    return np.ascontiguousarray(np.asarray(idx)[::-1])


class Deck:
    """``num_envs`` decks of ``52 * num_decks`` cards, each dealt in its own random order.

    Each copy holds a deck that ``restart`` makes full again (all its cards, freshly shuffled) and
    ``deal`` takes one card from, never giving the same card twice before the next ``restart``:
    draws without replacement, as ``popgym.core.deck.Deck``.

    How, on an accelerator: ``deal`` is one step of a Fisher-Yates shuffle. The cards not dealt
    yet sit in ``order[position:]``; ``deal`` picks one of them uniformly, swaps it to
    ``order[position]`` and advances ``position``. Starting from any arrangement of the cards
    this deals a uniformly random permutation. A fresh deck starts from the identity
    arrangement, so that the same seed gives the same cards; to make that O(num_envs) rather
    than O(num_envs * num_cards), an entry of ``order`` counts only if its ``stamp`` equals the
    copy's ``epoch``, and ``restart`` bumps the epoch (an entry that does not count holds its
    own index, the identity).

    On the CPU (``shuffles_whole_decks``) it works otherwise, for speed: ``restart`` notes the
    copies whose deck is fresh, the next ``deal`` shuffles each of those decks whole with
    :func:`shuffled` (only their rows), and every ``deal`` reads the card at ``position``. Both
    ways deal uniformly random permutations without replacement; they draw from the generator
    in different orders, so a seed deals other cards on the CPU than on an accelerator (as
    torch's generators already do).

    Args:
        num_envs: Number of copies.
        num_decks: Decks shuffled together, popgym's ``num_decks`` (>= 1).
        device: Where the tensors live.
        shuffles_whole_decks: Which way to shuffle (None: whole decks on the CPU, card by card
            elsewhere); both run on any device, and the tests run both on the CPU.

    Attributes:
        num_cards: ``52 * num_decks``.
        rank, suit, color: ``[num_cards]`` int64 lookups, card id -> index (:func:`card_table`).
        position: ``[num_envs]`` int64, cards dealt since the last ``restart`` (``num_cards``
            when the deck is empty).
    """

    def __init__(self, num_envs: int, num_decks: int, device: str | torch.device = "cpu",
                 shuffles_whole_decks: bool | None = None):
        self.num_envs, self.num_decks = int(num_envs), int(num_decks)
        self.num_cards = DECK_SIZE * self.num_decks
        self.device = torch.device(device)
        self.shuffles_whole_decks = self.device.type == "cpu" if shuffles_whole_decks is None \
            else bool(shuffles_whole_decks)
        self.rank = card_table("ranks", self.num_cards, self.device)
        self.suit = card_table("suits", self.num_cards, self.device)
        self.color = card_table("colors", self.num_cards, self.device)
        n, c = self.num_envs, self.num_cards
        self.position = torch.zeros(n, dtype=torch.int64, device=self.device)
        self._order = torch.zeros(n, c, dtype=torch.int64, device=self.device)
        self._stamp = torch.full((n, c), -1, dtype=torch.int64, device=self.device)
        self._epoch = torch.zeros(n, dtype=torch.int64, device=self.device)
        self._stacked = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._rows = torch.arange(n, device=self.device)
        #: Whole-deck shuffling: the copies whose deck the next ``deal`` shuffles.
        self._unshuffled = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._any_unshuffled = False

    # ------------------------------------------------------------------ the API
    @property
    def remaining(self) -> torch.Tensor:
        """``[num_envs]`` int64: cards left to deal in each copy's deck (``len`` of popgym's)."""
        return self.num_cards - self.position

    def restart(self, mask: torch.Tensor) -> None:
        """Give the copies where ``mask`` ([num_envs] bool) a full, freshly shuffled deck.

        Nothing is dealt. A stacked copy (:meth:`stack`) deals its stacked order again.
        """
        if self.shuffles_whole_decks:
            self._unshuffled |= mask & ~self._stacked
            self._any_unshuffled = True
        else:
            self._epoch = torch.where(mask & ~self._stacked, self._epoch + 1, self._epoch)
        self.position = torch.where(mask, 0, self.position)

    def deal(self, generator: torch.Generator, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Deal the next card of every copy (of the copies where ``mask``, if given).

        Args:
            generator: The environment's generator (the only source of randomness).
            mask: ``[num_envs]`` bool; copies where it is false keep their deck (and get the
                card they would have been dealt, which is not removed). ``None``: every copy.
                Dealing from an empty deck is the caller's error; it is not checked (that would
                synchronise) and gives the last card again.

        Returns:
            ``[num_envs]`` int64 card ids.
        """
        here = self.position.clamp(max=self.num_cards - 1)
        if self.shuffles_whole_decks:
            self._shuffle_fresh(generator)
            dealt = self._order.gather(1, here[:, None])[:, 0]
        else:
            dealt = self._swap_in(generator, here, mask)
        moved = self.position + 1 if mask is None else self.position + mask.to(torch.int64)
        self.position = moved.clamp(max=self.num_cards)
        return dealt

    def _swap_in(self, generator: torch.Generator, here: torch.Tensor,
                 mask: torch.Tensor | None) -> torch.Tensor:
        """One Fisher-Yates step: swap a random undealt card to ``here``; that card."""
        uniform = torch.rand(self.num_envs, generator=generator, device=self.device,
                             dtype=torch.float64)
        left = (self.num_cards - here).to(torch.float64)
        pick = here + (uniform * left).to(torch.int64).clamp(max=self.num_cards - 1 - here)
        keep = self._stacked if mask is None else self._stacked | ~mask
        pick = torch.where(keep, here, pick)  # no swap: a stacked deck, a copy not dealt to
        card, dealt = self._read(here), self._read(pick)
        self._write(pick, card)
        self._write(here, dealt)
        return dealt

    def _shuffle_fresh(self, generator: torch.Generator) -> None:
        """Whole-deck shuffling: shuffle the decks restarted since the last deal (their rows)."""
        if not self._any_unshuffled:
            return
        rows = self._unshuffled.nonzero()[:, 0]
        if len(rows):
            self._order[rows] = shuffled(len(rows), self.num_cards, generator, self.device)
        self._unshuffled.zero_()
        self._any_unshuffled = False

    def card_at(self, index: torch.Tensor) -> torch.Tensor:
        """The card each copy dealt ``index``-th (0-based) since its ``restart``.

        Args:
            index: ``[num_envs]`` int64, below each copy's ``position`` (a larger one reads a
                card not dealt yet: meaningless, and not checked). Clamped to the deck.
        """
        index = index.clamp(0, self.num_cards - 1)
        if self.shuffles_whole_decks:
            return self._order.gather(1, index[:, None])[:, 0]
        return self._read(index)

    def order(self) -> torch.Tensor:
        """``[num_envs, num_cards]``: the dealt cards first, in order, then the undealt ones in an
        arbitrary order (for tests and rendering; O(num_envs * num_cards))."""
        if self.shuffles_whole_decks:
            return self._order.clone()
        identity = torch.arange(self.num_cards, device=self.device).expand(self.num_envs, -1)
        live = self._stamp == self._epoch[:, None]
        return torch.where(live, self._order, identity)

    # ------------------------------------------------------------------ test hooks
    def stack(self, order: torch.Tensor | np.ndarray, mask: torch.Tensor | None = None) -> None:
        """Test hook: the copies where ``mask`` (default: all) deal ``order`` from now on.

        Args:
            order: ``[num_envs, num_cards]`` (or ``[num_cards]`` for every copy), each row a
                permutation of the card ids, in the order to deal them (from a popgym deck:
                :func:`popgym_deal_order` of its ``idx``).
            mask: ``[num_envs]`` bool, the copies to stack.

        A stacked copy's ``deal`` takes the cards in that order without shuffling, and every
        ``restart`` (an environment's reset, an episode end) deals the same order again, until
        :meth:`unstack`. Does not change ``position``: stack, then reset the environment.
        """
        order = torch.as_tensor(np.asarray(order), dtype=torch.int64, device=self.device)
        order = order.expand(self.num_envs, self.num_cards)
        if not torch.equal(order.sort(dim=1).values,
                           torch.arange(self.num_cards, device=self.device).expand_as(order)):
            raise ValueError(f"every row of order must be a permutation of range({self.num_cards})")
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device) \
            if mask is None else mask.to(self.device)
        self._epoch = torch.where(mask, self._epoch + 1, self._epoch)
        self._order = torch.where(mask[:, None], order, self._order)
        self._stamp = torch.where(mask[:, None], self._epoch[:, None], self._stamp)
        self._stacked = self._stacked | mask
        self._unshuffled &= ~mask

    def unstack(self) -> None:
        """Undo :meth:`stack`: every copy shuffles again from its next ``restart``."""
        self._stacked = torch.zeros_like(self._stacked)

    # ------------------------------------------------------------------ lazy identity
    def _read(self, index: torch.Tensor) -> torch.Tensor:
        column = index[:, None]
        live = self._stamp.gather(1, column)[:, 0] == self._epoch
        return torch.where(live, self._order.gather(1, column)[:, 0], index)

    def _write(self, index: torch.Tensor, value: torch.Tensor) -> None:
        column = index[:, None]
        # In place: O(num_envs) per call, where an out-of-place scatter would copy the decks.
        self._order.scatter_(1, column, value[:, None])
        self._stamp.scatter_(1, column, self._epoch[:, None])
