"""POPGym's Autoencode: watch a deck being dealt, then recite its suits backwards."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int
from envs.popgym.deck import DECK_SIZE, NUM_SUITS, Deck

#: popgym's ``Mode``: the first entry of an observation.
PLAY, WATCH = 0, 1


class Autoencode(BatchedEnv):
    """Autoencode: watch the whole deck being dealt, then name its suits in reverse order.

    Mirrors ``popgym.envs.autoencode.Autoencode`` (popgym 1.0.7; Morad et al., ICLR 2023).
    ``num_decks`` decks of ``C = 52 * num_decks`` cards are shuffled together. In the watch phase
    one card is dealt per step (the first one at reset) and its suit shown; actions are ignored.
    The step that deals the last card switches to the play phase: from then on each action names
    a suit, scored against the cards in reverse order (the last card dealt first, the first one
    last).

    ## Action Space
    ``Discrete(4)``: a suit (popgym's ``suits_idx``: 0 spades, 1 diamonds, 2 clubs, 3 hearts).

    ## Observation Space
    ``MultiDiscrete([2, 4])``, int64 ``[num_envs, 2]``: ``[mode, suit]``. popgym's observation is
    the ``Tuple(Discrete(2), Discrete(4))`` ``(mode, suit)``; ``tuple(obs)`` gives it back (the
    batched contract holds no Tuple). ``mode`` is 1 while watching and 0 once playing (popgym's
    ``Mode.WATCH``, ``Mode.PLAY``); ``suit`` is the suit of the card just dealt, including the
    last one on the step that switches to play, and 0 on the later play steps (popgym shows the
    suit of card id 0 there, which is 0: no information).

    ## Rewards
    0 while watching; every play step ``+1 / C`` for the right suit, ``-1 / C`` for another. The
    return lies in [-1, 1]; guessing gives about -0.5.

    ## Starting State
    A freshly shuffled deck; its first card is dealt and shown, in watch mode.

    ## Episode End
    Terminated after the ``C``-th answer: ``C - 1`` watch steps and ``C`` play steps, ``2C - 1``
    steps in all (103, 207, 311 for Easy, Medium, Hard; popgym's ``max_episode_length``). Never
    truncated (``max_episode_steps`` is None).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and, as popgym,
    ``num_decks`` (int >= 1, default 1): decks shuffled together.

    ``popgym/AutoencodeEasy-v0``: 1 deck; ``Medium``: 2; ``Hard``: 3 (popgym's
    ``AutoencodeEasy``/``Medium``/``Hard``).

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "POPGym Autoencode: watch a deck's suits, then recite them in reverse order."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.autoencode:Autoencode"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_decks: int = 1,
    ):
        self.num_decks = check_int("num_decks", num_decks, 1)
        self.num_cards = DECK_SIZE * self.num_decks
        self.single_observation_space = gym.spaces.MultiDiscrete(
            np.array([2, NUM_SUITS], dtype=np.int64)
        )
        self.single_action_space = gym.spaces.Discrete(NUM_SUITS)
        self.reward_scale = 1.0 / self.num_cards
        super().__init__(num_envs, device, debug)
        self.deck = Deck(self.num_envs, self.num_decks, self.device)
        #: Answers given so far in the play phase, ``[num_envs]``.
        self.answered = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def target(self) -> torch.Tensor:
        """``[num_envs]``: the suit the next answer is scored against (in the play phase)."""
        return self.deck.suit[self.deck.card_at(self.num_cards - 1 - self.answered)]

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.deck.restart(mask)
        self.deck.deal(self.generator, mask)
        self.answered = torch.where(mask, 0, self.answered)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        playing = self.deck.remaining == 0
        reward = torch.where(actions == self.target(), self.reward_scale, -self.reward_scale)
        reward = torch.where(playing, reward, 0.0)
        terminated = playing & (self.answered == self.num_cards - 1)
        self.answered = self.answered + playing.to(torch.int64)
        self.deck.deal(self.generator, ~playing)
        return reward, terminated

    def _observe(self) -> torch.Tensor:
        mode = torch.where(self.deck.remaining > 0, WATCH, PLAY)
        suit = self.deck.suit[self.deck.card_at(self.deck.position - 1)]
        suit = torch.where(self.answered == 0, suit, 0)
        return torch.stack((mode, suit), dim=1)
