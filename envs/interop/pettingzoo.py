"""Umbra's multi-agent batched environments and PettingZoo, both ways.

- :class:`BatchedToParallelEnv`: one copy of a native :class:`~envs.core.MultiAgentBatchedEnv` as
  a PettingZoo ``ParallelEnv`` (and, through PettingZoo's ``parallel_to_aec``, an AEC env);
  passes PettingZoo's API and seed tests.
- :class:`PettingZooToBatched`: any third-party PettingZoo ``ParallelEnv`` as a multi-agent
  batched environment (torch tensors, SAME_STEP autoreset, episode statistics). The copies step
  in numpy on the CPU; only their results move to ``device``.

With :mod:`envs.interop.turn_based` (PettingZoo's turn-based AEC envs), the only modules of
``envs`` that import PettingZoo at module level.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.core import (
    MultiAgentBatchedEnv,
    Obs,
    check_finite,
    check_seed,
    resolve_device,
    torch_dtype,
)
from envs.interop._convert import actions_to_tensor, copy_at, to_numpy, to_tensor, torch_space
from envs.interop.agent_padding import (
    ActionPadding,
    ObservationPadding,
    pad_action,
    unpad_action_mask,
    unpad_observation,
)
from envs.registry import registered_gym_spec

__all__ = ["BatchedToParallelEnv", "PettingZooToBatched"]


def _default_action(space: gym.Space) -> np.ndarray:
    """A valid action that the batched step is given for absent agents (and then ignores)."""
    if isinstance(space, spaces.Discrete):
        return np.asarray(space.start, dtype=space.dtype)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype).copy()
    if isinstance(space, spaces.MultiBinary):
        return np.zeros(space.shape, dtype=space.dtype)
    return np.clip(np.zeros(space.shape, dtype=space.dtype), space.low, space.high)


def _require_multi_agent(batched: Any, adapter: str) -> MultiAgentBatchedEnv:
    if not isinstance(batched, MultiAgentBatchedEnv):
        raise TypeError(
            f"{adapter} wraps an envs.core.MultiAgentBatchedEnv, got {type(batched).__name__}"
        )
    return batched



def open_copies(batched: Any, env_fns: Sequence[Callable[[], Any]], kind: type,
                device: str | torch.device, other_kind: str) -> None:
    """The shared start of the PettingZoo adapters (:class:`PettingZooToBatched`,
    :class:`envs.interop.turn_based.AECToBatched`): call every factory, check it gave a ``kind``,
    let ``batched._build_spaces()`` read the spaces, then start the batched env with each agent's
    own spaces and the observation padding's mask. Copies opened before a failure are closed.

    Raises:
        ValueError: ``env_fns`` is empty.
        TypeError: an entry is not callable or returns something other than a ``kind``
            (``other_kind`` says what to use instead).
    """
    env_fns = list(env_fns)
    if not env_fns:
        raise ValueError("env_fns is empty: pass one callable per copy (num_envs >= 1)")
    for fn in env_fns:
        if not callable(fn):
            raise TypeError(f"env_fns must be callables returning a {kind.__name__}, got {fn!r}")
    resolved = resolve_device(device)
    batched.envs = []
    try:
        for fn in env_fns:
            copy_ = fn()
            batched.envs.append(copy_)
            if not isinstance(copy_, kind):
                raise TypeError(f"env_fns must return pettingzoo {kind.__name__}s, got "
                                f"{type(copy_).__name__} ({other_kind})")
        batched._build_spaces()
    except (TypeError, ValueError):
        batched.close()
        raise
    batched.max_episode_steps = None
    MultiAgentBatchedEnv.__init__(batched, len(batched._agent_names), len(batched.envs),
                                  resolved, debug=True)
    names = list(batched._agent_names)
    batched.possible_agents = names
    batched.agent_observation_spaces = dict(zip(names, batched._own_observation_spaces,
                                                strict=True))
    batched.agent_action_spaces = dict(zip(names, batched._own_action_spaces, strict=True))
    if batched._obs_padding.mask is not None:
        batched.observation_mask = batched._obs_padding.mask.to(batched.device)


class BatchedToParallelEnv(ParallelEnv):
    """One copy of a multi-agent batched environment as a PettingZoo ``ParallelEnv``.

    ``envs.make_pettingzoo(env_id)`` and each task module's ``parallel_env(**kwargs)`` return
    this adapter; PettingZoo's ``parallel_to_aec`` of it is the AEC env. Dicts are keyed by the
    agent names of ``possible_agents``; observations are numpy arrays of the observation space's
    dtype, rewards Python floats, terminations and truncations Python bools. ``infos[agent]`` is
    ``{}``, or ``{"action_mask": int8 array}`` for tasks with action masks. Each agent has its
    own spaces (the batched env's ``agent_observation_spaces`` / ``agent_action_spaces``): a
    padded batch is unpadded (docs/architecture.md, "Heterogeneous agents"), so that an agent's
    observation, action and action mask are those of its own spaces. :meth:`state` is the
    global state of the copy, ``state_space`` its space.

    Agents leave ``agents`` when the episode ends (all of them at once) or when the batched
    environment's ``agent_mask`` drops them (their termination is then ``True``). The step that
    ends the episode returns the episode's last observations (the batched ``final_obs``).

    Every ``step`` is checked: one action per live agent, no action for unknown or departed
    agents, each of the right shape, dtype and range; a ``ValueError``/``TypeError`` names the
    agent.

    ``reset(seed=s)`` seeds the batched environment's generator. ``reset()`` without a seed
    continues from it; after an episode ended, it starts the episode that the batched
    environment's autoreset has already drawn, so the ``ParallelEnv`` and the batched
    environment with ``num_envs=1`` go through the same episodes for the same seed and actions.

    Args:
        batched: A :class:`~envs.core.MultiAgentBatchedEnv` with ``num_envs == 1``.

    Raises:
        TypeError: ``batched`` is not multi-agent.
        ValueError: ``batched.num_envs != 1``.
    """

    def __init__(self, batched: MultiAgentBatchedEnv):
        batched = _require_multi_agent(batched, "BatchedToParallelEnv")
        if batched.num_envs != 1:
            raise ValueError(
                f"BatchedToParallelEnv wraps one copy: build the batched env with num_envs=1, got "
                f"num_envs={batched.num_envs}"
            )
        self.batched = batched
        self.possible_agents = list(batched.possible_agents)
        self.agents: list[str] = []
        self.render_mode = None
        native = registered_gym_spec(batched)
        self.metadata = {
            "name": native.id if native is not None else type(batched).__name__,
            "render_modes": [],
            "is_parallelizable": True,
        }
        self.state_space = batched.state_space
        # One space object per agent, so that seeding one agent's space leaves the others alone.
        # Each agent's own (unpadded) spaces, the ones its observations and actions use here.
        self._observation_spaces = {
            agent: copy.deepcopy(space) for agent, space in batched.agent_observation_spaces.items()
        }
        self._action_spaces = {
            agent: copy.deepcopy(space) for agent, space in batched.agent_action_spaces.items()
        }
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._default = _default_action(batched.single_action_space)
        self._state: np.ndarray | None = None
        self._next_episode: tuple[Any, dict[str, Any]] | None = None

    def observation_space(self, agent: str) -> gym.Space:
        """The observation space of ``agent`` (the same object on every call)."""
        return self._observation_spaces[self._known(agent)]

    def action_space(self, agent: str) -> gym.Space:
        """The action space of ``agent`` (the same object on every call)."""
        return self._action_spaces[self._known(agent)]

    def _known(self, agent: Any) -> str:
        if agent not in self._index:
            raise ValueError(f"unknown agent {agent!r}; possible_agents: {self.possible_agents}")
        return agent

    # ------------------------------------------------------------------ conversions
    def _split(self, obs: Obs, agents: Sequence[str]) -> dict[str, Any]:
        space = self.batched.single_observation_space
        batch = to_numpy(self.batched.observation_space, obs)
        return {
            agent: unpad_observation(
                self._observation_spaces[agent], space,
                copy_at(space, copy_at(space, batch, 0), self._index[agent]))
            for agent in agents
        }

    def _infos(self, info: dict[str, Any], agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        if "action_mask" not in info:
            return {agent: {} for agent in agents}
        mask = info["action_mask"][0].cpu().numpy().astype(np.int8)
        space = self.batched.single_action_space
        return {
            agent: {"action_mask": unpad_action_mask(
                self._action_spaces[agent], space, mask[self._index[agent]]).copy()}
            for agent in agents
        }

    def _start(self, obs: Obs, info: dict[str, Any]) -> tuple[dict, dict]:
        alive = info["agent_mask"][0].cpu().numpy()
        self.agents = [a for a in self.possible_agents if alive[self._index[a]]]
        self._state = info["state"][0].cpu().numpy().copy()
        return self._split(obs, self.agents), self._infos(info, self.agents)

    # ------------------------------------------------------------------ the ParallelEnv API
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Start an episode; ``seed`` reseeds the batched generator (see the class docstring)."""
        if seed is None and not options and self._next_episode is not None:
            obs, info = self._next_episode
        else:
            obs, info = self.batched.reset(seed=seed, options=options)
        self._next_episode = None
        return self._start(obs, info)

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Step every live agent by its action (checked; see the class docstring)."""
        if not self.agents:
            raise RuntimeError("no agent is alive (the episode has ended): call reset() first")
        tensor = self._actions_to_tensor(actions)
        obs, reward, terminated, truncated, info = self.batched.step(tensor)
        live = self.agents
        ended = bool(terminated[0]) or bool(truncated[0])
        if ended:
            last_obs, alive = info["final_obs"], np.zeros(len(self.possible_agents), dtype=bool)
            self._state = info["final_state"][0].cpu().numpy().copy()
            self._next_episode = (obs, info)
        else:
            last_obs, alive = obs, info["agent_mask"][0].cpu().numpy()
            self._state = info["state"][0].cpu().numpy().copy()
        rewards = reward[0].cpu().numpy().astype(np.float64)
        gone = {agent for agent in live if not alive[self._index[agent]]}
        observations = self._split(last_obs, live)
        rewards_d = {agent: float(rewards[self._index[agent]]) for agent in live}
        trunc = bool(truncated[0]) and not bool(terminated[0])
        terminations = {agent: agent in gone and not trunc for agent in live}
        truncations = {agent: trunc for agent in live}
        infos = self._infos(info, live) if not ended else {agent: {} for agent in live}
        self.agents = [agent for agent in live if agent not in gone]
        return observations, rewards_d, terminations, truncations, infos

    def _actions_to_tensor(self, actions: Any) -> torch.Tensor:
        if not isinstance(actions, dict):
            raise TypeError(
                f"actions must be a dict from agent name to action, got {type(actions).__name__}"
            )
        for agent in actions:
            if agent not in self._index:
                raise ValueError(
                    f"action for unknown agent {agent!r}; possible_agents: {self.possible_agents}"
                )
            if agent not in self.agents:
                raise ValueError(
                    f"action for {agent}, which is no longer alive (terminated or truncated); "
                    f"send actions only for the live agents {self.agents}"
                )
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(
                f"no action for {', '.join(missing)}: ParallelEnv.step needs one action per live "
                f"agent {self.agents}"
            )
        space = self.batched.single_action_space
        rows = []
        for agent in self.possible_agents:
            if agent not in actions:
                rows.append(torch.as_tensor(self._default, dtype=torch_dtype(space)))
                continue
            own = self._action_spaces[agent]
            try:
                action = actions_to_tensor(own, actions[agent], (), torch.device("cpu"))
                if own != space:
                    if not own.contains(action.numpy().astype(own.dtype)):
                        raise ValueError(f"actions for {own} must lie in the space, got "
                                         f"{actions[agent]}")
                    action = torch.as_tensor(pad_action(own, space, action.numpy()),
                                             dtype=torch_dtype(space))
                rows.append(action)
            except (TypeError, ValueError) as err:
                raise type(err)(f"action for {agent}: {err}") from None
        tensor = torch.stack(rows)[None].to(self.batched.device)
        self.batched.check_actions(tensor)
        return tensor

    def state(self) -> np.ndarray:
        """The global state of the copy (after the last step or reset)."""
        if self._state is None:
            raise RuntimeError("call reset() before state()")
        return self._state.copy()

    def render(self) -> None:
        """Batched environments do not render (``render_mode`` is ``None``)."""
        return None

    def close(self) -> None:
        """Close the batched environment."""
        self.batched.close()

    def __str__(self) -> str:
        return self.metadata["name"]


class PettingZooToBatched(MultiAgentBatchedEnv):
    """Any third-party PettingZoo ``ParallelEnv`` as a multi-agent batched environment.

    The copies step one by one in numpy on the CPU; this adapter returns their results as
    tensors on ``device`` with the keys and meaning of
    :meth:`envs.core.MultiAgentBatchedEnv.step` (SAME_STEP autoreset per copy, ``final_obs``,
    ``state``/``final_state``, ``agent_mask``, and episode statistics counted on ``device`` by the
    native environments' bookkeeping, :meth:`~envs.core.BatchedEnv._finish_step`).

    - Agents: ``possible_agents`` of the wrapped env, fixed. An agent that is absent at a step
      (not yet there, or gone) sees zeros, has ``agent_mask`` False and gets reward 0; its
      action is dropped.
    - Heterogeneous agents (docs/architecture.md, "Heterogeneous agents"; mpe2's simple_tag,
      simple_speaker_listener, ...) are padded into one batch: ``agent_observation_spaces`` and
      ``agent_action_spaces`` are each agent's own (float64 boxes narrowed to float32);
      different observation spaces become one flat float32 Box of the largest flattened size,
      each observation zero-padded at the end (``observation_mask`` ``[A, obs_size]``);
      ``Discrete`` actions of different ``n`` become ``Discrete(max n)`` with an
      ``action_mask`` forbidding the actions an agent lacks (such an action is legal input and
      acts as the agent's first action, ``start``); 1-D Boxes of different sizes become the
      largest, each agent's action sliced and clipped to its own Box. ``groups`` and
      ``group_index`` say which agents share their spaces.
    - A copy's episode ends when its ``agents`` list becomes empty; it counts as truncated if
      any agent that left at that step was truncated and none terminated, else as terminated.
    - State: the wrapped env's ``state()`` when it has a ``state_space``; otherwise the
      concatenation of all agents' flattened (and padded) observations.
    - Observations: float64 boxes become float32, discrete spaces int64; a Dict observation
      with an ``"action_mask"`` key also gives ``info["action_mask"]`` and :meth:`action_masks`.

    ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` and ``self.generator`` with ``s``.
    Actions are always checked.

    Args:
        env_fns: One callable per copy, each returning a new ``pettingzoo.ParallelEnv``
            (``envs.make("mpe2.simple_spread_v3:parallel_env", num_envs=4)`` builds them).
        device: Where the returned tensors live.

    Raises:
        ValueError: ``env_fns`` is empty; copies disagree on ``possible_agents``.
        TypeError: an entry is not callable or returns no ``ParallelEnv``; a space is not one
            of Box, Discrete, MultiDiscrete, MultiBinary (or a Dict); agents have different
            Dict observation spaces, or action spaces that cannot be padded into one (Discrete
            beside Box, MultiBinary of different sizes, Boxes of more than one dimension).
    """

    description = "A third-party PettingZoo ParallelEnv, stepped in numpy on the CPU."

    def __init__(
        self, env_fns: Sequence[Callable[[], ParallelEnv]], device: str | torch.device = "cpu"
    ):
        open_copies(self, env_fns, ParallelEnv, device,
                    "for an AEC env, use envs.interop.turn_based.AECToBatched")
        # The actions each agent has, [A, n] (all true without action padding).
        self._static_action_mask = torch.ones(1, dtype=torch.bool, device=self.device) \
            if self._act_padding.mask is None else self._act_padding.mask.to(self.device)
        self._agents_alive = np.zeros((self.num_envs, self.num_agents), dtype=bool)

    def _build_spaces(self) -> None:
        first = self.envs[0]
        self._agent_names = list(first.possible_agents)
        for par_env in self.envs[1:]:
            if list(par_env.possible_agents) != self._agent_names:
                raise ValueError(
                    f"the copies disagree on possible_agents: {self._agent_names} and "
                    f"{list(par_env.possible_agents)}"
                )
        own_obs = [torch_space(first.observation_space(agent)) for agent in self._agent_names]
        own_act = [first.action_space(agent) for agent in self._agent_names]
        for space in own_act:
            torch_space(space)  # unsupported action spaces fail here
        self._own_observation_spaces, self._own_action_spaces = own_obs, own_act
        self._obs_padding = ObservationPadding(self._agent_names, own_obs)
        self._act_padding = ActionPadding(self._agent_names, own_act)
        obs_space = self._obs_padding.single_space
        self._gym_observation_space = obs_space
        self.single_observation_space = obs_space
        self.single_action_space = self._act_padding.single_space
        native_state = getattr(first, "state_space", None)
        self._native_state = isinstance(native_state, spaces.Box)
        if self._native_state:
            self.state_space = torch_space(native_state)
        else:
            flat = spaces.flatten_space(obs_space)
            self.state_space = torch_space(
                spaces.Box(
                    np.tile(flat.low, len(self._agent_names)),
                    np.tile(flat.high, len(self._agent_names)),
                    dtype=flat.dtype,
                )
            )
        self._obs_masks = isinstance(obs_space, spaces.Dict) and "action_mask" in obs_space.spaces
        self.has_action_mask = self._obs_masks or self._act_padding.has_mask

    # ------------------------------------------------------------------ conversions
    def _stack(self, per_copy: list[dict[str, Any]]) -> Any:
        """Numpy batch ``[N, A, ...]`` of agent-keyed observations; absent agents are zeros."""
        space = self._gym_observation_space
        if self._obs_padding.padded:
            pad, zero = self._obs_padding.pad, np.zeros(self._obs_padding.size, np.float32)
            return np.stack([
                np.stack([pad(j, obs[agent]) if agent in obs else zero
                          for j, agent in enumerate(self._agent_names)])
                for obs in per_copy
            ])
        zero = copy_at(space, gym.vector.utils.create_empty_array(space, 1), 0)
        items = [obs.get(agent, zero) for obs in per_copy for agent in self._agent_names]
        out = gym.vector.utils.create_empty_array(space, len(items))
        flat = gym.vector.utils.concatenate(space, items, out)
        reshape = (self.num_envs, self.num_agents)
        if isinstance(flat, dict):
            return {key: value.reshape(*reshape, *value.shape[1:]) for key, value in flat.items()}
        return flat.reshape(*reshape, *flat.shape[1:])

    def _state_of(self, par_env: ParallelEnv, obs: dict[str, Any]) -> np.ndarray:
        if self._native_state:
            return np.asarray(par_env.state(), dtype=np.float32)
        if self._obs_padding.padded:  # the padded observations, concatenated
            return self._stack([obs]).reshape(-1)
        space = self._gym_observation_space
        zero = np.zeros(spaces.flatdim(space), dtype=np.float32)
        return np.concatenate([
            spaces.flatten(space, obs[agent]).astype(np.float32) if agent in obs else zero
            for agent in self._agent_names
        ])

    def _tensor(self, value: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), dtype=dtype, device=self.device)

    def _observations(self, per_copy: list[dict[str, Any]]) -> Obs:
        return to_tensor(self.single_observation_space, self._stack(per_copy), self.device)

    def _alive(self) -> np.ndarray:
        return np.array(
            [[agent in par_env.agents for agent in self._agent_names] for par_env in self.envs],
            dtype=bool,
        )

    def _with_masks(self, info: dict[str, Any], obs: Obs) -> dict[str, Any]:
        info["acting"] = info["agent_mask"].clone()  # every present agent acts
        if self.has_action_mask:
            mask = self._static_action_mask
            if self._obs_masks:
                mask = obs["action_mask"].to(torch.bool) & mask
            self._last_action_mask = mask.expand(self.num_envs, *mask.shape[-2:]).clone()
            info["action_mask"] = self._last_action_mask
        return info

    def action_masks(self) -> torch.Tensor:
        """The action masks of the last observations, ``[N, A, n_actions]`` bool."""
        if not self.has_action_mask:
            raise AttributeError("the wrapped environment has no action_mask observations")
        return self._last_action_mask

    # ------------------------------------------------------------------ the batched API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy; ``seed`` seeds copy ``i`` with ``seed + i``."""
        seed = check_seed(seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        observations = []
        states = []
        for i, par_env in enumerate(self.envs):
            obs, _ = par_env.reset(seed=None if seed is None else seed + i, options=options)
            observations.append(obs)
            states.append(self._state_of(par_env, obs))
        self._agents_alive = self._alive()
        self._start_episodes()
        obs_t = self._observations(observations)
        info = {"state": self._tensor(np.stack(states)), "agent_mask": self._tensor(
            self._agents_alive, torch.bool)}
        check_finite(repr(self), "reset()", observations=obs_t, states=info["state"])
        return obs_t, self._with_masks(info, obs_t)

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy; copies whose agents are all gone are reset in the same call."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        self.check_actions(actions)
        self._step_calls += 1
        np_actions = actions.detach().cpu().numpy().astype(self.single_action_space.dtype)
        n, a = self.num_envs, self.num_agents
        rewards = np.zeros((n, a), dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        observations, final_observations, states, final_states = [], [], [], []
        for i, par_env in enumerate(self.envs):
            live = [agent for agent in self._agent_names if agent in par_env.agents]
            unpad = self._act_padding.unpad
            step_actions = {
                agent: unpad(j, np_actions[i, j])
                for j, agent in enumerate(self._agent_names) if agent in live
            }
            obs, reward, term, trunc, _ = par_env.step(step_actions)
            for j, agent in enumerate(self._agent_names):
                rewards[i, j] = float(reward.get(agent, 0.0))
            final_observations.append(obs)
            final_states.append(self._state_of(par_env, obs))
            if par_env.agents:
                obs = {agent: obs[agent] for agent in par_env.agents if agent in obs}
                states.append(final_states[-1])
            else:
                left = [agent for agent in live if term.get(agent) or trunc.get(agent)]
                any_term = any(term.get(agent, False) for agent in left)
                truncated[i] = not any_term and any(trunc.get(agent, False) for agent in left)
                terminated[i] = not truncated[i]
                obs, _ = par_env.reset()
                states.append(self._state_of(par_env, obs))
            observations.append(obs)
        self._agents_alive = self._alive()
        reward_t = self._tensor(rewards)
        terminated_t = self._tensor(terminated, torch.bool)
        truncated_t = self._tensor(truncated, torch.bool)
        info = self._finish_step(
            reward_t,
            terminated_t,
            truncated_t,
            self._observations(final_observations),
            {"final_state": self._tensor(np.stack(final_states))},
        )
        info["state"] = self._tensor(np.stack(states))
        info["agent_mask"] = self._tensor(self._agents_alive, torch.bool)
        obs_t = self._observations(observations)
        check_finite(repr(self), f"step() call {self._step_calls}", rewards=reward_t,
                     observations=obs_t, final_observations=info["final_obs"],
                     states=info["state"])
        return obs_t, reward_t, terminated_t, truncated_t, self._with_masks(info, obs_t)

    def close(self) -> None:
        """Close every copy."""
        for par_env in getattr(self, "envs", []):
            if isinstance(par_env, ParallelEnv):  # not what a bad factory returned instead
                par_env.close()

    def __repr__(self) -> str:
        name = type(self.envs[0].unwrapped).__name__
        metadata = getattr(self.envs[0], "metadata", None) or {}
        return (
            f"PettingZooToBatched({metadata.get('name', name)}, num_envs={self.num_envs}, "
            f"num_agents={self.num_agents}, device={self.device})"
        )
