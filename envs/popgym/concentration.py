"""POPGym's Concentration: turn cards of a face-down deck two at a time and remember them."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int
from envs.popgym.deck import ATTRIBUTES, DECK_SIZE, Deck, card_table

#: The faces a Concentration deck can match on (popgym has no "suits": 13 of a suit is odd).
DECK_TYPES = ("colors", "ranks")


class Concentration(BatchedEnv):
    """Concentration (the memory card game): find the pairs of a shuffled face-down deck.

    Mirrors ``popgym.envs.concentration.Concentration`` (popgym 1.0.7). ``num_decks`` decks of
    52 cards are shuffled (a permutation: every card exactly once) and laid face down, one card
    per position. A turn flips two cards, one per step. If they match (same colour, or same rank,
    by ``deck_type``) they stay face up; otherwise both go face down again after the step that
    showed them. The agent must remember the faces it has seen to match them later.

    ## Action Space
    ``Discrete(n)``, ``n = 52 * num_decks``: the position of the card to flip.

    ## Observation Space
    ``MultiDiscrete([V + 1] * n)`` (int64), with ``V`` the number of faces (2 colours or 13
    ranks): for each position its face ``0 .. V-1`` if it is face up or was flipped in this turn
    (including the second card of a turn, shown for that one step), ``V`` if it is face down. All
    ``V`` at the start of an episode. As in popgym.

    ## Rewards
    With ``L`` the episode length below: ``+1 / (n // 2)`` for a matching pair (two different
    positions with the same face, neither face up); ``-2 / L`` for a second card that does not
    match the first (or is the first again); ``-1 / L`` per card of the turn (1 or 2) when the
    card flipped is already face up, which also ends the turn; 0 for the first card of a turn.
    Matching every pair returns 1 minus the penalties.

    ## Starting State
    Every card face down, the deck in a uniformly random order. The cards are dealt lazily: the
    card under a position is drawn, uniformly among the cards not dealt yet, the first time that
    position is flipped (one Fisher-Yates step of the shared :class:`envs.popgym.deck.Deck`, O(1)
    per copy and step instead of a full shuffle at every reset). Since a face-down card is never
    observed, this is the same game as popgym's, which shuffles ``Deck.idx`` with ``np_random``
    at reset: the faces seen follow the same law. ``cards`` holds the card dealt to each position
    so far (-1: not dealt yet). ``reset(options={"cards": c})``, with ``c`` an int64 tensor
    ``[num_envs, n]`` of card ids (popgym's ``deck.idx``: the card at each position), deals every
    copy that whole layout instead (the tests copy popgym's deck with it); automatic resets deal
    afresh.

    ## Episode End
    Terminated when every card is face up. Truncated after ``L = ceil(2n - n / (2n - 1))`` steps
    (``max_episode_steps``; 104 for one deck, 208 for two): popgym's estimate of the steps a
    player with perfect memory needs. Both flags are set when the last pair is found at step
    ``L``, as popgym returns them.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_decks`` (int >= 1, default 1): decks of 52 cards in play;
    - ``deck_type`` (``"colors"`` or ``"ranks"``, default ``"ranks"``): which faces match.

    ``popgym/ConcentrationEasy-v0``: one deck, colours; ``Medium``: two decks, colours; ``Hard``:
    one deck, ranks (popgym's ``ConcentrationEasy``, ``ConcentrationMedium``,
    ``ConcentrationHard``).

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "Find the pairs of a face-down shuffled deck (POPGym Concentration)."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.concentration:Concentration"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_decks: int = 1,
        deck_type: str = "ranks",
    ):
        self.num_decks = check_int("num_decks", num_decks, 1)
        if deck_type not in DECK_TYPES:
            raise ValueError(
                f"deck_type must be one of {DECK_TYPES} (an even count of each face), got "
                f"{deck_type!r}"
            )
        self.deck_type = deck_type
        n = self.num_cards = DECK_SIZE * self.num_decks
        self.episode_length = math.ceil(2 * n - (n / (2 * n - 1)))
        self.max_episode_steps = self.episode_length
        self.success_reward = 1.0 / (n // 2)
        self.failure_reward = -1.0 / self.episode_length
        self.num_faces = ATTRIBUTES[deck_type]
        self.single_observation_space = gym.spaces.MultiDiscrete(
            np.full(n, self.num_faces + 1, dtype=np.int64)
        )
        self.single_action_space = gym.spaces.Discrete(n)
        super().__init__(num_envs, device, debug)
        #: The face of every card id, ``[n]`` int64 (popgym's ``colors_idx`` / ``ranks_idx``).
        self.faces = card_table(deck_type, n, self.device)
        #: The cards not dealt yet, one deck per copy.
        self.deck = Deck(self.num_envs, self.num_decks, self.device)
        #: The card id dealt to every position, -1 where none is yet, ``[num_envs, n]`` int64.
        self.cards = torch.full((self.num_envs, n), -1, dtype=torch.int64, device=self.device)
        #: The face of every position's card, -1 where none is dealt yet (``faces[cards]``).
        self.values = torch.full_like(self.cards, -1)
        #: Positions matched so far, ``[num_envs, n]`` bool.
        self.face_up = torch.zeros(self.num_envs, n, dtype=torch.bool, device=self.device)
        #: How many positions are face up, ``[num_envs]`` int64.
        self.matched = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        #: Positions whose face the observation shows (all of them dealt).
        self.shown = torch.zeros_like(self.face_up)
        #: The position flipped first in the current turn, -1 between turns, ``[num_envs]``.
        self.first = torch.full((self.num_envs,), -1, dtype=torch.int64, device=self.device)
        self._positions = torch.arange(n, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.deck.restart(mask)
        rows = mask[:, None]
        if options is not None and "cards" in options:  # reset() only: a whole layout
            cards = torch.where(rows, self._given_cards(options["cards"]), self.cards)
            self.cards = cards
            self.values = torch.where(cards >= 0, self.faces[cards.clamp(min=0)], -1)
        else:  # in place: runs at every step, and copies of [num_envs, n] are what costs
            self.cards.masked_fill_(rows, -1)
            self.values.masked_fill_(rows, -1)
        self.face_up.masked_fill_(rows, False)
        self.shown.masked_fill_(rows, False)
        self.first.masked_fill_(mask, -1)
        self.matched.masked_fill_(mask, 0)

    def _given_cards(self, cards: torch.Tensor) -> torch.Tensor:
        shape = (self.num_envs, self.num_cards)
        cards = torch.as_tensor(cards, device=self.device)
        if tuple(cards.shape) != shape or cards.dtype.is_floating_point:
            raise ValueError(
                f"options['cards'] must be integer card ids of shape {shape}, got "
                f"{cards.dtype} {tuple(cards.shape)}"
            )
        if bool(((cards < 0) | (cards >= self.num_cards)).any()):
            raise ValueError(f"options['cards'] must hold card ids in [0, {self.num_cards})")
        return cards.to(torch.int64)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flipped = actions.to(torch.int64)
        # Deal a card to the position flipped if it has none yet.
        card = self.cards.gather(1, flipped[:, None])[:, 0]
        new = card < 0
        card = torch.where(new, self.deck.deal(self.generator, mask=new), card)
        value = self.faces[card]
        self.cards.scatter_(1, flipped[:, None], card[:, None])
        self.values.scatter_(1, flipped[:, None], value[:, None])
        second = self.first >= 0  # this flip ends a turn
        first = self.first.clamp(min=0)
        flipped_hot = self._positions == flipped[:, None]
        first_hot = (self._positions == first[:, None]) & second[:, None]
        # What popgym's get_obs shows: face-up cards and the cards of this turn (before any of
        # them goes face down again).
        self.shown = self.face_up | flipped_hot | first_hot
        # The first card of a turn is never face up (a face-up first card ends its turn at once).
        already_up = self.face_up.gather(1, flipped[:, None])[:, 0]
        first_value = self.values.gather(1, first[:, None])[:, 0]
        match = second & ~already_up & (value == first_value) & (flipped != first)
        self.face_up = self.face_up | (match[:, None] & (flipped_hot | first_hot))
        in_turn = 1.0 + second.to(torch.float32)  # cards flipped in this turn
        mismatch = torch.where(second, 2 * self.failure_reward, 0.0)
        reward = torch.where(
            already_up,
            self.failure_reward * in_turn,
            torch.where(match, self.success_reward, mismatch),
        ).to(torch.float32)
        self.first = torch.where(second | already_up, -1, flipped)
        self.matched = self.matched + 2 * match.to(torch.int64)
        terminated = self.matched == self.num_cards
        return reward, terminated

    def _observe(self) -> torch.Tensor:
        return self.values.masked_fill(~self.shown, self.num_faces)  # shown: all dealt
