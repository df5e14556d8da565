"""POPGym's LabyrinthExplore: visit every square of a random maze, seeing only your neighbours."""

from __future__ import annotations

import torch

from envs.popgym.maze import FREE, OBSTACLE, MazeEnv


class LabyrinthExplore(MazeEnv):
    """Explore a procedurally generated maze, rewarded for every square visited for the first time.

    Mirrors ``popgym.envs.labyrinth_explore.LabyrinthExplore`` (popgym 1.0.7; Morad et al.,
    "POPGym: Benchmarking Partially Observable Reinforcement Learning", ICLR 2023). The agent
    starts on the outer wall of a perfect maze of ``maze_dims // 2`` cells (a grid of
    ``(maze_dims[0] + 1) x (maze_dims[1] + 1)`` squares with walls between cells) and must visit
    every open square. popgym itself warns that its mazes "have been shown to be solvable without
    the use of memory (e.g. MLP outperforms LSTM)".

    ## Action Space
    ``Discrete(4)``: 0 left, 1 right, 2 up, 3 down (one square). A move into a wall, or off the
    grid, leaves the agent where it is.

    ## Observation Space
    ``MultiDiscrete([5] * 10)`` (popgym's space, int32 in numpy, int64 tensors here): the 3x3
    squares around the agent, row by row (0 free, 1 wall, 2 start), then the last action (4 before
    the first move). Visited squares are not marked. As in popgym, out-of-grid squares read as
    walls, and on the top row or left column the view is shifted by one square (see
    :meth:`~envs.popgym.maze.MazeEnv._observe`).

    ## Rewards
    ``1 / F`` for a step onto a square not visited before, where ``F`` is the number of free
    squares of the maze (the start square not counted, as in popgym), else ``-1 / episode_length``
    (float32 here, float in popgym; computed in float64 and rounded). Visiting every square
    collects 1 in all.

    ## Starting State
    A fresh maze drawn like popgym's (mazelib's Hunt-and-Kill, batched:
    :func:`~envs.popgym.maze.hunt_and_kill`; entrances on opposite outer walls:
    :func:`~envs.popgym.maze.outer_entrances`). The agent stands on the start square of the outer
    wall, which counts as visited; the exit square of mazelib stays a wall here, as in popgym.

    ## Episode End
    Terminated when every open square has been visited. Truncated when the episode reaches
    ``episode_length - 1`` steps (popgym's ``curr_step == max_episode_length - 1``), so
    ``max_episode_steps`` is ``episode_length - 1``; finishing on that step gives ``terminated``
    and ``truncated`` both true, as in popgym.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`); ``maze_dims``
    (pair of even ints >= 6, default ``(10, 10)``) and ``episode_length`` (int >= 2, default
    1024), popgym's arguments.

    ``popgym/LabyrinthExploreEasy-v0``: ``maze_dims=(10, 10)``; ``Medium``: ``(14, 14)``;
    ``Hard``: ``(18, 18)``; all with ``episode_length=1024``.

    Not mirrored: popgym's ``info`` (``maze`` as text at reset, ``position`` as ``(x, y)``),
    ``state_space``/``get_state`` and ``render``; :attr:`grid`, :attr:`position` and
    :attr:`explored` hold the same state as tensors.

    ## Version History
    - v0: first version.
    """

    popgym_class = "popgym.envs.labyrinth_explore:LabyrinthExplore"
    description = "POPGym LabyrinthExplore: visit every square of a random maze from a 3x3 view."
    marks_goal = False

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        maze_dims: tuple[int, int] = (10, 10),
        episode_length: int = 1024,
    ):
        super().__init__(num_envs, device, debug, maze_dims, episode_length)
        self._step_reward = torch.tensor(
            -1.0 / self.episode_length, dtype=torch.float32, device=self.device
        )
        #: ``1 / F`` of every copy's maze (popgym's ``pos_reward_scale``).
        self.new_square_reward = torch.zeros(self.num_envs, device=self.device)
        #: Squares where ``explored`` differs from "not an obstacle", ``[N]`` int64: the episode
        #: is over (popgym: every free square explored) when none are left. A step onto a new
        #: square takes one off, so ``step`` never compares whole grids.
        self.squares_left = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def _on_start(self, mask: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        def scale(grid: torch.Tensor) -> torch.Tensor:
            free = (grid == FREE).sum(dim=(1, 2)).to(torch.float64)
            return (1.0 / free).to(torch.float32)

        def left(grid: torch.Tensor, explored: torch.Tensor) -> torch.Tensor:
            return ((grid != OBSTACLE) != explored).sum(dim=(1, 2))

        if rows is None:
            self.new_square_reward = torch.where(mask, scale(self.grid), self.new_square_reward)
            self.squares_left = torch.where(mask, left(self.grid, self.explored),
                                            self.squares_left)
        else:
            self.new_square_reward[rows] = scale(self.grid[rows])
            self.squares_left[rows] = left(self.grid[rows], self.explored[rows])

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = self._move(actions)
        new_square = ~self.at(self.explored, target)
        self._go(actions, target)
        reward = torch.where(new_square, self.new_square_reward, self._step_reward)
        self.squares_left = self.squares_left - new_square.to(torch.int64)
        return reward, self.squares_left == 0
