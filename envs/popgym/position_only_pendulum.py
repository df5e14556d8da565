"""POPGym's PositionOnlyPendulum: Pendulum with the angular velocity hidden, popgym's rewards."""

from __future__ import annotations

import torch

from envs.core import check_int
from envs.pomdp.masked import MaskedPendulum


class PositionOnlyPendulum(MaskedPendulum):
    """POPGym's PositionOnlyPendulum, batched: swing a pendulum up seeing its angle only.

    Mirrors ``popgym.envs.position_only_pendulum.PositionOnlyPendulum`` (popgym 1.0.7), a wrapper
    of Gymnasium's ``PendulumEnv``. The dynamics and initial states are
    :class:`envs.classic.Pendulum` (Gymnasium ``Pendulum-v1`` with g = 10, computed in float32);
    the observation is :class:`envs.pomdp.masked.MaskedPendulum`'s; popgym's episode length and
    reward scale are added here.

    ## Action Space
    ``Box(-2, 2, (1,))`` float32: torque applied at the free end.

    ## Observation Space
    ``Box(-1, 1, (2,))`` float32: ``cos(theta)``, ``sin(theta)`` (the angular velocity is
    hidden). Same space as popgym's.

    ## Rewards
    Gymnasium's reward ``r = -(theta^2 + 0.1 * theta_dot^2 + 0.001 * torque^2)``, in
    [-16.2736044, 0], mapped linearly onto [-1, 1] and divided by the episode length:
    ``(r / 8.1368022 + 1) / max_episode_length``. An episode's return lies in [-1, 1].

    ## Starting State
    theta uniform in [-pi, pi], angular velocity uniform in [-1, 1].

    ## Episode End
    Never terminates; truncated after ``max_episode_length`` steps.

    ## Arguments
    ``max_episode_length``: 200 (``popgym/PositionOnlyPendulumEasy-v0``), 150 (``Medium``), 100
    (``Hard``), as popgym's ``PositionOnlyPendulumEasy/Medium/Hard``; plus ``num_envs``,
    ``device``, ``debug`` (see :class:`envs.core.BatchedEnv`).

    ## Version History
    - v0: first version, equal to popgym 1.0.7's ``PositionOnlyPendulum``.
    """

    description = "POPGym PositionOnlyPendulum: swing a pendulum up seeing cos, sin of its angle."
    popgym_class = "popgym.envs.position_only_pendulum:PositionOnlyPendulum"
    #: Half the width of Gymnasium's reward range [-16.2736044, 0] (popgym's constant).
    reward_half_range = 16.2736044 / 2

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
        scaled = (reward + self.reward_half_range) / self.reward_half_range
        return scaled / self.max_episode_length, terminated
