"""A Gymnasium environment that raises on its first step after a reset with a seed >= 100.

Trials with seeds below 100 train normally; a trial with seed 100 fails inside its worker,
wherever it runs (``envs.make("tests.benchmarks.crashing_env:CrashingEnv")``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class CrashingEnv(gym.Env):
    """Observation ``[0, 0]``, reward 1 per step, 8 steps per episode; crashes as above."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.crash = seed >= 100
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: Any):
        if getattr(self, "crash", False):
            raise RuntimeError("CrashingEnv: seed >= 100")
        self.t += 1
        return np.zeros(2, np.float32), 1.0, False, self.t >= 8, {}
