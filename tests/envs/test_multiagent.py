"""Multi-agent environments: the contract, PettingZoo's own checkers, the adapters, each task."""

from __future__ import annotations

import functools
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

import envs
from envs.core import MultiAgentBatchedEnv
from envs.interop.gymnasium import BatchedToGymEnv
from envs.interop.pettingzoo import BatchedToParallelEnv, PettingZooToBatched
from envs.interop.turn_based import AECToBatched
from envs.multiagent import private_info, pursuit, spread
from envs.multiagent.private_info import PrivateSum
from envs.multiagent.pursuit import Pursuit
from envs.multiagent.spread import CooperativeNavigation

with warnings.catch_warnings():
    # pettingzoo.test imports its own connect_four_v3 through PettingZoo's deprecated creation
    # API, which warns at import time; nothing of ours is involved.
    warnings.filterwarnings("ignore", "The old environment creation API", DeprecationWarning)
    from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

MULTI_AGENT_IDS = envs.list_ids("multi-agent")
STEP_INFO_KEYS = {
    "final_obs", "_final_obs", "final_state", "state", "agent_mask", "acting", "episode_return",
    "agent_episode_return", "episode_length", "_episode",
}


@pytest.fixture
def warnings_as_errors():
    """Every warning is an error: some PettingZoo API violations only warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _random_actions(env: MultiAgentBatchedEnv, generator: torch.Generator) -> torch.Tensor:
    n = env.single_action_space.n
    return torch.randint(n, (env.num_envs, env.num_agents), generator=generator)


def test_every_task_is_registered_as_multi_agent():
    assert MULTI_AGENT_IDS == [
        "umbra/CooperativeNavigation-v0", "umbra/PrivateSum-v0", "umbra/Pursuit-v0"
    ]
    for env_id in MULTI_AGENT_IDS:
        assert envs.spec(env_id).kind == "multi-agent" and envs.spec(env_id).description
    others = set(envs.list_ids("single-agent")) | set(envs.list_ids("graph"))
    assert set(envs.list_ids()) == set(MULTI_AGENT_IDS) | others


# ---------------------------------------------------------------------------- PettingZoo checkers
@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_pettingzoo_parallel_api_test(env_id, warnings_as_errors):
    par_env = envs.make_pettingzoo(env_id)
    assert isinstance(par_env, BatchedToParallelEnv) and isinstance(par_env, ParallelEnv)
    parallel_api_test(par_env, num_cycles=300)


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_pettingzoo_api_test_on_the_aec_env(env_id, warnings_as_errors):
    api_test(envs.make_pettingzoo(env_id, parallel=False), num_cycles=300)


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_pettingzoo_seed_tests(env_id, warnings_as_errors):
    seed_test(functools.partial(envs.make_pettingzoo, env_id, parallel=False), num_cycles=100)
    parallel_seed_test(functools.partial(envs.make_pettingzoo, env_id), num_cycles=100)


@pytest.mark.parametrize("module", [spread, pursuit, private_info])
def test_module_factories_are_pettingzoo_envs(module, warnings_as_errors):
    par_env = module.parallel_env(num_agents=2)
    assert par_env.possible_agents == ["agent_0", "agent_1"]
    assert par_env.metadata["is_parallelizable"] and par_env.metadata["name"].startswith("umbra/")
    assert par_env.render_mode is None
    parallel_api_test(par_env, num_cycles=50)
    api_test(module.env(num_agents=2), num_cycles=50)


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_parallel_env_spaces_and_state(env_id):
    par_env = envs.make_pettingzoo(env_id)
    batched = par_env.batched
    for agent in par_env.possible_agents:
        assert par_env.observation_space(agent) is par_env.observation_space(agent)
        assert par_env.action_space(agent) is par_env.action_space(agent)
        assert par_env.observation_space(agent) == batched.single_observation_space
        assert par_env.action_space(agent) == batched.single_action_space
    # one space object per agent: seeding one agent's space leaves the others alone
    assert par_env.action_space("agent_0") is not par_env.action_space("agent_1")
    par_env.reset(seed=0)
    assert par_env.state() in par_env.state_space
    assert par_env.state_space is batched.state_space


# ---------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_batched_and_parallel_env_give_the_same_trajectories(env_id):
    """Same seed and actions: identical observations, rewards, ends and states, over episodes."""
    batched = envs.make(env_id, num_envs=1)
    par_env = envs.make_pettingzoo(env_id)
    agents = par_env.possible_agents
    obs_b, info_b = batched.reset(seed=3)
    obs_p, _ = par_env.reset(seed=3)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(150):
        if not par_env.agents:
            obs_p, _ = par_env.reset()  # continues with the batched autoreset's episode
        for i, agent in enumerate(agents):
            np.testing.assert_array_equal(obs_p[agent], obs_b[0, i].numpy())
        np.testing.assert_array_equal(par_env.state(), info_b["state"][0].numpy())
        actions = rng.integers(batched.single_action_space.n, size=len(agents))
        obs_b, reward_b, term_b, trunc_b, info_b = batched.step(torch.as_tensor(actions)[None])
        obs_p, reward_p, term_p, trunc_p, _ = par_env.step(
            {agent: actions[i] for i, agent in enumerate(agents)}
        )
        done = bool(term_b[0] | trunc_b[0])
        last_b = info_b["final_obs"] if done else obs_b
        for i, agent in enumerate(agents):
            np.testing.assert_array_equal(obs_p[agent], last_b[0, i].numpy())
            assert reward_p[agent] == pytest.approx(float(reward_b[0, i]), abs=0)
            assert term_p[agent] == bool(term_b[0]) and trunc_p[agent] == bool(trunc_b[0])
        final_state = info_b["final_state"] if done else info_b["state"]
        np.testing.assert_array_equal(par_env.state(), final_state[0].numpy())
        assert (par_env.agents == []) == done
        episodes += done
    assert episodes >= 2


# ---------------------------------------------------------------------------- the contract
def _check_step(env, obs, reward, terminated, truncated, info):
    n, a = env.num_envs, env.num_agents
    obs_shape = (n, a, *env.single_observation_space.shape)
    assert obs.shape == obs_shape and obs.dtype == torch.float32
    assert obs.numpy() in env.observation_space
    assert reward.shape == (n, a) and reward.dtype == torch.float32
    assert terminated.shape == truncated.shape == (n,)
    assert terminated.dtype == truncated.dtype == torch.bool
    expected = STEP_INFO_KEYS | ({"action_mask"} if env.has_action_mask else set())
    assert set(info) == expected
    assert info["final_obs"].shape == obs_shape
    for key in ("state", "final_state"):
        assert info[key].shape == (n, *env.state_space.shape)
        assert all(row in env.state_space for row in info[key].numpy())
    assert info["agent_mask"].shape == (n, a) and info["agent_mask"].dtype == torch.bool
    assert info["agent_mask"].all()  # no task here has deaths
    assert torch.equal(info["acting"], info["agent_mask"])
    assert info["episode_return"].shape == (n,) and info["agent_episode_return"].shape == (n, a)
    assert info["episode_length"].dtype == torch.int64
    if env.has_action_mask:
        mask = info["action_mask"]
        assert mask.shape == (n, a, env.single_action_space.n) and mask.dtype == torch.bool
        assert torch.equal(mask, env.action_masks())


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_contract_with_eight_copies(env_id):
    num_envs = 8
    env = envs.make(env_id, num_envs=num_envs, debug=True)
    assert env.kind == "multi-agent" and env.possible_agents[0] == "agent_0"
    assert len(env.possible_agents) == env.num_agents
    obs, info = env.reset(seed=0)
    assert obs.shape == (num_envs, env.num_agents, *env.single_observation_space.shape)
    masks = {"action_mask"} if env.has_action_mask else set()
    assert set(info) == {"state", "agent_mask", "acting"} | masks
    assert torch.equal(info["acting"], info["agent_mask"])  # every present agent acts
    generator = torch.Generator().manual_seed(0)
    agent_returns = torch.zeros(num_envs, env.num_agents, dtype=torch.float64)
    lengths = torch.zeros(num_envs, dtype=torch.int64)
    state = info["state"]
    episodes = 0
    for _ in range(120):
        previous_obs, previous_state = obs, state
        obs, reward, terminated, truncated, info = env.step(_random_actions(env, generator))
        _check_step(env, obs, reward, terminated, truncated, info)
        state = info["state"]
        done = terminated | truncated
        assert torch.equal(info["_final_obs"], done) and torch.equal(info["_episode"], done)
        # SAME_STEP: copies that go on show the same observation and state in both places
        assert torch.equal(info["final_obs"][~done], obs[~done])
        assert torch.equal(info["final_state"][~done], state[~done])
        assert not torch.equal(previous_obs, obs) or not torch.equal(previous_state, state)
        agent_returns += reward.double()
        lengths += 1
        torch.testing.assert_close(
            info["agent_episode_return"][done].double(), agent_returns[done], rtol=1e-5, atol=1e-4
        )
        torch.testing.assert_close(
            info["episode_return"][done].double(), agent_returns[done].mean(1), rtol=1e-5,
            atol=1e-4,
        )
        assert torch.equal(info["episode_length"][done], lengths[done])
        if env.max_episode_steps is not None:
            assert torch.equal(truncated, (lengths >= env.max_episode_steps) & ~terminated)
        agent_returns[done] = 0.0
        lengths[done] = 0
        episodes += int(done.sum())
    assert episodes >= num_envs


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_same_seed_same_trajectory_different_seed_different_start(env_id):
    def rollout(seed):
        env = envs.make(env_id, num_envs=4)
        obs, info = env.reset(seed=seed)
        generator = torch.Generator().manual_seed(0)
        seen = [obs, info["state"]]
        for _ in range(60):
            obs, reward, terminated, truncated, info = env.step(_random_actions(env, generator))
            seen += [obs, reward, terminated, truncated, info["final_obs"], info["state"]]
        return seen

    for x, y in zip(rollout(7), rollout(7), strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(rollout(1)[0], rollout(2)[0])


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_step_before_reset_raises(env_id):
    env = envs.make(env_id, num_envs=2)
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        env.step(torch.zeros(2, env.num_agents, dtype=torch.int64))


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
@pytest.mark.parametrize("num_agents", [2, 5])
def test_num_agents_is_a_keyword(env_id, num_agents):
    env = envs.make(env_id, num_envs=3, num_agents=num_agents)
    obs, info = env.reset(seed=0)
    assert env.num_agents == num_agents and obs.shape[:2] == (3, num_agents)
    assert info["agent_mask"].shape == (3, num_agents)


class Drift(MultiAgentBatchedEnv):
    """A minimal task with Box actions: agent i gets reward i + 1, episodes last 3 steps."""

    def __init__(self, num_envs=2, device="cpu", debug=True, num_agents=3):
        self.single_observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state_space = spaces.Box(0.0, 3.0, (1,), np.float32)
        self.max_episode_steps = 3
        super().__init__(num_agents, num_envs, device, debug)
        self.t = torch.zeros(self.num_envs)

    def _reset_copies(self, mask, options=None):
        self.t = torch.where(mask, 0.0, self.t)

    def _advance(self, actions):
        self.t = self.t + 1
        reward = torch.arange(1.0, self.num_agents + 1).expand(self.num_envs, self.num_agents)
        return reward.clone(), torch.zeros(self.num_envs, dtype=torch.bool)

    def _observe(self):
        return torch.zeros(self.num_envs, self.num_agents, 2) + self.t[:, None, None] / 3

    def _state(self):
        return self.t[:, None].clone()


def test_base_class_statistics_and_final_state():
    env = Drift()
    _, info = env.reset(seed=0)
    assert torch.equal(info["state"], torch.zeros(2, 1))
    actions = torch.zeros(2, 3, 2)
    for _ in range(3):
        obs, _, terminated, truncated, info = env.step(actions)
    assert truncated.all() and not terminated.any()
    assert torch.equal(info["agent_episode_return"], torch.tensor([[3.0, 6.0, 9.0]] * 2))
    assert torch.equal(info["episode_return"], torch.tensor([6.0, 6.0]))  # mean over agents
    assert torch.equal(info["final_state"], torch.full((2, 1), 3.0))
    assert torch.equal(info["state"], torch.zeros(2, 1))  # the new episode's
    assert torch.equal(info["final_obs"], torch.ones(2, 3, 2)) and torch.equal(obs, 0 * obs)
    assert (info["episode_length"] == 3).all()
    with pytest.raises(AttributeError, match="no action masks"):
        env.action_masks()


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("actions", "error", "pattern"),
    [
        (torch.zeros(2, dtype=torch.int64), ValueError, r"shape \(2, 3\).*num_agents=3"),
        (torch.zeros(2, 4, dtype=torch.int64), ValueError, r"agent_0.*agent_2"),
        (torch.zeros(2, 3), TypeError, "integer"),
        (torch.tensor([[0, 5, 0], [0, 0, 0]]), ValueError, r"actions of agent_1 must .*\[0, 4\]"),
        (torch.tensor([[0, 0, -1], [0, 0, 0]]), ValueError, r"actions of agent_2 must"),
        (np.zeros((2, 3), np.int64), TypeError, "torch.Tensor"),
    ],
)
def test_batched_check_actions_names_the_agent(actions, error, pattern):
    env = envs.make("umbra/CooperativeNavigation-v0", num_envs=2, debug=True)
    env.reset(seed=0)
    with pytest.raises(error, match=pattern):
        env.step(actions)


def test_box_actions_name_the_agent_with_nan_or_out_of_range():
    env = Drift()
    env.reset(seed=0)
    actions = torch.zeros(2, 3, 2)
    actions[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="agent_2 contain NaN"):
        env.step(actions)
    actions = torch.zeros(2, 3, 2)
    actions[0, 1, 1] = 3.0
    with pytest.raises(ValueError, match=r"actions of agent_1 must lie in"):
        env.step(actions)


@pytest.mark.parametrize(
    ("actions", "error", "pattern"),
    [
        ({"agent_0": 0, "agent_1": 0}, ValueError, "no action for agent_2"),
        ({"agent_0": 0, "agent_1": 0, "agent_2": 0, "agent_7": 0}, ValueError, "agent_7"),
        ({"agent_0": 0, "agent_1": np.array([0, 1]), "agent_2": 0}, ValueError,
         r"action for agent_1: .*shape \(\)"),
        ({"agent_0": 0.5, "agent_1": 0, "agent_2": 0}, TypeError, "action for agent_0: "),
        ({"agent_0": 0, "agent_1": 0, "agent_2": np.int64(9)}, ValueError, r"agent_2 must .*4"),
        ([0, 0, 0], TypeError, "dict from agent name"),
    ],
)
def test_parallel_env_bad_actions_name_the_agent(actions, error, pattern):
    par_env = envs.make_pettingzoo("umbra/CooperativeNavigation-v0")
    par_env.reset(seed=0)
    with pytest.raises(error, match=pattern):
        par_env.step(actions)
    par_env.step({agent: 0 for agent in par_env.agents})  # still usable


def test_parallel_env_after_the_episode_needs_reset():
    par_env = envs.make_pettingzoo("umbra/PrivateSum-v0", episode_length=1)
    par_env.reset(seed=0)
    par_env.step({agent: 0 for agent in par_env.agents})
    assert par_env.agents == []
    with pytest.raises(RuntimeError, match=r"reset\(\)"):
        par_env.step({})


def test_wrong_uses_of_the_adapters_are_clear_errors():
    with pytest.raises(ValueError, match="num_envs=1"):
        BatchedToParallelEnv(envs.make("umbra/Pursuit-v0", num_envs=2))
    with pytest.raises(TypeError, match="MultiAgentBatchedEnv"):
        BatchedToParallelEnv(envs.make("umbra/CartPole-v0"))
    with pytest.raises(TypeError, match="multi-agent"):
        BatchedToGymEnv(envs.make("umbra/Pursuit-v0"))
    with pytest.raises(TypeError, match="make_pettingzoo"):
        gym.make("umbra/Pursuit-v0")
    with pytest.raises(TypeError, match="not a multi-agent one"):
        envs.make_pettingzoo("umbra/CartPole-v0")
    with pytest.raises(TypeError, match="drop num_envs"):
        envs.make_pettingzoo("umbra/Pursuit-v0", num_envs=4)
    with pytest.raises(TypeError, match="drop num_envs"):
        pursuit.parallel_env(num_envs=4)
    with pytest.raises(ValueError, match="unknown agent"):
        envs.make_pettingzoo("umbra/Pursuit-v0").observation_space("agent_9")


@pytest.mark.parametrize(
    ("env_id", "kwargs", "error", "pattern"),
    [
        ("umbra/CooperativeNavigation-v0", {"num_agents": 0}, ValueError, "num_agents"),
        ("umbra/CooperativeNavigation-v0", {"view_radius": -1.0}, ValueError, "view_radius"),
        ("umbra/CooperativeNavigation-v0", {"view_radius": "far"}, TypeError, "view_radius"),
        ("umbra/CooperativeNavigation-v0", {"view_radus": 1.0}, TypeError, "view_radius"),
        ("umbra/Pursuit-v0", {"view_radius": 0}, ValueError, "view_radius"),
        ("umbra/Pursuit-v0", {"size": 1}, ValueError, "size"),
        ("umbra/Pursuit-v0", {"prey_policy": "hide"}, ValueError, "evade"),
        ("umbra/PrivateSum-v0", {"num_agents": 1}, ValueError, "num_agents"),
        ("umbra/PrivateSum-v0", {"num_symbols": 1.5}, TypeError, "num_symbols"),
    ],
)
def test_bad_keywords_are_clear_errors(env_id, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        envs.make(env_id, num_envs=2, **kwargs)


# ---------------------------------------------------------------------------- cooperative nav
def test_agents_on_separate_landmarks_get_reward_zero():
    env = CooperativeNavigation(num_envs=2, num_agents=3)
    env.reset(seed=0)
    env.landmarks = torch.tensor([[[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]]]).repeat(2, 1, 1)
    env.position = env.landmarks.flip(1).clone()  # a permutation: every landmark covered
    env.velocity = torch.zeros_like(env.velocity)
    _, reward, *_ = env.step(torch.zeros(2, 3, dtype=torch.int64))  # no-op: nobody moves
    assert torch.equal(reward, torch.zeros(2, 3))


def test_reward_is_minus_covering_distance_minus_collisions():
    env = CooperativeNavigation(num_envs=1, num_agents=3)
    env.reset(seed=0)
    env.landmarks = torch.tensor([[[0.0, 0.3], [0.8, 0.0], [-0.5, 0.9]]])
    env.position = torch.tensor([[[0.0, 0.9], [0.0, 1.0], [0.8, 0.0]]])  # two agents touch
    env.velocity = torch.zeros_like(env.velocity)
    _, reward, *_ = env.step(torch.zeros(1, 3, dtype=torch.int64))
    expected = -(0.6 + 0.0 + 0.5) - 1.0  # nearest agents: (0, 0.9), (0.8, 0), (0, 0.9)
    torch.testing.assert_close(reward, torch.full((1, 3), expected))


def test_view_radius_hides_far_entities():
    env = CooperativeNavigation(num_envs=1, num_agents=2, view_radius=0.5)
    env.reset(seed=0)
    env.position = torch.tensor([[[0.0, 0.0], [0.9, 0.0]]])
    env.landmarks = torch.tensor([[[0.3, 0.0], [-0.6, 0.0]]])
    obs = env._observe()[0, 0]
    # own position and velocity, landmark 0 (seen), landmark 1 (hidden), agent 1 (hidden)
    expected = [0, 0, 0, 0, 0.3, 0, 1, 0, 0, 0, 0, 0, 0]
    torch.testing.assert_close(obs, torch.tensor(expected, dtype=torch.float32))
    everything = CooperativeNavigation(num_envs=1, num_agents=2, view_radius=math.inf)
    everything.reset(seed=0)
    flags = everything._observe()[..., 6::3]
    assert (flags == 1).all()


def _greedy_navigation(env: CooperativeNavigation) -> torch.Tensor:
    """Agent i heads for landmark i, braking for its own speed."""
    target = env.landmarks - env.position - 0.3 * env.velocity
    dx, dy = target.unbind(-1)
    horizontal = dx.abs() > dy.abs()
    return torch.where(horizontal, torch.where(dx > 0, 4, 3), torch.where(dy > 0, 1, 2))


def test_moving_to_landmarks_beats_random_and_episodes_last_25_steps():
    env = CooperativeNavigation(num_envs=64, num_agents=3)
    generator = torch.Generator().manual_seed(0)
    results = {}
    for policy in ("greedy", "random"):
        env.reset(seed=0)
        for t in range(1, 26):
            actions = _greedy_navigation(env) if policy == "greedy" else _random_actions(
                env, generator)
            _, _, terminated, truncated, info = env.step(actions)
            assert not terminated.any() and truncated.all() == (t == 25)
        results[policy] = info["episode_return"].mean().item()
    assert results["greedy"] > results["random"] + 10, results


# ---------------------------------------------------------------------------- pursuit
def test_a_predator_stepping_on_the_prey_catches_it():
    env = Pursuit(num_envs=1, num_agents=2, size=5)
    env.reset(seed=0)
    env.predators = torch.tensor([[[1, 2], [4, 4]]])
    env.prey = torch.tensor([[2, 2]])
    _, reward, terminated, truncated, info = env.step(torch.tensor([[4, 0]]))  # agent_0: right
    assert terminated.item() and not truncated.item()
    assert torch.equal(reward, torch.ones(1, 2))
    assert info["episode_length"].item() == 1


def test_pursuit_window_and_action_mask():
    env = Pursuit(num_envs=1, num_agents=2, size=5, view_radius=1)
    env.reset(seed=0)
    env.predators = torch.tensor([[[0, 0], [1, 0]]])
    env.prey = torch.tensor([[0, 1]])
    window = env._observe()[0, 0, :27].reshape(3, 3, 3)  # channel, row (y - 1 ..), column
    wall = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=torch.float32)
    assert torch.equal(window[0], wall)
    assert window[1, 1, 2] == 1 and window[1].sum() == 1  # agent_1 to the right
    assert window[2, 2, 1] == 1 and window[2].sum() == 1  # the prey above
    assert torch.equal(env._observe()[0, 0, 27:], torch.tensor([0.0, 0.0]))
    mask = env.action_masks()[0]  # stay, up, down, left, right
    assert mask[0].tolist() == [True, True, False, False, True]
    assert mask[1].tolist() == [True, True, False, True, True]
    env.step(torch.tensor([[3, 0]]))  # left off the grid: stays
    assert env.predators[0, 0].tolist() == [0, 0]


def _chase(env: Pursuit) -> torch.Tensor:
    """Every predator steps along the axis where the prey is farther away."""
    dx, dy = (env.prey[:, None] - env.predators).unbind(-1)
    horizontal = dx.abs() >= dy.abs()
    step = torch.where(horizontal, torch.where(dx > 0, 4, 3), torch.where(dy > 0, 1, 2))
    return torch.where((dx == 0) & (dy == 0), 0, step)


def test_chasing_predators_catch_a_random_prey_more_often_than_random_ones():
    generator = torch.Generator().manual_seed(0)
    caught = {}
    for policy in ("chase", "random"):
        env = Pursuit(num_envs=256, num_agents=3, size=7)
        env.reset(seed=1)
        captures = 0
        for _ in range(100):
            actions = _chase(env) if policy == "chase" else _random_actions(env, generator)
            _, _, terminated, _, _ = env.step(actions)
            captures += int(terminated.sum())
        caught[policy] = captures
    assert caught["chase"] > 2 * caught["random"] > 0, caught


def test_a_lone_predator_never_catches_an_evading_prey_unless_it_starts_next_to_it():
    env = Pursuit(num_envs=128, num_agents=1, size=6, prey_policy="evade", max_cycles=40)
    env.reset(seed=0)
    start_gap = (env.prey - env.predators[:, 0]).abs().sum(-1)
    for t in range(1, 121):
        _, reward, terminated, _, info = env.step(_chase(env))
        if t == 1:
            assert torch.equal(terminated, start_gap == 1)
        else:
            assert (info["episode_length"][terminated] == 1).all()
    env_team = Pursuit(num_envs=128, num_agents=3, size=6, prey_policy="evade", max_cycles=40)
    env_team.reset(seed=0)
    late_captures = 0
    for _ in range(120):
        _, _, terminated, _, info = env_team.step(_chase(env_team))
        late_captures += int((terminated & (info["episode_length"] > 1)).sum())
    assert late_captures > 0  # a team corners the prey


# ---------------------------------------------------------------------------- private sum
@pytest.mark.parametrize(("num_agents", "num_symbols"), [(2, 2), (3, 2), (4, 3)])
def test_private_sum_oracle_is_optimal_and_no_communication_is_chance(num_agents, num_symbols):
    env = PrivateSum(num_envs=4096, num_agents=num_agents, num_symbols=num_symbols,
                     episode_length=4)
    chance = 4 / num_symbols
    generator = torch.Generator().manual_seed(0)
    policies = {
        "oracle": lambda: env.target[:, None].expand(-1, num_agents),
        "random": lambda: torch.randint(num_symbols, (4096, num_agents), generator=generator),
        "own symbol": lambda: env.symbols.clone(),
        "constant": lambda: torch.zeros(4096, num_agents, dtype=torch.int64),
    }
    for name, policy in policies.items():
        env.reset(seed=0)
        for t in range(1, 5):
            obs, _, terminated, truncated, info = env.step(policy())
            assert terminated.all() == (t == 4) and not truncated.any()
        returns = info["episode_return"]
        if name == "oracle":
            assert torch.equal(returns, torch.full((4096,), 4.0))
        else:
            assert abs(returns.mean().item() - chance) < 0.06, (name, returns.mean().item())


def test_private_sum_observations_show_only_the_own_symbol():
    env = PrivateSum(num_envs=2, num_agents=3, num_symbols=3, episode_length=4)
    obs, info = env.reset(seed=0)
    one_hot = torch.nn.functional.one_hot(env.symbols, 3).float()
    assert torch.equal(obs[..., :3], one_hot) and (obs[..., 3] == 0).all()
    assert torch.equal(info["state"][:, :9], one_hot.reshape(2, 9))
    assert torch.equal(env.target, env.symbols.sum(1) % 3)


# ---------------------------------------------------------------------------- PettingZoo -> batched
class Dwindle(ParallelEnv):
    """A tiny third-party ParallelEnv where an agent leaves early.

    Three agents; agent_1 terminates after 2 steps, the others are truncated after 4. Rewards are
    the actions; observations ``[t, index + 1 + offset]`` with a seeded random offset.
    """

    metadata = {"name": "dwindle_v0", "render_modes": [], "is_parallelizable": True}
    render_mode = None

    def __init__(self):
        self.possible_agents = ["agent_0", "agent_1", "agent_2"]
        self.agents = []
        self._obs_spaces = {a: spaces.Box(0.0, 10.0, (2,), np.float64) for a in self.agents_all}
        self._act_spaces = {a: spaces.Discrete(3) for a in self.agents_all}
        self._rng = np.random.default_rng()

    @property
    def agents_all(self):
        return self.possible_agents

    def observation_space(self, agent):
        return self._obs_spaces[agent]

    def action_space(self, agent):
        return self._act_spaces[agent]

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.t, self.offset = 0, float(self._rng.integers(3))
        self.agents = list(self.possible_agents)
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def _obs(self, agent):
        return np.array([self.t, self.possible_agents.index(agent) + 1 + self.offset])

    def step(self, actions):
        assert set(actions) == set(self.agents), "actions for absent agents must be dropped"
        self.t += 1
        rewards = {a: float(actions[a]) for a in self.agents}
        term = {a: a == "agent_1" and self.t >= 2 for a in self.agents}
        trunc = {a: self.t >= 4 and not term[a] for a in self.agents}
        obs = {a: self._obs(a) for a in self.agents}
        self.agents = [a for a in self.agents if not (term[a] or trunc[a])]
        return obs, rewards, term, trunc, {a: {} for a in obs}


def test_pettingzoo_to_batched_masks_departed_agents():
    env = PettingZooToBatched([Dwindle, Dwindle])
    assert env.kind == "multi-agent" and env.possible_agents == Dwindle().possible_agents
    assert env.single_observation_space.dtype == np.float32
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, 3, 2) and info["agent_mask"].all()
    assert info["state"].shape == (2, 6)  # no state_space: the agents' observations
    ones = torch.ones(2, 3, dtype=torch.int64)
    for t in range(1, 5):
        obs, reward, terminated, truncated, info = env.step(ones)
        if t < 4:
            alive = torch.tensor([True, t < 2, True])
            assert torch.equal(info["agent_mask"], alive.expand(2, 3))
            assert (obs[:, 1] == 0).all() == (t >= 2)
            assert torch.equal(reward[:, 1], torch.full((2,), 1.0 if t <= 2 else 0.0))
    assert truncated.all() and not terminated.any()
    assert torch.equal(info["agent_episode_return"], torch.tensor([[4.0, 2.0, 4.0]] * 2))
    torch.testing.assert_close(info["episode_return"], torch.full((2,), 10 / 3))
    assert (info["final_obs"][:, [0, 2], 0] == 4).all() and info["agent_mask"].all()
    assert (obs[:, :, 0] == 0).all()  # the new episodes' first observations


def test_pettingzoo_to_batched_round_trip_passes_the_parallel_api_test(warnings_as_errors):
    """A third-party env with deaths, batched and back: agents leave in the right steps."""
    par_env = BatchedToParallelEnv(PettingZooToBatched([Dwindle]))
    parallel_api_test(par_env, num_cycles=20)
    par_env.reset(seed=0)
    par_env.step({"agent_0": 0, "agent_1": 0, "agent_2": 0})
    _, _, terminations, _, _ = par_env.step({"agent_0": 0, "agent_1": 0, "agent_2": 0})
    assert terminations == {"agent_0": False, "agent_1": True, "agent_2": False}
    assert par_env.agents == ["agent_0", "agent_2"]
    with pytest.raises(ValueError, match="action for agent_1, which is no longer alive"):
        par_env.step({"agent_0": 0, "agent_1": 0, "agent_2": 0})


def test_pettingzoo_to_batched_rejects_what_it_cannot_batch():
    class MixedActions(Dwindle):
        # Different observation spaces, or Discrete actions of different n, are padded
        # (tests/envs/test_heterogeneous.py); Discrete beside Box actions cannot be.
        def __init__(self):
            super().__init__()
            self._act_spaces["agent_2"] = spaces.Box(0.0, 1.0, (2,), np.float32)

    with pytest.raises(TypeError, match="mixing Discrete and Box.*agent_2: Box"):
        PettingZooToBatched([MixedActions])
    with pytest.raises(TypeError, match="ParallelEnv"):
        PettingZooToBatched([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="env_fns is empty"):
        PettingZooToBatched([])


def test_make_accepts_a_module_factory_returning_a_parallel_env():
    env = envs.make("tests.envs.test_multiagent:Dwindle", num_envs=3)
    assert isinstance(env, PettingZooToBatched) and env.num_envs == 3
    # An AEC factory builds the turn-based adapter (tests/envs/test_turn_based.py).
    assert isinstance(envs.make("envs.multiagent.pursuit:env"), AECToBatched)


def test_mpe2_simple_spread_through_the_batched_adapter():
    """A PettingZoo-ecosystem env (mpe2's simple_spread_v3) as a batched env, step for step."""
    simple_spread = pytest.importorskip(
        "mpe2.simple_spread_v3",
        reason="mpe2 is a third-party package (the test extra installs it)")
    kwargs = {"N": 3, "max_cycles": 10, "continuous_actions": False}
    env = envs.make("mpe2.simple_spread_v3:parallel_env", num_envs=3, **kwargs)
    assert isinstance(env, PettingZooToBatched) and env.num_agents == 3
    references = [simple_spread.parallel_env(**kwargs) for _ in range(3)]
    obs, info = env.reset(seed=5)
    ref_obs = [ref.reset(seed=5 + i)[0] for i, ref in enumerate(references)]
    assert info["state"].shape == (3, *references[0].state_space.shape)
    generator = torch.Generator().manual_seed(0)
    for t in range(1, 11):
        for i in range(len(references)):
            for j, agent in enumerate(env.possible_agents):
                np.testing.assert_allclose(obs[i, j].numpy(), ref_obs[i][agent], rtol=1e-6)
        actions = _random_actions(env, generator)
        obs, reward, terminated, truncated, info = env.step(actions)
        for i, ref in enumerate(references):
            ref_obs[i], ref_reward, *_ = ref.step(
                {agent: int(actions[i, j]) for j, agent in enumerate(env.possible_agents)}
            )
            expected = [ref_reward[agent] for agent in env.possible_agents]
            np.testing.assert_allclose(reward[i].numpy(), expected, rtol=1e-5)
        assert truncated.all() == (t == 10) and not terminated.any()
    assert (info["episode_length"] == 10).all() and info["agent_mask"].all()
    for i in range(len(references)):  # the final observation is the reference's last
        for j, agent in enumerate(env.possible_agents):
            np.testing.assert_allclose(info["final_obs"][i, j].numpy(), ref_obs[i][agent],
                                       rtol=1e-6)
    assert envs.make_pettingzoo("mpe2.simple_spread_v3:parallel_env", **kwargs).metadata[
        "name"] == "simple_spread_v3"
