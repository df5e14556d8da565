"""POPGym's MineSweeper: clear a hidden minefield from the mine counts of the cells clicked."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F

from envs.core import BatchedEnv, check_int


class MineSweeper(BatchedEnv):
    """MineSweeper with the board hidden: click every free cell, remembering the counts seen.

    Mirrors ``popgym.envs.minesweeper.MineSweeper`` (popgym 1.0.7). ``num_mines`` mines lie under
    a ``rows`` x ``columns`` grid. Each action clicks a cell; the observation is the number of
    mines in the 3 x 3 block centred on it. The board itself is never shown, so the agent must
    remember which cells it clicked and what they said.

    ## Action Space
    ``MultiDiscrete([rows, columns])``: the (row, column) of the cell to click.

    ## Observation Space
    ``Discrete(min(num_mines + 1, 10))`` (an int64 per copy): the number of mines in the 3 x 3
    block centred on the cell clicked last, *the cell itself included* (popgym counts it so: a
    clicked mine reports at least 1); 0 at the start of an episode. As in popgym.

    ## Rewards
    With ``F = rows * columns - num_mines`` free cells: ``+1 / F`` for clicking a free cell for the
    first time; ``-0.5 / (F - 2)`` for clicking a cell already clicked; ``-0.5 - 1 / F`` for
    clicking a mine. popgym's scaling.

    ## Starting State
    ``num_mines`` distinct cells, uniform among all subsets of that size (Floyd's algorithm,
    ``num_mines`` rounds over all copies at once, see :meth:`lay_mines`; popgym draws them with
    ``np_random.choice(..., replace=False)``). ``reset(options={"mines": m})``, with ``m`` a bool
    tensor ``[num_envs, rows, columns]`` (True: mine), starts every copy from that minefield
    instead (the tests copy popgym's with it); automatic resets draw fresh ones.

    ## Episode End
    Terminated when a mine is clicked or when every free cell has been clicked. Truncated after
    ``F`` steps (``max_episode_steps``) unless terminated at that step: popgym returns
    ``truncated = (t == F) and not terminated``, so the two flags are never both set (this class
    overrides :meth:`step` to clear ``truncated`` where ``terminated``).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``rows``, ``columns`` (ints >= 1, default 4 and 4): the grid;
    - ``num_mines`` (int >= 0, default 2): the mines; at least 3 free cells must remain (the
      penalty for a repeated click divides by ``F - 2``).

    ``popgym/MineSweeperEasy-v0``: 4 x 4 with 2 mines; ``Medium``: 6 x 6 with 6; ``Hard``: 8 x 8
    with 10 (popgym's ``MineSweeperEasy``, ``MineSweeperMedium``, ``MineSweeperHard``).

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "MineSweeper with the board hidden; observe counts only (POPGym MineSweeper)."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.minesweeper:MineSweeper"

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        rows: int = 4,
        columns: int = 4,
        num_mines: int = 2,
    ):
        self.rows = check_int("rows", rows, 1)
        self.columns = check_int("columns", columns, 1)
        self.num_mines = check_int("num_mines", num_mines, 0)
        num_cells = self.rows * self.columns
        free = num_cells - self.num_mines
        if free < 3:
            raise ValueError(
                f"a {self.rows}x{self.columns} grid with num_mines={self.num_mines} leaves {free} "
                "free cells; at least 3 are needed (popgym's penalty for a repeated click divides "
                "by free cells - 2): use fewer mines or a larger grid"
            )
        self.max_episode_steps = free
        self.success_reward = 1.0 / free
        self.mine_reward = -0.5 - self.success_reward
        self.repeat_reward = -0.5 / (free - 2)
        self.single_observation_space = gym.spaces.Discrete(min(self.num_mines + 1, 10))
        self.single_action_space = gym.spaces.MultiDiscrete([self.rows, self.columns])
        super().__init__(num_envs, device, debug)
        #: Mines, ``[num_envs, rows * columns]`` bool, row-major.
        self.mines = torch.zeros(self.num_envs, num_cells, dtype=torch.bool, device=self.device)
        #: Free cells clicked in this episode, like ``mines``.
        self.viewed = torch.zeros_like(self.mines)
        #: Mines in the 3 x 3 block centred on each cell, ``[num_envs, rows * columns]`` int64.
        self.counts = torch.zeros(self.num_envs, num_cells, dtype=torch.int64, device=self.device)
        #: The observation: the count of the cell clicked last, ``[num_envs]`` int64.
        self.last_obs = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def lay_mines(self) -> torch.Tensor:
        """Fresh minefields for every copy, ``[num_envs, rows * columns]`` bool.

        Robert Floyd's algorithm, one round per mine for every copy at once: for ``j`` from
        ``cells - num_mines`` to ``cells - 1``, draw ``t`` uniform in ``[0, j]`` and lay a mine at
        ``t``, or at ``j`` if ``t`` has one already. It gives every set of ``num_mines`` cells the
        same probability, with ``num_mines`` uniform numbers per copy and no sort.
        """
        mines = torch.zeros_like(self.mines)
        num_cells = mines.shape[1]
        for j in range(num_cells - self.num_mines, num_cells):
            u = torch.rand(self.num_envs, generator=self.generator, device=self.device)
            t = (u * (j + 1)).to(torch.int64).clamp(max=j)[:, None]
            taken = mines.gather(1, t)
            mines.scatter_(1, torch.where(taken, j, t), True)
        return mines

    def _count(self, mines: torch.Tensor) -> torch.Tensor:
        """Mines in the 3 x 3 block centred on each cell (the cell included), ``[N, cells]``."""
        grid = F.pad(mines.view(-1, self.rows, self.columns).to(torch.int64), (1, 1, 1, 1))
        across = grid[:, :, :-2] + grid[:, :, 1:-1] + grid[:, :, 2:]  # [N, rows + 2, columns]
        return (across[:, :-2] + across[:, 1:-1] + across[:, 2:]).flatten(1)

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """As :meth:`BatchedEnv.step`, but ``truncated`` is false where ``terminated`` (popgym)."""
        obs, reward, terminated, truncated, info = super().step(actions)
        return obs, reward, terminated, truncated & ~terminated, info

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        fresh = self.lay_mines()
        if options is not None and "mines" in options:
            fresh = self._given_mines(options["mines"])
        self.mines = torch.where(mask[:, None], fresh, self.mines)
        self.counts = self._count(self.mines)
        self.viewed = self.viewed & ~mask[:, None]
        self.last_obs = torch.where(mask, 0, self.last_obs)

    def _given_mines(self, mines: torch.Tensor) -> torch.Tensor:
        shape = (self.num_envs, self.rows, self.columns)
        mines = torch.as_tensor(mines, device=self.device)
        if tuple(mines.shape) != shape:
            raise ValueError(f"options['mines'] must have shape {shape}, got {tuple(mines.shape)}")
        mines = mines.to(torch.bool).reshape(self.num_envs, -1)
        counts = mines.sum(dim=1)
        if bool((counts != self.num_mines).any()):
            raise ValueError(
                f"every minefield of options['mines'] must hold num_mines={self.num_mines} mines, "
                f"got counts {counts.tolist()}"
            )
        return mines

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cell = (actions[:, 0] * self.columns + actions[:, 1]).to(torch.int64)[:, None]
        mine = self.mines.gather(1, cell)[:, 0]
        seen = self.viewed.gather(1, cell)[:, 0]
        self.viewed = self.viewed.scatter(1, cell, ~mine[:, None])  # a mine is never viewed
        reward = torch.where(
            mine, self.mine_reward, torch.where(seen, self.repeat_reward, self.success_reward)
        ).to(torch.float32)
        cleared = (self.viewed | self.mines).all(dim=1)
        self.last_obs = self.counts.gather(1, cell)[:, 0]
        return reward, mine | cleared

    def _observe(self) -> torch.Tensor:
        return self.last_obs.clone()
