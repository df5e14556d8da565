"""The contract of every ``popgym/`` id, against the ``popgym`` package: the checks that every
family shares (what is particular to a family lives in its own ``test_<family>.py``).

- Spaces: the observation and action spaces are the package's (a popgym ``Tuple`` of
  ``Discrete``\\ s matches the ``MultiDiscrete`` of their sizes), every first observation lies in
  the package's observation space, and the time limit reads popgym's by the family's convention
  (:data:`TIME_LIMIT`).
- Seeding: the same seed gives the same trajectory (observations, rewards, end flags and every
  tensor of the env's state, boards, decks and mazes included), also on an env that has run
  before; another seed gives another; the run crosses every copy's first episode end (on every
  Easy id; harder ones are cut at ``MAX_STEPS``), so autoresets are seeded too;
  ``info["_episode"]`` marks exactly the copies that ended.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from envs.popgym import package_class
from envs.registry import list_ids

IDS = [env_id for env_id in list_ids() if env_id.startswith("popgym/")]

#: Family -> ``max_episode_steps`` from the package env. Card games end by termination at the
#: end of the deck (no time limit); popgym's labyrinths truncate at ``curr_step == L - 1``.
TIME_LIMIT: dict[str, Callable[[object], int | None]] = {
    **dict.fromkeys(
        ["Autoencode", "CountRecall", "HigherLower", "RepeatFirst", "RepeatPrevious"],
        lambda ref: None,
    ),
    **dict.fromkeys(
        ["LabyrinthEscape", "LabyrinthExplore"], lambda ref: ref.max_episode_length - 1
    ),
    "Concentration": lambda ref: ref.episode_length,
}
#: Keyword arguments that shorten a family's episodes in the seeding test (a random walk in a
#: labyrinth lasts 1,023 steps otherwise).
SHORT = dict.fromkeys(["LabyrinthEscape", "LabyrinthExplore"], {"episode_length": 12})
#: Copies of each env in the seeding test, and its longest run (every Easy id's episodes end
#: within it; longer ones are cut there).
NUM_ENVS, MAX_STEPS = 4, 210


def family(env_id: str) -> str:
    """``popgym/<Family><Difficulty>-v0`` -> ``<Family>``."""
    name = env_id.split("/", 1)[1].rsplit("-v", 1)[0]
    return name.removesuffix("Easy").removesuffix("Medium").removesuffix("Hard")


def package_env(env_id: str):
    """The popgym env that ``env_id`` mirrors (its maze DeprecationWarning silenced)."""
    module, name = package_class(env_id).split(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return getattr(importlib.import_module(module), name)()


def spaces_match(ours: gym.Space, theirs: gym.Space) -> bool:
    """Equal spaces; a popgym Tuple of Discretes matches the MultiDiscrete of their sizes."""
    if isinstance(theirs, gym.spaces.Tuple):
        return isinstance(ours, gym.spaces.MultiDiscrete) and \
            ours.nvec.tolist() == [int(s.n) for s in theirs.spaces]
    return ours == theirs


def as_package_observation(space: gym.Space, obs: torch.Tensor):
    """One batched observation in the package's encoding of ``space``."""
    if isinstance(space, gym.spaces.Tuple):
        return tuple(int(x) for x in obs)
    if isinstance(space, gym.spaces.Discrete):
        return np.int64(obs.item())
    return obs.numpy()


@pytest.mark.parametrize("env_id", IDS)
def test_spaces_and_time_limit_are_the_packages(env_id):
    env, ref = envs.make(env_id, num_envs=8), package_env(env_id)
    assert spaces_match(env.single_observation_space, ref.observation_space)
    assert spaces_match(env.single_action_space, ref.action_space)
    time_limit = TIME_LIMIT.get(family(env_id), lambda ref: ref.max_episode_length)
    assert env.max_episode_steps == time_limit(ref)
    obs, _ = env.reset(seed=0)
    for row in obs:
        assert as_package_observation(ref.observation_space, row) in ref.observation_space, row


# ---------------------------------------------------------------------------- seeding
def random_actions(space: gym.Space, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` uniform actions of ``space`` (Discrete, MultiDiscrete or Box) from ``generator``."""
    if isinstance(space, gym.spaces.Discrete):
        return torch.randint(int(space.n), (n,), generator=generator) + int(space.start)
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = torch.as_tensor(space.nvec)
        return (torch.rand(n, *nvec.shape, generator=generator) * nvec).long() \
            + torch.as_tensor(space.start)
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    return low + torch.rand(n, *space.shape, generator=generator) * (high - low)


def state(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    """Copies of every public tensor attribute of ``obj``, and of the Umbra objects it holds (a
    deck). Private ones are bookkeeping that a used env may keep differently (a deck's epochs)."""
    out = {}
    for name, value in vars(obj).items():
        if name.startswith("_"):
            continue
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value.clone()
        elif type(value).__module__.startswith("envs.") and hasattr(value, "__dict__"):
            out.update(state(value, f"{prefix}{name}."))
    return out


def trajectory(env, seed: int, steps: int | None = None) -> list:
    """Reset with ``seed``, then random actions (a fixed generator, so only the env's seed varies)
    for ``steps`` steps, or, when ``steps`` is None, until every copy has ended an episode and 3
    steps more (at most :data:`MAX_STEPS`). Returns the env's state after the reset, every step's
    results and the state at the end, and whether every copy ended an episode."""
    generator = torch.Generator().manual_seed(0)
    obs, _ = env.reset(seed=seed)
    out: list = [state(env), obs]
    ended = torch.zeros(env.num_envs, dtype=torch.bool)
    taken, after = 0, 0
    while taken < steps if steps is not None else after < 3 and taken < MAX_STEPS:
        actions = random_actions(env.single_action_space, env.num_envs, generator)
        obs, reward, terminated, truncated, info = env.step(actions)
        assert torch.equal(info["_episode"], terminated | truncated)
        ended |= info["_episode"]
        taken, after = taken + 1, after + bool(ended.all())
        out += [obs, reward, terminated, truncated]
    return out + [state(env)], bool(ended.all())


def same(a, b) -> bool:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(torch.equal(a[k], b[k]) for k in a)
    return torch.equal(a, b)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory_another_seed_another(env_id):
    def make():
        return envs.make(env_id, num_envs=NUM_ENVS, **SHORT.get(family(env_id), {}))

    first, used = make(), make()
    trajectory(used, 5, steps=17)  # a used env, reseeded, must not remember its past
    a, crossed = trajectory(first, 3)
    assert crossed or not env_id.endswith("Easy-v0"), "the run must cross the autoresets"
    b, _ = trajectory(used, 3, steps=(len(a) - 3) // 4)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert same(x, y), f"entry {i} of the trajectory differs"
    c, _ = trajectory(first, 4, steps=20)
    assert not all(same(x, y) for x, y in zip(a[:-1], c[:-1], strict=False)), "seed ignored"
