"""POPGym's VelocityOnlyCartPole: CartPole with the positions hidden (but for the first step)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.popgym.position_only_cartpole import PositionOnlyCartPole


class VelocityOnlyCartPole(PositionOnlyCartPole):
    """POPGym's VelocityOnlyCartPole, batched: balance a pole seeing velocities only.

    Mirrors ``popgym.envs.velocity_only_cartpole.VelocityOnlyCartPole`` (popgym 1.0.7): the
    rewards and episode ends of :class:`envs.popgym.position_only_cartpole.PositionOnlyCartPole`
    with the other half of the state on show.

    ## Action Space
    ``Discrete(2)``: 0 pushes the cart left, 1 pushes it right (10 N).

    ## Observation Space
    ``Box(-inf, inf, (2,))`` float32, as popgym's. After every step: cart velocity and pole
    angular velocity. The FIRST observation of an episode is cart position and pole angle
    instead: popgym's ``reset`` returns ``[x, theta]`` (the same line as PositionOnlyCartPole's
    reset) while ``step`` returns ``[x_dot, theta_dot]``. This mirrors the package, since the
    published POPGym results were obtained with it; both are drawn from [-0.05, 0.05].

    ## Rewards
    ``1 / max_episode_length`` for every step: an episode that lasts ``max_episode_length`` steps
    returns 1.

    ## Starting State
    All four state variables uniform in [-0.05, 0.05].

    ## Episode End
    Terminated when the pole angle leaves +-12 degrees or the cart position leaves +-2.4;
    truncated when the episode reaches ``max_episode_length`` steps.

    ## Arguments
    ``max_episode_length``: 200 (``popgym/VelocityOnlyCartPoleEasy-v0``), 400 (``Medium``), 600
    (``Hard``), as popgym's ``VelocityOnlyCartPoleEasy/Medium/Hard``; plus ``num_envs``,
    ``device``, ``debug``.

    ## Version History
    - v0: first version, equal to popgym 1.0.7's ``VelocityOnlyCartPole``.
    """

    description = "POPGym VelocityOnlyCartPole: CartPole seeing cart and pole velocities."
    popgym_class = "popgym.envs.velocity_only_cartpole:VelocityOnlyCartPole"
    observed = (1, 3)
    #: What the first observation of an episode shows (popgym's reset): position and angle.
    observed_at_reset = (0, 2)

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        max_episode_length: int = 200,
    ):
        super().__init__(num_envs, device, debug, max_episode_length=max_episode_length)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self._observed_at_reset = torch.tensor(self.observed_at_reset, device=self.device)
        #: Copies whose episode has not taken a step yet (they show ``observed_at_reset``).
        self._fresh = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        super()._reset_copies(mask, options)
        self._fresh = self._fresh | mask

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._fresh = torch.zeros_like(self._fresh)
        return super()._advance(actions)

    def _observe(self) -> torch.Tensor:
        first = self.state.index_select(1, self._observed_at_reset)
        return torch.where(self._fresh[:, None], first, super()._observe())
