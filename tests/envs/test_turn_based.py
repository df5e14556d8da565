"""Turn-based PettingZoo games (AEC) as batched environments: envs.interop.turn_based."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import AECEnv

import envs
from envs.interop.turn_based import AECToBatched

TICTACTOE = "pettingzoo.classic.tictactoe_v3:env"
#: Importing the classic games warns about PettingZoo's own old creation API; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The old environment creation API")


class Countdown(AECEnv):
    """Two players take 1 or 2 from a counter that starts at a random 4..9; who empties it wins.

    What the classic games lack: randomness (to check the seeding), masks in ``infos`` (taking
    nothing, action 0, is never legal) and a ``state()``.
    """

    metadata = {"name": "countdown_v0", "render_modes": []}

    def __init__(self):
        super().__init__()
        self.possible_agents = ["first", "second"]
        self.state_space = spaces.Box(0.0, 10.0, (2,), np.float32)
        self._obs_space = spaces.Box(0.0, 10.0, (1,), np.float32)
        self._act_space = spaces.Discrete(3)
        self._rng = np.random.default_rng()

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.count = int(self._rng.integers(4, 10))
        self.agents = list(self.possible_agents)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.agent_selection = "first"
        self._set_infos()

    def _set_infos(self):
        mask = np.array([0, 1, int(self.count >= 2)], dtype=np.int8)
        self.infos = {agent: {"action_mask": mask.copy()} for agent in self.agents}

    def observe(self, agent):
        return np.array([self.count], dtype=np.float32)

    def state(self):
        return np.array([self.count, self.possible_agents.index(self.agent_selection)], np.float32)

    def step(self, action):
        mover = self.agent_selection
        if self.terminations[mover]:
            self._was_dead_step(action)
            return
        self._clear_rewards()
        other = "second" if mover == "first" else "first"
        self.count -= int(action)
        if self.count <= 0:
            self.rewards[mover], self.rewards[other] = 1.0, -1.0
            self.terminations = dict.fromkeys(self.agents, True)
        self._accumulate_rewards()
        self.agent_selection = other
        self._set_infos()


def _moves(env: AECToBatched, squares: list[int]) -> torch.Tensor:
    """Actions ``[N, 2]`` that put the mover of every copy on ``squares[i]``."""
    return torch.tensor([[square, square] for square in squares])


def _play(env: AECToBatched, squares: list[int]):
    """Every copy plays the same sequence of squares; the results of the last step."""
    for square in squares:
        out = env.step(_moves(env, [square] * env.num_envs))
    return out


def _random_legal(env: AECToBatched, generator: torch.Generator) -> torch.Tensor:
    masks = env.action_masks().float()
    flat = torch.multinomial(masks.reshape(-1, masks.shape[-1]), 1, generator=generator)
    return flat.reshape(env.num_envs, env.num_agents)


# ---------------------------------------------------------------------------- the registry
@pytest.mark.parametrize("factory", ["env", "raw_env"])
def test_make_builds_the_turn_based_adapter_from_an_aec_factory(factory):
    env = envs.make(f"pettingzoo.classic.tictactoe_v3:{factory}", num_envs=3)
    assert isinstance(env, AECToBatched) and env.kind == "multi-agent"
    assert env.num_envs == 3 and env.possible_agents == ["player_1", "player_2"]
    assert "tictactoe_v3" in repr(env)


# ---------------------------------------------------------------------------- the contract
def test_tictactoe_shapes_spaces_and_turns():
    env = envs.make(TICTACTOE, num_envs=4)
    assert env.single_observation_space == spaces.Box(0.0, 1.0, (18,), np.float32)
    assert env.single_action_space == spaces.Discrete(9) and env.has_action_mask
    assert env.state_space.shape == (36,)  # no state(): both players' observations
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 2, 18) and obs.dtype == torch.float32 and not obs.any()
    assert set(info) == {"state", "agent_mask", "acting", "action_mask"}
    assert info["action_mask"].shape == (4, 2, 9) and info["action_mask"].dtype == torch.bool
    assert torch.equal(info["acting"], torch.tensor([[True, False]] * 4))
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        acting = info["acting"]
        obs, reward, terminated, truncated, info = env.step(_random_legal(env, generator))
        assert obs.shape == (4, 2, 18) and reward.shape == (4, 2)
        assert terminated.shape == truncated.shape == (4,) and not truncated.any()
        assert info["final_obs"].shape == (4, 2, 18) and info["state"].shape == (4, 36)
        assert (info["acting"].sum(dim=1) == 1).all()  # exactly one mover per copy
        assert info["agent_mask"].all()
        # Turns alternate within a game; a new game starts with player_1.
        expected = torch.where(terminated[:, None], torch.tensor([True, False]), acting.flip(1))
        assert torch.equal(info["acting"], expected)
        assert torch.equal(info["action_mask"], env.action_masks())


def test_masks_forbid_taken_squares_for_the_mover_and_allow_everything_to_the_other():
    env = envs.make(TICTACTOE, num_envs=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(_moves(env, [4, 0]))
    mask = info["action_mask"]
    assert info["acting"][:, 1].all()
    assert not mask[0, 1, 4] and mask[0, 1].sum() == 8
    assert not mask[1, 1, 0] and mask[1, 1].sum() == 8
    assert mask[:, 0].all()  # player_1 waits: all True, never all False


def test_a_win_gives_plus_and_minus_one_then_the_copy_restarts():
    env = envs.make(TICTACTOE, num_envs=2)
    env.reset(seed=0)
    # player_1 takes the top row (0, 1, 2) while player_2 plays 3 and 4.
    obs, reward, terminated, truncated, info = _play(env, [0, 3, 1, 4, 2])
    assert torch.equal(reward, torch.tensor([[1.0, -1.0]] * 2))
    assert terminated.all() and not truncated.any() and info["_final_obs"].all()
    final = info["final_obs"][0].reshape(2, 3, 3, 2)
    assert final[0, 0, :, 0].all() and final[1, 0, :, 1].all()  # each player's own view
    assert torch.equal(info["agent_episode_return"], torch.tensor([[1.0, -1.0]] * 2))
    assert torch.equal(info["episode_length"], torch.tensor([5, 5]))
    assert not obs.any() and torch.equal(info["acting"], torch.tensor([[True, False]] * 2))
    assert info["action_mask"][:, 0].all()  # a fresh board


def test_a_draw_gives_zero_to_both():
    env = envs.make(TICTACTOE, num_envs=1)
    env.reset(seed=0)
    draw = [0, 1, 2, 4, 3, 5, 7, 6, 8]
    for square in draw[:-1]:
        _, reward, terminated, _, _ = env.step(_moves(env, [square]))
        assert not reward.any() and not terminated.any()
    _, reward, terminated, _, info = env.step(_moves(env, [draw[-1]]))
    assert terminated.all() and not reward.any()
    assert torch.equal(info["episode_length"], torch.tensor([9]))


def test_random_games_are_zero_sum_and_every_ended_game_pays_once():
    env = envs.make(TICTACTOE, num_envs=8)
    env.reset(seed=1)
    generator = torch.Generator().manual_seed(1)
    ended = 0
    for _ in range(60):
        _, reward, terminated, _, info = env.step(_random_legal(env, generator))
        assert (reward.sum(dim=1) == 0).all()
        assert (reward[~terminated] == 0).all()
        assert set(reward[terminated].abs().sum(dim=1).tolist()) <= {0.0, 2.0}
        ended += int(terminated.sum())
    assert ended >= 30


def test_an_illegal_move_names_the_copy_and_the_agent_and_steps_nothing():
    env = envs.make(TICTACTOE, num_envs=3)
    env.reset(seed=0)
    env.step(_moves(env, [0, 0, 0]))
    with pytest.raises(ValueError, match=r"copy 1: player_2 .* action 0 \(masked out\)"):
        env.step(_moves(env, [1, 0, 1]))
    _, _, _, _, info = env.step(_moves(env, [1, 1, 1]))  # nothing had moved: still legal
    assert info["acting"][:, 0].all()
    with pytest.raises(ValueError, match="integers in"):
        env.step(torch.full((3, 2), 9))
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(3, dtype=torch.int64))


def test_same_seed_same_trajectory_and_copies_seeded_with_seed_plus_index():
    def run(seed: int) -> list[torch.Tensor]:
        env = AECToBatched([Countdown] * 3)
        obs, info = env.reset(seed=seed)
        seen = [obs, info["state"]]
        generator = torch.Generator().manual_seed(0)
        for _ in range(20):
            obs, reward, _, _, info = env.step(_random_legal(env, generator))
            seen += [obs, reward, info["final_obs"], info["state"]]
        return seen

    first, again, other = run(10), run(10), run(11)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    starts = [int(np.random.default_rng(10 + i).integers(4, 10)) for i in range(3)]
    assert first[0][:, :, 0].tolist() == [[s, s] for s in starts]


def test_masks_from_infos_native_state_and_autoreset_from_the_copys_own_stream():
    env = AECToBatched([Countdown, Countdown])
    assert env.has_action_mask and env.state_space.shape == (2,)
    obs, info = env.reset(seed=3)
    rng = [np.random.default_rng(3 + i) for i in range(2)]
    counts = [int(r.integers(4, 10)) for r in rng]
    assert info["state"].tolist() == [[c, 0.0] for c in counts]
    assert info["action_mask"][:, 0, 0].logical_not().all() and info["action_mask"][:, 1].all()
    with pytest.raises(ValueError, match="copy 0: first .* action 0"):
        env.step(torch.zeros(2, 2, dtype=torch.int64))
    turns = 0
    while True:  # both players take 1 until a copy ends
        obs, reward, terminated, _, info = env.step(torch.ones(2, 2, dtype=torch.int64))
        turns += 1
        if terminated.any():
            break
    i = int(terminated.nonzero()[0, 0])
    assert turns == counts[i]
    winner = (turns - 1) % 2
    assert reward[i, winner] == 1.0 and reward[i, 1 - winner] == -1.0
    assert info["final_obs"][i].tolist() == [[0.0], [0.0]]
    assert info["final_state"][i, 0] == 0.0
    assert obs[i, :, 0].tolist() == [int(rng[i].integers(4, 10))] * 2  # the copy's next draw
    assert info["state"][i].tolist() == [obs[i, 0, 0].item(), 0.0]


def test_an_aec_env_converted_from_a_parallel_one_takes_turns():
    """PettingZoo's parallel_to_aec of a native task: one agent moves per batched step."""
    env = envs.make("envs.multiagent.pursuit:env", num_envs=2)
    assert isinstance(env, AECToBatched) and env.has_action_mask
    _, info = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    for step in range(2 * env.num_agents):
        assert info["acting"][:, step % env.num_agents].all()
        _, _, _, _, info = env.step(_random_legal(env, generator))


def test_what_cannot_be_batched_is_a_clear_error():
    class BoxActions(Countdown):
        def __init__(self):
            super().__init__()
            self._act_space = spaces.Box(0.0, 1.0, (2,), np.float32)

    class UnevenDicts(Countdown):
        # Different observation spaces are padded (tests/envs/test_heterogeneous.py); different
        # Dicts cannot be.
        def observation_space(self, agent):
            size = 1 + (agent == "second")
            return spaces.Dict({"count": spaces.Box(0.0, 10.0, (size,), np.float32)})

    with pytest.raises(TypeError, match="Discrete action space"):
        AECToBatched([BoxActions])
    with pytest.raises(TypeError, match="first has observation space Dict"):
        AECToBatched([UnevenDicts])
    with pytest.raises(TypeError, match="AECEnv"):
        AECToBatched([lambda: object()])
    with pytest.raises(ValueError, match="env_fns is empty"):
        AECToBatched([])
    env = AECToBatched([Countdown])
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.ones(1, 2, dtype=torch.int64))
