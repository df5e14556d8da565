"""Batched mazes for POPGym's labyrinths: popgym's maze generator and the shared maze dynamics.

Mirrors ``popgym.core.maze`` (popgym 1.0.7): ``MazeEnv`` draws every maze with mazelib's
``HuntAndKill`` generator (random hunt order) and puts the start and the exit on opposite outer
walls (``Maze.generate_entrances(start_outer=True)``). Here both are tensor operations over all
copies at once: :func:`hunt_and_kill` runs a fixed number of iterations (one carved cell each) on
every copy, :func:`outer_entrances` draws every copy's entrances in one go.

:class:`MazeEnv` is the base of :class:`~envs.popgym.labyrinth_escape.LabyrinthEscape` and
:class:`~envs.popgym.labyrinth_explore.LabyrinthExplore`: moves, the local 3x3 view, resets and
the test hook :meth:`MazeEnv.load_state`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int

# Cell codes of popgym.core.maze.Cell.
FREE, OBSTACLE, START, GOAL, HIDDEN = 0, 1, 2, 3, 4
NUM_CELL_CODES = 5
# Actions of popgym.core.maze.Actions; NONE is only ever observed (before the first move).
LEFT, RIGHT, UP, DOWN, NONE = 0, 1, 2, 3, 4
NUM_ACTION_CODES = 5


def hunt_and_kill(
    num: int, h: int, w: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """``num`` mazes of ``h x w`` cells drawn as mazelib's ``HuntAndKill(h, w)`` draws them.

    mazelib's algorithm (``hunt_order="random"``): open a uniformly random cell; random-walk from
    it, opening a uniformly chosen unvisited neighbour (and the wall between) until the current
    cell has none; then "hunt": draw a uniformly random cell, and walk from it if it is open;
    stop after ``H * W`` hunts in all (``H, W = 2h + 1, 2w + 1``).

    The batched form has the same distribution. A hunt that lands on a closed cell, or on an open
    cell without unvisited neighbours, changes nothing, so the hunts until the next productive
    one are one geometric draw (success probability: productive cells / all cells) and the cell
    it lands on is uniform among the productive ones; the generation stops when the hunts so far
    exceed ``H * W``. Every iteration then opens exactly one cell in every unfinished copy, so
    ``h * w - 1`` iterations finish every copy: a loop over generation steps, never over copies.

    Like mazelib's, the result is a perfect maze (the open cells and passages form a tree) that,
    with a tiny probability (the budget of hunts running out, below 1e-9 for 5x5 cells), leaves
    some cells closed.

    Args:
        num: Number of mazes.
        h: Rows of cells (at least 3, as mazelib asserts).
        w: Columns of cells (at least 3).
        generator: The source of randomness (on ``device``).
        device: Where the result lives.

    Returns:
        ``[num, 2h + 1, 2w + 1]`` bool: True where the grid is open (cells at odd coordinates,
        passages between them); mazelib's ``grid == 0``.
    """
    big_h, big_w = 2 * h + 1, 2 * w + 1
    cells = h * w
    index = torch.arange(cells, device=device)
    row, col = index // w, index % w
    # Neighbour of every cell in the directions up, down, left, right (-1: off the grid).
    neighbour = torch.stack(
        (
            torch.where(row > 0, index - w, -1),
            torch.where(row < h - 1, index + w, -1),
            torch.where(col > 0, index - 1, -1),
            torch.where(col < w - 1, index + 1, -1),
        ),
        dim=1,
    )
    on_grid = neighbour >= 0
    neighbour = neighbour.clamp(min=0)
    grid_index = (2 * row + 1) * big_w + 2 * col + 1  # a cell's place in the flat grid
    wall_offset = torch.tensor([-big_w, big_w, -1, 1], device=device)  # the wall towards it
    copies = torch.arange(num, device=device)

    opened = torch.zeros(num, big_h * big_w, dtype=torch.bool, device=device)
    visited = torch.zeros(num, cells, dtype=torch.bool, device=device)
    current = torch.randint(cells, (num,), generator=generator, device=device)
    visited[copies, current] = True
    opened[copies, grid_index[current]] = True
    hunts = torch.zeros(num, dtype=torch.int64, device=device)
    active = torch.ones(num, dtype=torch.bool, device=device)
    budget = big_h * big_w
    for _ in range(cells - 1):
        # Productive cells: visited, with an unvisited neighbour (shifts of the cell grid).
        fresh = ~visited.view(num, h, w)
        beside = torch.zeros_like(fresh)
        beside[:, 1:] |= fresh[:, :-1]
        beside[:, :-1] |= fresh[:, 1:]
        beside[:, :, 1:] |= fresh[:, :, :-1]
        beside[:, :, :-1] |= fresh[:, :, 1:]
        productive = visited & beside.view(num, cells)
        stuck = ~productive[copies, current]
        # Hunt (where stuck): the number of draws until a productive cell is geometric.
        noise = torch.rand(num, cells + 5, generator=generator, device=device)
        p = productive.sum(dim=1).to(torch.float32) / cells
        u = 1.0 - noise[:, -1]  # in (0, 1]
        draws = torch.floor(torch.log(u) / torch.log1p(-torch.where(p > 0, p, 0.5)))
        draws = draws.clamp(max=budget).to(torch.int64) + 1  # p < 1: never more than h * w
        found = (p > 0) & (hunts + draws <= budget)
        hunting = active & stuck
        active = active & ~(stuck & ~found)
        hunts = torch.where(hunting & found, hunts + draws, hunts)
        pick = torch.where(productive, noise[:, :cells], -1.0).argmax(dim=1)
        current = torch.where(hunting & found, pick, current)
        # Walk (every active copy): open a uniformly chosen unvisited neighbour.
        options = on_grid[current] & ~visited.gather(1, neighbour[current])
        direction = torch.where(options, noise[:, cells:cells + 4], -1.0).argmax(dim=1)
        following = neighbour[current, direction]
        wall = grid_index[current] + wall_offset[direction]
        opened[copies, wall] |= active
        opened[copies, grid_index[following]] |= active
        visited[copies, following] |= active
        current = torch.where(active, following, current)
    return opened.view(num, big_h, big_w)


def outer_entrances(
    num: int, h: int, w: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and exit on opposite outer walls, as mazelib's ``_generate_outer_entrances``.

    A side is uniform among north, south, west, east; the start lies on it and the exit on the
    opposite side, each in front of a uniformly random cell (odd coordinate along the wall).
    Opposite sides are at least ``2 * min(h, w)`` apart, so mazelib's redraw of entrances closer
    than 2 never happens.

    Returns:
        ``(start, end)``, each ``[num, 2]`` int64 ``(row, column)`` in the ``[2h+1, 2w+1]`` grid.
    """
    big_h, big_w = 2 * h + 1, 2 * w + 1
    side = torch.randint(4, (num,), generator=generator, device=device)
    start_row = 2 * torch.randint(h, (num,), generator=generator, device=device) + 1
    end_row = 2 * torch.randint(h, (num,), generator=generator, device=device) + 1
    start_col = 2 * torch.randint(w, (num,), generator=generator, device=device) + 1
    end_col = 2 * torch.randint(w, (num,), generator=generator, device=device) + 1
    zero = torch.zeros_like(side)
    last_row, last_col = zero + big_h - 1, zero + big_w - 1

    def by_side(north, south, west, east):
        return torch.stack((north, south, west, east), dim=1).gather(1, side[:, None])[:, 0]

    # The start on side 0 north, 1 south, 2 west, 3 east; the exit on the opposite side.
    start_y = by_side(zero, last_row, start_row, start_row)
    start_x = by_side(start_col, start_col, zero, last_col)
    end_y = by_side(last_row, zero, end_row, end_row)
    end_x = by_side(end_col, end_col, last_col, zero)
    start, end = torch.stack((start_y, start_x), dim=1), torch.stack((end_y, end_x), dim=1)
    return start, end


class MazeEnv(BatchedEnv):
    """What LabyrinthEscape and LabyrinthExplore share, as popgym's ``core.maze.MazeEnv``.

    Every copy holds a grid of cell codes ``[2h+1, 2w+1]`` (``h, w = maze_dims // 2``; 0 free,
    1 obstacle, 2 start, 3 goal), the agent's ``(row, column)``, the squares it has explored and
    its last action. Subclasses implement the rewards and episode ends.

    Fresh mazes: a ``reset()`` draws every copy's maze at once. The copies that end inside
    ``step`` take a spare maze drawn in advance; the spares of all copies are redrawn at the
    first autoreset ``refresh_every`` or more steps after their draw, where ``refresh_every``
    (``min(2 * min(h, w), episode_length - 1)``) is at most the shortest possible episode, so no
    spare is used twice (an exit lies at least ``2 * min(h, w)`` moves from the start; exploring
    a maze takes as many). This costs at most a generation every ``refresh_every`` steps instead
    of one every step, and draws every maze from the same distribution.

    On the CPU (``indexes_resets``), where reading which copies ended costs no synchronisation,
    the copies that end take the next unused mazes of a pool of ``num_envs`` mazes, drawn again
    when it runs out, and only their rows are written: a generation every ``num_envs`` episodes
    rather than every ``refresh_every`` steps (at 1,024 copies of the Easy labyrinths, about one
    episode ends per step). Every maze is still used once and drawn from the same distribution;
    the two paths draw from the generator in different orders, so a seed gives other mazes on
    the CPU than on an accelerator (as torch's generators already do).
    """

    #: Whether the exit is marked GOAL in the grid (LabyrinthEscape) or left a wall (Explore).
    marks_goal: bool = False

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        maze_dims: tuple[int, int] = (10, 10),
        episode_length: int = 1024,
    ):
        if not isinstance(maze_dims, (tuple, list)) or len(maze_dims) != 2:
            raise TypeError(f"maze_dims must be a pair (height, width), got {maze_dims!r}")
        height = check_int("maze_dims[0]", maze_dims[0], 6)
        width = check_int("maze_dims[1]", maze_dims[1], 6)
        if height % 2 or width % 2:
            raise ValueError(f"maze_dims must be even (popgym asserts it), got {tuple(maze_dims)}")
        self.maze_dims = (height, width)
        self.episode_length = check_int("episode_length", episode_length, 2)
        #: Cells per column and row (popgym's ``self.maze_dims``).
        self.cells = (height // 2, width // 2)
        self.grid_shape = (height + 1, width + 1)
        # popgym truncates when the step counter reaches episode_length - 1.
        self.max_episode_steps = self.episode_length - 1
        self.single_observation_space = gym.spaces.MultiDiscrete(
            np.array(9 * [NUM_CELL_CODES] + [NUM_ACTION_CODES], dtype=np.int32)
        )
        self.single_action_space = gym.spaces.Discrete(4)
        super().__init__(num_envs, device, debug)
        n, (big_h, big_w) = self.num_envs, self.grid_shape
        #: Cell codes ``[N, H, W]`` int8 (popgym's ``maze.grid``).
        self.grid = torch.ones(n, big_h, big_w, dtype=torch.int8, device=self.device)
        #: ``(row, column)`` ``[N, 2]`` int64 (popgym's ``position``, ``(y, x)``).
        self.position = torch.zeros(n, 2, dtype=torch.int64, device=self.device)
        #: Squares visited this episode ``[N, H, W]`` bool (popgym's ``explored``).
        self.explored = torch.zeros(n, big_h, big_w, dtype=torch.bool, device=self.device)
        #: The action of the last step, NONE (4) at the start.
        self.last_action = torch.full((n,), NONE, dtype=torch.int64, device=self.device)
        self.refresh_every = min(2 * min(self.cells), self.episode_length - 1)
        self._spare: tuple[torch.Tensor, torch.Tensor] | None = None
        #: The ``step`` call (see BatchedEnv) at which the spares were drawn.
        self._spare_drawn_at = 0
        #: Whether the copies that end are indexed (the CPU path of the class docstring).
        self.indexes_resets = self.device.type == "cpu"
        self._pool: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pool_used = 0
        self._copies = torch.arange(n, device=self.device)
        #: Flat index of every copy's square (0, 0) in ``[N, H, W]`` (see :meth:`at`).
        self._first_square = self._copies * (big_h * big_w)
        self._moves = torch.tensor([[0, -1], [0, 1], [-1, 0], [1, 0]], device=self.device)
        self._limits = torch.tensor([big_h - 1, big_w - 1], device=self.device)
        self._offsets = torch.arange(3, device=self.device)

    # ------------------------------------------------------------------ mazes
    def draw_mazes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh maze for every copy: ``(grid [N, H, W] int8, start [N, 2])``."""
        h, w = self.cells
        opened = hunt_and_kill(self.num_envs, h, w, self.generator, self.device)
        start, end = outer_entrances(self.num_envs, h, w, self.generator, self.device)
        grid = torch.where(opened, FREE, OBSTACLE).to(torch.int8)
        grid[self._copies, start[:, 0], start[:, 1]] = START
        if self.marks_goal:
            grid[self._copies, end[:, 0], end[:, 1]] = GOAL
        return grid, start

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        if mask is self._all:  # reset(): every copy, from the (re)seeded generator
            grid, start = self.draw_mazes()
            self._spare = None if self.indexes_resets else self.draw_mazes()
            self._spare_drawn_at = self._step_calls
            self._pool, self._pool_used = None, 0
        elif self.indexes_resets:  # autoreset inside step, on the CPU: the pool's next mazes
            rows = mask.nonzero()[:, 0]
            if len(rows):
                self._start_rows(mask, rows, *self._from_pool(len(rows)))
            return
        else:  # autoreset inside step: the spares, redrawn once refresh_every steps old
            if self._step_calls - self._spare_drawn_at >= self.refresh_every:
                self._spare, self._spare_drawn_at = self.draw_mazes(), self._step_calls
            grid, start = self._spare
        self._start(mask, grid, start)

    def _from_pool(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` (<= ``num_envs``) mazes never used before: ``(grid, start)``."""
        if self._pool is None or self._pool_used + count > self.num_envs:
            self._pool, self._pool_used = self.draw_mazes(), 0
        taken = slice(self._pool_used, self._pool_used + count)
        self._pool_used += count
        grid, start = self._pool
        return grid[taken], start[taken]

    def _start(self, mask: torch.Tensor, grid: torch.Tensor, start: torch.Tensor) -> None:
        """Start an episode in ``grid`` at ``start`` where ``mask`` is true."""
        explored = torch.zeros_like(self.explored)
        explored[self._copies, start[:, 0], start[:, 1]] = True
        self.grid = torch.where(mask[:, None, None], grid, self.grid)
        self.explored = torch.where(mask[:, None, None], explored, self.explored)
        self.position = torch.where(mask[:, None], start, self.position)
        self.last_action = torch.where(mask, NONE, self.last_action)
        self._on_start(mask)

    def _start_rows(
        self, mask: torch.Tensor, rows: torch.Tensor, grid: torch.Tensor, start: torch.Tensor
    ) -> None:
        """:meth:`_start` for the copies ``rows`` (``mask`` as indices), writing only their rows;
        ``grid`` and ``start`` hold one maze per row."""
        self.grid[rows] = grid
        self.explored[rows] = False
        self.explored[rows, start[:, 0], start[:, 1]] = True
        self.position[rows] = start
        self.last_action[rows] = NONE
        self._on_start(mask, rows)

    def at(self, squares: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """``squares[i, row_i, column_i]`` for every copy ``i``, with ``position`` ``[N, 2]``
        ``(row, column)`` and ``squares`` an ``[N, H, W]`` tensor (the grid, explored):
        one flat read, a fraction of the cost of indexing with three index tensors."""
        return torch.take(squares, self._flat(position[:, 0], position[:, 1]))

    def _flat(self, row: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        """Flat indices into ``[N, H, W]`` of each copy's ``(row, column)``; ``row`` and
        ``column`` are ``[N, ...]`` (broadcast against each other)."""
        first = self._first_square.view(-1, *([1] * (max(row.dim(), column.dim()) - 1)))
        return first + row * self.grid_shape[1] + column

    def _on_start(self, mask: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Subclasses: per-episode quantities of the copies that start (``mask``; ``rows``, the
        same copies as indices, when the caller has them: then only those rows need work)."""

    def load_state(
        self,
        grid: torch.Tensor | np.ndarray,
        position: torch.Tensor | np.ndarray,
        explored: torch.Tensor | np.ndarray | None = None,
    ) -> None:
        """Test hook: put every copy at the start of an episode in the given mazes.

        Call it after ``reset()`` (episode statistics at zero), e.g. with a popgym env's
        ``maze.grid`` and ``position`` after its ``reset``, then step both with the same actions:
        the observations, rewards and episode ends are equal.

        Args:
            grid: Cell codes ``[N, H, W]`` (popgym's ``maze.grid``, START and GOAL marked).
            position: ``[N, 2]`` ``(row, column)`` of the agent.
            explored: ``[N, H, W]`` bool; default: only ``position``.
        """
        grid = torch.as_tensor(np.asarray(grid), device=self.device).to(torch.int8)
        position = torch.as_tensor(np.asarray(position), device=self.device).to(torch.int64)
        if tuple(grid.shape) != (self.num_envs, *self.grid_shape) or tuple(position.shape) != (
            self.num_envs, 2
        ):
            raise ValueError(
                f"load_state needs grid [{self.num_envs}, {self.grid_shape[0]}, "
                f"{self.grid_shape[1]}] and position [{self.num_envs}, 2], got "
                f"{tuple(grid.shape)} and {tuple(position.shape)}"
            )
        self._start(self._all, grid, position)
        if explored is not None:
            explored = torch.as_tensor(np.asarray(explored), device=self.device).bool()
            self.explored = explored.contiguous()
            self._on_start(self._all)

    # ------------------------------------------------------------------ dynamics
    def _move(self, actions: torch.Tensor) -> torch.Tensor:
        """Where every agent lands (popgym's ``move``): clamped to the grid, walls block."""
        target = torch.minimum((self.position + self._moves[actions]).clamp(min=0), self._limits)
        blocked = self.at(self.grid, target) == OBSTACLE
        return torch.where(blocked[:, None], self.position, target)

    def _go(self, actions: torch.Tensor, target: torch.Tensor | None = None) -> None:
        """Move every agent (to ``target``, :meth:`_move`'s, when the caller has it) and mark
        its square explored (popgym's ``MazeEnv.step``)."""
        self.position = self._move(actions) if target is None else target
        # explored is contiguous (every writer makes it so): its flat view is itself
        self.explored.view(-1)[self._flat(self.position[:, 0], self.position[:, 1])] = True
        self.last_action = actions.to(torch.int64, copy=True)  # owned: rows are written in place

    def _observe(self) -> torch.Tensor:
        """popgym's ``get_obs``: the 3x3 view around the agent (row-major), then the last action.

        popgym's ``local_view`` slices ``grid[y-1 : y+2, x-1 : x+2]`` clipped at the grid's top
        and left edge and pads the missing rows/columns with obstacles at the bottom/right, so on
        the top row or left column the view is shifted (the agent is not at its centre); its
        slice ends are also clipped with the other axis's length (``x_end = min(x + 1, H)``,
        ``y_end = min(y + 1, W)``), which matters only for non-square mazes. Both are mirrored.
        """
        big_h, big_w = self.grid_shape
        y, x = self.position[:, 0], self.position[:, 1]
        rows = (y - 1).clamp(min=0)[:, None] + self._offsets
        cols = (x - 1).clamp(min=0)[:, None] + self._offsets
        row_ok = (rows <= (y + 1).clamp(max=big_w)[:, None]) & (rows < big_h)
        col_ok = (cols <= (x + 1).clamp(max=big_h)[:, None]) & (cols < big_w)
        view = torch.take(self.grid, self._flat(rows.clamp(max=big_h - 1)[:, :, None],
                                                cols.clamp(max=big_w - 1)[:, None, :]))
        view = torch.where(row_ok[:, :, None] & col_ok[:, None, :], view, OBSTACLE)
        return torch.cat((view.reshape(self.num_envs, 9).to(torch.int64),
                          self.last_action[:, None]), dim=1)
