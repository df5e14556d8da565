"""Heterogeneous agents: padded into one batch, with each agent's own spaces and its group.

docs/architecture.md, "Heterogeneous agents". Third-party environments step side by side with
the raw env (same seed, same actions): the unpadded part of each agent's observation is what the
raw env gives, the padding is zeros.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import AECEnv

import envs
from envs.core import group_agents
from envs.interop.agent_padding import ActionPadding, ObservationPadding
from envs.interop.pettingzoo import BatchedToParallelEnv, PettingZooToBatched
from envs.interop.turn_based import AECToBatched

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The old environment creation API", DeprecationWarning)
    from pettingzoo.test import parallel_api_test

pytest.importorskip("mpe2", reason="mpe2 is a third-party package (the test extra installs it)")

MPE2 = ["simple_tag_v3", "simple_speaker_listener_v4", "simple_adversary_v3", "simple_crypto_v3",
        "simple_world_comm_v3"]


@pytest.fixture
def warnings_as_errors():
    """Every warning is an error: some PettingZoo API violations only warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _box(size: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, (size,), np.float32)


def _own_sizes(env) -> list[int]:
    return [spaces.flatdim(env.agent_observation_spaces[a]) for a in env.possible_agents]


def _check_padding(env, obs: torch.Tensor, raw: list[dict], agents: list[str]) -> None:
    """``obs`` ``[N, A, size]``: each agent's own entries are ``raw[i][agent]``, the rest zeros."""
    for i, raw_obs in enumerate(raw):
        for j, agent in enumerate(env.possible_agents):
            if agent not in agents:
                continue
            size = int(env.observation_mask[j].sum())
            np.testing.assert_allclose(obs[i, j, :size].numpy(), raw_obs[agent], rtol=1e-6)
            assert (obs[i, j, size:] == 0).all()


# ---------------------------------------------------------------------------- groups
def test_group_names_strip_the_number_and_stay_unique():
    a, b = _box(3), _box(4)
    d3, d5 = spaces.Discrete(3), spaces.Discrete(5)
    obs = {"adversary_0": a, "adversary_1": a, "agent_0": b}
    act = dict.fromkeys(obs, d5)
    assert group_agents(obs, act) == {"adversary": ["adversary_0", "adversary_1"],
                                      "agent": ["agent_0"]}
    # Same observation, different actions: two groups of the same stem.
    obs = {"agent_0": a, "agent_1": a, "agent_2": a}
    act = {"agent_0": d3, "agent_1": d5, "agent_2": d3}
    assert group_agents(obs, act) == {"agent": ["agent_0", "agent_2"], "agent_1": ["agent_1"]}
    # No common stem.
    assert group_agents({"bob_0": a, "alice_0": a}, {"bob_0": d3, "alice_0": d3}) == {
        "group": ["bob_0", "alice_0"]}
    with pytest.raises(ValueError, match="same agents"):
        group_agents({"a": a}, {"b": d3})


def test_homogeneous_native_task_is_one_group_and_needs_no_padding():
    env = envs.make("umbra/CooperativeNavigation-v0", num_envs=2)
    assert env.groups == {"agent": env.possible_agents}
    assert env.group_index.tolist() == [0] * env.num_agents
    assert env.group_index.dtype == torch.int64 and env.group_index.device == env.device
    assert env.agent_observation_spaces == dict.fromkeys(env.possible_agents,
                                                         env.single_observation_space)
    assert env.agent_action_spaces == dict.fromkeys(env.possible_agents, env.single_action_space)
    obs, _ = env.reset(seed=0)
    assert env.observation_mask.shape == obs.shape[1:] and env.observation_mask.all()


# ---------------------------------------------------------------------------- PettingZoo
@pytest.mark.parametrize("name", MPE2)
def test_every_heterogeneous_mpe2_env_builds_and_steps(name):
    env = envs.make(f"mpe2.{name}:parallel_env", num_envs=2, max_cycles=5)
    raw = importlib.import_module(f"mpe2.{name}").parallel_env()
    own = {a: raw.observation_space(a) for a in raw.possible_agents}
    assert env.agent_observation_spaces == own
    assert env.agent_action_spaces == {a: raw.action_space(a) for a in raw.possible_agents}
    size = max(spaces.flatdim(space) for space in own.values())
    assert env.single_observation_space == _box(size)
    assert env.observation_mask.sum(dim=1).tolist() == _own_sizes(env)
    assert sorted(a for group in env.groups.values() for a in group) == sorted(own)
    for number, members in enumerate(env.groups.values()):
        assert all(env.agent_observation_spaces[a] == own[members[0]] for a in members)
        assert [env.group_index[env.possible_agents.index(a)] for a in members] == [number] * len(
            members)
    obs, info = env.reset(seed=0)
    assert obs.shape == (2, env.num_agents, size)
    assert info["state"].shape == (2, *raw.state_space.shape)  # mpe2's own state
    actions = torch.zeros(2, env.num_agents, dtype=torch.int64)
    for _ in range(5):
        obs, _, terminated, truncated, info = env.step(actions)
    assert truncated.all() and not terminated.any()


def test_simple_tag_pads_the_prey_and_matches_the_raw_env():
    from mpe2 import simple_tag_v3

    kwargs = {"max_cycles": 6}
    env = envs.make("mpe2.simple_tag_v3:parallel_env", num_envs=2, **kwargs)
    assert env.possible_agents == ["adversary_0", "adversary_1", "adversary_2", "agent_0"]
    assert env.single_observation_space.shape == (16,)
    assert env.observation_mask.sum(dim=1).tolist() == [16, 16, 16, 14]
    assert env.single_action_space == spaces.Discrete(5) and not env.has_action_mask
    assert env.groups == {"adversary": ["adversary_0", "adversary_1", "adversary_2"],
                          "agent": ["agent_0"]}
    assert env.group_index.tolist() == [0, 0, 0, 1]
    references = [simple_tag_v3.parallel_env(**kwargs) for _ in range(2)]
    obs, _ = env.reset(seed=3)
    raw = [ref.reset(seed=3 + i)[0] for i, ref in enumerate(references)]
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        _check_padding(env, obs, raw, env.possible_agents)
        actions = torch.randint(5, (2, 4), generator=generator)
        obs, reward, *_ = env.step(actions)
        for i, ref in enumerate(references):
            raw[i], ref_reward, *_ = ref.step(
                {a: int(actions[i, j]) for j, a in enumerate(env.possible_agents)})
            np.testing.assert_allclose(
                reward[i].numpy(), [ref_reward[a] for a in env.possible_agents], rtol=1e-5)


def test_simple_speaker_listener_masks_the_speakers_missing_actions():
    from mpe2 import simple_speaker_listener_v4

    env = envs.make("mpe2.simple_speaker_listener_v4:parallel_env", num_envs=2, max_cycles=8)
    assert env.possible_agents == ["speaker_0", "listener_0"]
    assert env.agent_observation_spaces == {"speaker_0": _box(3), "listener_0": _box(11)}
    assert env.agent_action_spaces == {"speaker_0": spaces.Discrete(3),
                                       "listener_0": spaces.Discrete(5)}
    assert env.single_observation_space == _box(11)
    assert env.single_action_space == spaces.Discrete(5) and env.has_action_mask
    assert env.observation_mask.tolist() == [[True] * 3 + [False] * 8, [True] * 11]
    assert env.groups == {"speaker": ["speaker_0"], "listener": ["listener_0"]}
    assert env.group_index.tolist() == [0, 1]
    assert env.state_space.shape == (14,)

    references = [simple_speaker_listener_v4.parallel_env(max_cycles=8) for _ in range(2)]
    obs, info = env.reset(seed=1)
    raw = [ref.reset(seed=1 + i)[0] for i, ref in enumerate(references)]
    expected_mask = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        _check_padding(env, obs, raw, env.possible_agents)
        assert torch.equal(info["action_mask"], expected_mask.expand(2, 2, 5))
        torch.testing.assert_close(env.action_masks(), info["action_mask"])
        # The speaker may send 3 or 4 (masked out): they act as its action 0.
        actions = torch.randint(5, (2, 2), generator=generator)
        obs, _, _, _, info = env.step(actions)
        for i, ref in enumerate(references):
            speaker = int(actions[i, 0]) if actions[i, 0] < 3 else 0
            raw[i], *_ = ref.step({"speaker_0": speaker, "listener_0": int(actions[i, 1])})
    with pytest.raises(ValueError, match="speaker_0"):  # outside the padded space: an error
        env.step(torch.tensor([[5, 0], [0, 0]]))


def test_heterogeneous_dicts_and_mixed_action_kinds_are_clear_errors():
    from tests.envs.test_multiagent import Dwindle

    class UnevenDicts(Dwindle):
        def __init__(self):
            super().__init__()
            self._obs_spaces["agent_2"] = spaces.Dict({"x": spaces.Box(0.0, 1.0, (3,))})

    with pytest.raises(TypeError, match="agent_2 has observation space Dict.*same one"):
        PettingZooToBatched([UnevenDicts])
    with pytest.raises(TypeError, match="mixing Discrete and Box"):
        ActionPadding(["a", "b"], [spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,))])
    with pytest.raises(TypeError, match="one-dimensional"):
        ActionPadding(["a", "b"], [spaces.Box(-1.0, 1.0, (2, 2)), spaces.Box(-1.0, 1.0, (2,))])


@pytest.mark.parametrize("name", ["simple_speaker_listener_v4", "simple_tag_v3"])
def test_parallel_env_of_a_heterogeneous_env_passes_the_parallel_api_test(name,
                                                                          warnings_as_errors):
    par_env = BatchedToParallelEnv(envs.make(f"mpe2.{name}:parallel_env", num_envs=1))
    raw = importlib.import_module(f"mpe2.{name}").parallel_env()
    for agent in raw.possible_agents:  # each agent's own spaces, unpadded
        assert par_env.observation_space(agent) == raw.observation_space(agent)
        assert par_env.action_space(agent) == raw.action_space(agent)
    parallel_api_test(par_env, num_cycles=30)
    obs, infos = par_env.reset(seed=0)
    raw_obs, _ = raw.reset(seed=0)
    for agent in raw.possible_agents:
        np.testing.assert_allclose(obs[agent], raw_obs[agent], rtol=1e-6)
        if "action_mask" in infos[agent]:
            assert infos[agent]["action_mask"].shape == (raw.action_space(agent).n,)


# ---------------------------------------------------------------------------- padding pieces
def test_box_actions_are_sliced_and_clipped_to_each_agents_own_box():
    small, large = spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Box(-2.0, 2.0, (3,), np.float32)
    padding = ActionPadding(["small", "large"], [small, large])
    assert padding.single_space == spaces.Box(-2.0, 2.0, (3,), np.float32)
    assert not padding.has_mask
    action = np.array([1.5, -0.5, 1.0], np.float32)
    np.testing.assert_allclose(padding.unpad(0, action), [1.0, -0.5])
    np.testing.assert_allclose(padding.unpad(1, action), action)
    per_agent = padding.unpad_tensors(torch.tensor([[[1.5, -0.5, 1.0], [1.5, -0.5, 1.0]]]))
    assert [tuple(t.shape) for t in per_agent] == [(1, 2), (1, 3)]
    torch.testing.assert_close(per_agent[0], torch.tensor([[1.0, -0.5]]))


def test_observation_padding_flattens_and_pads():
    padding = ObservationPadding(["a", "b"], [spaces.Box(0.0, 1.0, (2, 2)), spaces.Discrete(3)])
    assert padding.sizes == [4, 3] and padding.single_space.shape == (4,)
    np.testing.assert_array_equal(padding.pad(1, 2), [0, 0, 1, 0])
    assert padding.mask.tolist() == [[True] * 4, [True] * 3 + [False]]


# ---------------------------------------------------------------------------- VMAS
def test_vmas_speaker_listener_gives_own_spaces_and_groups():
    pytest.importorskip("vmas")
    env = envs.make("vmas:simple_speaker_listener", num_envs=2)
    assert env.agent_observation_spaces == {"speaker_0": _box(3), "listener_0": _box(11)}
    ns = [env.agent_action_spaces[a].n for a in env.possible_agents]
    assert env.single_action_space.n == max(ns) and env.has_action_mask
    assert env.observation_mask.sum(dim=1).tolist() == [3, 11]
    assert env.groups == {"speaker": ["speaker_0"], "listener": ["listener_0"]}
    assert env.group_index.tolist() == [0, 1]
    _, info = env.reset(seed=0)
    assert info["action_mask"].sum(dim=2).tolist() == [ns, ns]
    assert info["state"].shape == (2, 2 * 11)  # the padded observations, concatenated


# ---------------------------------------------------------------------------- turn-based
class Uneven(AECEnv):
    """Two players take turns removing from a counter (random 5..9); who empties it wins.

    ``first`` sees the counter and takes 0 or 1; ``second`` sees the counter, the moves made and
    a constant, and takes 0, 1 or 2. No masks from the env, no ``state()``.
    """

    metadata = {"name": "uneven_v0", "render_modes": []}

    def __init__(self):
        super().__init__()
        self.possible_agents = ["first", "second"]
        self._obs = {"first": spaces.Box(0.0, 20.0, (1,), np.float32),
                     "second": spaces.Box(0.0, 20.0, (3,), np.float32)}
        self._act = {"first": spaces.Discrete(2), "second": spaces.Discrete(3)}
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return self._act[agent]

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.count, self.moves = int(self._rng.integers(5, 10)), 0
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {agent: {} for agent in self.agents}
        self.agent_selection = "first"

    def observe(self, agent):
        if agent == "first":
            return np.array([self.count], np.float32)
        return np.array([self.count, self.moves, 1.0], np.float32)

    def step(self, action):
        mover = self.agent_selection
        if self.terminations[mover]:
            self._was_dead_step(action)
            return
        assert self._act[mover].contains(action), f"{mover} got {action}"
        self._clear_rewards()
        other = "second" if mover == "first" else "first"
        self.count, self.moves = self.count - int(action), self.moves + 1
        if self.count <= 0:
            self.rewards[mover], self.rewards[other] = 1.0, -1.0
            self.terminations = dict.fromkeys(self.agents, True)
        self._accumulate_rewards()
        self.agent_selection = other


def test_turn_based_heterogeneous_agents_are_padded_and_masked():
    env = AECToBatched([Uneven, Uneven])
    assert env.agent_observation_spaces == {"first": Uneven()._obs["first"],
                                            "second": Uneven()._obs["second"]}
    assert env.single_observation_space.shape == (3,)
    assert env.single_action_space == spaces.Discrete(3) and env.has_action_mask
    assert env.observation_mask.sum(dim=1).tolist() == [1, 3]
    assert env.groups == {"first": ["first"], "second": ["second"]}
    assert env.group_index.tolist() == [0, 1]
    assert env.state_space.shape == (6,)
    references = [Uneven() for _ in range(2)]
    obs, info = env.reset(seed=4)
    for i, ref in enumerate(references):
        ref.reset(seed=4 + i)
    own = torch.tensor([[True, True, False], [True, True, True]])
    for _ in range(4):  # the counters start at 5 or more: no game ends in 4 moves of 1
        raw = [{a: ref.observe(a) for a in ref.agents} for ref in references]
        _check_padding(env, obs, raw, env.possible_agents)
        torch.testing.assert_close(info["state"], obs.reshape(2, -1))
        assert torch.equal(info["action_mask"], own.expand(2, 2, 3))
        # The waiting agent's action 2 (first lacks it) is ignored; the mover plays 1.
        actions = torch.where(info["acting"], 1, 2)
        obs, _, terminated, _, info = env.step(actions)
        for ref in references:
            ref.step(1)
        assert not terminated.any()
    # The first player to move may not play 2: masked out, a ValueError naming it.
    env.reset(seed=0)
    with pytest.raises(ValueError, match="first is to move and may not play action 2"):
        env.step(torch.tensor([[2, 0], [0, 0]]))
