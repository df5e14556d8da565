"""Cooperative navigation: agents spread out to cover landmarks, each seeing only nearby things."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from envs.core import MultiAgentBatchedEnv, check_int, check_positive
from envs.multiagent import pettingzoo_factories

#: Unit moves of the five discrete actions: noop, up, down, left, right.
MOVES = ((0.0, 0.0), (0.0, 1.0), (0.0, -1.0), (-1.0, 0.0), (1.0, 0.0))


class CooperativeNavigation(MultiAgentBatchedEnv):
    """Cooperative navigation: ``num_agents`` agents cover as many landmarks, seeing nearby only.

    MPE's ``simple_spread`` in spirit (Lowe et al., 2017, "Multi-Agent Actor-Critic for Mixed
    Cooperative-Competitive Environments"), batched, and partially observable: an agent sees the
    landmarks and the other agents only within ``view_radius`` of itself. The team shares one
    reward that is highest when every landmark has an agent on it and no two agents collide; since
    nobody sees everything, agents must spread out without a global picture.

    ## Action Space
    ``Discrete(5)`` per agent: 0 no-op, 1 up (+y), 2 down (-y), 3 left (-x), 4 right (+x). An
    action accelerates the agent by ``acceleration`` = 5 in that direction; the velocity decays by
    ``damping`` = 0.25 per step and the position moves by ``velocity * dt`` (``dt`` = 0.1), so the
    speed never exceeds 2. The arena is the square [-1, 1]^2: an agent that reaches a wall stops
    there (that velocity component becomes 0).

    ## Observation Space
    ``Box(4 + 3 * num_agents + 3 * (num_agents - 1),)`` float32 per agent, in this order:

    - own position (x, y) in [-1, 1] and own velocity in [-2, 2];
    - for each landmark (in a fixed order): its position relative to the agent, in [-2, 2], and a
      visibility flag, 1 if it lies within ``view_radius`` of the agent; an invisible landmark
      reads (0, 0, 0);
    - for each other agent (in index order, skipping the agent itself): the same three numbers.

    ## State
    ``Box(6 * num_agents,)`` float32, in [-2, 2]: every agent's position, every agent's velocity,
    every landmark's position (``num_agents`` landmarks).

    ## Rewards
    Shared by all agents: ``-sum over landmarks of the distance to the nearest agent`` minus
    ``collision_penalty`` (1.0) for every pair of agents closer than ``2 * agent_radius`` (0.3).
    0 is the best possible reward, reached when every landmark has an agent on it and no two
    agents touch.

    ## Starting State
    Agents and landmarks uniform in [-1, 1]^2, agents at rest.

    ## Episode End
    Never terminates; truncated after ``max_cycles`` steps (25, as in MPE).

    ## Arguments
    ``num_envs``, ``device``, ``debug`` (see :class:`~envs.core.MultiAgentBatchedEnv`) and

    - ``num_agents`` (int >= 1, default 3): agents, and as many landmarks;
    - ``view_radius`` (float > 0, default 1.0): how far an agent sees; ``math.inf`` shows
      everything (MPE's full observability);
    - ``max_cycles`` (int >= 1, default 25): the time limit.

    ``parallel_env(**kwargs)`` and ``env(**kwargs)`` in this module give one copy as a PettingZoo
    ``ParallelEnv`` / AEC env.

    ## Version History
    - v0: first version.
    """

    description = "Agents cover landmarks seeing only nearby entities (MPE simple_spread, partial)."
    agent_position_slice = (0, 2)  # the agent's own (x, y) comes first
    dt = 0.1
    damping = 0.25
    acceleration = 5.0
    max_speed = 2.0
    agent_radius = 0.15
    collision_penalty = 1.0

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        debug: bool = False,
        num_agents: int = 3,
        view_radius: float = 1.0,
        max_cycles: int = 25,
    ):
        num_agents = check_int("num_agents", num_agents, 1)
        self.view_radius = check_positive("view_radius", view_radius)
        self.max_episode_steps = check_int("max_cycles", max_cycles, 1)
        self.num_landmarks = num_agents
        entities = self.num_landmarks + num_agents - 1
        low = np.array([-1, -1, -2, -2] + [-2, -2, 0] * entities, dtype=np.float32)
        high = np.array([1, 1, 2, 2] + [2, 2, 1] * entities, dtype=np.float32)
        self.single_observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.single_action_space = gym.spaces.Discrete(len(MOVES))
        self.state_space = gym.spaces.Box(-2.0, 2.0, (4 * num_agents + 2 * num_agents,), np.float32)
        super().__init__(num_agents, num_envs, device, debug)
        n, a = self.num_envs, self.num_agents
        self.position = torch.zeros(n, a, 2, device=self.device)
        self.velocity = torch.zeros(n, a, 2, device=self.device)
        self.landmarks = torch.zeros(n, self.num_landmarks, 2, device=self.device)
        self._moves = torch.tensor(MOVES, device=self.device)
        #: ``_others[i]``: the indices of the agents other than ``i``, in order.
        self._others = torch.tensor(
            [[j for j in range(a) if j != i] for i in range(a)], dtype=torch.int64,
            device=self.device,
        ).reshape(a, a - 1)

    def _reset_copies(self, mask: torch.Tensor, options: dict | None = None) -> None:
        n, a, m = self.num_envs, self.num_agents, self.num_landmarks
        fresh = torch.rand(n, a + m, 2, generator=self.generator, device=self.device) * 2 - 1
        keep = mask[:, None, None]
        self.position = torch.where(keep, fresh[:, :a], self.position)
        self.landmarks = torch.where(keep, fresh[:, a:], self.landmarks)
        self.velocity = torch.where(keep, 0.0, self.velocity)

    def _advance(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        push = self._moves[actions] * self.acceleration
        velocity = self.velocity * (1 - self.damping) + push * self.dt
        velocity = velocity.clamp(-self.max_speed, self.max_speed)
        moved = self.position + velocity * self.dt
        self.position = moved.clamp(-1.0, 1.0)
        self.velocity = torch.where(moved.abs() > 1.0, 0.0, velocity)
        reward = self.coverage_reward()[:, None].expand(self.num_envs, self.num_agents)
        return reward.contiguous(), torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    def coverage_reward(self) -> torch.Tensor:
        """The shared reward of the current positions, ``[num_envs]`` (see the class docstring)."""
        to_landmarks = torch.cdist(self.landmarks, self.position)  # [N, M, A]
        cover = to_landmarks.min(dim=2).values.sum(dim=1)
        between = torch.cdist(self.position, self.position)  # [N, A, A]
        close = between < 2 * self.agent_radius
        pairs = (close.sum(dim=(1, 2)) - self.num_agents) // 2  # the diagonal is always close
        return -cover - self.collision_penalty * pairs.to(cover.dtype)

    def _relative(self, targets: torch.Tensor) -> torch.Tensor:
        """``[N, A, K, 3]``: each target relative to each agent, zeroed unless within view."""
        offset = targets[:, None] - self.position[:, :, None]  # [N, A, K, 2]
        visible = offset.norm(dim=-1, keepdim=True) <= self.view_radius
        return torch.cat((offset * visible, visible.to(offset.dtype)), dim=-1)

    def _observe(self) -> torch.Tensor:
        n, a = self.num_envs, self.num_agents
        landmarks = self._relative(self.landmarks).reshape(n, a, -1)
        agents = self._relative(self.position)  # [N, A, A, 3]
        others = agents[:, torch.arange(a, device=self.device)[:, None], self._others]
        return torch.cat((self.position, self.velocity, landmarks, others.reshape(n, a, -1)), -1)

    def _state(self) -> torch.Tensor:
        n = self.num_envs
        return torch.cat(
            (self.position.reshape(n, -1), self.velocity.reshape(n, -1),
             self.landmarks.reshape(n, -1)),
            dim=1,
        )


parallel_env, env = pettingzoo_factories(CooperativeNavigation)
