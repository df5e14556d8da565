"""POPGym's HigherLower: guess whether the next card ranks higher or lower."""

from __future__ import annotations

import gymnasium as gym
import torch

from envs.core import BatchedEnv, check_int
from envs.popgym.deck import DECK_SIZE, NUM_RANKS, Deck


class HigherLower(BatchedEnv):
    """HigherLower: guess whether the next card of the deck ranks higher or lower than this one.

    Mirrors ``popgym.envs.higher_lower.HigherLower`` (popgym 1.0.7; Morad et al., ICLR 2023).
    ``num_decks`` decks are shuffled together and dealt one card per step, without replacement.
    The card on show is known; a good guess compares it with the ranks still in the deck, so an
    agent that counts the cards dealt so far guesses better than one that does not.

    ## Action Space
    ``Discrete(2)``: 0 guesses that the next card ranks higher, 1 that it ranks lower.

    ## Observation Space
    ``Discrete(13)``: the rank of the card on show, as popgym (``ranks_idx``: 0 ace, 1 two, ...,
    9 ten, 10 jack, 11 queen, 12 king; aces low), an int64 tensor ``[num_envs]``.

    ## Rewards
    With ``C = 52 * num_decks``: ``+1 / C`` for a right guess, ``-1 / C`` for a wrong one, 0 when
    the next card has the same rank (a push). A random guess scores 0 in expectation; the best
    return is below 1 (there are ``C - 1`` guesses and some pushes).

    ## Starting State
    A freshly shuffled deck; its first card is on show.

    ## Episode End
    Terminated when the deck is empty: after ``C - 1`` steps (51, 103, 155 for Easy, Medium,
    Hard). Never truncated (``max_episode_steps`` is None).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and, as popgym,
    ``num_decks`` (int >= 1, default 1): decks shuffled together.

    ``popgym/HigherLowerEasy-v0``: 1 deck; ``Medium``: 2; ``Hard``: 3 (popgym's
    ``HigherLowerEasy``/``Medium``/``Hard``).

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "POPGym HigherLower: guess if the next card of a deck ranks higher or lower."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.higher_lower:HigherLower"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_decks: int = 1,
    ):
        self.num_decks = check_int("num_decks", num_decks, 1)
        self.single_observation_space = gym.spaces.Discrete(NUM_RANKS)
        self.single_action_space = gym.spaces.Discrete(2)
        self.reward_scale = 1.0 / (DECK_SIZE * self.num_decks)
        super().__init__(num_envs, device, debug)
        self.deck = Deck(self.num_envs, self.num_decks, self.device)

    def _rank_on_show(self) -> torch.Tensor:
        return self.deck.rank[self.deck.card_at(self.deck.position - 1)]

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.deck.restart(mask)
        self.deck.deal(self.generator, mask)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        current = self._rank_on_show()
        following = self.deck.rank[self.deck.deal(self.generator)]
        right = (following > current) == (actions == 0)
        reward = torch.where(right, self.reward_scale, -self.reward_scale)
        reward = torch.where(following == current, 0.0, reward)
        return reward, self.deck.remaining == 0

    def _observe(self) -> torch.Tensor:
        return self._rank_on_show()
