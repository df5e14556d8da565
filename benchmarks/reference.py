"""The stable-baselines3 references of the throughput benchmark.

:func:`train_sb3_ppo` trains SB3's PPO with RL-Zoo's tuned hyperparameters for ``CartPole-v1``
(``hyperparams/ppo.yml`` of rl-baselines3-zoo), or sb3-contrib's RecurrentPPO with RL-Zoo's
settings for ``CartPoleNoVel-v1`` (``hyperparams/ppo_lstm.yml``: CartPole with the velocities
hidden, :class:`MaskVelocity`), on a ``DummyVecEnv`` of Monitor-wrapped Gymnasium
environments, and measures what :mod:`benchmarks.throughput` compares against Umbra: steps per
second over the whole training, and the steps and wall-clock seconds until the mean return of the
last 20 finished episodes reaches a threshold (training stops there, as Umbra's
``stop_at_return`` does).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from agents.sb3 import schedule, silent_logger  # schedule: RL-Zoo's "lin_<x>" notation

#: RL-Zoo's ``CartPole-v1`` PPO hyperparameters. ``total_timesteps`` is the zoo's ``n_timesteps``:
#: the linear schedules decay over it, and it caps a run that never reaches the threshold.
RL_ZOO_CARTPOLE: dict[str, Any] = {
    "env": "CartPole-v1",
    "n_envs": 8,
    "policy": "MlpPolicy",
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_1e-3",
    "clip_range": "lin_0.2",
    "device": "cpu",
    "total_timesteps": 100_000,
    "algo": "PPO",
    "mask_velocity": False,
    "policy_kwargs": None,
    "max_steps": None,
}
#: RL-Zoo's ``CartPoleNoVel-v1`` RecurrentPPO settings (sb3-contrib). ``max_steps`` stops a run
#: early (the schedules still decay over ``total_timesteps``): RecurrentPPO runs at about a hundred
#: steps per second on a 2-core CPU, so the benchmark measures its speed on a shorter run.
RL_ZOO_CARTPOLE_NOVEL: dict[str, Any] = {
    **RL_ZOO_CARTPOLE,
    "algo": "RecurrentPPO",
    "policy": "MlpLstmPolicy",
    "mask_velocity": True,
    "policy_kwargs": {"ortho_init": False, "lstm_hidden_size": 64, "enable_critic_lstm": True,
                      "net_arch": {"pi": [64], "vf": [64]}},
    "max_steps": 10_000,
}
#: Finished episodes whose mean return is compared with the threshold (as in ``agents.ppo``).
WINDOW = 20


def mask_velocity_wrapper():
    """A Gymnasium wrapper class that hides CartPole's velocities (RL-Zoo's ``NoVel``)."""
    import gymnasium as gym
    import numpy as np

    class MaskVelocity(gym.ObservationWrapper):
        """Keep cart position and pole angle (indices 0 and 2) of CartPole's observation."""

        def __init__(self, env: gym.Env):
            super().__init__(env)
            low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
            self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

        def observation(self, observation):
            return observation[[0, 2]]

    return MaskVelocity


def train_sb3_ppo(
    settings: dict[str, Any] | None = None, seed: int = 0, threshold: float | None = None
) -> dict[str, Any]:
    """Train stable-baselines3's PPO (or sb3-contrib's RecurrentPPO) and time it.

    Args:
        settings: Overrides of :data:`RL_ZOO_CARTPOLE` (same keys; :data:`RL_ZOO_CARTPOLE_NOVEL`
            is one such override).
        seed: Seed of the model and the environments.
        threshold: Stop once the mean return of the last :data:`WINDOW` finished episodes
            reaches it; ``None`` trains for ``total_timesteps``.

    Returns:
        ``library, env_id, seed, steps, wall_time_s, sps, final_return`` (mean of the last 100
        episodes) and, with a threshold, ``threshold_reached, threshold_steps, threshold_time_s``.
        Times count from the start of ``learn`` (model and environments already built), as
        Umbra's do.
    """
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    unknown = set(settings or {}) - set(RL_ZOO_CARTPOLE)
    if unknown:
        raise ValueError(
            f"unknown SB3 settings {sorted(unknown)}; known: {sorted(RL_ZOO_CARTPOLE)}"
        )
    s = {**RL_ZOO_CARTPOLE, **(settings or {})}

    class ThresholdStop(BaseCallback):
        """Record the mean return of the last episodes; stop once it reaches ``threshold``."""

        def __init__(self) -> None:
            super().__init__()
            self.returns: deque[float] = deque(maxlen=WINDOW)
            self.start = 0.0
            self.reached_steps: int | None = None
            self.reached_time: float | None = None

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:  # written by the Monitor wrapper when an episode ends
                    self.returns.append(float(info["episode"]["r"]))
            if (
                threshold is not None
                and len(self.returns) == WINDOW
                and sum(self.returns) / WINDOW >= threshold
            ):
                self.reached_steps = self.num_timesteps
                self.reached_time = time.perf_counter() - self.start
                return False
            return s["max_steps"] is None or self.num_timesteps < s["max_steps"]

    if s["algo"] not in ("PPO", "RecurrentPPO"):
        raise ValueError(f"algo must be 'PPO' or 'RecurrentPPO', got {s['algo']!r}")
    wrapper = mask_velocity_wrapper() if s["mask_velocity"] else None
    env = make_vec_env(s["env"], n_envs=s["n_envs"], seed=seed, vec_env_cls=DummyVecEnv,
                       wrapper_class=wrapper)
    algo = PPO if s["algo"] == "PPO" else RecurrentPPO
    policy_kwargs = dict(s["policy_kwargs"] or {})
    if s["algo"] == "RecurrentPPO":
        from torch import nn

        policy_kwargs.setdefault("activation_fn", nn.ReLU)
    model = algo(
        s["policy"],
        env,
        n_steps=s["n_steps"],
        batch_size=s["batch_size"],
        n_epochs=s["n_epochs"],
        gae_lambda=s["gae_lambda"],
        gamma=s["gamma"],
        ent_coef=s["ent_coef"],
        learning_rate=schedule(s["learning_rate"]),
        clip_range=schedule(s["clip_range"]),
        device=s["device"],
        seed=seed,
        verbose=0,
        policy_kwargs=policy_kwargs or None,
    )
    callback = ThresholdStop()
    model.set_logger(silent_logger())
    model.learn(total_timesteps=s["total_timesteps"], callback=callback)
    wall = time.perf_counter() - callback.start
    env.close()
    recent = [float(info["r"]) for info in model.ep_info_buffer]
    result: dict[str, Any] = {
        "library": "stable-baselines3" if s["algo"] == "PPO" else "sb3-contrib RecurrentPPO",
        "env_id": s["env"],
        "seed": seed,
        "steps": int(model.num_timesteps),
        "wall_time_s": wall,
        "sps": model.num_timesteps / max(wall, 1e-9),
        "final_return": sum(recent) / len(recent) if recent else None,
    }
    if threshold is not None:
        result.update(
            threshold_reached=callback.reached_steps is not None,
            threshold_steps=callback.reached_steps,
            threshold_time_s=callback.reached_time,
        )
    return result
