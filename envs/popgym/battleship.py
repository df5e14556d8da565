"""POPGym's Battleship: find the ships on a hidden board from hit/miss notifications alone."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
import torch.nn.functional as F

from envs.core import BatchedEnv, check_int


class Battleship(BatchedEnv):
    """Battleship: shoot at the cells of a hidden board; the only observation is hit or miss.

    Mirrors ``popgym.envs.battleship.Battleship`` (popgym 1.0.7). Ships of ``ship_sizes`` lie on a
    ``board_size`` x ``board_size`` board, straight (horizontal or vertical) and not overlapping
    (they may touch). Each action shoots at one cell; the observation says whether the shot was a
    new hit. The observation does not repeat the action, so the agent must remember where it
    shot and what it found there (POPGym sets ``obs_requires_prev_action``).

    ## Action Space
    ``MultiDiscrete([board_size, board_size])``: the (row, column) of the cell to shoot at, as
    popgym's ``board[action[0], action[1]]``.

    ## Observation Space
    ``Discrete(2)`` (an int64 per copy): 1 if the last shot hit a ship cell not shot before, 0
    otherwise (a miss, or a cell already shot); 0 at the start of an episode. As in popgym.

    ## Rewards
    With ``H = sum(ship_sizes)`` ship cells and ``B = board_size``: ``+1 / H`` for a new hit,
    ``-1 / (B**2 - H)`` otherwise (a miss or a repeated cell). Sinking every ship without a miss
    returns 1; shooting every cell once returns 0 (popgym's scaling).

    ## Starting State
    A fresh board: the ships are placed one after the other in the order of ``ship_sizes``, each
    uniformly among the straight segments of its length that lie on the board and overlap no
    ship placed before it. That is exactly the distribution of popgym's rejection sampler
    (``place_ship``: a uniform start cell, axis and sign, retried until the segment fits, so that
    every fitting segment is drawn from its two ends with equal probability). Here it is drawn
    without retries for every copy at once: the segments that overlap no earlier ship are found
    by sliding-window sums over the board, and a uniform index among them picks the ship's place.
    ``reset()`` draws every copy's board; the copies that end inside ``step`` take a spare board
    drawn in advance, and the spares of all copies are redrawn at the first autoreset ``H`` or
    more steps after their draw (``H``: the shortest possible episode), so that no spare serves
    twice: every episode still gets a fresh independent board, at the cost of at most one
    placement every ``H`` steps instead of one every step.
    ``reset(options={"board": b})`` with ``b`` a bool tensor ``[num_envs, B, B]`` (True: ship)
    starts every copy from the given board instead (the tests copy popgym's board with it);
    automatic resets draw fresh boards.

    ## Episode End
    Terminated when every ship cell has been hit. Truncated after ``B**2`` steps
    (``max_episode_steps``). Both flags are set when the last ship cell is hit at step ``B**2``,
    as popgym returns them.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and

    - ``board_size`` (int >= 1, default 10): the side of the board;
    - ``ship_sizes`` (sequence of ints in [1, ``board_size``], default ``(2, 3, 3, 4)``): the
      ships, placed in this order. The sizes of all ships but the last, plus one per such ship,
      must sum to less than ``2 * board_size``: then some row or column is still empty when each
      ship is placed, so that it always fits (popgym would retry forever otherwise).

    ``popgym/BattleshipEasy-v0``: ``board_size`` = 8; ``Medium``: 10; ``Hard``: 12; all with
    ships ``(2, 3, 3, 4)`` (popgym's ``BattleshipEasy``, ``BattleshipMedium``,
    ``BattleshipHard``).

    ## Version History
    - v0: first version (popgym 1.0.7).
    """

    description = "Battleship on a hidden board, observing only hit/miss (POPGym Battleship)."
    #: The popgym class mirrored (see envs.popgym.package_class).
    popgym_class = "popgym.envs.battleship:Battleship"
    skips_idle_resets = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        board_size: int = 10,
        ship_sizes: Sequence[int] = (2, 3, 3, 4),
    ):
        self.board_size = check_int("board_size", board_size, 1)
        self.ship_sizes = _check_ship_sizes(ship_sizes, self.board_size)
        self.needed_hits = sum(self.ship_sizes)
        num_cells = self.board_size**2
        self.max_episode_steps = num_cells
        self.hit_reward = 1.0 / self.needed_hits
        self.miss_reward = -1.0 / (num_cells - self.needed_hits)
        self.single_observation_space = gym.spaces.Discrete(2)
        self.single_action_space = gym.spaces.MultiDiscrete([self.board_size, self.board_size])
        super().__init__(num_envs, device, debug)
        #: Ship cells, ``[num_envs, board_size**2]`` bool, row-major.
        self.board = torch.zeros(self.num_envs, num_cells, dtype=torch.bool, device=self.device)
        #: Cells shot at in this episode, like ``board``.
        self.guesses = torch.zeros_like(self.board)
        #: New hits in this episode, ``[num_envs]`` int64.
        self.hits = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        #: The observation: whether the last shot was a new hit, ``[num_envs]`` int64.
        self.last_obs = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        #: Steps between redraws of the spare boards: the shortest episode (every shot a hit).
        self.refresh_every = self.needed_hits
        self._spare = self.board
        #: The ``step`` call (see BatchedEnv) at which the spares were drawn.
        self._spare_drawn_at = 0
        #: For each ship size, the flat cells of every straight segment of that length.
        self._segments = {
            size: _segments(self.board_size, size, self.device) for size in set(self.ship_sizes)
        }

    def place_ships(self) -> torch.Tensor:
        """Fresh boards for every copy, ``[num_envs, board_size**2]`` bool (see the manual)."""
        side = self.board_size
        board = torch.zeros_like(self.board)
        for size in self.ship_sizes:  # a loop over ships; every copy at once
            free = _free_segments(board.view(-1, side, side), size)  # [N, S]
            # The k-th free segment, k uniform in [0, #free): one uniform number per copy.
            count = free.sum(dim=1, dtype=torch.int32)  # int32: faster than int64 here
            u = torch.rand(self.num_envs, generator=self.generator, device=self.device)
            k = torch.minimum((u * count).to(torch.int32), count - 1)
            chosen = (free.cumsum(dim=1, dtype=torch.int32) <= k[:, None]).sum(dim=1)
            board = board.scatter(1, self._segments[size][chosen], True)
        return board

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        if mask is self._all:  # reset(): every copy, from the (re)seeded generator
            fresh = self.place_ships()
            if options is not None and "board" in options:
                fresh = self._given_board(options["board"])
            self._spare, self._spare_drawn_at = self.place_ships(), self._step_calls
        else:  # autoreset inside step: the spare boards, redrawn once H steps old
            if self._step_calls - self._spare_drawn_at >= self.refresh_every:
                self._spare, self._spare_drawn_at = self.place_ships(), self._step_calls
            fresh = self._spare
        self.board = torch.where(mask[:, None], fresh, self.board)
        self.guesses = self.guesses & ~mask[:, None]
        self.hits = torch.where(mask, 0, self.hits)
        self.last_obs = torch.where(mask, 0, self.last_obs)

    def _given_board(self, board: torch.Tensor) -> torch.Tensor:
        side, shape = self.board_size, (self.num_envs, self.board_size, self.board_size)
        board = torch.as_tensor(board, device=self.device)
        if tuple(board.shape) != shape:
            raise ValueError(f"options['board'] must have shape {shape}, got {tuple(board.shape)}")
        board = board.to(torch.bool).reshape(self.num_envs, side * side)
        counts = board.sum(dim=1)
        if bool((counts != self.needed_hits).any()):
            raise ValueError(
                f"every board of options['board'] must hold {self.needed_hits} ship cells "
                f"(ship_sizes={self.ship_sizes}), got counts {counts.tolist()}"
            )
        return board

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cell = (actions[:, 0] * self.board_size + actions[:, 1]).to(torch.int64)[:, None]
        hit = (self.board.gather(1, cell) & ~self.guesses.gather(1, cell))[:, 0]
        self.guesses = self.guesses.scatter(1, cell, True)
        self.hits = self.hits + hit.to(torch.int64)
        self.last_obs = hit.to(torch.int64)
        reward = torch.where(hit, self.hit_reward, self.miss_reward).to(torch.float32)
        return reward, self.hits == self.needed_hits

    def _observe(self) -> torch.Tensor:
        return self.last_obs.clone()


def _check_ship_sizes(ship_sizes: Sequence[int], board_size: int) -> tuple[int, ...]:
    if isinstance(ship_sizes, (str, bytes)) or not isinstance(ship_sizes, Sequence):
        raise TypeError(f"ship_sizes must be a sequence of ints, got {ship_sizes!r}")
    if len(ship_sizes) == 0:
        raise ValueError("ship_sizes must name at least one ship")
    sizes = tuple(check_int("each ship size", size, 1) for size in ship_sizes)
    if max(sizes) > board_size:
        raise ValueError(
            f"every ship must fit on the board: ship_sizes={sizes} has a ship longer than "
            f"board_size={board_size}"
        )
    # Each placed ship touches its own line and one crossing line per cell: size + 1 of the
    # 2 * board_size rows and columns. While fewer are touched, a whole line is still free.
    touched = sum(size + 1 for size in sizes[:-1])
    if touched >= 2 * board_size:
        raise ValueError(
            f"ship_sizes={sizes} may not fit on a {board_size}x{board_size} board: the ships "
            f"before the last must touch fewer than {2 * board_size} rows and columns (their "
            f"sizes plus one each sum to {touched}); use fewer or smaller ships or a larger board"
        )
    return sizes


def _free_segments(board: torch.Tensor, size: int) -> torch.Tensor:
    """Which segments of ``size`` cells (in :func:`_segments`'s order) overlap no ship of
    ``board`` (``[N, side, side]`` bool): ``[N, S]`` bool, by sliding-window sums."""
    rows = F.pad(board.cumsum(dim=2, dtype=torch.int32), (1, 0))  # [N, side, side + 1]
    horizontal = rows[:, :, size:] - rows[:, :, :-size]  # [N, side, side - size + 1]
    occupied = [horizontal.flatten(1)]
    if size > 1:
        columns = F.pad(board.cumsum(dim=1, dtype=torch.int32), (0, 0, 1, 0))  # [N, side + 1, side]
        occupied.append((columns[:, size:, :] - columns[:, :-size, :]).flatten(1))
    return torch.cat(occupied, dim=1) == 0


def _segments(board_size: int, size: int, device: torch.device) -> torch.Tensor:
    """The flat cells of every straight segment of ``size`` cells, ``[S, size]`` int64.

    Horizontal segments first (by row, then start column), then vertical ones (by start row,
    then column); a segment of one cell appears once.
    """
    along = torch.arange(size, device=device)
    starts = torch.arange(board_size - size + 1, device=device)
    lines = torch.arange(board_size, device=device)
    horizontal = lines[:, None, None] * board_size + starts[None, :, None] + along
    vertical = (starts[:, None, None] + along) * board_size + lines[None, :, None]
    segments = horizontal.reshape(-1, size)
    if size > 1:
        segments = torch.cat((segments, vertical.reshape(-1, size)))
    return segments
