"""POPGym's NoisyPositionOnlyPendulum: PositionOnlyPendulum with Gaussian observation noise."""

from __future__ import annotations

import torch

from envs.popgym.observation_noise import ObservationNoise
from envs.popgym.position_only_pendulum import PositionOnlyPendulum


class NoisyPositionOnlyPendulum(ObservationNoise, PositionOnlyPendulum):
    """POPGym's NoisyPositionOnlyPendulum, batched: swing a pendulum up seeing a noisy angle.

    Mirrors ``popgym.envs.noisy_position_only_pendulum.NoisyPositionOnlyPendulum`` (popgym
    1.0.7): :class:`envs.popgym.position_only_pendulum.PositionOnlyPendulum` with Gaussian noise
    on every observation (:class:`envs.popgym.observation_noise.ObservationNoise`).

    ## Action Space
    ``Box(-2, 2, (1,))`` float32: torque.

    ## Observation Space
    ``Box(-1, 1, (2,))`` float32: ``cos(theta)``, ``sin(theta)`` plus independent
    ``N(0, noise_sigma^2)`` noise per entry, clipped into [-1, 1]. The first observation of an
    episode is noisy too. Same space as popgym's.

    ## Rewards
    ``(r / 8.1368022 + 1) / 200`` with Gymnasium's Pendulum reward ``r`` (see
    ``PositionOnlyPendulum``): an episode's return lies in [-1, 1].

    ## Starting State
    theta uniform in [-pi, pi], angular velocity uniform in [-1, 1].

    ## Episode End
    Never terminates; truncated after 200 steps (popgym keeps ``max_episode_length`` = 200 at
    every difficulty).

    ## Arguments
    ``noise_sigma``: 0.1 (``popgym/NoisyPositionOnlyPendulumEasy-v0``), 0.2 (``Medium``), 0.3
    (``Hard``), as popgym's ``NoisyPositionOnlyPendulumEasy/Medium/Hard``;
    ``max_episode_length`` (200); plus ``num_envs``, ``device``, ``debug``.

    ## Version History
    - v0: first version, equal in distribution to popgym 1.0.7's ``NoisyPositionOnlyPendulum``
      (the noise comes from torch's generator rather than numpy's).
    """

    description = "POPGym NoisyPositionOnlyPendulum: swing a pendulum up seeing a noisy angle."
    popgym_class = "popgym.envs.noisy_position_only_pendulum:NoisyPositionOnlyPendulum"

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        noise_sigma: float = 0.1,
        max_episode_length: int = 200,
    ):
        super().__init__(num_envs, device, debug, max_episode_length=max_episode_length)
        self._init_noise(noise_sigma)
