"""Classic control, batched: CartPole and Pendulum with Gymnasium's exact dynamics."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from envs.core import BatchedEnv


class CartPole(BatchedEnv):
    """CartPole, batched: balance a pole on a cart by pushing the cart left or right.

    The dynamics, rewards, limits and initial-state distribution are exactly those of Gymnasium's
    ``CartPole-v1`` (Barto, Sutton and Anderson, 1983, with Euler integration), computed in float32
    for ``num_envs`` copies at once.

    ## Action Space
    ``Discrete(2)``: 0 pushes the cart left, 1 pushes it right, with a force of 10 N.

    ## Observation Space
    ``Box(4,)`` float32: cart position [-4.8, 4.8], cart velocity, pole angle [-0.418, 0.418] rad,
    pole angular velocity.

    ## Rewards
    +1 for every step, the terminating step included.

    ## Starting State
    All four state variables uniform in [-0.05, 0.05].

    ## Episode End
    Terminated when the pole angle leaves +-12 degrees or the cart position leaves +-2.4;
    truncated after ``max_episode_steps`` = 500 steps.

    ## Arguments
    ``umbra/CartPole-v0`` takes ``num_envs``, ``device`` and ``debug`` (see :class:`BatchedEnv`).

    ## Version History
    - v0: first version, equal to Gymnasium ``CartPole-v1``.
    """

    description = "Balance a pole on a cart; Gymnasium CartPole-v1 dynamics, batched."
    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    max_episode_steps = 500
    #: Indices of the state that the agent sees; the masked variant shows fewer.
    observed = (0, 1, 2, 3)

    def __init__(self, num_envs: int = 1, device: str | torch.device = "cpu", debug: bool = False):
        high = np.array(
            [self.x_threshold * 2, np.finfo(np.float32).max, self.theta_threshold_radians * 2,
             np.finfo(np.float32).max],
            dtype=np.float32,
        )[list(self.observed)]
        self.single_observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        super().__init__(num_envs, device, debug)
        self.state = torch.zeros(self.num_envs, 4, device=self.device)
        self._observed = torch.tensor(self.observed, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        fresh = torch.rand(self.num_envs, 4, generator=self.generator, device=self.device)
        fresh = fresh * 0.1 - 0.05
        self.state = torch.where(mask[:, None], fresh, self.state)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, x_dot, theta, theta_dot = self.state.unbind(1)
        force = (actions.to(self.state.dtype) * 2.0 - 1.0) * self.force_mag
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = (force + self.polemass_length * theta_dot.square() * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta.square() / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        self.state = torch.stack(
            (x + self.tau * x_dot, x_dot + self.tau * xacc,
             theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc),
            dim=1,
        )
        terminated = (self.state[:, 0].abs() > self.x_threshold) | (
            self.state[:, 2].abs() > self.theta_threshold_radians
        )
        return torch.ones(self.num_envs, device=self.device), terminated

    def _observe(self) -> torch.Tensor:
        if len(self.observed) == 4:
            return self.state.clone()
        return self.state.index_select(1, self._observed)


class Pendulum(BatchedEnv):
    """Pendulum, batched: swing a frictionless pendulum up and keep it upright.

    The dynamics and reward are exactly those of Gymnasium's ``Pendulum-v1``, computed in float32
    for ``num_envs`` copies at once.

    ## Action Space
    ``Box(-2, 2, (1,))`` float32: torque applied at the free end.

    ## Observation Space
    ``Box(3,)`` float32: ``cos(theta)``, ``sin(theta)`` in [-1, 1], angular velocity in [-8, 8],
    with theta = 0 upright.

    ## Rewards
    ``-(theta^2 + 0.1 * theta_dot^2 + 0.001 * torque^2)`` with theta normalised to [-pi, pi]:
    between about -16.27 and 0 per step.

    ## Starting State
    theta uniform in [-pi, pi], angular velocity uniform in [-1, 1].

    ## Episode End
    Never terminates; truncated after ``max_episode_steps`` = 200 steps.

    ## Arguments
    ``umbra/Pendulum-v0`` takes ``num_envs``, ``device``, ``debug`` and ``g`` (gravity, default
    10.0).

    ## Version History
    - v0: first version, equal to Gymnasium ``Pendulum-v1``.
    """

    description = (
        "Swing a pendulum up (continuous torque); Gymnasium Pendulum-v1 dynamics, batched."
    )
    max_speed = 8.0
    max_torque = 2.0
    dt = 0.05
    m = 1.0
    l = 1.0  # noqa: E741 - the physics name
    max_episode_steps = 200
    #: Observation entries shown to the agent: cos, sin, angular velocity.
    observed = (0, 1, 2)

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        g: float = 10.0,
    ):
        self.g = float(g)
        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)[list(self.observed)]
        self.single_observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = gym.spaces.Box(
            -self.max_torque, self.max_torque, shape=(1,), dtype=np.float32
        )
        super().__init__(num_envs, device, debug)
        self.theta = torch.zeros(self.num_envs, device=self.device)
        self.theta_dot = torch.zeros(self.num_envs, device=self.device)
        self._observed = torch.tensor(self.observed, device=self.device)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        fresh = torch.rand(self.num_envs, 2, generator=self.generator, device=self.device) * 2 - 1
        self.theta = torch.where(mask, fresh[:, 0] * math.pi, self.theta)
        self.theta_dot = torch.where(mask, fresh[:, 1], self.theta_dot)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = actions[:, 0].clamp(-self.max_torque, self.max_torque)
        angle = torch.remainder(self.theta + math.pi, 2 * math.pi) - math.pi
        cost = angle.square() + 0.1 * self.theta_dot.square() + 0.001 * u.square()
        new_theta_dot = self.theta_dot + (
            3 * self.g / (2 * self.l) * torch.sin(self.theta) + 3.0 / (self.m * self.l**2) * u
        ) * self.dt
        self.theta_dot = new_theta_dot.clamp(-self.max_speed, self.max_speed)
        self.theta = self.theta + self.theta_dot * self.dt
        return -cost, torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def _observe(self) -> torch.Tensor:
        full = torch.stack((torch.cos(self.theta), torch.sin(self.theta), self.theta_dot), dim=1)
        if len(self.observed) == 3:
            return full
        return full.index_select(1, self._observed)
