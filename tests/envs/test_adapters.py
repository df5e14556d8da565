"""The adapters: third-party Gymnasium envs as batched envs, and batched envs in Gymnasium/SB3."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import envs
from envs.classic import CartPole
from envs.interop.gymnasium import BatchedToGymEnv, GymnasiumToBatched
from envs.interop.sb3 import BatchedToSB3VecEnv

INFO_KEYS = {"final_obs", "_final_obs", "episode_return", "episode_length", "_episode"}


class Countdown(gym.Env):
    """A tiny third-party env: Dict observations (a float64 box and a counter), 3-step episodes,
    reward = the step number (so every episode returns 1 + 2 + 3 = 6)."""

    def __init__(self):
        self.observation_space = spaces.Dict(
            {"pos": spaces.Box(-10.0, 10.0, (2,), np.float64), "count": spaces.Discrete(4)}
        )
        self.action_space = spaces.Discrete(2)
        self._count, self._pos = 0, np.zeros(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._count, self._pos = 0, self.np_random.uniform(-1.0, 1.0, size=2)
        return self._obs(), {}

    def step(self, action):
        self._count += 1
        self._pos = self._pos + (1.0 if action else -1.0)
        return self._obs(), float(self._count), self._count >= 3, False, {}

    def _obs(self):
        return {"pos": self._pos.copy(), "count": self._count}


class TextObservation(Countdown):
    def __init__(self):
        super().__init__()
        self.observation_space = spaces.Text(5)


class MaskedActionsCartPole(CartPole):
    """CartPole offering sb3-contrib's ``action_masks()``: only "push right" is allowed."""

    def action_masks(self) -> torch.Tensor:
        return torch.tensor([False, True]).expand(self.num_envs, 2)


# ---------------------------------------------------------------------------- Env -> batched
@pytest.mark.parametrize(
    "env_id", ["CartPole-v1", "gymnasium.envs.classic_control.cartpole:CartPoleEnv"]
)
def test_third_party_cartpole_obeys_the_batched_contract(env_id):
    num_envs = 4
    env = envs.make(env_id, num_envs=num_envs)
    assert isinstance(env, GymnasiumToBatched) and env.num_envs == num_envs
    assert env.single_action_space == spaces.Discrete(2)
    obs, info = env.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.dtype == torch.float32
    assert obs.shape == (num_envs, 4) and obs.device == env.device and info == {}

    push_right = torch.ones(num_envs, dtype=torch.int64)
    returns = torch.zeros(num_envs)
    ended = 0
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(push_right)
        assert set(info) == INFO_KEYS and reward.dtype == torch.float32
        assert terminated.dtype == truncated.dtype == torch.bool
        done = terminated | truncated
        returns += reward
        assert torch.equal(info["_final_obs"], done) and torch.equal(info["_episode"], done)
        final = info["final_obs"]
        assert final.shape == obs.shape and final.dtype == torch.float32
        assert (final[done, 2].abs() > CartPole.theta_threshold_radians).all()  # the pole fell
        assert (obs[done].abs() <= 0.05).all()  # ... and a new episode started
        torch.testing.assert_close(final[~done], obs[~done], rtol=0, atol=0)
        torch.testing.assert_close(info["episode_return"][done], returns[done])
        assert torch.equal(info["episode_length"][done], returns[done].long())
        returns[done] = 0.0
        ended += int(done.sum())
    assert ended >= num_envs


def test_third_party_env_matches_gymnasiums_own_vector_env():
    """Same seed, same actions: the adapter returns what SyncVectorEnv(SAME_STEP) returns."""
    num_envs = 3
    env = envs.make("CartPole-v1", num_envs=num_envs)
    ref = SyncVectorEnv(
        [lambda: gym.make("CartPole-v1")] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP
    )
    obs, _ = env.reset(seed=42)
    ref_obs, _ = ref.reset(seed=42)
    np.testing.assert_array_equal(obs.numpy(), ref_obs)
    for i in range(num_envs):  # Gymnasium's convention: copy i is seeded with seed + i
        single_obs, _ = gym.make("CartPole-v1").reset(seed=42 + i)
        np.testing.assert_array_equal(obs[i].numpy(), single_obs)
    ref.action_space.seed(0)
    for _ in range(100):
        actions = ref.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(torch.from_numpy(actions))
        ref_obs, ref_reward, ref_terminated, ref_truncated, ref_info = ref.step(actions)
        np.testing.assert_array_equal(obs.numpy(), ref_obs)
        np.testing.assert_array_equal(reward.numpy(), ref_reward)
        np.testing.assert_array_equal(terminated.numpy(), ref_terminated)
        np.testing.assert_array_equal(truncated.numpy(), ref_truncated)
        for i in np.flatnonzero(ref_info.get("_final_obs", np.zeros(num_envs, bool))):
            np.testing.assert_array_equal(info["final_obs"][i].numpy(), ref_info["final_obs"][i])


def test_third_party_seeding_is_reproducible():
    def rollout(seed):
        env = envs.make("CartPole-v1", num_envs=2)
        env.action_space.seed(0)
        seen = [env.reset(seed=seed)[0]]
        for _ in range(60):
            obs, reward, *_ = env.step(torch.from_numpy(env.action_space.sample()))
            seen += [obs, reward]
        return torch.cat([x.flatten() for x in seen])

    assert torch.equal(rollout(3), rollout(3))
    assert not torch.equal(rollout(3), rollout(4))


def test_third_party_pendulum_box_actions_and_time_limit():
    env = envs.make("Pendulum-v1", num_envs=2)
    assert isinstance(env.single_action_space, spaces.Box)
    assert env.max_episode_steps == 200
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 3) and obs.dtype == torch.float32
    actions = torch.full((2, 1), 0.5)
    total = torch.zeros(2, dtype=torch.float64)
    for t in range(1, 201):
        _, reward, terminated, truncated, info = env.step(actions)
        total += reward.double()
        assert not terminated.any() and truncated.all().item() == (t == 200)
    torch.testing.assert_close(info["episode_return"].double(), total, rtol=1e-5, atol=1e-3)
    assert (info["episode_length"] == 200).all()


def test_third_party_discrete_observations_are_int64():
    env = envs.make("FrozenLake-v1", num_envs=3)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == torch.int64 and obs.shape == (3,)
    obs, *_ = env.step(torch.zeros(3, dtype=torch.int64))
    assert obs.dtype == torch.int64 and obs.numpy() in env.observation_space


def test_third_party_dict_and_float64_observations():
    env = GymnasiumToBatched([Countdown, Countdown])
    pos_space = env.single_observation_space["pos"]
    assert pos_space.dtype == np.float32 and (pos_space.high == 10.0).all()
    obs, _ = env.reset(seed=0)
    assert obs["pos"].dtype == torch.float32 and obs["pos"].shape == (2, 2)
    assert obs["count"].dtype == torch.int64 and (obs["count"] == 0).all()
    actions = torch.tensor([1, 0])
    for _ in range(2):
        obs, _, terminated, _, info = env.step(actions)
        assert not terminated.any() and torch.equal(info["final_obs"]["count"], obs["count"])
    start = obs["pos"].clone()
    obs, reward, terminated, truncated, info = env.step(actions)
    assert terminated.all() and not truncated.any()
    assert (info["final_obs"]["count"] == 3).all() and (obs["count"] == 0).all()
    torch.testing.assert_close(info["final_obs"]["pos"], start + torch.tensor([[1.0], [-1.0]]))
    assert (info["episode_return"] == 6.0).all() and (info["episode_length"] == 3).all()


def test_third_party_unsupported_space_is_a_type_error():
    with pytest.raises(TypeError, match="Box, Discrete"):
        GymnasiumToBatched([TextObservation])


def test_third_party_round_trip_passes_gymnasium_check_env():
    """A third-party env through both adapters is still a valid Gymnasium env."""
    env = BatchedToGymEnv(GymnasiumToBatched([lambda: gym.make("CartPole-v1")]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Gymnasium's CartPole-v1 itself declares infinite velocity bounds.
        warnings.filterwarnings("ignore", message=".*infinity")
        check_env(env, skip_render_check=True)


# ---------------------------------------------------------------------------- batched -> Env
def test_gym_env_returns_the_terminal_observation_then_needs_reset():
    env = gym.make("umbra/CartPole-v0")
    obs, _ = env.reset(seed=0)
    expected, _ = envs.make("umbra/CartPole-v0", num_envs=1).reset(seed=0)
    np.testing.assert_array_equal(obs, expected[0].numpy())
    length, terminated = 0, False
    while not terminated:  # pushing right, the pole falls within a few dozen steps
        obs, reward, terminated, truncated, info = env.step(1)
        assert isinstance(reward, float) and type(terminated) is bool and type(truncated) is bool
        length += 1
    assert abs(obs[2]) > CartPole.theta_threshold_radians  # the last observation, not a reset
    assert info == {"episode_return": float(length), "episode_length": length}
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step(1)
    obs, _ = env.reset()
    assert (np.abs(obs) <= 0.05).all()
    env.step(0)


def test_gym_env_truncates_pendulum_at_200():
    env = gym.make("umbra/Pendulum-v0", g=9.81)
    assert env.unwrapped.batched.g == 9.81
    env.reset(seed=0)
    for t in range(1, 201):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        assert terminated is False and truncated is (t == 200)


def test_gym_env_has_the_single_spaces_and_a_spec():
    batched = envs.make("umbra/MaskedCartPole-v0", num_envs=1)
    env = BatchedToGymEnv(batched)
    assert env.observation_space is batched.single_observation_space
    assert env.action_space is batched.single_action_space
    assert env.metadata["render_modes"] == [] and env.render_mode is None
    assert env.spec is not None and env.spec.id == "umbra/MaskedCartPole-v0"
    env.reset(seed=1)
    assert env.np_random_seed == 1


# ---------------------------------------------------------------------------- batched -> VectorEnv
def test_numpy_vec_env_info_has_gymnasiums_same_step_layout():
    """``final_obs`` etc. look exactly like SyncVectorEnv(SAME_STEP) over single copies."""
    num_envs = 4
    venv = gym.make_vec("umbra/CartPole-v0", num_envs, vectorization_mode="vector_entry_point")
    ref = SyncVectorEnv(
        [lambda: gym.make("umbra/CartPole-v0")] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP
    )
    assert venv.observation_space == ref.observation_space
    assert venv.action_space == ref.action_space

    def first_info_with_a_done(env):
        env.reset(seed=0)
        while True:
            _, reward, terminated, truncated, info = env.step(np.ones(num_envs, np.int64))
            if (terminated | truncated).any():
                return reward, info

    reward, info = first_info_with_a_done(venv)
    ref_reward, ref_info = first_info_with_a_done(ref)
    assert reward.dtype == ref_reward.dtype
    assert set(ref_info) <= set(info)
    for key in ("final_obs", "_final_obs", "_final_info"):
        assert type(info[key]) is type(ref_info[key]) and info[key].dtype == ref_info[key].dtype
    for i in np.flatnonzero(info["_final_obs"]):
        assert info["final_obs"][i].dtype == np.float32 and info["final_obs"][i].shape == (4,)


def test_numpy_vec_env_seeding_and_record_episode_statistics():
    num_envs = 4
    venv = gym.make_vec("umbra/CartPole-v0", num_envs, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=5)
    expected, _ = envs.make("umbra/CartPole-v0", num_envs=num_envs).reset(seed=5)
    np.testing.assert_array_equal(obs, expected.numpy())

    venv = gym.wrappers.vector.RecordEpisodeStatistics(venv)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    episodes = 0
    for _ in range(100):
        *_, info = venv.step(venv.action_space.sample())
        if "episode" in info:
            done = info["_episode"]
            np.testing.assert_array_equal(done, info["_episode_return"])
            np.testing.assert_allclose(info["episode"]["r"][done], info["episode_return"][done])
            np.testing.assert_array_equal(info["episode"]["l"][done], info["episode_length"][done])
            episodes += int(done.sum())
    assert episodes > 0


# ---------------------------------------------------------------------------- batched -> SB3
def test_sb3_vec_env_follows_sb3_conventions():
    num_envs = 3
    venv = BatchedToSB3VecEnv(envs.make("umbra/Pendulum-v0", num_envs=num_envs))
    assert venv.num_envs == num_envs and venv.render_mode is None
    assert venv.seed(7) == [7, 8, 9]
    obs = venv.reset()
    expected, _ = envs.make("umbra/Pendulum-v0", num_envs=num_envs).reset(seed=7)
    np.testing.assert_array_equal(obs, expected.numpy())
    actions = np.zeros((num_envs, 1), np.float32)
    total = np.zeros(num_envs)
    for t in range(1, 201):
        obs, rewards, dones, infos = venv.step(actions)
        assert obs.shape == (num_envs, 3) and rewards.dtype == np.float32
        assert dones.dtype == np.bool_ and len(infos) == num_envs
        total += rewards
        if t < 200:
            assert not dones.any() and infos == [{}] * num_envs
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (3,)
        assert not np.array_equal(info["terminal_observation"], obs[i])  # obs is a new episode
        assert info["episode"]["l"] == 200
        np.testing.assert_allclose(info["episode"]["r"], total[i], rtol=1e-5)


def test_sb3_vec_env_termination_is_not_a_time_limit():
    venv = BatchedToSB3VecEnv(envs.make("umbra/CartPole-v0", num_envs=2))
    venv.reset()
    while True:
        _, _, dones, infos = venv.step(np.ones(2, np.int64))
        if dones.any():
            break
    for i in np.flatnonzero(dones):
        assert infos[i]["TimeLimit.truncated"] is False
        assert abs(infos[i]["terminal_observation"][2]) > CartPole.theta_threshold_radians


def test_sb3_vec_env_attributes_and_methods():
    num_envs = 3
    venv = BatchedToSB3VecEnv(MaskedActionsCartPole(num_envs=num_envs))
    venv.reset()
    assert venv.get_attr("num_envs") == [num_envs] * num_envs
    states = venv.get_attr("state", indices=[0, 2])
    assert len(states) == 2 and states[0].shape == (4,)
    np.testing.assert_array_equal(states[1], venv.unwrapped.batched.state[2].numpy())
    venv.set_attr("force_mag", 20.0)
    assert venv.unwrapped.batched.force_mag == 20.0
    with pytest.raises(ValueError, match="all of them"):
        venv.set_attr("force_mag", 5.0, indices=[1])
    assert venv.env_is_wrapped(Monitor) == [True] * num_envs
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [False] * num_envs
    assert venv.has_attr("action_masks") and not venv.has_attr("no_such_attribute")

    from sb3_contrib.common.maskable.utils import get_action_masks

    masks = get_action_masks(venv)
    np.testing.assert_array_equal(masks, np.tile([False, True], (num_envs, 1)))


@pytest.mark.parametrize("env_id", ["umbra/CartPole-v0", "umbra/Pendulum-v0"])
def test_sb3_ppo_learns_and_evaluates_on_the_adapter(env_id):
    venv = BatchedToSB3VecEnv(envs.make(env_id, num_envs=4))
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    if env_id == "umbra/CartPole-v0":  # episodes end within the 64 steps per copy
        assert len(model.ep_info_buffer) > 0
        assert all(
            1 <= info["l"] <= 500 and info["r"] == info["l"] for info in model.ep_info_buffer
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "not wrapped with a Monitor wrapper"
        episode_returns, episode_lengths = evaluate_policy(
            model, venv, n_eval_episodes=4, return_episode_rewards=True
        )
    assert len(episode_returns) == 4 and all(length >= 1 for length in episode_lengths)


# ---------------------------------------------------------------------------- devices
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_adapters_work_on_every_device(device):
    """Numpy in and out whatever the device; the third-party adapter's tensors land on it."""
    gym_env = gym.make("umbra/CartPole-v0", device=device)
    assert gym_env.unwrapped.batched.device.type == device
    obs, _ = gym_env.reset(seed=0)
    obs, *_ = gym_env.step(np.int64(1))
    assert isinstance(obs, np.ndarray)

    venv = gym.make_vec(
        "umbra/Pendulum-v0", 2, vectorization_mode="vector_entry_point", device=device
    )
    venv.reset(seed=0)
    obs, reward, *_ = venv.step(np.zeros((2, 1), np.float32))
    assert isinstance(obs, np.ndarray) and isinstance(reward, np.ndarray)

    sb3_env = BatchedToSB3VecEnv(envs.make("umbra/CartPole-v0", num_envs=2, device=device))
    sb3_env.reset()
    obs, *_ = sb3_env.step(np.ones(2, np.int64))
    assert isinstance(obs, np.ndarray)

    third_party = envs.make("CartPole-v1", num_envs=2, device=device)
    obs, _ = third_party.reset(seed=0)
    actions = torch.ones(2, dtype=torch.int64, device=third_party.device)
    obs, reward, terminated, _, info = third_party.step(actions)
    for tensor in (obs, reward, terminated, info["final_obs"], info["episode_return"]):
        assert tensor.device == third_party.device
