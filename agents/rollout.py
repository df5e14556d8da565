"""Rollout collection and storage on the device, GAE, and minibatches of sequences.

Storage is preallocated with self-describing shapes ``(num_steps, num_envs) + shape``. Minibatches
are always sequences ``[L, B, ...]``: feed-forward cores get ``L = 1`` over a full shuffle of every
sample; recurrent cores get whole sequences of ``L`` steps, split by environment copy, with the core
state recorded at each sequence start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

from agents.memory import State
from agents.policies import ActorCritic, tree_map, unsqueeze0
from envs.core import BatchedEnv, torch_dtype


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016, eq. 16).

    ``delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)`` and
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}``, where ``done_t`` says the episode
    ended at step ``t`` (terminated or truncated; truncated steps carry their bootstrap value
    ``gamma * V(final_obs)`` inside ``r_t`` already).

    Args:
        rewards, values, dones: ``[T, N]``.
        next_value: ``[N]``, the value of the observation after the last step.

    Returns:
        ``(advantages, returns)``, each ``[T, N]``, with ``returns = advantages + values``.
    """
    num_steps = rewards.shape[0]
    not_done = 1.0 - dones.float()
    next_values = torch.cat((values[1:], next_value.unsqueeze(0)), dim=0)
    deltas = rewards + gamma * next_values * not_done - values
    discounts = gamma * gae_lambda * not_done
    advantages = torch.empty_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(num_steps)):
        last = deltas[t] + discounts[t] * last
        advantages[t] = last
    return advantages, advantages + values


Bounds = tuple[torch.Tensor, torch.Tensor] | None


def action_bounds(space: gym.Space, device: torch.device) -> Bounds:
    """``(low, high)`` tensors of a Box action space on ``device``; None for other spaces."""
    if not isinstance(space, gym.spaces.Box):
        return None
    return torch.as_tensor(space.low, device=device), torch.as_tensor(space.high, device=device)


def clip_action(action: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """Clip a Gaussian sample into the action box (identity for discrete actions)."""
    if bounds is None:
        return action
    return torch.minimum(torch.maximum(action, bounds[0]), bounds[1])


def space_spec(space: gym.Space) -> tuple[Any, Any]:
    """``(shape, dtype)`` of one element of ``space``; dicts of them for a Dict space."""
    if isinstance(space, gym.spaces.Dict):
        specs = {key: space_spec(sub) for key, sub in space.spaces.items()}
        return {k: v[0] for k, v in specs.items()}, {k: v[1] for k, v in specs.items()}
    return tuple(space.shape), torch_dtype(space)


def _zeros(size: tuple[int, ...], shape: Any, dtype: Any, device: torch.device) -> Any:
    if isinstance(shape, dict):
        return {key: _zeros(size, shape[key], dtype[key], device) for key in shape}
    return torch.zeros(size + tuple(shape), dtype=dtype, device=device)


def _store(buffer: Any, t: int, value: Any) -> None:
    if isinstance(buffer, dict):
        for key in buffer:
            buffer[key][t] = value[key]
    else:
        buffer[t] = value


@dataclass
class Carry:
    """What one rollout hands to the next: the current observation, core state, episode starts
    (and the critic's own observation, for a centralised critic)."""

    obs: torch.Tensor
    state: State
    episode_start: torch.Tensor
    critic_obs: torch.Tensor | None = None
    policy_noise: torch.Tensor | None = None


@torch.no_grad()
def collect(
    policy: ActorCritic,
    env: BatchedEnv,
    buf: Rollout,
    carry: Carry,
    gamma: float,
    gae_lambda: float,
    reward_scale: float = 1.0,
    uncertainty_bonus: float = 0.0,
) -> Carry:
    """Fill ``buf`` with ``buf.num_steps`` steps of every copy, then its advantages and returns.

    Truncated episodes did not end: their last reward gets ``gamma * V(final_obs)`` added, the
    value computed with the core state of that step. An environment that gives the critic its own
    input (``info["critic_obs"]``, ``info["final_critic_obs"]``: MAPPO through
    :class:`agents.multiagent.AgentBatch`) has it stored and used. Box actions are clipped to
    the action space before the environment sees them; the unclipped sample is stored for the
    log-probability. With a Bayesian value head (``policy.bayesian_value``) the epistemic std of
    each step's value is stored in ``buf.value_std`` and ``uncertainty_bonus * std`` is added to
    the learning reward (an exploration bonus; logged returns stay the environment's).
    Nothing leaves the device.

    Returns:
        The carry for the next rollout.
    """
    obs, state, episode_start = carry.obs, carry.state, carry.episode_start
    critic_obs, noise = carry.critic_obs, carry.policy_noise
    bounds = action_bounds(env.single_action_space, env.device)
    for t in range(buf.num_steps):
        _store(buf.obs, t, obs)
        buf.episode_starts[t] = episode_start
        buf.store_state(t, state)
        if critic_obs is not None:
            buf.store_optional("critic_obs", t, critic_obs)
        if policy.thompson is not None:  # one weight sample per episode and copy
            fresh = policy.thompson.sample_noise(env.num_envs)
            noise = fresh if noise is None else torch.where(episode_start[:, None], fresh, noise)
            buf.store_optional("policy_noise", t, noise)
        action, logprob, value, state = policy.act(obs, state, episode_start, critic_obs, noise)
        bonus = 0.0
        if policy.bayesian_value:
            policy.critic.observe()  # the visited states: data of the next covariance fit
            value_std = policy.critic.last_std.squeeze(-1)
            buf.value_std[t] = value_std
            bonus = uncertainty_bonus * value_std
        obs, reward, terminated, truncated, info = env.step(clip_action(action, bounds))
        final_critic = info.get("final_critic_obs")
        final_value = policy.value(
            tree_map(unsqueeze0, info["final_obs"]), state,
            torch.zeros_like(episode_start).unsqueeze(0),
            None if final_critic is None else final_critic.unsqueeze(0),
        )[0]
        critic_obs = info.get("critic_obs")
        bootstrap = (truncated & ~terminated).float() * gamma * final_value
        episode_start = terminated | truncated
        buf.actions[t] = action
        buf.logprobs[t] = logprob
        buf.values[t] = value
        buf.rewards[t] = reward * reward_scale + bootstrap + bonus
        buf.dones[t] = episode_start
        buf.episode_return[t] = info["episode_return"]
        buf.episode_length[t] = info["episode_length"]
        buf.episode_done[t] = info["_episode"]
    next_value = policy.value(tree_map(unsqueeze0, obs), state, episode_start.unsqueeze(0),
                              None if critic_obs is None else critic_obs.unsqueeze(0))[0]
    buf.advantages, buf.returns = compute_gae(
        buf.rewards, buf.values, buf.dones, next_value, gamma, gae_lambda
    )
    return Carry(obs, state, episode_start, critic_obs, noise)


@dataclass
class Minibatch:
    """Sequences ``[L, B, ...]`` for one gradient step, and the core state at their starts."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episode_starts: torch.Tensor
    state: State
    critic_obs: torch.Tensor | None = None
    policy_noise: torch.Tensor | None = None


class Rollout:
    """Preallocated ``[num_steps, num_envs, ...]`` storage of one rollout.

    Args:
        num_steps: Steps per copy per rollout.
        num_envs: Copies of the environment.
        obs_shape, action_shape: Shapes of one observation / action (a dict of shapes for a
            Dict observation; :func:`space_spec` gives them).
        obs_dtype, action_dtype: Their torch dtypes (a dict for a Dict observation).
        device: Where everything lives.
        sequence_length: ``None`` for feed-forward cores: minibatches shuffle single steps.
            Otherwise minibatches hold whole chunks of this many steps per copy (it must divide
            ``num_steps``), and the core state is kept at every chunk start.
        group_size: Consecutive copies that must stay together in a minibatch, in order (the
            agents of one multi-agent copy when they communicate); it must divide ``num_envs``.
    """

    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...] | dict[str, tuple[int, ...]],
        action_shape: tuple[int, ...],
        obs_dtype: torch.dtype | dict[str, torch.dtype],
        action_dtype: torch.dtype,
        device: torch.device,
        sequence_length: int | None = None,
        group_size: int = 1,
    ):
        if sequence_length is not None and (sequence_length < 1 or num_steps % sequence_length):
            raise ValueError(f"sequence_length must divide num_steps = {num_steps}, got "
                             f"{sequence_length}")
        if group_size < 1 or num_envs % group_size:
            raise ValueError(f"group_size must divide num_envs = {num_envs}, got {group_size}")
        self.num_steps, self.num_envs = num_steps, num_envs
        self.sequence_length = sequence_length
        self.group_size = group_size
        size = (num_steps, num_envs)
        self.obs = _zeros(size, obs_shape, obs_dtype, device)
        self.actions = torch.zeros(size + action_shape, dtype=action_dtype, device=device)
        self.logprobs = torch.zeros(size, device=device)
        self.values = torch.zeros(size, device=device)
        self.rewards = torch.zeros(size, device=device)
        self.dones = torch.zeros(size, dtype=torch.bool, device=device)
        #: ``episode_starts[t]``: ``obs[t]`` is the first observation of an episode.
        self.episode_starts = torch.zeros(size, dtype=torch.bool, device=device)
        #: The critic's own input where it differs from ``obs`` (MAPPO), else None.
        self.critic_obs: torch.Tensor | None = None
        #: The weight-sample noise of a Thompson policy head at each step, else None.
        self.policy_noise: torch.Tensor | None = None
        #: Core state before the first step of each chunk: a tuple of ``[chunks, ...]``.
        self.states: tuple[torch.Tensor, ...] = ()
        self.advantages = torch.zeros(size, device=device)
        self.returns = torch.zeros(size, device=device)
        # Episode statistics from the environment, read once per rollout (one sync, not per step).
        self.episode_return = torch.zeros(size, device=device)
        self.episode_length = torch.zeros(size, dtype=torch.int64, device=device)
        self.episode_done = torch.zeros(size, dtype=torch.bool, device=device)
        #: Epistemic std of each step's value (filled with a Bayesian value head only).
        self.value_std = torch.zeros(size, device=device)

    def finished_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes that ended during this rollout (syncs once)."""
        return (self.episode_return[self.episode_done].tolist(),
                self.episode_length[self.episode_done].tolist())

    def store_optional(self, name: str, t: int, value: torch.Tensor) -> None:
        """Record ``value`` at step ``t`` in the optional field ``name`` (``critic_obs`` or
        ``policy_noise``), allocated on first use."""
        if getattr(self, name) is None:
            setattr(self, name, torch.zeros((self.num_steps,) + value.shape, dtype=value.dtype,
                                            device=value.device))
        getattr(self, name)[t] = value

    def store_state(self, t: int, state: State) -> None:
        """Record the core state used at step ``t`` if a chunk starts there."""
        if not state or self.sequence_length is None or t % self.sequence_length:
            return
        if not self.states:
            chunks = self.num_steps // self.sequence_length
            self.states = tuple(
                torch.zeros((chunks,) + s.shape, dtype=s.dtype, device=s.device) for s in state
            )
        for buffer, s in zip(self.states, state, strict=True):
            buffer[t // self.sequence_length] = s

    def _shuffled(self, count: int, generator: torch.Generator | None) -> torch.Tensor:
        """A random order of ``count`` rows that keeps each group of ``group_size`` together."""
        device = self.rewards.device
        size = self.group_size
        groups = torch.randperm(count // size, device=device, generator=generator)
        return (groups[:, None] * size + torch.arange(size, device=device)).flatten()

    def _split(self, order: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
        """``parts`` pieces of ``order``, cut between groups."""
        groups = order.view(-1, self.group_size).chunk(parts)
        return tuple(g.flatten() for g in groups)

    def minibatches(
        self, num_minibatches: int, generator: torch.Generator | None = None
    ) -> Iterator[Minibatch]:
        """Yield ``num_minibatches`` minibatches covering the rollout once, in random order.

        Without a ``sequence_length`` every step is shuffled on its own (``L = 1``). With one, the
        rollout is cut into chunks of that many steps per copy, the chunks are shuffled, and each
        minibatch holds whole chunks with the core state at their starts.
        """
        fields = {"obs": self.obs, "actions": self.actions, "logprobs": self.logprobs,
                  "values": self.values, "advantages": self.advantages, "returns": self.returns,
                  "episode_starts": self.episode_starts}
        if self.critic_obs is not None:
            fields["critic_obs"] = self.critic_obs
        if self.policy_noise is not None:
            fields["policy_noise"] = self.policy_noise
        if self.sequence_length is None:
            total = self.num_steps * self.num_envs
            order = self._shuffled(total, generator)
            flat = {k: tree_map(lambda f: f.reshape((total,) + f.shape[2:]), f)
                    for k, f in fields.items()}
            for index in self._split(order, num_minibatches):

                def pick(f: torch.Tensor, index: torch.Tensor = index) -> torch.Tensor:
                    return f[index].unsqueeze(0)

                yield Minibatch(**{k: tree_map(pick, f) for k, f in flat.items()}, state=())
            return
        length = self.sequence_length
        chunks = self.num_steps // length

        # [T, N, ...] -> [L, chunks * N, ...]: chunk c of copy n is column c * N + n.
        def to_chunks(f: torch.Tensor) -> torch.Tensor:
            return f.reshape((chunks, length, self.num_envs) + f.shape[2:]).transpose(0, 1).reshape(
                (length, chunks * self.num_envs) + f.shape[2:]
            )

        seqs = {k: tree_map(to_chunks, f) for k, f in fields.items()}
        # Stored states are [chunks, layers, N, ...] -> [layers, chunks * N, ...].
        starts = [s.transpose(0, 1).flatten(1, 2) for s in self.states]
        order = self._shuffled(chunks * self.num_envs, generator)
        for index in self._split(order, num_minibatches):
            state = tuple(s.index_select(1, index) for s in starts)

            def pick_seq(f: torch.Tensor, index: torch.Tensor = index) -> torch.Tensor:
                return f[:, index]

            yield Minibatch(**{k: tree_map(pick_seq, f) for k, f in seqs.items()}, state=state)


@torch.no_grad()
def evaluate(
    policy: ActorCritic, env: BatchedEnv, num_episodes: int, deterministic: bool = True,
    seed: int | None = None,
) -> list[float]:
    """Returns of the first ``num_episodes`` episodes that end in ``env`` under ``policy``.

    Steps every copy until enough episodes have ended (reading the done mask once per step; this
    is for evaluation, not the training hot loop).
    """
    obs, _ = env.reset(seed=seed)
    state = policy.initial_state(env.num_envs)
    episode_start = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    bounds = action_bounds(env.single_action_space, env.device)
    returns: list[float] = []
    while len(returns) < num_episodes:
        action, state = policy.predict(obs, state, episode_start, deterministic=deterministic)
        obs, _, terminated, truncated, info = env.step(clip_action(action, bounds))
        episode_start = terminated | truncated
        returns += info["episode_return"][info["_episode"]].tolist()
    return returns[:num_episodes]
