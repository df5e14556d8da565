"""A task that needs communication: every agent holds a private symbol the team must combine."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import MultiAgentBatchedEnv, check_int
from envs.multiagent import pettingzoo_factories


class PrivateSum(MultiAgentBatchedEnv):
    """Private sum: each agent sees one private symbol; all must name the sum of everyone's.

    Every round, each of the ``num_agents`` agents privately observes a symbol ``s_i`` drawn
    uniformly from ``{0, ..., num_symbols - 1}``; every agent is asked for the same answer,
    ``T = (s_0 + ... + s_{A-1}) mod num_symbols`` (with two symbols: the XOR of all the bits).
    No agent can compute ``T`` from what it sees: for ``num_agents >= 2`` the other agents'
    symbols make ``T`` uniform and independent of the agent's own symbol. So any policy without
    access to the others' information (independent agents, parameter sharing, a centralised
    critic with decentralised actors, memory across rounds) is correct with probability exactly
    ``1 / num_symbols``; agents that communicate (e.g. a GNN over the agent axis that sums the
    symbols) can be correct every time.

    - Chance level: expected reward ``1 / num_symbols`` per round, return
      ``episode_length / num_symbols`` (0.5 and 2.0 with the defaults).
    - Optimum: reward 1 per round, return ``episode_length`` (4.0 with the defaults).

    ## Action Space
    ``Discrete(num_symbols)`` per agent: its answer ``T``.

    ## Observation Space
    ``Box(0, 1, (num_symbols + 1,))`` float32 per agent: the one-hot encoding of its own symbol
    this round, then the fraction of the episode elapsed, ``round / episode_length``.

    ## State
    ``Box(0, 1, (num_agents * num_symbols + 1,))`` float32: every agent's one-hot symbol, then the
    fraction elapsed. The state determines ``T``: a centralised critic can predict the reward,
    decentralised actors still cannot act on it.

    ## Rewards
    Shared: every agent gets the fraction of agents whose answer equals ``T`` this round, in
    [0, 1].

    ## Starting State
    Round 0 with fresh symbols; every round draws new symbols.

    ## Episode End
    Terminated after ``episode_length`` rounds (a fixed horizon, not a time limit).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.MultiAgentBatchedEnv`) and

    - ``num_agents`` (int >= 2, default 3);
    - ``num_symbols`` (int >= 2, default 2): 2 makes ``T`` the XOR of the private bits;
    - ``episode_length`` (int >= 1, default 4): rounds per episode.

    ``parallel_env(**kwargs)`` and ``env(**kwargs)`` in this module give one copy as a PettingZoo
    ``ParallelEnv`` / AEC env.

    ## Version History
    - v0: first version.
    """

    description = "Each agent sees a private symbol; all must name their sum (needs communication)."

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_agents: int = 3,
        num_symbols: int = 2,
        episode_length: int = 4,
    ):
        num_agents = check_int("num_agents", num_agents, 2)
        self.num_symbols = check_int("num_symbols", num_symbols, 2)
        self.episode_length = check_int("episode_length", episode_length, 1)
        self.single_observation_space = gym.spaces.Box(
            0.0, 1.0, (self.num_symbols + 1,), np.float32
        )
        self.single_action_space = gym.spaces.Discrete(self.num_symbols)
        self.state_space = gym.spaces.Box(
            0.0, 1.0, (num_agents * self.num_symbols + 1,), np.float32
        )
        super().__init__(num_agents, num_envs, device, debug)
        #: This round's private symbols ``[N, A]`` int64 and the round number ``[N]``.
        self.symbols = torch.zeros(self.num_envs, self.num_agents, dtype=torch.int64,
                                   device=self.device)
        self.round = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    @property
    def target(self) -> torch.Tensor:
        """The answer of this round, ``[num_envs]``: the sum of the symbols mod ``num_symbols``."""
        return self.symbols.sum(dim=1) % self.num_symbols

    def _draw(self) -> torch.Tensor:
        return torch.randint(self.num_symbols, (self.num_envs, self.num_agents),
                             generator=self.generator, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        self.symbols = torch.where(mask[:, None], self._draw(), self.symbols)
        self.round = torch.where(mask, 0, self.round)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        correct = (actions == self.target[:, None]).to(torch.float32).mean(dim=1)
        self.round = self.round + 1
        terminated = self.round >= self.episode_length
        self.symbols = torch.where(terminated[:, None], self.symbols, self._draw())
        return correct[:, None].expand(self.num_envs, self.num_agents).contiguous(), terminated

    def _elapsed(self) -> torch.Tensor:
        return (self.round.to(torch.float32) / self.episode_length)[:, None]

    def _observe(self) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(self.symbols, self.num_symbols).to(torch.float32)
        elapsed = self._elapsed()[:, None].expand(self.num_envs, self.num_agents, 1)
        return torch.cat((one_hot, elapsed), dim=-1)

    def _state(self) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(self.symbols, self.num_symbols).to(torch.float32)
        return torch.cat((one_hot.reshape(self.num_envs, -1), self._elapsed()), dim=1)


parallel_env, env = pettingzoo_factories(PrivateSum)
