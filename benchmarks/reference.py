"""The stable-baselines3 reference of the throughput benchmark: RL-Zoo's PPO on ``CartPole-v1``.

:func:`train_sb3_ppo` trains SB3's PPO with RL-Zoo's tuned hyperparameters for ``CartPole-v1``
(``hyperparams/ppo.yml`` of rl-baselines3-zoo) on a ``DummyVecEnv`` of Monitor-wrapped Gymnasium
environments, and measures what :mod:`benchmarks.throughput` compares against Umbra: steps per
second over the whole training, and the steps and wall-clock seconds until the mean return of the
last 20 finished episodes reaches a threshold (training stops there, as Umbra's
``stop_at_return`` does).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

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
}
#: Finished episodes whose mean return is compared with the threshold (as in ``agents.ppo``).
WINDOW = 20


def schedule(value: float | str) -> float | Callable[[float], float]:
    """RL-Zoo's notation: ``"lin_1e-3"`` decays linearly from 1e-3 to 0; a number is constant.

    SB3 calls a schedule with ``progress_remaining``, which goes from 1 to 0 over
    ``total_timesteps``.
    """
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ValueError(f"expected a number or 'lin_<start>' (e.g. 'lin_1e-3'), got {value!r}")
        start = float(value[len("lin_"):])
        return lambda progress_remaining: progress_remaining * start
    return float(value)


def train_sb3_ppo(
    settings: dict[str, Any] | None = None, seed: int = 0, threshold: float | None = None
) -> dict[str, Any]:
    """Train stable-baselines3's PPO and time it.

    Args:
        settings: Overrides of :data:`RL_ZOO_CARTPOLE` (same keys).
        seed: Seed of the model and the environments.
        threshold: Stop once the mean return of the last :data:`WINDOW` finished episodes
            reaches it; ``None`` trains for ``total_timesteps``.

    Returns:
        ``library, env_id, seed, steps, wall_time_s, sps, final_return`` (mean of the last 100
        episodes) and, with a threshold, ``threshold_reached, threshold_steps, threshold_time_s``.
        Times count from the start of ``learn`` (model and environments already built), as
        Umbra's do.
    """
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
            return True

    env = make_vec_env(s["env"], n_envs=s["n_envs"], seed=seed, vec_env_cls=DummyVecEnv)
    model = PPO(
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
    )
    callback = ThresholdStop()
    model.learn(total_timesteps=s["total_timesteps"], callback=callback)
    wall = time.perf_counter() - callback.start
    env.close()
    recent = [float(info["r"]) for info in model.ep_info_buffer]
    result: dict[str, Any] = {
        "library": "stable-baselines3",
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
