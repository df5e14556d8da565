"""POPGym's RepeatFirst: name the suit of the first card at every step."""

from __future__ import annotations

import gymnasium as gym
import torch

from envs.core import BatchedEnv, check_int
from envs.popgym.deck import DECK_SIZE, NUM_SUITS, Deck


class RepeatFirst(BatchedEnv):
    """RepeatFirst: at every step, name the suit of the first card dealt.

    Mirrors ``popgym.envs.repeat_first.RepeatFirst`` (popgym 1.0.7; Morad et al., ICLR 2023).
    ``num_decks`` decks of 52 cards are shuffled together and dealt one card per step, without
    replacement. Every step, including the first, asks for the suit of the episode's first card.
    Nothing marks the first card as first: an agent knows it from its memory being empty.

    ## Action Space
    ``Discrete(4)``: a suit (popgym's ``suits_idx``: 0 spades, 1 diamonds, 2 clubs, 3 hearts).

    ## Observation Space
    ``Discrete(4)``: the suit of the card on show, as popgym (an int64 tensor ``[num_envs]``).

    ## Rewards
    Every step, with ``C = 52 * num_decks``: ``+1 / (C - 1)`` for the first card's suit,
    ``-1 / (C - 1)`` for another. The return lies in [-1, 1]; guessing gives about -0.5.

    ## Starting State
    A freshly shuffled deck; its first card, the one to repeat, is on show.

    ## Episode End
    Terminated when the deck is empty: after ``C - 1`` steps (51, 415, 831 for Easy, Medium,
    Hard). Never truncated (``max_episode_steps`` is None).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and, as popgym,
    ``num_decks`` (int >= 1, default 1): decks shuffled together; sets the episode length.

    ``popgym/RepeatFirstEasy-v0``: 1 deck; ``Medium``: 8 decks; ``Hard``: 16 decks (popgym's
    ``RepeatFirstEasy``/``Medium``/``Hard``).

    Umbra's older ``umbra/RepeatFirst*-v0`` (:class:`envs.pomdp.repeat.RepeatFirst`) is a different
    task: symbols drawn with replacement, one-hot with a first-step flag, truncated after 52, 104
    or 156 steps.

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "POPGym RepeatFirst: name the suit of the deck's first card at every step."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.repeat_first:RepeatFirst"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_decks: int = 1,
    ):
        self.num_decks = check_int("num_decks", num_decks, 1)
        self.single_observation_space = gym.spaces.Discrete(NUM_SUITS)
        self.single_action_space = gym.spaces.Discrete(NUM_SUITS)
        self.reward_scale = 1.0 / (DECK_SIZE * self.num_decks - 1)
        super().__init__(num_envs, device, debug)
        self.deck = Deck(self.num_envs, self.num_decks, self.device)
        self._first = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def target(self) -> torch.Tensor:
        """``[num_envs]``: the suit every step asks for, the first card's."""
        return self.deck.suit[self.deck.card_at(self._first)]

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.deck.restart(mask)
        self.deck.deal(self.generator, mask)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward = torch.where(actions == self.target(), self.reward_scale, -self.reward_scale)
        self.deck.deal(self.generator)
        return reward, self.deck.remaining == 0

    def _observe(self) -> torch.Tensor:
        return self.deck.suit[self.deck.card_at(self.deck.position - 1)]
