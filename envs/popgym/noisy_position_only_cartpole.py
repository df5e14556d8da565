"""POPGym's NoisyPositionOnlyCartPole: PositionOnlyCartPole with Gaussian observation noise."""

from __future__ import annotations

import torch

from envs.popgym.observation_noise import ObservationNoise
from envs.popgym.position_only_cartpole import PositionOnlyCartPole


class NoisyPositionOnlyCartPole(ObservationNoise, PositionOnlyCartPole):
    """POPGym's NoisyPositionOnlyCartPole, batched: balance a pole seeing noisy positions.

    Mirrors ``popgym.envs.noisy_position_only_cartpole.NoisyPositionOnlyCartPole`` (popgym 1.0.7):
    :class:`envs.popgym.position_only_cartpole.PositionOnlyCartPole` with Gaussian noise on every
    observation (:class:`envs.popgym.observation_noise.ObservationNoise`).

    ## Action Space
    ``Discrete(2)``: 0 pushes the cart left, 1 pushes it right (10 N).

    ## Observation Space
    ``Box(2,)`` float32: cart position and pole angle plus independent ``N(0, noise_sigma^2)``
    noise per entry, clipped into [-4.8, 4.8] and [-0.418, 0.418] rad. The first observation of
    an episode is noisy too. Same space as popgym's.

    ## Rewards
    ``1 / 200`` for every step (see ``PositionOnlyCartPole``): a full episode returns 1.

    ## Starting State
    All four state variables uniform in [-0.05, 0.05].

    ## Episode End
    Terminated when the pole angle leaves +-12 degrees or the cart position leaves +-2.4;
    truncated at 200 steps (popgym keeps ``max_episode_length`` = 200 at every difficulty).

    ## Arguments
    ``noise_sigma``: 0.1 (``popgym/NoisyPositionOnlyCartPoleEasy-v0``), 0.2 (``Medium``), 0.3
    (``Hard``), as popgym's ``NoisyPositionOnlyCartPoleEasy/Medium/Hard``;
    ``max_episode_length`` (200); plus ``num_envs``, ``device``, ``debug``.

    ## Version History
    - v0: first version, equal in distribution to popgym 1.0.7's ``NoisyPositionOnlyCartPole``
      (the noise comes from torch's generator rather than numpy's).
    """

    description = "POPGym NoisyPositionOnlyCartPole: CartPole seeing noisy position and angle."
    popgym_class = "popgym.envs.noisy_position_only_cartpole:NoisyPositionOnlyCartPole"

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
