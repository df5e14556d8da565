"""Sequence memory tasks in the style of POPGym: RepeatPrevious, RepeatFirst, CountRecall.

Each step shows one random symbol; the action is an answer about the symbols seen so far in the
episode. The symbols are i.i.d. uniform, so an observation says nothing about any other step: the
answer has to come from memory. Rewards follow POPGym (Morad et al., 2023, "POPGym: Benchmarking
Partially Observable Reinforcement Learning"): +s for a right answer and -s for a wrong one, with
``s`` = 1 / (number of scored steps), so that an episode's return lies in [-1, 1].
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int


class _SymbolStream(BatchedEnv):
    """Shared machinery: a fresh uniform symbol every step, a per-copy step counter ``t``.

    ``t`` counts the actions taken in the current episode; ``symbol`` is the symbol on show, the
    one the ``t``-th action (0-based) answers about. Subclasses set the spaces and implement
    ``_score(actions) -> reward`` (called before the stream moves on), and may override
    ``_start(mask)`` (a new episode begins where ``mask``) and ``_record()`` (a new symbol is on
    show in every copy).
    """

    def __init__(
        self,
        num_envs: int,
        device: str | torch.device,
        debug: bool,
        num_symbols: int,
        episode_length: int,
    ):
        self.num_symbols = check_int("num_symbols", num_symbols, 2)
        self.episode_length = check_int("episode_length", episode_length, 1)
        self.max_episode_steps = self.episode_length
        super().__init__(num_envs, device, debug)
        self.t = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.symbol = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._alphabet = torch.arange(self.num_symbols, device=self.device)

    def _draw(self) -> torch.Tensor:
        return torch.randint(
            self.num_symbols, (self.num_envs,), generator=self.generator, device=self.device
        )

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.t = torch.where(mask, 0, self.t)
        self.symbol = torch.where(mask, self._draw(), self.symbol)
        self._start(mask)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward = self._score(actions.to(torch.int64))
        self.t = self.t + 1
        self.symbol = self._draw()
        self._record()
        return reward, torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def _signed(self, correct: torch.Tensor, scale: float) -> torch.Tensor:
        """``+scale`` where ``correct``, ``-scale`` elsewhere, float32."""
        return (correct.to(torch.float32) * 2.0 - 1.0) * scale

    def _one_hot(self) -> torch.Tensor:
        # A comparison rather than F.one_hot, which checks its input with .item() on the CPU.
        return (self.symbol[:, None] == self._alphabet).to(torch.float32)

    def _score(self, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _start(self, mask: torch.Tensor) -> None:
        """A new episode starts where ``mask``; ``t`` is 0 and ``symbol`` fresh there."""

    def _record(self) -> None:
        """Every copy has moved on to a new ``symbol``."""


class RepeatPrevious(_SymbolStream):
    """RepeatPrevious: at every step, name the symbol that was shown ``k`` steps ago.

    A POPGym task (there with the suits of a deck of cards). Step ``t`` (0-based) shows symbol
    ``s_t``; the action taken after seeing it is scored against ``s_{t-k}``. The first ``k``
    actions have nothing to repeat and are not scored. The agent must hold the last ``k`` symbols
    in memory; a policy without memory is right with probability ``1 / num_symbols`` only.

    ## Action Space
    ``Discrete(num_symbols)``: the symbol that was on show ``k`` steps ago.

    ## Observation Space
    ``Box(0, 1, (num_symbols,))`` float32: the one-hot symbol on show, uniform over
    ``num_symbols`` and independent of everything else.

    ## Rewards
    For each of the steps ``t >= k``: ``+1 / (episode_length - k)`` for the right symbol,
    ``-1 / (episode_length - k)`` for a wrong one (POPGym's scaling). Steps ``t < k`` give 0. The
    return lies in [-1, 1]: 1 for perfect recall, ``2 / num_symbols - 1`` in expectation for
    guessing (-0.5 with 4 symbols).

    ## Starting State
    A uniform random symbol; the memory of earlier episodes plays no part.

    ## Episode End
    Never terminates; truncated after ``episode_length`` steps (``max_episode_steps``).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_symbols`` (int >= 2, default 4): size of the alphabet;
    - ``k`` (int >= 1, default 4): how many steps back to repeat;
    - ``episode_length`` (int > ``k``, default 52): steps per episode.

    ``umbra/RepeatPreviousEasy-v0``: 4 symbols, ``k`` = 4, 52 steps; ``Medium``: ``k`` = 32, 104
    steps; ``Hard``: ``k`` = 64, 156 steps (POPGym's one, two and three decks of 52 cards).

    ## Differences from POPGym
    A lookalike of POPGym's task, not the task: POPGym's is ``popgym/RepeatPreviousEasy-v0`` (and
    ``Medium``, ``Hard``; :class:`envs.popgym.repeat_previous.RepeatPrevious`). There the suits
    come from a deck dealt without replacement (13 of each per deck) and are observed as
    ``Discrete(4)``, not drawn with replacement and one-hot; POPGym's ``k`` counts the card on
    show as the first (its ``k = 4`` asks for the card shown 3 steps before the current one,
    here ``k = 4`` for the one 4 steps before); and its episodes are terminated when the deck is
    empty, after 51, 103 or 155 steps, where these are truncated after 52, 104 or 156. The reward
    scale is the same (``1 / 48``, ``1 / 72``, ``1 / 92``, 48, 72 or 92 scored steps).

    The lag is what makes the two differ most: trained alike (the untuned ``gru`` preset, 200k
    steps, seeds 0-2), a GRU scored 0.34-0.50 here, 0.93-0.99 here with ``k=3`` (POPGym's lag)
    and 0.68-0.89 on ``popgym/RepeatPreviousEasy-v0``.

    ## Version History
    - v0: first version.
    """

    description = "Name the symbol seen k steps ago (POPGym RepeatPrevious); needs memory."

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_symbols: int = 4,
        k: int = 4,
        episode_length: int = 52,
    ):
        self.k = check_int("k", k, 1)
        length = check_int("episode_length", episode_length, 1)
        if length <= self.k:
            raise ValueError(
                f"episode_length must be greater than k (= {self.k}) so that some steps are "
                f"scored, got episode_length={length}"
            )
        num_symbols = check_int("num_symbols", num_symbols, 2)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (num_symbols,), np.float32)
        self.single_action_space = gym.spaces.Discrete(num_symbols)
        self.reward_scale = 1.0 / (length - self.k)
        super().__init__(num_envs, device, debug, num_symbols, length)
        # Ring buffer of the last k + 1 symbols: s_t lives in column t % (k + 1).
        self.history = torch.zeros(self.num_envs, self.k + 1, dtype=torch.int64, device=self.device)

    def target(self) -> torch.Tensor:
        """The symbol the current step asks for, ``s_{t-k}`` (meaningless while ``t < k``)."""
        return self.history.gather(1, ((self.t + 1) % (self.k + 1))[:, None])[:, 0]

    def _score(self, actions: torch.Tensor) -> torch.Tensor:
        reward = self._signed(actions == self.target(), self.reward_scale)
        return torch.where(self.t >= self.k, reward, 0.0)

    def _start(self, mask: torch.Tensor) -> None:
        self.history[:, 0] = torch.where(mask, self.symbol, self.history[:, 0])

    def _record(self) -> None:
        column = (self.t % (self.k + 1))[:, None]
        self.history = self.history.scatter(1, column, self.symbol[:, None])

    def _observe(self) -> torch.Tensor:
        return self._one_hot()


class RepeatFirst(_SymbolStream):
    """RepeatFirst: at every step, name the first symbol of the episode.

    A POPGym task. The first step shows the symbol to remember, flagged as the first; every later
    step shows a fresh random symbol (a distractor) and asks for the first one again. A policy
    without memory is right at the first step and then with probability ``1 / num_symbols``.

    ## Action Space
    ``Discrete(num_symbols)``: the first symbol of the episode.

    ## Observation Space
    ``Box(0, 1, (num_symbols + 1,))`` float32: the one-hot symbol on show, then a flag that is 1 at
    the first step of an episode and 0 afterwards. After the first step the symbols are uniform and
    independent of the first one.

    ## Rewards
    Every step: ``+1 / episode_length`` for the first symbol, ``-1 / episode_length`` for any
    other. The return lies in [-1, 1]; guessing after the first step gives about
    ``2 / num_symbols - 1``.

    ## Starting State
    A uniform random symbol, flagged as the first.

    ## Episode End
    Never terminates; truncated after ``episode_length`` steps (``max_episode_steps``).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_symbols`` (int >= 2, default 4): size of the alphabet;
    - ``episode_length`` (int >= 1, default 52): steps per episode.

    ``umbra/RepeatFirstEasy-v0``: 4 symbols, 52 steps; ``Medium``: 104 steps; ``Hard``: 156 steps
    (POPGym's one, two and three decks).

    ## Differences from POPGym
    A lookalike of POPGym's task, not the task: POPGym's is ``popgym/RepeatFirstEasy-v0`` (and
    ``Medium``, ``Hard``; :class:`envs.popgym.repeat_first.RepeatFirst`). There the suits come
    from 1, 8 or 16 decks dealt without replacement and are observed as ``Discrete(4)`` with no
    first-step flag, not drawn with replacement and one-hot with a flag; its episodes are
    terminated when the deck is empty, after 51, 415 or 831 steps (rewards of ``1 / 51``,
    ``1 / 415``, ``1 / 831`` in size), where these are truncated after 52, 104 or 156 steps
    (``1 / 52``, ``1 / 104``, ``1 / 156``).

    ## Version History
    - v0: first version.
    """

    description = "Name the first symbol of the episode at every step (POPGym RepeatFirst)."

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_symbols: int = 4,
        episode_length: int = 52,
    ):
        num_symbols = check_int("num_symbols", num_symbols, 2)
        length = check_int("episode_length", episode_length, 1)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (num_symbols + 1,), np.float32)
        self.single_action_space = gym.spaces.Discrete(num_symbols)
        self.reward_scale = 1.0 / length
        super().__init__(num_envs, device, debug, num_symbols, length)
        self.first = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def target(self) -> torch.Tensor:
        """The symbol every step asks for: the episode's first."""
        return self.first

    def _score(self, actions: torch.Tensor) -> torch.Tensor:
        return self._signed(actions == self.first, self.reward_scale)

    def _start(self, mask: torch.Tensor) -> None:
        self.first = torch.where(mask, self.symbol, self.first)

    def _observe(self) -> torch.Tensor:
        is_first = (self.t == 0).to(torch.float32)[:, None]
        return torch.cat((self._one_hot(), is_first), dim=1)


class CountRecall(_SymbolStream):
    """CountRecall: at every step, say how often the symbol on show has appeared before.

    In the spirit of POPGym's CountRecall. Step ``t`` shows symbol ``s_t``; the right answer is
    the number of earlier steps of the episode that showed the same symbol, clipped to
    ``max_count``. The agent must keep one running count per symbol.

    ## Action Space
    ``Discrete(max_count + 1)``: the count ``min(#{u < t : s_u = s_t}, max_count)``; 0 means the
    symbol has not been seen before in this episode.

    ## Observation Space
    ``Box(0, 1, (num_symbols,))`` float32: the one-hot symbol on show, uniform and independent of
    the earlier ones.

    ## Rewards
    Every step: ``+1 / episode_length`` for the right count, ``-1 / episode_length`` for a wrong
    one. The return lies in [-1, 1].

    ## Starting State
    A uniform random symbol; every count at zero.

    ## Episode End
    Never terminates; truncated after ``episode_length`` steps (``max_episode_steps``).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``num_symbols`` (int >= 2, default 4): size of the alphabet, the number of counters to keep;
    - ``episode_length`` (int >= 1, default 32): steps per episode;
    - ``max_count`` (int >= 1, default 8): counts above it are answered with ``max_count``.

    ``umbra/CountRecallEasy-v0``: 4 symbols, 32 steps; ``Medium``: 8 symbols, 64 steps; ``Hard``:
    16 symbols, 128 steps; all with ``max_count`` = 8 (each symbol is seen 8 times per episode on
    average).

    ## Differences from POPGym
    In the spirit of POPGym's task, not the task: POPGym's is ``popgym/CountRecallEasy-v0`` (and
    ``Medium``, ``Hard``; :class:`envs.popgym.count_recall.CountRecall`). There every step deals
    two cards from two shoes without replacement, a value card and a query card, observed as
    ``MultiDiscrete([d, d])`` with ``d`` = 2 colours, 4 suits or 13 ranks; the answer is how
    many value cards of the queried kind have been dealt (up to 26, 26 or 16, unclipped), not
    how often the one symbol on show (drawn with replacement, one-hot) was seen before, clipped
    at 8; and its episodes are terminated when the shoe is empty, after 51, 103 or 207 steps,
    where these are truncated after 32, 64 or 128.

    ## Version History
    - v0: first version.
    """

    description = "Count how often the current symbol appeared before (POPGym CountRecall)."

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_symbols: int = 4,
        episode_length: int = 32,
        max_count: int = 8,
    ):
        num_symbols = check_int("num_symbols", num_symbols, 2)
        length = check_int("episode_length", episode_length, 1)
        self.max_count = check_int("max_count", max_count, 1)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (num_symbols,), np.float32)
        self.single_action_space = gym.spaces.Discrete(self.max_count + 1)
        self.reward_scale = 1.0 / length
        super().__init__(num_envs, device, debug, num_symbols, length)
        #: Occurrences of each symbol before the current step, [num_envs, num_symbols].
        self.counts = torch.zeros(
            self.num_envs, self.num_symbols, dtype=torch.int64, device=self.device
        )

    def target(self) -> torch.Tensor:
        """The right answer at the current step."""
        seen = self.counts.gather(1, self.symbol[:, None])[:, 0]
        return seen.clamp(max=self.max_count)

    def _score(self, actions: torch.Tensor) -> torch.Tensor:
        reward = self._signed(actions == self.target(), self.reward_scale)
        # The symbol on show now counts as seen, for the steps to come.
        self.counts = self.counts.scatter_add(
            1, self.symbol[:, None], torch.ones_like(self.symbol)[:, None]
        )
        return reward

    def _start(self, mask: torch.Tensor) -> None:
        self.counts = torch.where(mask[:, None], 0, self.counts)

    def _observe(self) -> torch.Tensor:
        return self._one_hot()
