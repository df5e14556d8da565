"""POPGym's PositionOnlyCartPole: CartPole with the velocities hidden, popgym's rewards."""

from __future__ import annotations

import torch

from envs.core import check_int
from envs.pomdp.masked import MaskedCartPole


class PositionOnlyCartPole(MaskedCartPole):
    """POPGym's PositionOnlyCartPole, batched: balance a pole seeing positions only.

    Mirrors ``popgym.envs.position_only_cartpole.PositionOnlyCartPole`` (popgym 1.0.7), a wrapper
    of Gymnasium's ``CartPoleEnv``. The dynamics, limits and initial states are
    :class:`envs.classic.CartPole` (Gymnasium ``CartPole-v1``, computed in float32); the
    observation is :class:`envs.pomdp.masked.MaskedCartPole`'s; popgym's episode length and
    reward scale are added here.

    ## Action Space
    ``Discrete(2)``: 0 pushes the cart left, 1 pushes it right (10 N).

    ## Observation Space
    ``Box(2,)`` float32: cart position in [-4.8, 4.8], pole angle in [-0.418, 0.418] rad (the
    velocities are hidden). Same space as popgym's.

    ## Rewards
    ``1 / max_episode_length`` for every step, the terminating one included, so that an episode
    that lasts the whole ``max_episode_length`` steps returns 1. (popgym maps Gymnasium's reward
    0 to -1, but Gymnasium's CartPole gives 0 only for steps taken after termination, which an
    autoresetting batch never takes: every reward popgym returns before a reset is
    ``1 / max_episode_length``.)

    ## Starting State
    All four state variables uniform in [-0.05, 0.05].

    ## Episode End
    Terminated when the pole angle leaves +-12 degrees or the cart position leaves +-2.4;
    truncated when the episode reaches ``max_episode_length`` steps (both can hold at once, as in
    popgym).

    ## Arguments
    ``max_episode_length``: 200 (``popgym/PositionOnlyCartPoleEasy-v0``), 400 (``Medium``), 600
    (``Hard``), as popgym's ``PositionOnlyCartPoleEasy/Medium/Hard``; plus ``num_envs``,
    ``device``, ``debug`` (see :class:`envs.core.BatchedEnv`).

    ## Version History
    - v0: first version, equal to popgym 1.0.7's ``PositionOnlyCartPole``.
    """

    description = "POPGym PositionOnlyCartPole: CartPole seeing cart position and pole angle."
    #: The popgym class this one mirrors; ``<Name>Easy/Medium/Hard`` are its difficulties.
    popgym_class = "popgym.envs.position_only_cartpole:PositionOnlyCartPole"

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        max_episode_length: int = 200,
    ):
        self.max_episode_length = check_int("max_episode_length", max_episode_length, 1)
        self.max_episode_steps = self.max_episode_length
        super().__init__(num_envs, device, debug)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward, terminated = super()._advance(actions)
        return reward / self.max_episode_length, terminated
