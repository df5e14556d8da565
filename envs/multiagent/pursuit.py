"""Pursuit: predators hunt a prey on a grid, each seeing only a small window around itself."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import MultiAgentBatchedEnv, check_int
from envs.multiagent import pettingzoo_factories

#: Grid moves (dx, dy) of the five discrete actions: noop, up, down, left, right.
MOVES = ((0, 0), (0, 1), (0, -1), (-1, 0), (1, 0))
PREY_POLICIES = ("random", "evade")


class Pursuit(MultiAgentBatchedEnv):
    """Pursuit: ``num_agents`` predators catch a prey on a ``size`` x ``size`` grid, seeing little.

    A predator-prey game in the tradition of Benda et al. (1986) and PettingZoo's SISL pursuit:
    the predators are the learning agents, the prey is part of the environment. Each predator sees
    only the square window of radius ``view_radius`` around itself, so the team must search the
    grid. The prey either wanders at random or evades; an evading prey moves as fast as a predator,
    so a lone predator never catches it: the predators must corner it together.

    ## Action Space
    ``Discrete(5)`` per predator: 0 stay, 1 up (+y), 2 down (-y), 3 left (-x), 4 right (+x). A
    move off the grid leaves the predator where it is; ``info["action_mask"]`` and
    :meth:`action_masks` mark such moves illegal (staying is always legal). Predators may share a
    cell.

    ## Observation Space
    ``Box(0, 1, (3 * (2 * view_radius + 1) ** 2 + 2,))`` float32 per predator: three
    ``(2r+1) x (2r+1)`` windows centred on the predator, flattened channel by channel, rows from
    low to high y, then the predator's own position divided by ``size - 1``:

    - channel 0: 1 where the window lies outside the grid (a wall);
    - channel 1: 1 where another predator stands;
    - channel 2: 1 where the prey stands.

    ## State
    ``Box(0, 1, (2 * num_agents + 2,))`` float32: every predator's position and the prey's, each
    divided by ``size - 1``.

    ## Rewards
    +1 to every predator on the step the prey is caught, 0 otherwise (shared).

    ## Starting State
    The prey on a uniformly random cell; each predator on a uniformly random cell other than the
    prey's.

    ## Episode End
    Terminated when the prey is caught: a predator moves onto the prey's cell, or (after the
    predators moved) the prey moves onto a predator's cell. Truncated after ``max_cycles`` steps.
    Each step, the predators move first, then (if not caught) the prey: ``"random"`` picks one of
    the five moves uniformly (a move off the grid stays); ``"evade"`` picks the move that takes
    it farthest (Manhattan distance) from the nearest predator, ties broken at random.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.MultiAgentBatchedEnv`) and

    - ``num_agents`` (int >= 1, default 3): predators;
    - ``size`` (int >= 2, default 7): the grid's side;
    - ``view_radius`` (int >= 1, default 2): the predators' window radius (a window of
      ``2 * view_radius + 1`` cells a side);
    - ``prey_policy`` (``"random"`` or ``"evade"``, default ``"random"``);
    - ``max_cycles`` (int >= 1, default 50): the time limit.

    ``parallel_env(**kwargs)`` and ``env(**kwargs)`` in this module give one copy as a PettingZoo
    ``ParallelEnv`` / AEC env.

    ## Version History
    - v0: first version.
    """

    description = "Predators catch a prey on a grid through a small window (pursuit)."
    agent_position_slice = (-2, None)  # the agent's own cell / (size - 1) comes last
    has_action_mask = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_agents: int = 3,
        size: int = 7,
        view_radius: int = 2,
        prey_policy: str = "random",
        max_cycles: int = 50,
    ):
        num_agents = check_int("num_agents", num_agents, 1)
        self.size = check_int("size", size, 2)
        self.view_radius = check_int("view_radius", view_radius, 1)
        if prey_policy not in PREY_POLICIES:
            raise ValueError(f"prey_policy must be one of {PREY_POLICIES}, got {prey_policy!r}")
        self.prey_policy = prey_policy
        self.max_episode_steps = check_int("max_cycles", max_cycles, 1)
        width = 2 * self.view_radius + 1
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (3 * width**2 + 2,), np.float32)
        self.single_action_space = gym.spaces.Discrete(len(MOVES))
        self.state_space = gym.spaces.Box(0.0, 1.0, (2 * num_agents + 2,), np.float32)
        super().__init__(num_agents, num_envs, device, debug)
        #: Predator cells ``[N, A, 2]`` (x, y) and the prey's ``[N, 2]``, int64.
        self.predators = torch.zeros(self.num_envs, self.num_agents, 2, dtype=torch.int64,
                                     device=self.device)
        self.prey = torch.zeros(self.num_envs, 2, dtype=torch.int64, device=self.device)
        self._moves = torch.tensor(MOVES, dtype=torch.int64, device=self.device)
        # Windows are read from grids padded by ``view_radius`` on every side, as flat indices.
        r, padded = self.view_radius, self.size + 2 * self.view_radius
        self._padded = padded
        walls = torch.ones(padded, padded, device=self.device)
        walls[r : r + self.size, r : r + self.size] = 0.0
        self._walls = walls.reshape(-1)
        span = torch.arange(-r, r + 1, device=self.device)
        dy, dx = torch.meshgrid(span, span, indexing="ij")
        #: Flat offsets of the window's cells from its centre, rows from low to high y.
        self._window = (dx + padded * dy).reshape(-1)
        #: 1 at the window's centre: where a predator sees itself.
        self._centre = (self._window == 0).to(torch.float32)

    # ------------------------------------------------------------------ dynamics
    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        n, a, cells = self.num_envs, self.num_agents, self.size**2
        prey = torch.randint(cells, (n,), generator=self.generator, device=self.device)
        predators = torch.randint(cells - 1, (n, a), generator=self.generator, device=self.device)
        predators = predators + (predators >= prey[:, None]).to(torch.int64)  # skip the prey
        self.prey = torch.where(mask[:, None], self._cell(prey), self.prey)
        self.predators = torch.where(mask[:, None, None], self._cell(predators), self.predators)

    def _cell(self, index: torch.Tensor) -> torch.Tensor:
        return torch.stack((index % self.size, index // self.size), dim=-1)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.predators = (self.predators + self._moves[actions]).clamp(0, self.size - 1)
        caught = self._caught()
        candidates = (self.prey[:, None] + self._moves).clamp(0, self.size - 1)  # [N, 5, 2]
        noise = torch.rand(self.num_envs, len(MOVES), generator=self.generator, device=self.device)
        if self.prey_policy == "evade":
            gap = (candidates[:, :, None] - self.predators[:, None]).abs().sum(-1)  # [N, 5, A]
            score = gap.min(dim=2).values + 0.5 * noise
        else:
            score = noise
        choice = score.argmax(dim=1)
        moved = candidates[torch.arange(self.num_envs, device=self.device), choice]
        self.prey = torch.where(caught[:, None], self.prey, moved)
        caught = caught | self._caught()
        reward = caught.to(torch.float32)[:, None].expand(self.num_envs, self.num_agents)
        return reward.contiguous(), caught

    def _caught(self) -> torch.Tensor:
        return (self.predators == self.prey[:, None]).all(dim=-1).any(dim=1)

    # ------------------------------------------------------------------ what agents see
    def _flat(self, cells: torch.Tensor) -> torch.Tensor:
        """Flat indices into the padded grid of cells ``[..., 2]`` (x, y)."""
        x, y = (cells + self.view_radius).unbind(-1)
        return x + self._padded * y

    def _observe(self) -> torch.Tensor:
        n, a = self.num_envs, self.num_agents
        centre = self._flat(self.predators)  # [N, A]
        index = (centre[:, :, None] + self._window).reshape(n, -1)  # [N, A * W * W]
        crowd = torch.zeros(n, self._padded**2, device=self.device)
        crowd.scatter_add_(1, centre, torch.ones(n, a, device=self.device))
        prey = torch.zeros(n, self._padded**2, device=self.device)
        prey.scatter_(1, self._flat(self.prey)[:, None], 1.0)
        walls = self._walls[index].reshape(n, a, -1)
        others = (crowd.gather(1, index).reshape(n, a, -1) - self._centre) > 0
        seen_prey = prey.gather(1, index).reshape(n, a, -1)
        own = self.predators.to(torch.float32) / (self.size - 1)
        return torch.cat((walls, others.to(torch.float32), seen_prey, own), dim=-1)

    def _state(self) -> torch.Tensor:
        everyone = torch.cat((self.predators, self.prey[:, None]), dim=1)
        return everyone.reshape(self.num_envs, -1).to(torch.float32) / (self.size - 1)

    def _action_mask(self) -> torch.Tensor:
        target = self.predators[:, :, None] + self._moves  # [N, A, 5, 2]
        return ((target >= 0) & (target < self.size)).all(dim=-1)


parallel_env, env = pettingzoo_factories(Pursuit)
