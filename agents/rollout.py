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

from agents.policies import ActorCritic, PolicyState, tree_map, unsqueeze0
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
    """What one rollout hands to the next: the current observation, policy state, episode starts,
    the critic's own observation (a centralised critic), the last step's policy noise (a
    Thompson head's per-episode weight sample) and the rows whose next action counts (the
    environment's ``info["acting"]``; None: every row)."""

    obs: torch.Tensor
    state: PolicyState
    episode_start: torch.Tensor
    critic_obs: torch.Tensor | None = None
    policy_noise: torch.Tensor | None = None
    acting: torch.Tensor | None = None


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

    Each step stores what :meth:`ActorCritic.act` returns (:class:`agents.policies.ActStep`): the
    action, its log-probability, the value and the inputs the policy hands back for the
    update. Truncated episodes did not end: their last reward gets
    ``gamma * V(final_obs)`` added (:func:`truncation_bootstrap`). Box actions are clipped to the
    action space before the environment sees them; the unclipped sample is stored for the
    log-probability. With a Bayesian value head the epistemic std of each step's value is stored
    in ``buf.value_std``, ``uncertainty_bonus * std`` is added to the learning reward (an
    exploration bonus; logged returns stay the environment's) and the visited states' critic
    features are handed to the head for its next covariance fit. Where the environment says which
    rows act (``info["acting"]``, multi-agent turns), it is stored in ``buf.acting`` for the loss.

    Returns:
        The carry for the next rollout.
    """
    obs, state, episode_start = carry.obs, carry.state, carry.episode_start
    critic_obs, noise, acting = carry.critic_obs, carry.policy_noise, carry.acting
    bounds = action_bounds(env.single_action_space, env.device)
    group = policy.communication.num_agents if policy.communication is not None else 1
    for t in range(buf.num_steps):
        _store(buf.obs, t, obs)
        buf.episode_starts[t] = episode_start
        buf.store_state(t, state)
        if acting is not None:
            buf.store_acting(t, acting)
        step = policy.act(obs, state, episode_start, critic_obs, noise)
        buf.store_inputs(t, step.inputs)
        bonus = 0.0
        if step.value_std is not None:
            buf.value_std[t] = step.value_std
            bonus = uncertainty_bonus * step.value_std
        if step.critic_features is not None:  # the visited states: data of the covariance fit
            policy.critic.observe(step.critic_features)
        obs, reward, terminated, truncated, info = env.step(clip_action(step.action, bounds))
        bootstrap = truncation_bootstrap(policy, info, step.state, terminated, truncated, gamma,
                                         group)
        state, noise = step.state, step.inputs.get("policy_noise")
        critic_obs, acting = info.get("critic_obs"), info.get("acting")
        episode_start = terminated | truncated
        buf.actions[t] = step.action
        buf.logprobs[t] = step.logprob
        buf.values[t] = step.value
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
    return Carry(obs, state, episode_start, critic_obs, noise, acting)


def _bootstrap_every_copy(device: torch.device) -> bool:
    """Whether :func:`truncation_bootstrap` runs the critic on every copy (accelerators)."""
    return device.type != "cpu"


def truncation_bootstrap(
    policy: ActorCritic,
    info: dict[str, Any],
    state: PolicyState,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    group: int = 1,
) -> torch.Tensor:
    """``gamma * V(final_obs)`` where a copy was truncated and not terminated, else 0 ``[N]``.

    A truncated episode did not end: its last reward is bootstrapped with the value of the
    observation it was cut at (``info["final_obs"]``, and ``info["final_critic_obs"]`` for a
    centralised critic), under the core state of that step. On the CPU the critic runs only on
    those copies (truncation is rare; finding them costs nothing); on an accelerator it runs on
    every copy, as one batched forward is cheaper than a synchronisation per step. ``group``
    keeps the agents of one multi-agent copy together (they communicate).

    Shapes:
        ``terminated``, ``truncated`` ``[N]`` -> ``[N]``.
    """
    needs = truncated & ~terminated
    final_obs, final_critic = info["final_obs"], info.get("final_critic_obs")
    if _bootstrap_every_copy(needs.device):
        start = torch.zeros_like(needs).unsqueeze(0)
        value = policy.value(tree_map(unsqueeze0, final_obs), state, start,
                             None if final_critic is None else final_critic.unsqueeze(0))[0]
        return needs.float() * gamma * value
    bootstrap = torch.zeros(needs.shape, device=needs.device)
    if not bool(needs.any()):
        return bootstrap
    if group > 1:  # a copy's agents are truncated together; keep whole groups anyway
        needs = needs.view(-1, group).any(dim=1).repeat_interleave(group)
    rows = needs.nonzero()[:, 0]

    def pick(f: torch.Tensor) -> torch.Tensor:
        return f.index_select(0, rows).unsqueeze(0)

    value = policy.value(
        tree_map(pick, final_obs), state.map(lambda s: s.index_select(1, rows)),
        torch.zeros((1, rows.numel()), dtype=torch.bool, device=needs.device),
        None if final_critic is None else pick(final_critic),
    )[0]
    keep = (truncated & ~terminated).index_select(0, rows).float()
    return bootstrap.index_put_((rows,), keep * gamma * value)


@dataclass
class Minibatch:
    """Sequences ``[L, B, ...]`` for one gradient step, and the policy state at their starts;
    ``inputs`` holds the stored :attr:`ActStep.inputs <agents.policies.ActStep.inputs>`;
    ``acting`` the rows whose action counts (None: all; see :attr:`Rollout.acting`)."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episode_starts: torch.Tensor
    state: PolicyState
    inputs: dict[str, torch.Tensor]
    acting: torch.Tensor | None = None


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
        #: The inputs the policy hands back at each step (:attr:`ActStep.inputs
        #: <agents.policies.ActStep.inputs>`) by name, ``[T, N, ...]`` each, allocated on first use.
        self.inputs: dict[str, torch.Tensor] = {}
        #: Policy state before the first step of each chunk: ``[chunks, ...]`` per tensor.
        self.states: PolicyState | None = None
        self.advantages = torch.zeros(size, device=device)
        self.returns = torch.zeros(size, device=device)
        # Episode statistics from the environment, read once per rollout (one sync, not per step).
        self.episode_return = torch.zeros(size, device=device)
        self.episode_length = torch.zeros(size, dtype=torch.int64, device=device)
        self.episode_done = torch.zeros(size, dtype=torch.bool, device=device)
        #: Epistemic std of each step's value (filled with a Bayesian value head only).
        self.value_std = torch.zeros(size, device=device)
        #: ``acting[t]``: the rows whose action at step ``t`` counts in the policy loss (agents
        #: waiting for their turn or absent do not); None (every row) until an environment says.
        self.acting: torch.Tensor | None = None

    def finished_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes that ended during this rollout (syncs once)."""
        return (self.episode_return[self.episode_done].tolist(),
                self.episode_length[self.episode_done].tolist())

    def store_inputs(self, t: int, inputs: dict[str, torch.Tensor]) -> None:
        """Record the inputs the policy handed back at step ``t``, each ``[N, ...]``."""
        for name, value in inputs.items():
            if name not in self.inputs:
                self.inputs[name] = torch.zeros((self.num_steps,) + value.shape,
                                                dtype=value.dtype, device=value.device)
            self.inputs[name][t] = value

    def store_acting(self, t: int, acting: torch.Tensor) -> None:
        """Record which rows act at step ``t`` (``[N]`` bool)."""
        if self.acting is None:
            self.acting = torch.ones(self.rewards.shape, dtype=torch.bool, device=acting.device)
        self.acting[t] = acting

    def store_state(self, t: int, state: PolicyState) -> None:
        """Record the policy state used at step ``t`` if a chunk starts there."""
        if self.sequence_length is None or t % self.sequence_length:
            return
        if self.states is None:
            chunks = self.num_steps // self.sequence_length
            self.states = state.map(
                lambda s: torch.zeros((chunks,) + s.shape, dtype=s.dtype, device=s.device)
            )
        chunk = t // self.sequence_length
        for buffer, s in zip(self.states.actor + self.states.critic, state.actor + state.critic,
                             strict=True):
            buffer[chunk] = s

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
                  "episode_starts": self.episode_starts, "inputs": self.inputs}
        if self.acting is not None:
            fields["acting"] = self.acting
        if self.sequence_length is None:
            total = self.num_steps * self.num_envs
            order = self._shuffled(total, generator)
            flat = {k: tree_map(lambda f: f.reshape((total,) + f.shape[2:]), f)
                    for k, f in fields.items()}
            for index in self._split(order, num_minibatches):

                def pick(f: torch.Tensor, index: torch.Tensor = index) -> torch.Tensor:
                    return f[index].unsqueeze(0)

                yield Minibatch(**{k: tree_map(pick, f) for k, f in flat.items()},
                                state=PolicyState(()))
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
        starts = (self.states or PolicyState(())).map(lambda s: s.transpose(0, 1).flatten(1, 2))
        order = self._shuffled(chunks * self.num_envs, generator)
        for index in self._split(order, num_minibatches):
            state = starts.map(lambda s, index=index: s.index_select(1, index))

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
