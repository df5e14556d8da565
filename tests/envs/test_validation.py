"""Bad input raises a clear TypeError/ValueError naming the expected value, through every door."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from envs.core import BatchedEnv
from envs.interop.gymnasium import BatchedToGymEnv, GymnasiumToBatched
from envs.interop.sb3 import BatchedToSB3VecEnv

NUM_ENVS = 2
#: Native id and the Gymnasium id with the same action space, per action kind.
IDS = {
    "discrete": ("umbra/CartPole-v0", "CartPole-v1"),
    "box": ("umbra/Pendulum-v0", "Pendulum-v1"),
}


def _open(adapter: str, kind: str) -> tuple[Callable[[Any], Any], tuple[int, ...], bool]:
    """Build and reset an environment; return its step function, batch shape, and whether it
    takes torch tensors (otherwise numpy arrays)."""
    native_id, gym_id = IDS[kind]
    if adapter == "batched(debug=True)":
        env = envs.make(native_id, num_envs=NUM_ENVS, debug=True)
        env.reset(seed=0)
        return env.step, (NUM_ENVS,), True
    if adapter == "GymnasiumToBatched":
        env = envs.make(gym_id, num_envs=NUM_ENVS)
        env.reset(seed=0)
        return env.step, (NUM_ENVS,), True
    if adapter == "gymnasium.make":
        env = gym.make(native_id)
        env.reset(seed=0)
        return env.step, (), False
    if adapter == "gymnasium.make_vec":
        env = gym.make_vec(native_id, num_envs=NUM_ENVS, vectorization_mode="vector_entry_point")
        env.reset(seed=0)
        return env.step, (NUM_ENVS,), False
    if adapter == "BatchedToSB3VecEnv":
        env = BatchedToSB3VecEnv(envs.make(native_id, num_envs=NUM_ENVS))
        env.seed(0)
        env.reset()
        return env.step, (NUM_ENVS,), False
    raise AssertionError(adapter)


ADAPTERS = [
    "batched(debug=True)",
    "GymnasiumToBatched",
    "gymnasium.make",
    "gymnasium.make_vec",
    "BatchedToSB3VecEnv",
]


def _case(kind: str, case: str, build: Callable, error: type[Exception], pattern: str) -> Any:
    """One bad action: built from the batch shape ``s``; the error; a pattern of its message,
    where ``{s}`` is the expected batch shape and ``{s1}`` the expected shape for Box(1,)."""
    return pytest.param(kind, build, error, pattern, id=f"{kind}-{case}")


CASES = [
    _case("discrete", "shape", lambda s: np.zeros((*s, 3), np.int64), ValueError, "shape {s}"),
    _case("discrete", "float", lambda s: np.zeros(s, np.float32), TypeError, "integer"),
    _case("discrete", "too large", lambda s: np.full(s, 2, np.int64), ValueError, r"\[0, 1\]"),
    _case("discrete", "negative", lambda s: np.full(s, -1, np.int64), ValueError, r"\[0, 1\]"),
    _case("discrete", "list", lambda s: [0] * (s[0] if s else 1), TypeError, "of shape {s}"),
    _case("box", "shape", lambda s: np.zeros((*s, 2), np.float32), ValueError, "shape {s1}"),
    _case("box", "int", lambda s: np.zeros((*s, 1), np.int64), TypeError, "floating point"),
    _case("box", "too large", lambda s: np.full((*s, 1), 3.0, np.float32), ValueError, r"-2\.0.*2"),
    _case("box", "NaN", lambda s: np.full((*s, 1), np.nan, np.float32), ValueError, "NaN"),
    _case("box", "list", lambda s: np.zeros((*s, 1)).tolist(), TypeError, "of shape {s1}"),
]


@pytest.mark.parametrize(("kind", "build", "error", "pattern"), CASES)
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_bad_actions_raise_clear_errors(adapter, kind, build, error, pattern):
    step, batch_shape, takes_torch = _open(adapter, kind)
    action = build(batch_shape)
    if takes_torch and isinstance(action, np.ndarray):
        action = torch.from_numpy(action)
    expected = pattern.format(s=re.escape(str(batch_shape)), s1=re.escape(str((*batch_shape, 1))))
    with pytest.raises(error, match=expected):
        step(action)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_valid_actions_still_step_after_an_error(adapter, kind):
    """A rejected action leaves the environment usable and as it was: the next valid step
    returns what it returns in an environment that never saw the bad action."""
    step, batch_shape, takes_torch = _open(adapter, kind)
    shape = batch_shape if kind == "discrete" else (*batch_shape, 1)
    dtype = np.int64 if kind == "discrete" else np.float32
    with pytest.raises((TypeError, ValueError)):
        step(np.full(shape, 99, dtype) if not takes_torch else torch.full(shape, 99, dtype=dtype))
    good = np.zeros(shape, dtype)
    result = step(torch.from_numpy(good) if takes_torch else good)
    untouched, _, _ = _open(adapter, kind)
    expected = untouched(torch.from_numpy(good) if takes_torch else good)
    for got, want in zip(result[:2], expected[:2], strict=True):  # observation, reward
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("action", [1, np.int64(1), np.int32(0), np.array(1), np.uint8(1)])
def test_gym_env_accepts_numpy_and_python_integers(action):
    env = gym.make("umbra/CartPole-v0")
    env.reset(seed=0)
    obs, *_ = env.step(action)
    assert obs in env.observation_space


@pytest.mark.parametrize("action", [1.0, True, np.array([1]), "1"])
def test_gym_env_rejects_non_integer_discrete_actions(action):
    env = gym.make("umbra/CartPole-v0")
    env.reset(seed=0)
    with pytest.raises((TypeError, ValueError), match=r"Discrete\(2\)"):
        env.step(action)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_actions_on_the_wrong_device_raise():
    env = envs.make("umbra/CartPole-v0", num_envs=2, device="cuda", debug=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="cuda"):
        env.step(torch.zeros(2, dtype=torch.int64))


# ---------------------------------------------------------------------------- envs.make
@pytest.mark.parametrize(
    ("env_id", "suggestion"),
    [
        ("umbra/CartPol-v0", "umbra/CartPole-v0"),
        ("umbra/Pendulum-v1", "umbra/Pendulum-v0"),
        ("umbra/MaskedCartpole-v0", "umbra/MaskedCartPole-v0"),
        ("CartPole-v9", "CartPole-v1"),
    ],
)
def test_unknown_id_names_the_close_match(env_id, suggestion):
    with pytest.raises(ValueError, match=re.escape(suggestion)):
        envs.make(env_id)


@pytest.mark.parametrize(
    ("entry_point", "pattern"),
    [
        ("envs.classic:CartPol", "CartPole"),
        ("envs.nonexistent:CartPole", "cannot import module"),
        ("envs.classic:", "package.module:ClassName"),
    ],
)
def test_bad_entry_point_is_a_value_error(entry_point, pattern):
    with pytest.raises(ValueError, match=pattern):
        envs.make(entry_point)


def test_entry_point_that_is_not_an_environment_is_a_type_error():
    with pytest.raises(TypeError, match="BatchedEnv or gymnasium.Env"):
        envs.make("envs.core:resolve_device")


@pytest.mark.parametrize("env_id", ["umbra/Pendulum-v0", "Pendulum-v1"])
def test_unknown_kwarg_names_the_close_match(env_id):
    with pytest.raises(TypeError, match=r"'gg'.*'g'"):
        envs.make(env_id, gg=9.8)


@pytest.mark.parametrize("env_id", ["umbra/CartPole-v0", "CartPole-v1"])
@pytest.mark.parametrize(
    ("num_envs", "error", "pattern"),
    [
        (0, ValueError, "at least 1"),
        (-3, ValueError, "at least 1"),
        ("4", TypeError, "int"),
        (2.0, TypeError, "int"),
        (True, TypeError, "int"),
    ],
)
def test_bad_num_envs(env_id, num_envs, error, pattern):
    with pytest.raises(error, match=pattern):
        envs.make(env_id, num_envs=num_envs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("env_id", ["umbra/CartPole-v0", "CartPole-v1"])
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_clear_error(env_id, device):
    with pytest.raises(ValueError, match=r"device='cpu'"):
        envs.make(env_id, device=device)


@pytest.mark.parametrize("device", ["tpu", "gpu"])
def test_unknown_device_is_a_value_error(device):
    with pytest.raises(ValueError, match="'auto', 'cpu', 'cuda'"):
        envs.make("umbra/CartPole-v0", device=device)


def test_gym_env_adapter_needs_exactly_one_copy():
    with pytest.raises(ValueError, match="num_envs=1"):
        BatchedToGymEnv(envs.make("umbra/CartPole-v0", num_envs=2))


def test_gymnasium_to_batched_needs_environments():
    with pytest.raises(ValueError, match="num_envs >= 1"):
        GymnasiumToBatched([])
    with pytest.raises(TypeError, match="callables"):
        GymnasiumToBatched([gym.make("CartPole-v1")])


def test_numpy_vec_env_takes_one_seed():
    venv = gym.make_vec("umbra/CartPole-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(TypeError, match="one int seed"):
        venv.reset(seed=[1, 2])


@pytest.mark.parametrize(
    "make",
    [
        lambda: envs.make("umbra/CartPole-v0", num_envs=2),
        lambda: envs.make("CartPole-v1", num_envs=2),
        lambda: gym.make("umbra/CartPole-v0"),
        lambda: gym.make_vec("umbra/CartPole-v0", 2, vectorization_mode="vector_entry_point"),
    ],
    ids=["batched", "GymnasiumToBatched", "gymnasium.make", "gymnasium.make_vec"],
)
def test_seed_must_be_an_int(make):
    env = make()
    first, _ = env.reset(seed=np.int64(3))  # numpy integers are ints too
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    for bad in ("3", 3.0, True):
        with pytest.raises(TypeError, match="seed must be an int"):
            env.reset(seed=bad)


class _MultiActionEnv(BatchedEnv):
    """A do-nothing environment with a configurable action space."""

    def __init__(self, action_space, num_envs=2, device="cpu", debug=True):
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.single_action_space = action_space
        super().__init__(num_envs, device, debug)

    def _reset_copies(self, mask, options=None):
        pass

    def _advance(self, actions):
        return torch.zeros(self.num_envs), torch.zeros(self.num_envs, dtype=torch.bool)

    def _observe(self):
        return torch.zeros(self.num_envs, 1)


@pytest.mark.parametrize(
    ("actions", "ok"),
    [([[2, 3], [0, 0]], True), ([[3, 0], [0, 0]], False), ([[0, 4], [0, 0]], False)],
)
def test_multi_discrete_upper_bounds_are_checked(actions, ok):
    env = _MultiActionEnv(gym.spaces.MultiDiscrete([3, 4]))
    env.reset(seed=0)
    venv = BatchedToSB3VecEnv(_MultiActionEnv(gym.spaces.MultiDiscrete([3, 4])))
    venv.reset()
    for step, batch in ((env.step, torch.tensor(actions)), (venv.step, np.array(actions))):
        if ok:
            step(batch)
        else:
            with pytest.raises(ValueError, match=re.escape("[[0, 0], [2, 3]]")):
                step(batch)


def test_multi_binary_accepts_sb3_float_samples_and_rejects_other_values():
    venv = BatchedToSB3VecEnv(_MultiActionEnv(gym.spaces.MultiBinary(3)))
    venv.reset()
    venv.step(np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]], np.float32))
    venv.step(np.array([[0, 1, 1], [1, 0, 0]], np.int64))
    for bad in (np.full((2, 3), 2, np.int64), np.full((2, 3), 256, np.int64)):
        with pytest.raises(ValueError, match="0 or 1"):
            venv.step(bad)
