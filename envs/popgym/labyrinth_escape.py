"""POPGym's LabyrinthEscape: find the exit of a random maze, seeing only the squares around you."""

from __future__ import annotations

import torch

from envs.popgym.maze import GOAL, MazeEnv


class LabyrinthEscape(MazeEnv):
    """Escape a procedurally generated maze, seeing only the 3x3 squares around the agent.

    Mirrors ``popgym.envs.labyrinth_escape.LabyrinthEscape`` (popgym 1.0.7; Morad et al., "POPGym:
    Benchmarking Partially Observable Reinforcement Learning", ICLR 2023). The agent starts on
    the outer wall of a perfect maze of ``maze_dims // 2`` cells (a grid of
    ``(maze_dims[0] + 1) x (maze_dims[1] + 1)`` squares with walls between cells) and must reach
    the exit on the opposite outer wall. popgym itself warns that its mazes "have been shown to
    be solvable without the use of memory (e.g. MLP outperforms LSTM)".

    ## Action Space
    ``Discrete(4)``: 0 left, 1 right, 2 up, 3 down (one square). A move into a wall, or off the
    grid, leaves the agent where it is.

    ## Observation Space
    ``MultiDiscrete([5] * 10)`` (popgym's space, int32 in numpy, int64 tensors here): the 3x3
    squares around the agent, row by row (0 free, 1 wall, 2 start, 3 exit), then the last action
    (4 before the first move). As in popgym, out-of-grid squares read as walls, and on the top
    row or left column the view is shifted by one square (popgym pads the clipped slice at the
    bottom/right; see :meth:`~envs.popgym.maze.MazeEnv._observe`).

    ## Rewards
    ``-1 / episode_length`` every step, plus 1 on the step that reaches the exit (float32 here,
    float in popgym; the values are the same).

    ## Starting State
    A fresh maze drawn like popgym's: mazelib's Hunt-and-Kill generator with random hunts
    (:func:`~envs.popgym.maze.hunt_and_kill`, same distribution, batched) and entrances on
    opposite outer walls (:func:`~envs.popgym.maze.outer_entrances`). The agent stands on the
    start square of the outer wall; the exit square is marked 3 in the grid.

    ## Episode End
    Terminated when the agent reaches the exit. Truncated when the episode reaches
    ``episode_length - 1`` steps (popgym's ``curr_step == max_episode_length - 1``), so
    ``max_episode_steps`` is ``episode_length - 1``; reaching the exit on that step gives
    ``terminated`` and ``truncated`` both true, as in popgym.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`); ``maze_dims``
    (pair of even ints >= 6, default ``(10, 10)``) and ``episode_length`` (int >= 2, default
    1024), popgym's arguments.

    ``popgym/LabyrinthEscapeEasy-v0``: ``maze_dims=(10, 10)``; ``Medium``: ``(14, 14)``;
    ``Hard``: ``(18, 18)``; all with ``episode_length=1024``.

    Not mirrored: popgym's ``info`` (``maze`` as text at reset, ``position`` as ``(x, y)``),
    ``state_space``/``get_state`` and ``render``; :attr:`grid`, :attr:`position` and
    :attr:`explored` hold the same state as tensors.

    ## Version History
    - v0: first version.
    """

    popgym_class = "popgym.envs.labyrinth_escape:LabyrinthEscape"
    description = "POPGym LabyrinthEscape: reach the exit of a random maze from a 3x3 view."
    marks_goal = True

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        maze_dims: tuple[int, int] = (10, 10),
        episode_length: int = 1024,
    ):
        super().__init__(num_envs, device, debug, maze_dims, episode_length)
        step_cost = -1.0 / self.episode_length
        self._step_reward = torch.tensor(step_cost, dtype=torch.float32, device=self.device)
        self._exit_reward = torch.tensor(step_cost + 1.0, dtype=torch.float32, device=self.device)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._go(actions)
        at_exit = self.at(self.grid, self.position) == GOAL
        return torch.where(at_exit, self._exit_reward, self._step_reward), at_exit
