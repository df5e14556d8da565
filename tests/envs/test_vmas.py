"""VMAS scenarios through envs.interop.vmas.VmasToBatched: the batched contract on VMAS tensors."""

from __future__ import annotations

import functools
import math
import sys
import warnings

import pytest
import torch
from gymnasium import spaces

pytest.importorskip("vmas")

import envs  # noqa: E402
from agents.ppo import PPOConfig, train  # noqa: E402
from envs.interop.pettingzoo import BatchedToParallelEnv  # noqa: E402
from envs.interop.vmas import POSITION_FIRST_SCENARIOS, VmasToBatched  # noqa: E402

with warnings.catch_warnings():
    # pettingzoo.test imports connect_four through PettingZoo's deprecated creation API.
    warnings.filterwarnings("ignore", "The old environment creation API", DeprecationWarning)
    from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402


def _actions(env: VmasToBatched, generator: torch.Generator) -> torch.Tensor:
    """Random actions inside the (padded) action space, on the environment's device."""
    space, shape = env.single_action_space, (env.num_envs, env.num_agents)
    if isinstance(space, spaces.Box):
        low = torch.as_tensor(space.low)
        high = torch.as_tensor(space.high)
        u = torch.rand(*shape, *space.shape, generator=generator)
        return (low + u * (high - low)).to(env.device)
    if isinstance(space, spaces.MultiDiscrete):
        nvec = torch.as_tensor(space.nvec)
        u = torch.rand(*shape, len(nvec), generator=generator)
        return (u * nvec).long().to(env.device)
    return torch.randint(space.n, shape, generator=generator).to(env.device)


def _rollout(env: VmasToBatched, seed: int, steps: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(123)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, *_ = env.step(_actions(env, generator))
        out += [obs, reward]
    return out


# ---------------------------------------------------------------------------- spaces and shapes
@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("scenario, num_agents, obs_size", [
    ("navigation", 4, 18), ("balance", 3, 16), ("transport", 4, 11),
])
def test_shapes_dtypes_and_device(scenario, num_agents, obs_size, continuous):
    env = envs.make(f"vmas:{scenario}", num_envs=3, device="cpu", continuous_actions=continuous)
    assert isinstance(env, VmasToBatched) and env.kind == "multi-agent"
    assert env.num_agents == num_agents and env.max_episode_steps == 100
    assert env.possible_agents == [f"agent_{i}" for i in range(num_agents)]
    assert env.single_observation_space == spaces.Box(-float("inf"), float("inf"), (obs_size,))
    assert env.state_space.shape == (num_agents * obs_size,)
    if continuous:
        assert isinstance(env.single_action_space, spaces.Box)
        assert env.single_action_space.shape == (2,)
    else:
        assert env.single_action_space == spaces.Discrete(9)
    assert not env.has_action_mask and env.observation_mask.all()
    assert env.agent_position_slice == (0, 2)

    obs, info = env.reset(seed=0)
    assert obs.shape == (3, num_agents, obs_size) and obs.dtype == torch.float32
    torch.testing.assert_close(info["state"], obs.reshape(3, -1))
    assert info["agent_mask"].all() and info["agent_mask"].shape == (3, num_agents)
    obs, reward, terminated, truncated, info = env.step(_actions(env, torch.Generator()))
    assert obs.shape == (3, num_agents, obs_size) and obs.dtype == torch.float32
    assert reward.shape == (3, num_agents) and reward.dtype == torch.float32
    assert terminated.shape == truncated.shape == (3,) and terminated.dtype == torch.bool
    assert info["final_obs"].shape == obs.shape
    assert info["final_state"].shape == (3, num_agents * obs_size)
    assert info["agent_episode_return"].shape == (3, num_agents)
    for tensor in (obs, reward, terminated, truncated, info["state"], info["final_obs"]):
        assert tensor.device == env.device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_device_is_kept_on_cuda():
    env = envs.make("vmas:balance", num_envs=4, device="cuda")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(_actions(env, torch.Generator()))
    for tensor in (obs, reward, terminated, truncated, info["state"], info["final_obs"]):
        assert tensor.device.type == "cuda"


def test_heterogeneous_agents_are_padded_and_masked():
    # simple_speaker_listener: the speaker observes 3 numbers (the goal's colour) and its 27
    # actions include its 3 symbols; the listener observes 11 (the symbol too) and has 9.
    env = envs.make("vmas:simple_speaker_listener", num_envs=2)
    assert env.possible_agents == ["speaker_0", "listener_0"]
    speaker_n = env.env.action_space[0].n
    listener_n = env.env.action_space[1].n
    n = max(speaker_n, listener_n)
    assert env.single_action_space == spaces.Discrete(n) and env.has_action_mask
    assert env.single_observation_space.shape == (11,) and env.agent_position_slice is None
    assert env.observation_mask.tolist() == [[True] * 3 + [False] * 8, [True] * 11]
    obs, info = env.reset(seed=0)
    assert (obs[:, 0, 3:] == 0).all()
    mask = info["action_mask"]
    assert mask.shape == (2, 2, n)
    assert mask[:, 0].sum(dim=1).tolist() == [speaker_n] * 2
    assert mask[:, 1].sum(dim=1).tolist() == [listener_n] * 2
    torch.testing.assert_close(env.action_masks(), mask)

    # An action an agent lacks is legal and acts as its action 0.
    small = 1 if listener_n < speaker_n else 0  # the agent with fewer actions
    lacking = torch.zeros(2, 2, dtype=torch.long)
    lacking[:, small] = n - 1
    after = []
    for actions in (lacking, torch.zeros(2, 2, dtype=torch.long)):
        env.reset(seed=3)
        after.append(env.step(actions)[0])
    torch.testing.assert_close(after[0], after[1])


def test_heterogeneous_continuous_actions_are_padded():
    env = envs.make("vmas:simple_speaker_listener", num_envs=2, continuous_actions=True)
    sizes = [space.shape[0] for space in env.env.action_space]
    assert env.single_action_space.shape == (max(sizes),) and not env.has_action_mask
    env.reset(seed=0)
    obs, reward, *_ = env.step(_actions(env, torch.Generator().manual_seed(0)))
    assert obs.shape == (2, 2, 11) and torch.isfinite(reward).all()


def test_multidiscrete_actions():
    # diff_drive: a differential-drive robot (2 action entries) and a holonomic one (3).
    env = envs.make("vmas:diff_drive", num_envs=2, multidiscrete_actions=True)
    assert isinstance(env.single_action_space, spaces.MultiDiscrete)
    assert env.single_action_space.nvec.tolist() == [3, 3, 3] and env.has_action_mask
    _, info = env.reset(seed=0)
    assert info["action_mask"].shape == (2, 2, 9)
    assert info["action_mask"][0].tolist()[0][6:] == [True, False, False]
    obs, *_ = env.step(_actions(env, torch.Generator()))
    assert obs.shape == (2, 2, 4)


@pytest.mark.filterwarnings("ignore:Force limits not specified")  # vel_control's controller
@pytest.mark.parametrize("scenario", sorted(POSITION_FIRST_SCENARIOS))
def test_agent_position_slice_holds_the_position(scenario):
    env = envs.make(f"vmas:{scenario}", num_envs=2)
    assert env.agent_position_slice == (0, 2)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        positions = torch.stack([agent.state.pos for agent in env.env.agents], dim=1)
        torch.testing.assert_close(obs[..., 0:2], positions)
        obs, *_ = env.step(_actions(env, torch.Generator().manual_seed(1)))


def test_scenarios_without_a_leading_position_have_no_slice():
    assert envs.make("vmas:football").agent_position_slice is None
    assert envs.make("vmas:simple_tag").agent_position_slice is None


# ---------------------------------------------------------------------------- seeding
def test_same_seed_same_trajectory_other_seed_other_trajectory():
    env = envs.make("vmas:balance", num_envs=4, max_steps=5)
    first = _rollout(env, seed=7, steps=8)  # crosses an autoreset
    global_state = torch.random.get_rng_state()
    again = _rollout(env, seed=7, steps=8)
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b)
    other = _rollout(env, seed=8, steps=8)
    assert not torch.equal(first[0], other[0])
    # On the CPU, VMAS swaps its own RNG state in and out: the global one is left alone.
    assert torch.equal(global_state, torch.random.get_rng_state())


def test_construction_seed_seeds_the_first_episode():
    a, _ = envs.make("vmas:transport", num_envs=2, seed=3).reset(seed=3)
    b = envs.make("vmas:transport", num_envs=2, seed=3)
    c, _ = b.reset(seed=3)
    torch.testing.assert_close(a, c)


# ---------------------------------------------------------------------------- autoreset
def test_truncation_at_max_steps_resets_in_the_same_step():
    limited = envs.make("vmas:navigation", num_envs=3, max_steps=3)
    endless = envs.make("vmas:navigation", num_envs=3, max_steps=None)
    assert endless.max_episode_steps is None
    actions = torch.full((3, 4), 2, dtype=torch.long)
    limited.reset(seed=0)
    endless.reset(seed=0)
    total = torch.zeros(3, 4)
    for step in range(1, 4):
        obs, reward, terminated, truncated, info = limited.step(actions)
        total += reward
        obs_endless, reward_endless, _, truncated_endless, _ = endless.step(actions)
        torch.testing.assert_close(reward, reward_endless)
        assert not truncated_endless.any()
        if step < 3:
            assert not truncated.any() and not info["_final_obs"].any()
            torch.testing.assert_close(obs, obs_endless)
    assert truncated.all() and not info["_episode"].logical_not().any()
    torch.testing.assert_close(info["final_obs"], obs_endless)
    torch.testing.assert_close(info["final_state"], obs_endless.reshape(3, -1))
    assert not torch.equal(obs, obs_endless)  # the new episodes' first observations
    torch.testing.assert_close(info["state"], obs.reshape(3, -1))
    assert info["episode_length"].tolist() == [3, 3, 3]
    torch.testing.assert_close(info["agent_episode_return"], total)
    torch.testing.assert_close(info["episode_return"], total.mean(dim=1))
    assert limited.env.steps.tolist() == [0, 0, 0]


def test_a_subset_of_copies_resets_with_reset_at(monkeypatch):
    env = envs.make("vmas:navigation", num_envs=4)
    vmas_env = env.env
    calls = {"reset_at": [], "reset": 0}
    reset_at, reset = vmas_env.reset_at, vmas_env.reset

    def spy_reset_at(index, **kwargs):
        calls["reset_at"].append(index)
        return reset_at(index, **kwargs)

    def spy_reset(**kwargs):
        calls["reset"] += 1
        return reset(**kwargs)

    monkeypatch.setattr(vmas_env, "reset_at", spy_reset_at)
    monkeypatch.setattr(vmas_env, "reset", spy_reset)
    done = torch.tensor([True, False, True, False])
    monkeypatch.setattr(vmas_env.scenario, "done", lambda: done)
    actions = torch.zeros(4, 4, dtype=torch.long)
    env.reset(seed=0)
    calls["reset"] = 0
    env.step(actions)
    obs, reward, terminated, truncated, info = env.step(actions)
    assert terminated.tolist() == done.tolist() and not truncated.any()
    assert calls == {"reset_at": [0, 2, 0, 2], "reset": 0}
    assert info["_final_obs"].tolist() == done.tolist()
    assert info["episode_length"][done].tolist() == [1, 1]  # they also ended at the first step
    torch.testing.assert_close(obs[~done], info["final_obs"][~done])
    assert not torch.equal(obs[done], info["final_obs"][done])
    assert vmas_env.steps.tolist() == [0, 2, 0, 2]

    monkeypatch.setattr(vmas_env.scenario, "done", lambda: torch.ones(4, dtype=torch.bool))
    env.step(actions)
    assert calls["reset"] == 1 and calls["reset_at"] == [0, 2, 0, 2]
    assert vmas_env.steps.tolist() == [0, 0, 0, 0]


# ---------------------------------------------------------------------------- errors
def test_bad_actions_name_the_agent():
    env = envs.make("vmas:navigation", num_envs=2)
    env.reset(seed=0)
    actions = torch.zeros(2, 4, dtype=torch.long)
    actions[1, 2] = 9
    with pytest.raises(ValueError, match="agent_2.*copies 1"):
        env.step(actions)
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        env.step(torch.zeros(2, 4))
    continuous = envs.make("vmas:navigation", num_envs=2, continuous_actions=True)
    continuous.reset(seed=0)
    with pytest.raises(ValueError, match="agent_0"):
        continuous.step(torch.full((2, 4, 2), 5.0).index_fill_(1, torch.tensor([1, 2, 3]), 0.0))


def test_unknown_scenario_and_bad_arguments():
    with pytest.raises(ValueError, match="navigation"):
        envs.make("vmas:navigaton")
    with pytest.raises(TypeError, match="continuous_actions"):
        envs.make("vmas:navigation", continuous_actions=1)
    with pytest.raises(ValueError, match="max_steps"):
        envs.make("vmas:navigation", max_steps=0)
    with pytest.raises(ValueError, match="multidiscrete"):
        envs.make("vmas:navigation", continuous_actions=True, multidiscrete_actions=True)
    with pytest.raises(TypeError, match="graph_padding"):
        envs.make("vmas:navigation", graph_padding={"max_nodes": 4})


def test_scenario_kwargs_reach_the_scenario():
    env = envs.make("vmas:navigation", num_envs=2, n_agents=2, collisions=False)
    assert env.num_agents == 2 and env.single_observation_space.shape == (6,)


def test_missing_vmas_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vmas", None)
    monkeypatch.delitem(sys.modules, "envs.interop.vmas")
    with pytest.raises(ImportError, match=r'pip install -e "\.\[vmas\]"'):
        envs.make("vmas:navigation")


# ---------------------------------------------------------------------------- PettingZoo, PPO
def test_pettingzoo_parallel_api_and_seed_tests_on_one_copy():
    par_env = envs.make_pettingzoo("vmas:navigation", n_agents=2, max_steps=20)
    assert isinstance(par_env, BatchedToParallelEnv)
    assert par_env.possible_agents == ["agent_0", "agent_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(par_env, num_cycles=50)
        parallel_seed_test(functools.partial(
            envs.make_pettingzoo, "vmas:navigation", n_agents=2, max_steps=20), num_cycles=50)


def test_ppo_trains_on_vmas_navigation_with_a_centralised_critic():
    result = train(PPOConfig(
        env_id="vmas:navigation", env_kwargs={"n_agents": 2, "collisions": False,
                                              "max_steps": 32},
        num_envs=8, num_steps=32, total_steps=2048, device="cpu", centralised_critic=True,
        hidden_size=32, num_minibatches=2, update_epochs=2,
    ))
    # train raises FloatingPointError as soon as an update's loss is NaN or infinite.
    assert result.metrics["steps"] >= 2048 and result.metrics["episodes"] > 0
    assert math.isfinite(result.metrics["final_return"])
    assert all(torch.isfinite(p).all() for p in result.policy.parameters())


def test_a_scenario_option_the_scenario_does_not_use_is_an_error():
    # VMAS itself only warns; a misspelt option would silently train another task.
    with pytest.raises(TypeError, match="continous_actions.*not used"):
        envs.make("vmas:navigation", num_envs=2, continous_actions=True)
