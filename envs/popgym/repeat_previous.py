"""POPGym's RepeatPrevious: name the suit of the card dealt ``k - 1`` cards ago."""

from __future__ import annotations

import gymnasium as gym
import torch

from envs.core import BatchedEnv, check_int
from envs.popgym.deck import DECK_SIZE, NUM_SUITS, Deck


class RepeatPrevious(BatchedEnv):
    """RepeatPrevious: at every step, name the suit of the ``k``-th most recent card.

    Mirrors ``popgym.envs.repeat_previous.RepeatPrevious`` (popgym 1.0.7; Morad et al., "POPGym:
    Benchmarking Partially Observable Reinforcement Learning", ICLR 2023). ``num_decks`` decks of
    52 cards are shuffled together and dealt one card per step, without replacement; the agent
    sees each card's suit and must answer with the suit of ``hand[-k]``, the ``k``-th most recent
    card counting the one on show as the first: with ``k = 1`` the card on show, with popgym's
    default ``k = 4`` the card dealt three steps before it. A memoryless policy is right a
    quarter of the time (slightly less: the deck is dealt without replacement).

    ## Action Space
    ``Discrete(4)``: a suit (popgym's ``suits_idx``: 0 spades, 1 diamonds, 2 clubs, 3 hearts).

    ## Observation Space
    ``Discrete(4)``: the suit of the card on show, as popgym (an int64 tensor ``[num_envs]``).

    ## Rewards
    Let ``C = 52 * num_decks``. Once at least ``k`` cards have been dealt (every step but the
    first ``k - 1``): ``+1 / (C - k)`` for the suit of ``hand[-k]``, ``-1 / (C - k)`` for another.
    The first ``k - 1`` steps give 0. The return lies in [-1, 1]; guessing gives about -0.5.

    ## Starting State
    A freshly shuffled deck; its first card is on show.

    ## Episode End
    Terminated when the deck is empty: after ``C - 1`` steps (51, 103, 155 for Easy, Medium,
    Hard). Never truncated (popgym has no time limit here; ``max_episode_steps`` is None).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and, as popgym:

    - ``num_decks`` (int >= 1, default 1): decks shuffled together; sets the episode length;
    - ``k`` (int, 1 <= k < 52 * num_decks, default 4): which recent card to name.

    ``popgym/RepeatPreviousEasy-v0``: 1 deck, ``k`` = 4; ``Medium``: 2 decks, ``k`` = 32;
    ``Hard``: 3 decks, ``k`` = 64 (popgym's ``RepeatPreviousEasy``/``Medium``/``Hard``).

    Umbra's older ``umbra/RepeatPrevious*-v0`` (:class:`envs.pomdp.repeat.RepeatPrevious`) is a
    different task: symbols drawn with replacement, one-hot, ``k`` counted from the previous step
    (``s_{t-k}``), truncated after a fixed length.

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "POPGym RepeatPrevious: name the suit of the k-th most recent card of a deck."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.repeat_previous:RepeatPrevious"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_decks: int = 1,
        k: int = 4,
    ):
        self.num_decks = check_int("num_decks", num_decks, 1)
        self.k = check_int("k", k, 1)
        num_cards = DECK_SIZE * self.num_decks
        if self.k >= num_cards:
            raise ValueError(
                f"k must be below the number of cards, 52 * num_decks = {num_cards}, got k = "
                f"{self.k}: raise num_decks or lower k"
            )
        self.single_observation_space = gym.spaces.Discrete(NUM_SUITS)
        self.single_action_space = gym.spaces.Discrete(NUM_SUITS)
        self.reward_scale = 1.0 / (num_cards - self.k)
        super().__init__(num_envs, device, debug)
        self.deck = Deck(self.num_envs, self.num_decks, self.device)

    def target(self) -> torch.Tensor:
        """``[num_envs]``: the suit the current step asks for (meaningless while fewer than ``k``
        cards are dealt)."""
        return self.deck.suit[self.deck.card_at(self.deck.position - self.k)]

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.deck.restart(mask)
        self.deck.deal(self.generator, mask)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scored = self.deck.position >= self.k  # popgym: hand_size >= k
        reward = torch.where(actions == self.target(), self.reward_scale, -self.reward_scale)
        reward = torch.where(scored, reward, 0.0)
        self.deck.deal(self.generator)
        return reward, self.deck.remaining == 0

    def _observe(self) -> torch.Tensor:
        return self.deck.suit[self.deck.card_at(self.deck.position - 1)]
