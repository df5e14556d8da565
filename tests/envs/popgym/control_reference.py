"""Shared by the tests of the popgym control families: side-by-side runs against the package.

The five families (Position/NoisyPosition/VelocityOnly CartPole, (Noisy)PositionOnlyPendulum)
wrap Gymnasium's CartPole and Pendulum. The package computes in float64 and Umbra in float32, so
a side-by-side run copies Umbra's state into the package's before every step (as
``tests/envs/test_classic.py`` does) and compares the step's results within ``ATOL``; after an
episode ends the package resets with its own generator and its fresh state (and, for the noisy
families, the noise it drew) is copied into Umbra's copy. The noise of a step is injected into
Umbra's environment through its documented hook ``draw_noise``
(:class:`envs.popgym.observation_noise.ObservationNoise`), so noisy observations are compared
exactly too.

:func:`assert_cartpole_side_by_side` and :func:`assert_same_episodes` are the side-by-side and
distribution checks the family tests share; spaces, time limits and seeding are checked for every
id in test_contract.py.

Distributions are compared by a two-sample test: ``|mean_a - mean_b| < 4 * SE`` with
``SE = sqrt(var_a / n_a + var_b / n_b)`` (a false alarm about once in 16,000 runs).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import envs

#: Float32 (Umbra) against float64 (Gymnasium) after one step from the same state.
ATOL = 1e-5
#: A linear controller that keeps CartPole up (state . gains > 0 -> push right), so that the
#: side-by-side runs reach the time limit as well as terminations.
BALANCE_GAINS = torch.tensor([0.1, 0.3, 3.0, 1.0])

Policy = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def package_class(path: str) -> type:
    """``"module:Class"`` of the popgym package -> the class."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def recording(cls: type) -> type:
    """A subclass of a popgym Noisy* class that keeps the noise its ``add_noise_to_obs`` draws
    (``last_noise``), drawn from a copy of its generator: the package's behaviour is unchanged."""

    class Recording(cls):
        def add_noise_to_obs(self, obs):
            rng = copy.deepcopy(self.np_random)
            self.last_noise = rng.normal(0, self.noise_sigma).astype(np.float32)
            return super().add_noise_to_obs(obs)

    return Recording


@dataclass(frozen=True)
class Physics:
    """How to read and write the state of Umbra's copies and of a package env."""

    get: Callable  # env -> [N, k] float64
    set_row: Callable  # (env, i, state) -> None
    ref_get: Callable  # ref -> [k] float64
    ref_set: Callable  # (ref, state) -> None
    ref_action: Callable  # action tensor of one copy -> what the package's step takes
    near_boundary: Callable  # ref state after the step -> bool (termination may differ)


def _set_cartpole_row(env, i, state):
    env.state[i] = torch.as_tensor(state, dtype=torch.float32)


def _set_pendulum_row(env, i, state):
    env.theta[i], env.theta_dot[i] = float(state[0]), float(state[1])


CARTPOLE = Physics(
    get=lambda env: env.state.double().numpy(),
    set_row=_set_cartpole_row,
    ref_get=lambda ref: np.asarray(ref.state, dtype=np.float64),
    ref_set=lambda ref, state: setattr(ref, "state", state.copy()),
    ref_action=lambda action: int(action),
    near_boundary=lambda s: abs(abs(s[0]) - 2.4) < 1e-5 or abs(abs(s[2]) - 0.2094395) < 1e-5,
)
PENDULUM = Physics(
    get=lambda env: torch.stack((env.theta, env.theta_dot), 1).double().numpy(),
    set_row=_set_pendulum_row,
    ref_get=lambda ref: np.asarray(ref.state, dtype=np.float64),
    ref_set=lambda ref, state: setattr(ref, "state", state.copy()),
    ref_action=lambda action: action.numpy().astype(np.float32),
    near_boundary=lambda s: False,
)


def balance_or_random(t, env, state, generator):
    """CartPole actions: the first half of the copies balance, the others act at random."""
    n = env.num_envs
    balance = ((torch.as_tensor(state, dtype=torch.float32) * BALANCE_GAINS).sum(1) > 0).long()
    random = torch.randint(0, 2, (n,), generator=generator)
    return torch.where(torch.arange(n) < n // 2, balance, random)


def random_torque(t, env, state, generator):
    return torch.rand(env.num_envs, 1, generator=generator) * 4 - 2


def side_by_side(env_id, physics, policy, steps, num_envs=6, seed=0):
    """Step ``env_id`` and ``num_envs`` package envs (its ``popgym_class`` at the id's difficulty)
    together from the same states with the same actions; assert that observations, rewards,
    terminations and truncations agree. Returns how many episodes ended, by how."""
    env = envs.make(env_id, num_envs=num_envs)
    cls = package_class(envs.popgym.package_class(env_id))
    noisy = hasattr(env, "draw_noise")
    refs = [(recording(cls) if noisy else cls)() for _ in range(num_envs)]
    generator = torch.Generator().manual_seed(seed)
    env.reset(seed=seed)

    def restart(i, ref, seed=None):
        ref_obs, _ = ref.reset(seed=seed)
        physics.set_row(env, i, physics.ref_get(ref))
        if noisy:
            env._noise[i] = torch.from_numpy(ref.last_noise)
        np.testing.assert_allclose(env._observe()[i].numpy(), ref_obs, atol=ATOL)

    for i, ref in enumerate(refs):
        restart(i, ref, seed=seed + i)
    ended = {"terminated": 0, "truncated": 0}
    for t in range(steps):
        state = physics.get(env)
        actions = policy(t, env, state, generator)
        results = []
        for i, ref in enumerate(refs):
            physics.ref_set(ref, state[i])
            results.append(ref.step(physics.ref_action(actions[i])))
        if noisy:
            noise = torch.from_numpy(np.stack([ref.last_noise for ref in refs]))
            env.draw_noise = lambda noise=noise: noise
        _, reward, terminated, truncated, info = env.step(actions)
        for i, (ref_obs, ref_reward, ref_terminated, ref_truncated, _) in enumerate(results):
            np.testing.assert_allclose(info["final_obs"][i].numpy(), ref_obs, atol=ATOL)
            np.testing.assert_allclose(reward[i].item(), ref_reward, rtol=1e-5, atol=1e-8)
            if not physics.near_boundary(physics.ref_get(refs[i])):
                assert terminated[i].item() == ref_terminated, (t, i)
            assert truncated[i].item() == ref_truncated, (t, i)
            if terminated[i] or truncated[i]:
                restart(i, refs[i])
        ended["terminated"] += int(terminated.sum())
        ended["truncated"] += int(truncated.sum())
    return ended


def first_episodes(env_id, policy, per_copy=2, num_envs=1024, seed=0, **kwargs):
    """Returns and lengths of the first ``per_copy`` episodes of every copy (unbiased: a copy's
    first episodes are not selected by their length), as float64 / int64 numpy arrays."""
    env = envs.make(env_id, num_envs=num_envs, **kwargs)
    generator = torch.Generator().manual_seed(seed + 1)
    obs, _ = env.reset(seed=seed)
    counts = torch.zeros(num_envs, dtype=torch.int64)
    returns, lengths = [], []
    while int(counts.min()) < per_copy:
        obs, _, _, _, info = env.step(policy(obs, generator))
        keep = info["_episode"] & (counts < per_copy)
        returns.append(info["episode_return"][keep])
        lengths.append(info["episode_length"][keep])
        counts += info["_episode"].long()
    return torch.cat(returns).double().numpy(), torch.cat(lengths).numpy()


def package_episodes(cls_path, policy, episodes, seed=0):
    """Returns and lengths of ``episodes`` episodes of the package's env under ``policy``."""
    ref = package_class(cls_path)()
    generator = torch.Generator().manual_seed(seed + 1)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    for k in range(episodes):
        obs, _ = ref.reset(seed=seed if k == 0 else None)
        done = False
        while not done:
            action = policy(torch.as_tensor(obs, dtype=torch.float32)[None], generator)[0]
            action = int(action) if action.dim() == 0 else action.numpy().astype(np.float32)
            obs, reward, terminated, truncated, _ = ref.step(action)
            returns[k] += reward
            lengths[k] += 1
            done = terminated or truncated
    return returns, lengths


def z_score(a: np.ndarray, b: np.ndarray) -> float:
    """``(mean_a - mean_b) / SE`` of two independent samples (0 when both are constant)."""
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    diff = a.mean() - b.mean()
    return 0.0 if se == 0 and diff == 0 else float(diff / se)


# Policies on observations: (obs [n, 2], generator) -> actions.
def random_push(obs, generator):
    return torch.randint(0, 2, (obs.shape[0],), generator=generator)


def push_toward_second(obs, generator):
    """Push toward the side the second entry points to (the pole angle or its velocity)."""
    return (obs[:, 1] > 0).long()


def random_torque_obs(obs, generator):
    return torch.rand(obs.shape[0], 1, generator=generator) * 4 - 2


def oppose_sine(obs, generator):
    """Torque against sin(theta): a deterministic policy whose return depends on the noise."""
    return (-2.0 * obs[:, 1:2]).clamp(-2.0, 2.0)


# ---------------------------------------------------------------------- checks of every family
def assert_cartpole_side_by_side(env_id: str, steps: int) -> None:
    """:func:`side_by_side` of a CartPole id under :func:`balance_or_random`: many terminations,
    and the three balancing copies (of six) reach the time limit."""
    ended = side_by_side(env_id, CARTPOLE, balance_or_random, steps=steps)
    assert ended["terminated"] > 10
    assert ended["truncated"] == 3  # the three balancing copies


def assert_same_episodes(env_id: str, policy, episodes: int, per_copy: int = 2) -> tuple:
    """:func:`first_episodes` of ``env_id`` against ``episodes`` package episodes under
    ``policy``: returns and lengths within 4 standard errors (:func:`z_score`). Returns
    ``(returns, lengths, ref_returns, ref_lengths)``."""
    returns, lengths = first_episodes(env_id, policy, per_copy=per_copy)
    ref_returns, ref_lengths = package_episodes(envs.popgym.package_class(env_id), policy, episodes)
    assert abs(z_score(returns, ref_returns)) < 4
    assert abs(z_score(lengths.astype(float), ref_lengths.astype(float))) < 4
    return returns, lengths, ref_returns, ref_lengths
