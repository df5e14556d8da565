"""Umbra's batched environments and Gymnasium, both ways (numpy in, numpy out; actions checked).

From a native :class:`~envs.core.BatchedEnv`:

- :class:`BatchedToGymEnv`: one copy as a ``gymnasium.Env`` (what ``gymnasium.make("umbra/...")``
  returns); passes ``gymnasium.utils.env_checker.check_env`` and SB3's ``check_env``.
- :class:`BatchedToNumpyVecEnv`: the batch as a numpy ``gymnasium.vector.VectorEnv`` with
  SAME_STEP autoreset (what ``gymnasium.make_vec("umbra/...", vectorization_mode=
  "vector_entry_point")`` returns).

The other way round:

- :class:`GymnasiumToBatched`: any third-party ``gymnasium.Env`` as a batched environment with the
  same contract as the native ones (torch tensors, SAME_STEP autoreset, episode statistics). The
  copies step in numpy on the CPU; only their results move to ``device``. Graph observations are
  padded by :class:`~envs.interop.graph_padding.GraphPadding`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from envs.core import BatchedEnv, Obs, check_finite, check_num_envs, check_seed, resolve_device
from envs.interop._convert import (
    actions_to_tensor,
    check_single_agent,
    copy_at,
    to_numpy,
    to_tensor,
    torch_space,
)
from envs.interop.graph_padding import (
    DEFAULT_MAX_EDGES,
    DEFAULT_MAX_NODES,
    check_padding,
    with_graph_padding,
)
from envs.registry import registered_gym_spec

__all__ = ["BatchedToGymEnv", "BatchedToNumpyVecEnv", "GymnasiumToBatched"]


# ---------------------------------------------------------------------------- batched -> Env
class BatchedToGymEnv(gym.Env):
    """One copy of a batched environment as a single ``gymnasium.Env`` (numpy in, numpy out).

    ``gymnasium.make("umbra/CartPole-v0")`` returns this adapter (inside Gymnasium's usual
    ``OrderEnforcing`` wrapper). Observations are numpy arrays of the observation space's dtype,
    rewards Python floats, ``terminated``/``truncated`` Python bools.

    The batched environment resets a copy inside the step that ends it; this adapter hides that:
    the step that ends an episode returns the episode's last observation (``info["final_obs"]`` of
    the batched step) and ``info`` holds ``episode_return`` and ``episode_length``; the next
    :meth:`reset` starts a new episode. Stepping an ended episode without ``reset`` is an error.

    ``reset(seed=s)`` seeds both Gymnasium's ``np_random`` and the batched environment's
    generator, so the same seed gives the same trajectory as ``batched.reset(seed=s)``;
    ``reset()`` continues from the generator's current state.

    Args:
        batched: A :class:`~envs.core.BatchedEnv` with ``num_envs == 1``.

    Raises:
        TypeError: ``batched`` is not a :class:`~envs.core.BatchedEnv`.
        ValueError: ``batched.num_envs != 1``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, batched: BatchedEnv):
        check_single_agent(batched, "BatchedToGymEnv")
        if batched.num_envs != 1:
            raise ValueError(
                f"BatchedToGymEnv wraps one copy: build the batched env with num_envs=1, got "
                f"num_envs={batched.num_envs} (for a batch, use BatchedToNumpyVecEnv or "
                "BatchedToSB3VecEnv)"
            )
        self.batched = batched
        self.observation_space = batched.single_observation_space
        self.action_space = batched.single_action_space
        self.metadata = {"render_modes": []}
        self.render_mode = None
        self.spec = registered_gym_spec(batched)
        self._needs_reset = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start a new episode; ``seed`` reseeds ``np_random`` and the batched generator."""
        obs, _ = self.batched.reset(seed=seed, options=options)  # checks the seed's type
        super().reset(seed=None if seed is None else int(seed))
        self._needs_reset = False
        return copy_at(self.observation_space, to_numpy(self.observation_space, obs), 0), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the copy by ``action`` (checked: type, shape, dtype, range, NaN)."""
        if self._needs_reset:
            raise RuntimeError(
                "the episode has ended (or never started): call reset() before step()"
            )
        actions = actions_to_tensor(self.action_space, action, (), self.batched.device)[None]
        self.batched.check_actions(actions)
        obs, reward, terminated, truncated, batch_info = self.batched.step(actions)
        term, trunc = bool(terminated[0]), bool(truncated[0])
        info: dict[str, Any] = {}
        if term or trunc:
            obs = batch_info["final_obs"]
            info["episode_return"] = float(batch_info["episode_return"][0])
            info["episode_length"] = int(batch_info["episode_length"][0])
            self._needs_reset = True
        observation = copy_at(self.observation_space, to_numpy(self.observation_space, obs), 0)
        return observation, float(reward[0]), term, trunc, info

    def action_masks(self) -> np.ndarray:
        """Valid actions of the copy (sb3-contrib's MaskablePPO asks for them), as numpy bool.

        Raises:
            AttributeError: the environment has no action masks.
        """
        if not hasattr(self.batched, "action_masks"):
            raise AttributeError(f"{type(self.batched).__name__} has no action masks")
        return self.batched.action_masks()[0].cpu().numpy().astype(bool)

    def close(self) -> None:
        """Close the batched environment."""
        self.batched.close()


# ---------------------------------------------------------------------------- batched -> VectorEnv
class BatchedToNumpyVecEnv(gym.vector.VectorEnv):
    """A batched environment as a numpy ``gymnasium.vector.VectorEnv`` with SAME_STEP autoreset.

    ``gymnasium.make_vec("umbra/CartPole-v0", num_envs=8, vectorization_mode="vector_entry_point")``
    returns this adapter. Actions are numpy arrays of shape ``(num_envs, *action_shape)``, checked
    and moved to the batched environment's device; observations come back as numpy arrays,
    rewards as float64, ``terminated``/``truncated`` as bool arrays.

    ``info`` follows ``gymnasium.vector.SyncVectorEnv`` with ``autoreset_mode=SAME_STEP``: it is
    empty on steps where no copy ends; otherwise ``info["final_obs"]`` is an object array holding
    the last observation of each ended copy (``None`` elsewhere), ``info["final_info"]`` is ``{}``,
    and each carries its ``_``-prefixed mask. The episode statistics of the ended copies ride
    along as ``info["episode_return"]`` (float64) and ``info["episode_length"]`` (int64), zero
    elsewhere, with the masks ``_episode_return`` and ``_episode_length``; the ``episode`` key of
    ``gymnasium.wrappers.vector.RecordEpisodeStatistics`` stays free for that wrapper.

    Args:
        batched: Any :class:`~envs.core.BatchedEnv`.
    """

    def __init__(self, batched: BatchedEnv):
        check_single_agent(batched, "BatchedToNumpyVecEnv")
        self.batched = batched
        self.num_envs = batched.num_envs
        self.single_observation_space = batched.single_observation_space
        self.single_action_space = batched.single_action_space
        self.observation_space = batched.observation_space
        self.action_space = batched.action_space
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
        self.render_mode = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every copy; one int ``seed`` seeds the whole batch (``np_random`` included)."""
        if isinstance(seed, (list, tuple)):
            raise TypeError(
                "a batched environment has one generator for all copies: pass one int seed (or "
                f"None), got {seed!r}"
            )
        obs, _ = self.batched.reset(seed=seed, options=options)  # checks the seed's type
        super().reset(seed=None if seed is None else int(seed))
        return to_numpy(self.single_observation_space, obs), {}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy; copies that end are reset in the same call (SAME_STEP)."""
        tensor = actions_to_tensor(
            self.single_action_space, actions, (self.num_envs,), self.batched.device
        )
        self.batched.check_actions(tensor)
        obs, reward, terminated, truncated, batch_info = self.batched.step(tensor)
        terminated = terminated.cpu().numpy()
        truncated = truncated.cpu().numpy()
        done = terminated | truncated
        info: dict[str, Any] = {}
        if done.any():
            final = to_numpy(self.single_observation_space, batch_info["final_obs"])
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                final_obs[i] = copy_at(self.single_observation_space, final, i)
            episode_return = batch_info["episode_return"].cpu().numpy().astype(np.float64)
            episode_length = batch_info["episode_length"].cpu().numpy().astype(np.int64)
            info = {
                "final_obs": final_obs,
                "_final_obs": done.copy(),
                "final_info": {},
                "_final_info": done.copy(),
                "episode_return": np.where(done, episode_return, 0.0),
                "_episode_return": done.copy(),
                "episode_length": np.where(done, episode_length, 0),
                "_episode_length": done.copy(),
            }
        return (
            to_numpy(self.single_observation_space, obs),
            reward.detach().cpu().numpy().astype(np.float64),
            terminated,
            truncated,
            info,
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close the batched environment."""
        self.batched.close()


# ---------------------------------------------------------------------------- Env -> batched
class GymnasiumToBatched(BatchedEnv):
    """Any third-party ``gymnasium.Env`` as a batched environment (torch tensors, SAME_STEP).

    The copies step in numpy on the CPU inside ``gymnasium.vector.SyncVectorEnv`` with SAME_STEP
    autoreset; this adapter returns its results as tensors on ``device`` with exactly the keys and
    meaning of :meth:`envs.core.BatchedEnv.step`: ``info["final_obs"]`` is a full batch (the last
    observation where ``info["_final_obs"]``, the current one elsewhere), and
    ``episode_return``/``episode_length`` (valid where ``_episode``) are counted on ``device`` by
    the bookkeeping that native environments use (:meth:`~envs.core.BatchedEnv._finish_step`). The
    wrapped vector env's own ``info`` of the last call is kept in :attr:`last_vector_info`.

    Observations: float64 boxes become float32 (``single_observation_space`` says so), discrete
    spaces int64; Dicts of these are dicts of tensors. A ``gymnasium.spaces.Graph`` observation
    (or a Dict with one Graph entry) comes in the padded graph form
    (``x``, ``edge_index``, ``node_mask``, ``edge_mask``, and ``edge_attr`` when the Graph has an
    edge space; see docs/architecture.md, "Graph observations", and
    :class:`~envs.interop.graph_padding.GraphPadding`), padded to ``max_nodes``
    nodes and ``max_edges`` edges, so Umbra's policies pick their GNN encoder for it. A graph
    larger than that is a
    ``ValueError`` naming the option to raise. A ``Discrete(n)`` action that names one of the
    graph's nodes gets Umbra's node head (one logit per node from its GNN embedding) on its own
    when ``max_nodes = n``; under the default 64 slots, ask for it with ``encoder_kwargs=
    {"node_head": True}`` (the padding is not changed unasked: ``Discrete(n)`` may as well be a
    class or a direction, and graphs of more than ``n`` nodes would then fail). Actions are
    tensors on ``device`` of shape
    ``[num_envs, *action_shape]``, int64 for discrete spaces, floating for boxes, and are always
    checked (the numpy conversion synchronises anyway).

    ``reset(seed=s)`` seeds copy ``i`` with ``s + i`` (Gymnasium's convention) and
    ``self.generator`` with ``s``: the same seed gives the same trajectory.

    Args:
        env_fns: One callable per copy, each returning a new ``gymnasium.Env``
            (``envs.make("CartPole-v1", num_envs=4)`` builds them from an id).
        device: Where the returned tensors live (``"cpu"``, ``"cuda"``, ``"auto"``).
        max_nodes: Padded number of nodes of Graph observations (ignored without one).
            (default: ``64``)
        max_edges: Padded number of edges of Graph observations (ignored without one).
            (default: ``256``)

    Raises:
        ValueError: ``env_fns`` is empty, ``device`` is not available, or ``max_nodes`` /
            ``max_edges`` is not positive.
        TypeError: an entry of ``env_fns`` is not callable, or a space is not one of Box,
            Discrete, MultiDiscrete, MultiBinary, Graph (Box or Discrete nodes and edges) or a
            Dict of these (at most one Graph).
    """

    description = "A third-party Gymnasium environment, stepped in numpy on the CPU."

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        device: str | torch.device = "cpu",
        max_nodes: int = DEFAULT_MAX_NODES,
        max_edges: int = DEFAULT_MAX_EDGES,
    ):
        env_fns = list(env_fns)
        if not env_fns:
            raise ValueError("env_fns is empty: pass one callable per copy (num_envs >= 1)")
        for fn in env_fns:
            if not callable(fn):
                raise TypeError(f"env_fns must be callables returning a gymnasium.Env, got {fn!r}")
        num_envs = check_num_envs(len(env_fns))
        resolved = resolve_device(device)
        self.max_nodes = check_padding("max_nodes", max_nodes)
        self.max_edges = check_padding("max_edges", max_edges)
        env_fns = [with_graph_padding(fn, self.max_nodes, self.max_edges) for fn in env_fns]
        self.vector_env = gym.vector.SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
        try:
            self._gym_observation_space = self.vector_env.single_observation_space
            self.single_observation_space = torch_space(self._gym_observation_space)
            self.single_action_space = self.vector_env.single_action_space
            torch_space(self.single_action_space)  # unsupported action spaces fail here
        except TypeError:
            self.vector_env.close()
            raise
        first = self.vector_env.envs[0]
        self.spec = first.spec
        self.max_episode_steps = first.spec.max_episode_steps if first.spec else None
        #: The ``info`` that the wrapped ``SyncVectorEnv`` returned on the last reset/step.
        self.last_vector_info: dict[str, Any] = {}
        super().__init__(num_envs, resolved, debug=True)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Obs, dict]:
        """Reset every copy; ``seed`` seeds copy ``i`` with ``seed + i``."""
        seed = check_seed(seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        obs, self.last_vector_info = self.vector_env.reset(seed=seed, options=options)
        self._start_episodes()
        obs_t = to_tensor(self.single_observation_space, obs, self.device)
        check_finite(repr(self), "reset()", observations=obs_t)
        return obs_t, {}

    def step(
        self, actions: torch.Tensor
    ) -> tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Step every copy; copies that end are reset in the same call (SAME_STEP)."""
        if not self._has_reset:
            raise RuntimeError(f"{type(self).__name__}: call reset() before step()")
        self.check_actions(actions)
        self._step_calls += 1
        np_actions = actions.detach().cpu().numpy().astype(self.single_action_space.dtype)
        obs, reward, terminated, truncated, vinfo = self.vector_env.step(np_actions)
        self.last_vector_info = vinfo
        done = np.logical_or(terminated, truncated)
        space = self._gym_observation_space
        if done.any():
            items = [
                vinfo["final_obs"][i] if done[i] else copy_at(space, obs, i)
                for i in range(self.num_envs)
            ]
            final = gym.vector.utils.concatenate(
                space, items, gym.vector.utils.create_empty_array(space, self.num_envs)
            )
        else:
            final = obs
        reward_t = torch.as_tensor(np.asarray(reward, dtype=np.float32), device=self.device)
        terminated_t = torch.as_tensor(np.asarray(terminated, dtype=bool), device=self.device)
        truncated_t = torch.as_tensor(np.asarray(truncated, dtype=bool), device=self.device)
        final_t = to_tensor(self.single_observation_space, final, self.device)
        info = self._finish_step(reward_t, terminated_t, truncated_t, final_t)
        obs_t = to_tensor(self.single_observation_space, obs, self.device)
        check_finite(repr(self), f"step() call {self._step_calls}", rewards=reward_t,
                     observations=obs_t, final_observations=info["final_obs"])
        return obs_t, reward_t, terminated_t, truncated_t, info

    def close(self) -> None:
        """Close every copy."""
        self.vector_env.close()

    def __repr__(self) -> str:
        first = self.vector_env.envs[0].unwrapped
        name = self.spec.id if self.spec is not None else type(first).__name__
        return f"GymnasiumToBatched({name}, num_envs={self.num_envs}, device={self.device})"


