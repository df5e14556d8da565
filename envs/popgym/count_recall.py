"""POPGym's CountRecall: say how often a queried card has been dealt so far."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int
from envs.popgym.deck import ATTRIBUTES, DECK_SIZE, Deck, card_table


class CountRecall(BatchedEnv):
    """CountRecall: a card is dealt and another one queried; say how often the queried kind of
    card has been dealt so far.

    Mirrors ``popgym.envs.count_recall.CountRecall`` (popgym 1.0.7; Morad et al., ICLR 2023).
    Two independent shoes of ``num_decks`` decks each are shuffled: one deals the *value* card,
    the other the *query* card, one of each per step, without replacement. Cards are told apart
    only by ``deck_type`` (their colour, suit or rank). The answer given at a step is scored
    against the count, among the value cards dealt up to and including that step's observation,
    of the kind named by that observation's query. The agent keeps one counter per kind.

    ## Action Space
    ``Discrete(C / d + 1)``, with ``C = 52 * num_decks`` cards and ``d`` kinds (2 colours,
    4 suits or 13 ranks): a count, from 0 to the number of cards of one kind (26, 26, 16 for
    Easy, Medium, Hard).

    ## Observation Space
    ``MultiDiscrete([d, d])``, as popgym: ``[value kind, query kind]`` of the cards just dealt
    (indices as popgym's ``colors_idx``/``suits_idx``/``ranks_idx``), int64 ``[num_envs, 2]``.

    ## Rewards
    Every step: ``+1 / (C - 1)`` for the right count, ``-1 / (C - 1)`` for a wrong one; the return
    lies in [-1, 1]. (popgym's ``error_clamp`` argument, which its docstring says would make the
    reward decrease linearly with the error, is not used by popgym's code; it is left out here.)

    ## Starting State
    Two freshly shuffled shoes; their first cards are on show and the value card is counted.

    ## Episode End
    Terminated when the value shoe is empty: after ``C - 1`` steps (51, 103, 207 for Easy,
    Medium, Hard). Never truncated (``max_episode_steps`` is None).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and, as popgym:

    - ``num_decks`` (int >= 1, default 1): decks per shoe; sets the episode length;
    - ``deck_type`` (``"colors"``, ``"suits"`` or ``"ranks"``, default ``"colors"``): what tells
      cards apart.

    ``popgym/CountRecallEasy-v0``: 1 deck, colours; ``Medium``: 2 decks, suits; ``Hard``:
    4 decks, ranks (popgym's ``CountRecallEasy``/``Medium``/``Hard``).

    Umbra's older ``umbra/CountRecall*-v0`` (:class:`envs.pomdp.repeat.CountRecall`) is a
    different task: one symbol per step drawn with replacement, the question about the symbol on
    show, counts clipped at 8, truncated after a fixed length.

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "POPGym CountRecall: count how often the queried kind of card was dealt."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.count_recall:CountRecall"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_decks: int = 1,
        deck_type: str = "colors",
    ):
        self.num_decks = check_int("num_decks", num_decks, 1)
        if deck_type not in ATTRIBUTES:
            raise ValueError(
                f"deck_type must be one of {sorted(ATTRIBUTES)}, got {deck_type!r}"
            )
        self.deck_type = deck_type
        self.num_kinds = ATTRIBUTES[deck_type]
        num_cards = DECK_SIZE * self.num_decks
        self.max_card_count = num_cards // self.num_kinds
        self.single_observation_space = gym.spaces.MultiDiscrete(
            np.array([self.num_kinds] * 2, dtype=np.int64)
        )
        self.single_action_space = gym.spaces.Discrete(self.max_card_count + 1)
        self.reward_scale = 1.0 / (num_cards - 1)
        super().__init__(num_envs, device, debug)
        self.value_deck = Deck(self.num_envs, self.num_decks, self.device)
        self.query_deck = Deck(self.num_envs, self.num_decks, self.device)
        self._kind = card_table(deck_type, num_cards, self.device)
        self._kinds = torch.arange(self.num_kinds, device=self.device)
        n = self.num_envs
        #: Value cards of each kind dealt so far, ``[num_envs, num_kinds]``.
        self.counts = torch.zeros(n, self.num_kinds, dtype=torch.int64, device=self.device)
        self.value = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.query = torch.zeros(n, dtype=torch.int64, device=self.device)

    def target(self) -> torch.Tensor:
        """``[num_envs]``: the count the current step's answer is scored against."""
        return self.counts.gather(1, self.query[:, None])[:, 0]

    def _deal(self, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        value = self._kind[self.value_deck.deal(self.generator, mask)]
        query = self._kind[self.query_deck.deal(self.generator, mask)]
        return value, query

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.value_deck.restart(mask)
        self.query_deck.restart(mask)
        value, query = self._deal(mask)
        self.value = torch.where(mask, value, self.value)
        self.query = torch.where(mask, query, self.query)
        fresh = (self.value[:, None] == self._kinds).to(torch.int64)
        self.counts = torch.where(mask[:, None], fresh, self.counts)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward = torch.where(actions == self.target(), self.reward_scale, -self.reward_scale)
        self.value, self.query = self._deal()
        self.counts = self.counts + (self.value[:, None] == self._kinds).to(torch.int64)
        return reward, self.value_deck.remaining == 0

    def _observe(self) -> torch.Tensor:
        return torch.stack((self.value, self.query), dim=1)
