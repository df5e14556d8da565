"""The T-maze: a cue shown once, a long corridor, a choice at the junction that needs the cue."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv, check_int


class TMaze(BatchedEnv):
    """T-maze: remember a left/right cue along a corridor of ``length`` steps, then turn that way.

    The classic memory test (Bakker, 2001, "Reinforcement Learning with Long Short-Term Memory"),
    in its simplest form so that the only difficulty is the memory span. The first observation
    shows a cue, left or right. The agent then walks down a corridor: every action moves it one
    square forward, whatever the action. After ``length`` moves it stands at the junction, where
    its action chooses a branch and ends the episode. Only the first observation depends on the
    cue, so a policy without memory chooses at chance (50% success, expected return 0) while a
    policy that remembers the cue for ``length`` steps succeeds every time (return 1).

    ## Action Space
    ``Discrete(2)``: at the junction, 0 turns left and 1 turns right. In the corridor both
    actions move one square forward.

    ## Observation Space
    ``Box(0, 1, (4,))`` float32: ``[cue_left, cue_right, in_corridor, at_junction]``.

    - First step: ``[1, 0, 1, 0]`` (cue left) or ``[0, 1, 1, 0]`` (cue right);
    - in the corridor afterwards: ``[0, 0, 1, 0]``;
    - at the junction (and in the final observation): ``[0, 0, 0, 1]``.

    ## Rewards
    +1 for turning towards the cue at the junction, -1 for turning away from it, 0 in the corridor.
    The return is +1 or -1; guessing gives 0 in expectation.

    ## Starting State
    At the start of the corridor, with the cue left or right with probability 1/2 each.

    ## Episode End
    Terminated by the choice at the junction, always after exactly ``length + 1`` steps; there is
    no time limit (``max_episode_steps`` is None), since no episode can last longer.

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.BatchedEnv`) and ``length``
    (int >= 1, default 5): the number of moves from the cue to the junction, i.e. how many steps
    the cue must be remembered.

    ``umbra/TMazeEasy-v0``: ``length`` = 5; ``Medium``: 50; ``Hard``: 200.

    ## Version History
    - v0: first version.
    """

    description = "T-maze: a cue at the start, a corridor, then turn towards the cue; needs memory."

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        length: int = 5,
    ):
        self.length = check_int("length", length, 1)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        super().__init__(num_envs, device, debug)
        #: Squares walked from the start, in [0, length]; ``length`` is the junction.
        self.position = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        #: 0 (left) or 1 (right): the branch that pays.
        self.cue = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        fresh = torch.randint(2, (self.num_envs,), generator=self.generator, device=self.device)
        self.cue = torch.where(mask, fresh, self.cue)
        self.position = torch.where(mask, 0, self.position)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        at_junction = self.position >= self.length
        right_turn = (actions.to(torch.int64) == self.cue).to(torch.float32) * 2.0 - 1.0
        reward = torch.where(at_junction, right_turn, 0.0)
        self.position = (self.position + 1).clamp(max=self.length)
        return reward, at_junction

    def _observe(self) -> torch.Tensor:
        at_start = self.position == 0
        at_junction = self.position >= self.length
        return torch.stack(
            (at_start & (self.cue == 0), at_start & (self.cue == 1), ~at_junction, at_junction),
            dim=1,
        ).to(torch.float32)
