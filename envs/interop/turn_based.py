"""Turn-based PettingZoo environments (the AEC API) as multi-agent batched environments.

:class:`AECToBatched` batches ``N`` copies of any ``pettingzoo.AECEnv`` (the classic board games
with action masks: ``tictactoe_v3``, ``connect_four_v3``, ...) so that one shared policy can
learn them by self-play with the one PPO loop. The copies step one by one in numpy on the CPU;
only their results move to ``device``. How it fits the batched contract: docs/architecture.md,
"Turn-based games".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import AECEnv

from envs.core import MultiAgentBatchedEnv, Obs, check_finite, check_seed
from envs.interop._convert import copy_at, to_tensor, torch_space
from envs.interop.agent_padding import ActionPadding, ObservationPadding
from envs.interop.pettingzoo import open_copies

__all__ = ["AECToBatched"]

#: The keys of the classic games' Dict observations.
_OBSERVATION, _ACTION_MASK = "observation", "action_mask"


class AECToBatched(MultiAgentBatchedEnv):
    """Any PettingZoo ``AECEnv`` (turn-based) as a multi-agent batched environment.

    One env object per copy, stepped in Python on the CPU; the results are tensors on ``device``
    with the keys and meaning of :meth:`envs.core.MultiAgentBatchedEnv.step` (SAME_STEP
    autoreset per copy, ``final_obs``, ``state``/``final_state``, ``agent_mask``, episode
    statistics counted by the native environments' bookkeeping).

    Agents: ``possible_agents`` of the wrapped env, fixed; every agent has a ``Discrete`` action
    space. Agents with different spaces are padded into one batch (docs/architecture.md,
    "Heterogeneous agents"): ``agent_observation_spaces`` / ``agent_action_spaces`` are each
    agent's own (for the classic games, the flattened ``"observation"`` part), ``groups`` and
    ``group_index`` the agents with identical spaces.

    Observation Space: every agent's ``observe(agent)`` at every step, ``[N, A, ...]``, whoever
        is to move. A Dict of exactly ``"observation"`` and ``"action_mask"`` (the classic games)
        becomes its ``"observation"`` part flattened to a float32 Box; any other space is
        converted as :class:`~envs.interop.pettingzoo.PettingZooToBatched` does (float64 boxes
        to float32, Dicts kept). Agents no longer in the env's ``agents`` see zeros and have
        ``agent_mask`` False. When the agents' (converted) spaces differ, each observation is
        flattened to float32 and zero-padded to the largest size (``observation_mask``
        ``[A, obs_size]`` marks each agent's own entries); different Dicts are a ``TypeError``.

    Action Space: ``Discrete(n)`` per agent; ``step`` takes ``actions`` ``[N, A]`` int64. Agents
        with different ``n`` share ``Discrete(max n)`` with ``has_action_mask`` True: the actions
        an agent lacks are masked out (a mover playing one is the ``ValueError`` below).

    Turns: ``info["acting"]`` ``[N, A]`` bool (from ``reset`` and ``step``) marks, for the
        observation just returned, the agent whose action the next ``step`` applies (the env's
        ``agent_selection``, exactly one per copy). The other agents' actions are ignored but
        must still lie in the action space. An action of the mover that its action mask forbids
        is a ``ValueError`` naming the copy and the agent (checked before any copy steps).

    Action masks: ``has_action_mask`` is True when the env gives masks, in the Dict observation
        (``"action_mask"``) or in ``infos[agent]["action_mask"]``. ``info["action_mask"]`` and
        :meth:`action_masks` are ``[N, A, n]`` bool: the mover's legal actions, and all of its
        own actions for every agent that is not to move (a policy's categorical over an
        all-False mask would be NaN). Without env masks and with one action space there is no
        ``action_mask`` (every action is legal).

    Rewards: ``[N, A]`` float32, each agent's reward of this batched step: the sum of the env's
        ``rewards`` dict read after every AEC ``step`` call the batched step makes (the mover's,
        then the ``step(None)`` of dead agents that the AEC API requires, done here). ``rewards``
        holds every agent's reward of the last AEC step, so when a game ends both players get
        their result at once (tictactoe: +1 and -1, a draw 0 and 0); PettingZoo's
        ``_cumulative_rewards`` (what ``last()`` returns, the reward since the agent last moved)
        is not read, since the batched step hands each agent its reward immediately.

    Episode End: when every agent left in the env is terminated or truncated (the game is over).
        The copy counts as truncated if none of them terminated and one was truncated, else as
        terminated. ``final_obs`` holds the observations right after the last move; the copy is
        then reset in the same step (``reset()`` without a seed: the copy's own seed stream).

    State: the env's ``state()`` (and ``state_space``, else an unbounded float32 Box of its
        shape) when the env implements it, else the concatenation of every agent's flattened
        (and padded) observation.

    Seeding: ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` and ``self.generator`` with
        ``s``; the same seed and actions give the same trajectories. Actions are always checked.

    Args:
        env_fns: One callable per copy, each returning a new ``pettingzoo.AECEnv``
            (``envs.make("pettingzoo.classic.tictactoe_v3:env", num_envs=8)`` builds them).
        device: Where the returned tensors live.

    Raises:
        ValueError: ``env_fns`` is empty; copies disagree on ``possible_agents``.
        TypeError: an entry is not callable or returns no ``AECEnv``; an action space is not
            ``Discrete`` (or the agents' starts differ); an observation space is not one of
            Box, Discrete, MultiDiscrete, MultiBinary (or a Dict of these, the same for every
            agent).
    """

    #: Agents take turns (one acts per step); ``benchmarks.versus`` plays such games.
    turn_based = True

    description = "A third-party PettingZoo AEC (turn-based) env, stepped in numpy on the CPU."

    def __init__(
        self, env_fns: Sequence[Callable[[], AECEnv]], device: str | torch.device = "cpu"
    ):
        open_copies(self, env_fns, AECEnv, device,
                    "for a ParallelEnv, use envs.interop.pettingzoo.PettingZooToBatched")
        self._index = {agent: i for i, agent in enumerate(self._agent_names)}
        self._last_action_mask: torch.Tensor | None = None

    # ------------------------------------------------------------------ spaces
    def _build_spaces(self) -> None:
        first = self.envs[0]
        self._agent_names = list(first.possible_agents)
        for aec_env in self.envs[1:]:
            if list(aec_env.possible_agents) != self._agent_names:
                raise ValueError(
                    f"the copies disagree on possible_agents: {self._agent_names} and "
                    f"{list(aec_env.possible_agents)}"
                )
        gym_obs = [first.observation_space(agent) for agent in self._agent_names]
        own_act = [first.action_space(agent) for agent in self._agent_names]
        for agent, space in zip(self._agent_names, own_act, strict=True):
            if not isinstance(space, spaces.Discrete):
                raise TypeError(
                    f"AECToBatched needs Discrete action spaces (as the classic board games "
                    f"have), got {space} for {agent}"
                )
        self._gym_observation_spaces = gym_obs
        self._classic = all(
            isinstance(space, spaces.Dict) and set(space.spaces) == {_OBSERVATION, _ACTION_MASK}
            for space in gym_obs
        )
        if self._classic:
            own_obs = []
            for space in gym_obs:
                flat = spaces.flatten_space(space[_OBSERVATION])
                own_obs.append(spaces.Box(flat.low.astype(np.float32),
                                          flat.high.astype(np.float32), dtype=np.float32))
        else:
            own_obs = [torch_space(space) for space in gym_obs]
        self._own_observation_spaces, self._own_action_spaces = own_obs, own_act
        self._obs_padding = ObservationPadding(self._agent_names, own_obs)
        self._act_padding = ActionPadding(self._agent_names, own_act)
        self.single_action_space = self._act_padding.single_space
        self.single_observation_space = self._obs_padding.single_space
        obs_space = gym_obs[0]
        # What the masks and the state look like can only be seen on a started game.
        first.reset()
        mover = first.agent_selection
        obs_mask = isinstance(obs_space, spaces.Dict) and _ACTION_MASK in obs_space.spaces
        info_mask = _ACTION_MASK in (first.infos.get(mover) or {})
        self._mask_source = "obs" if obs_mask else "info" if info_mask else None
        # Agents with fewer actions than the padded space need masks even without the env's.
        self.has_action_mask = self._mask_source is not None or self._act_padding.has_mask
        n = self.single_action_space.n
        self._own_actions = np.ones((len(self._agent_names), n), dtype=bool) \
            if self._act_padding.mask is None else self._act_padding.mask.numpy()
        try:
            probe = np.asarray(first.state(), dtype=np.float32)
            self._native_state = True
        except NotImplementedError:
            self._native_state = False
        native_space = getattr(first, "state_space", None)
        if self._native_state and isinstance(native_space, spaces.Box):
            self.state_space = torch_space(native_space)
        elif self._native_state:
            self.state_space = spaces.Box(-np.inf, np.inf, probe.shape, dtype=np.float32)
        else:
            flat = self._flat_space()
            count = len(self._agent_names)
            self.state_space = spaces.Box(np.tile(flat.low, count), np.tile(flat.high, count),
                                          dtype=np.float32)

    def _flat_space(self) -> spaces.Box:
        """One agent's observation flattened to float32 (the piece of the default state)."""
        flat = spaces.flatten_space(self.single_observation_space)
        return spaces.Box(flat.low.astype(np.float32), flat.high.astype(np.float32),
                          dtype=np.float32)

    # ------------------------------------------------------------------ one copy
    def _observe_copy(self, i: int) -> list[Any]:
        """Every agent's observation in copy ``i`` (zeros for agents that have left)."""
        aec_env = self.envs[i]
        return [self._convert(j, aec_env.observe(agent)) if agent in aec_env.agents else None
                for j, agent in enumerate(self._agent_names)]

    def _convert(self, j: int, obs: Any) -> Any:
        """Agent ``j``'s observation as the batch holds it (observation part, padded)."""
        if self._classic:
            sub = self._gym_observation_spaces[j][_OBSERVATION]
            obs = spaces.flatten(sub, obs[_OBSERVATION]).astype(np.float32)
        if self._obs_padding.padded:
            return self._obs_padding.pad(j, obs)
        return obs

    def _mover_mask(self, i: int, mover: int, raw_mask: Any) -> np.ndarray:
        """The row of ``action_masks`` for copy ``i``'s mover (agent index ``mover``): the env's
        mask, padded with False, and only the actions the agent has (all of them without env
        masks)."""
        own = self._own_actions[mover].copy()
        if raw_mask is not None:
            n = self._own_action_spaces[mover].n
            own[:n] &= np.asarray(raw_mask).astype(bool).reshape(n)
        return own

    def _raw_mask(self, i: int) -> Any:
        aec_env = self.envs[i]
        mover = aec_env.agent_selection
        if self._mask_source == "obs":
            return aec_env.observe(mover)[_ACTION_MASK]
        if self._mask_source == "info":
            return (aec_env.infos.get(mover) or {}).get(_ACTION_MASK)
        return None

    def _skip_dead(self, i: int, rewards: np.ndarray) -> None:
        """The ``step(None)`` calls that AEC asks of terminated or truncated agents."""
        aec_env = self.envs[i]
        while aec_env.agents and (aec_env.terminations[aec_env.agent_selection]
                                  or aec_env.truncations[aec_env.agent_selection]):
            aec_env.step(None)
            self._add_rewards(i, rewards)

    def _add_rewards(self, i: int, rewards: np.ndarray) -> None:
        for agent, reward in self.envs[i].rewards.items():
            rewards[self._index[agent]] += float(reward)

    def _reset_copy(self, i: int, seed: int | None, options: dict | None) -> None:
        self.envs[i].reset(seed=seed, options=options)
        self._skip_dead(i, np.zeros(self.num_agents, dtype=np.float32))

    def _game_over(self, i: int) -> bool:
        aec_env = self.envs[i]
        return all(aec_env.terminations[agent] or aec_env.truncations[agent]
                   for agent in aec_env.agents)

    # ------------------------------------------------------------------ batching
    def _stack(self, per_copy: list[list[Any]]) -> Obs:
        """Tensor batch ``[N, A, ...]`` of the per-agent observations (None: zeros)."""
        space = self.single_observation_space if self._classic or self._obs_padding.padded \
            else self._gym_observation_spaces[0]
        zero = copy_at(space, gym.vector.utils.create_empty_array(space, 1), 0)
        items = [zero if obs is None else obs for row in per_copy for obs in row]
        out = gym.vector.utils.create_empty_array(space, len(items))
        flat = gym.vector.utils.concatenate(space, items, out)
        shape = (self.num_envs, self.num_agents)
        if isinstance(flat, dict):
            flat = {key: value.reshape(*shape, *value.shape[1:]) for key, value in flat.items()}
        else:
            flat = flat.reshape(*shape, *flat.shape[1:])
        return to_tensor(self.single_observation_space, flat, self.device)

    def _state_of(self, i: int, observations: list[Any]) -> np.ndarray:
        if self._native_state:
            return np.asarray(self.envs[i].state(), dtype=np.float32).reshape(
                self.state_space.shape)
        space = self.single_observation_space if self._classic or self._obs_padding.padded \
            else self._gym_observation_spaces[0]
        width = spaces.flatdim(space)
        return np.concatenate([
            np.zeros(width, dtype=np.float32) if obs is None
            else spaces.flatten(space, obs).astype(np.float32)
            for obs in observations
        ])

    def _turn_info(self) -> dict[str, torch.Tensor]:
        """``acting``, ``agent_mask`` and ``action_mask`` of the copies as they stand now."""
        n, a = self.num_envs, self.num_agents
        acting = np.zeros((n, a), dtype=bool)
        alive = np.zeros((n, a), dtype=bool)
        masks = np.repeat(self._own_actions[None], n, axis=0)
        for i, aec_env in enumerate(self.envs):
            alive[i] = [agent in aec_env.agents for agent in self._agent_names]
            if aec_env.agents:
                mover = self._index[aec_env.agent_selection]
                acting[i, mover] = True
                masks[i, mover] = self._mover_mask(i, mover, self._raw_mask(i))
        info = {"agent_mask": self._tensor(alive, torch.bool),
                "acting": self._tensor(acting, torch.bool)}
        if self.has_action_mask:
            self._last_action_mask = self._tensor(masks, torch.bool)
            info[_ACTION_MASK] = self._last_action_mask
        return info

    def _tensor(self, value: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), dtype=dtype, device=self.device)

    def action_masks(self) -> torch.Tensor:
        """The action masks of the last observations, ``[N, A, n_actions]`` bool."""
        if not self.has_action_mask:
            raise AttributeError("the wrapped environment gives no action masks")
        if self._last_action_mask is None:
            raise RuntimeError("call reset() before action_masks()")
        return self._last_action_mask

    # ------------------------------------------------------------------ the batched API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy; ``seed`` seeds copy ``i`` with ``seed + i``."""
        seed = check_seed(seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        observations, states = [], []
        for i in range(self.num_envs):
            self._reset_copy(i, None if seed is None else seed + i, options)
            observations.append(self._observe_copy(i))
            states.append(self._state_of(i, observations[-1]))
        self._start_episodes()
        obs_t = self._stack(observations)
        info = {"state": self._tensor(np.stack(states)), **self._turn_info()}
        check_finite(repr(self), "reset()", observations=obs_t, states=info["state"])
        return obs_t, info

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Apply each copy's mover's action; copies whose game is over are reset."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        self.check_actions(actions)
        self._step_calls += 1
        np_actions = actions.detach().cpu().numpy().astype(np.int64)
        movers = [self._index[aec_env.agent_selection] for aec_env in self.envs]
        self._check_legal(np_actions, movers)
        n, a = self.num_envs, self.num_agents
        rewards = np.zeros((n, a), dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        observations, final_observations, states, final_states = [], [], [], []
        for i, aec_env in enumerate(self.envs):
            aec_env.step(int(self._act_padding.unpad(movers[i], np_actions[i, movers[i]])))
            self._add_rewards(i, rewards[i])
            over = self._game_over(i)
            if over:  # the last observations, before the dead steps remove the agents
                final_observations.append(self._observe_copy(i))
                final_states.append(self._state_of(i, final_observations[-1]))
                truncated[i] = not any(aec_env.terminations[x] for x in aec_env.agents) and \
                    any(aec_env.truncations[x] for x in aec_env.agents)
                terminated[i] = not truncated[i]
            self._skip_dead(i, rewards[i])
            if over:
                self._reset_copy(i, None, None)
            observations.append(self._observe_copy(i))
            states.append(self._state_of(i, observations[-1]))
            if not over:
                final_observations.append(observations[-1])
                final_states.append(states[-1])
        reward_t = self._tensor(rewards)
        terminated_t = self._tensor(terminated, torch.bool)
        truncated_t = self._tensor(truncated, torch.bool)
        info = self._finish_step(
            reward_t, terminated_t, truncated_t, self._stack(final_observations),
            {"final_state": self._tensor(np.stack(final_states))},
        )
        info["state"] = self._tensor(np.stack(states))
        info.update(self._turn_info())
        obs_t = self._stack(observations)
        check_finite(repr(self), f"step() call {self._step_calls}", rewards=reward_t,
                     observations=obs_t, final_observations=info["final_obs"],
                     states=info["state"])
        return obs_t, reward_t, terminated_t, truncated_t, info

    def _check_legal(self, np_actions: np.ndarray, movers: list[int]) -> None:
        """``ValueError`` if a mover's action is masked out (before any copy steps)."""
        if not self.has_action_mask:
            return
        start = int(self.single_action_space.start)
        for i, mover in enumerate(movers):
            action = int(np_actions[i, mover])
            legal = self._mover_mask(i, mover, self._raw_mask(i))
            if not legal[action - start]:
                allowed = (np.flatnonzero(legal) + start).tolist()
                raise ValueError(
                    f"copy {i}: {self._agent_names[mover]} is to move and may not play action "
                    f"{action} (masked out); its legal actions are {allowed}. Sample from "
                    "info['action_mask'] (or action_masks()); the other agents' actions are "
                    "ignored"
                )

    def close(self) -> None:
        """Close every copy."""
        for aec_env in getattr(self, "envs", []):
            if isinstance(aec_env, AECEnv):
                aec_env.close()

    def __repr__(self) -> str:
        first = self.envs[0]
        metadata = getattr(first, "metadata", None) or {}
        name = metadata.get("name", type(first.unwrapped).__name__)
        return (
            f"AECToBatched({name}, num_envs={self.num_envs}, num_agents={self.num_agents}, "
            f"device={self.device})"
        )
