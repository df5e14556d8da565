"""Gaussian observation noise as POPGym adds it (``add_noise_to_obs`` of its Noisy* classes)."""

from __future__ import annotations

import torch

from envs.core import check_positive


class ObservationNoise:
    """Mixin: add Gaussian noise to a Box observation and clip it into the observation space.

    Mirrors ``add_noise_to_obs`` of ``popgym.envs.noisy_position_only_cartpole`` and
    ``popgym.envs.noisy_position_only_pendulum``: every observation that an episode shows, its
    first one included, is ``clip(clean + noise, low, high)`` with fresh noise ``N(0, sigma^2)``
    per entry. The noise is drawn when the state changes (in ``_reset_copies`` for the copies
    that start, in ``_advance`` for every copy) and kept until the next change, so that
    ``info["final_obs"]`` and later calls of ``_observe`` show the same noisy observation.

    Put it before the environment class in the bases and call :meth:`_init_noise` at the end of
    ``__init__``::

        class NoisyPositionOnlyCartPole(ObservationNoise, PositionOnlyCartPole): ...

    :meth:`draw_noise` is the one place noise comes from: a documented hook that the tests
    override to inject the noise the popgym package draws, for step-by-step comparisons.
    """

    noise_sigma: float

    def _init_noise(self, noise_sigma: float) -> None:
        """Check ``noise_sigma`` and allocate the noise of every copy (zero before ``reset``)."""
        self.noise_sigma = check_positive("noise_sigma", noise_sigma)
        space = self.single_observation_space
        self._noise = torch.zeros(self.num_envs, *space.shape, device=self.device)
        self._obs_low = torch.as_tensor(space.low, device=self.device)
        self._obs_high = torch.as_tensor(space.high, device=self.device)

    def draw_noise(self) -> torch.Tensor:
        """Fresh noise for every copy, ``[num_envs, *obs_shape]`` float32, from ``generator``."""
        return self.noise_sigma * torch.randn(
            self._noise.shape, generator=self.generator, device=self.device
        )

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        super()._reset_copies(mask, options)
        ended = mask.view(-1, *([1] * (self._noise.dim() - 1)))
        self._noise = torch.where(ended, self.draw_noise(), self._noise)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward, terminated = super()._advance(actions)
        self._noise = self.draw_noise()
        return reward, terminated

    def _observe(self) -> torch.Tensor:
        noisy = super()._observe() + self._noise
        return torch.minimum(torch.maximum(noisy, self._obs_low), self._obs_high)
