"""Proximal Policy Optimisation: the one loop for every policy.

Its design: docs/architecture.md, "The PPO loop".

Read top to bottom: the config, then ``train``: environment -> policy -> rollout -> GAE -> update
-> logs and checkpoints. The pieces it imports are tested on their own: GAE and minibatches in
``agents/rollout.py``, the policy in ``agents/policies.py``, the cores in ``agents/memory.py``.

>>> from agents.ppo import PPOConfig, train
>>> result = train(PPOConfig(env_id="umbra/CartPole-v0", total_steps=50_000), logdir="runs/demo")
>>> result.metrics["final_return"]  # doctest: +SKIP

Reference: Schulman et al., "Proximal Policy Optimization Algorithms", 2017; the implementation
details follow Huang et al., "The 37 Implementation Details of PPO", 2022.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import pickle
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

import envs
from agents.configs import Config
from agents.loss import kl_exceeded, ppo_loss
from agents.memory import CORES
from agents.multiagent import AgentBatch
from agents.policies import VALUE_HEADS, ActorCritic, tree_map
from agents.rollout import Carry, Rollout, collect, space_spec
from envs.core import check_finite, resolve_device, torch_dtype

CHECKPOINT = "checkpoints/latest.pt"


@dataclass(frozen=True)
class PPOConfig(Config):
    """Everything that defines a PPO run. Logged with the run as ``config.json``."""

    env_id: str = "umbra/CartPole-v0"
    """Native id, Gymnasium id or ``package.module:ClassName`` (see ``envs.make``)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment."""
    num_envs: int = 64
    """Copies of the environment stepped together."""
    num_steps: int = 32
    """Steps per copy per rollout; one rollout is ``num_envs * num_steps`` samples."""
    total_steps: int = 100_000
    """Environment steps (over all copies) to train for, rounded up to whole rollouts."""
    seed: int = 0
    """Seeds the network, the sampling and the environment."""
    device: str = "auto"
    """``auto`` (CUDA if available), ``cpu`` or ``cuda``."""
    core: str = "mlp"
    """Memory core, a key of ``agents.memory.CORES``."""
    hidden_size: int = 64
    """Width of the encoder and the core."""
    core_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra arguments of the core (layers, heads, window...)."""
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    """Options of the graph encoder for graph observations: ``model`` (gcn, gat, gatv2, gin,
    sage, or ``flat``: an MLP over the flattened padding, the no-GNN baseline), ``num_layers``,
    ``readout`` (mean, max, attention), and ``node_head`` (default: on wherever the action is a
    node slot, ``Discrete(N_max)``; true also for a ``Discrete(n)`` action naming one of the
    first ``n`` of more slots, e.g. a third-party graph env under the adapter's 64; false scores
    the actions from the graph embedding alone; see ``agents.policies.ActorCritic``)."""
    communication: str | dict[str, Any] | None = None
    """Multi-agent only: message passing between the agents of each copy before the memory core
    (``graphs.AgentCommunication``); None: no communication. A GNN model name (gcn, gat, gatv2,
    gin, sage) over the complete graph of the agents, or a dict: ``model``, ``num_layers``,
    ``graph`` (``complete``, ``knn`` with ``k``, ``radius`` with ``radius``) and the position
    source ``position_slice`` (``[start, stop]`` into the agent's own observation, negative
    bounds from its end; default: the task's ``agent_position_slice``) or ``position_key``,
    e.g. ``{"model": "gcn", "graph": "knn", "k": 2}``."""
    shared_trunk: bool = False
    """One encoder and core for policy and value; False gives the value head its own."""
    centralised_critic: bool = False
    """Multi-agent only: the critic sees the global state (MAPPO) instead of the agent's own
    observation (IPPO). Agents see their one-hot id (and their group's, in a mixed team)."""
    group_policies: bool = True
    """Multi-agent only, where agents differ (two or more groups, see ``groups``): one policy per
    group (``agents.groups.GroupedActorCritic``; each learns from its own agents only). False:
    one policy shared by every agent, over observations padded to the largest, with the agent's
    group as input and the actions a group lacks masked. One group: one shared policy either
    way."""
    groups: dict[str, list[str]] | None = None
    """Multi-agent only: ``{"name": [agent names]}`` holding every agent once; None: the
    environment's groups (agents with identical observation and action spaces)."""
    balance_groups: bool = True
    """Multi-agent, a mixed team with one shared policy (``group_policies=False``): the loss
    weighs every group the same (each term is the mean over groups of the group's mean) and
    normalises advantages per group, so that the largest group (three predators to one prey)
    does not drown the others. False: every sample weighs the same. No effect with one policy
    per group (each learns from its own samples, advantages normalised per group) or one group."""
    learning_rate: float = 2.5e-3
    """Adam step size at the start."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    anneal_clip: bool = False
    """Decay ``clip_coef`` linearly to 0 over the run (as RL-Zoo's ``lin_0.2``)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's lambda (Schulman et al., 2016)."""
    num_minibatches: int = 4
    """Minibatches per epoch."""
    update_epochs: int = 4
    """Passes over each rollout."""
    clip_coef: float = 0.2
    """PPO's ratio clipping epsilon."""
    clip_vloss: bool = True
    """Clip the value update around the rollout's values, as the PPO paper's code does."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds this; None: never."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    reward_scale: float = 1.0
    """Multiply rewards by this before learning (logged returns stay unscaled)."""
    sequence_length: int | None = None
    """Truncated back-propagation length for recurrent cores; None: the whole rollout."""
    checkpoint_every: int = 10
    """Save a checkpoint every this many updates (and always at the end); 0: only at the end."""
    stop_at_return: float | None = None
    """Stop once the mean return of the last 20 finished episodes reaches this."""
    value_head: str = "linear"
    """``linear`` or ``bayes``: a Pyro Bayesian linear value head (``agents/bayesian.py``) whose
    epistemic std is logged as ``uncertainty/value_std``; its loss is the ELBO."""
    thompson_policy: bool = False
    """Thompson-style exploration: the policy head's last layer is Bayesian and each copy acts
    with one weight sample per episode (``agents/bayesian.py``); evaluation uses the mean."""
    uncertainty_bonus: float = 0.0
    """With ``value_head="bayes"``: add this times the value's epistemic std to each learning
    reward, an exploration bonus for states the critic is unsure about. 0: none."""

    def __post_init__(self) -> None:
        super().__post_init__()  # the fields' types (agents/configs.py)
        positive = ("num_envs", "num_steps", "total_steps", "hidden_size", "num_minibatches",
                    "update_epochs")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PPOConfig.{name} must be a positive int, got {value!r}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs * num_steps = {self.batch_size} must be divisible by num_minibatches "
                f"= {self.num_minibatches}"
            )
        if not 0.0 < self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"need 0 < gamma <= 1 and 0 <= gae_lambda <= 1, got {self.gamma}, "
                             f"{self.gae_lambda}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.core not in CORES:
            close = difflib.get_close_matches(self.core, list(CORES), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown core {self.core!r}{hint} Expected one of {sorted(CORES)}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.stop_at_return is not None and not math.isfinite(self.stop_at_return):
            raise ValueError("PPOConfig.stop_at_return must be a finite number or None, got "
                             f"{self.stop_at_return}")
        if self.communication is not None:
            from graphs.communication import communication_options

            communication_options(self.communication)  # a ValueError naming the bad option
        if self.value_head not in VALUE_HEADS:
            raise ValueError(f"value_head must be one of {VALUE_HEADS}, got {self.value_head!r}")
        if self.uncertainty_bonus < 0 or (self.uncertainty_bonus and self.value_head != "bayes"):
            raise ValueError("uncertainty_bonus must be >= 0 and needs value_head='bayes' (the "
                             f"bonus is the Bayesian value head's std); got "
                             f"{self.uncertainty_bonus} with value_head={self.value_head!r}")
        if self.sequence_length is not None and self.num_steps % self.sequence_length:
            raise ValueError(f"num_steps = {self.num_steps} must be a multiple of "
                             f"sequence_length = {self.sequence_length}")

    @property
    def batch_size(self) -> int:
        """Samples per rollout."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Rollout-and-update iterations needed to reach ``total_steps``."""
        return math.ceil(self.total_steps / self.batch_size)




@dataclass
class TrainResult:
    """What :func:`train` returns: the trained policy and the run's final metrics."""

    policy: ActorCritic
    metrics: dict[str, Any]


#: Fields that a resumed run may change (everything else must match the checkpoint).
RESUMABLE_CHANGES = ("total_steps", "checkpoint_every", "stop_at_return", "device")


def train(
    config: PPOConfig,
    logdir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    episodes: Callable[[int, list[float]], None] | None = None,
) -> TrainResult:
    """Train a PPO agent.

    Args:
        config: The run's configuration.
        logdir: Where TensorBoard events, ``config.json`` and ``checkpoints/`` go; None logs
            nothing. A fresh run refuses a logdir that already holds a checkpoint.
        resume: Continue the run saved in ``logdir`` (same global step; TensorBoard continues
            without duplicate points). Without a checkpoint there, start fresh.
        progress: Called with the global step after every update.
        episodes: Called after every update with the global step and the returns of the
            episodes finished in it (the points of ``charts/episode_return``); hyperparameter
            search reads its intermediate values here (``benchmarks/tune.py``).

    Returns:
        The policy and metrics: ``steps, wall_time_s, sps, final_return`` (mean of the last 100
        finished episodes, None if none finished), ``episodes``, and with ``stop_at_return``:
        ``threshold_reached, threshold_steps, threshold_time_s``.

    Raises:
        ValueError: the environment returned NaN or inf observations or rewards, or was given
            an invalid action.
        FloatingPointError: a loss became NaN or infinite; the last good checkpoint is kept.
    """
    device = resolve_device(config.device)
    logdir = Path(logdir) if logdir is not None else None
    checkpoint_path = logdir / CHECKPOINT if logdir is not None else None
    saved = _load_checkpoint(checkpoint_path, config, resume)

    # ---------------------------------------------------------------- environment, policy, storage
    torch.manual_seed(config.seed)
    env = make_env(config, device)
    policy = make_policy(config, env).to(device)
    optimizer = torch.optim.Adam(_param_groups(policy), lr=config.learning_rate, eps=1e-5,
                                 fused=True)
    buf = make_rollout(config, env, policy, device)
    run = _RunState.restore(saved, policy, optimizer, device) if saved else _RunState()
    writer = _open_writer(logdir, config, resumed_at=run.global_step if saved else None)

    # A resumed run reseeds the environment per update so that it does not replay the start.
    obs, info = env.reset(seed=config.seed + 7919 * run.update)
    carry = Carry(obs, policy.initial_state(env.num_envs),
                  torch.ones(env.num_envs, dtype=torch.bool, device=device), info.get("critic_obs"),
                  acting=info.get("acting"))
    uncertainty = _UncertaintyLog(policy, env, device, config.seed) if policy.bayesian_value \
        else None
    group_history: dict[str, deque[float]] = {}
    row_groups = _shared_row_groups(config, env)
    run.start_clock()

    for update in range(run.update, config.num_updates):
        frac = 1.0 - update / config.num_updates
        lr = config.learning_rate * frac if config.anneal_lr else config.learning_rate
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_multiplier"]
        clip = config.clip_coef * frac if config.anneal_clip else config.clip_coef

        # ------------------------------------------------------------ rollout
        policy.eval()
        carry = collect(policy, env, buf, carry, config.gamma, config.gae_lambda,
                        config.reward_scale, config.uncertainty_bonus)
        # Bad input is caught before it is learned from (one sync per rollout on a GPU).
        env.check_deferred()
        _check_rollout_finite(buf, env, run.global_step)
        run.global_step += config.batch_size

        # ------------------------------------------------------------ update
        policy.train()
        if policy.bayesian_value:  # the value head's posterior covariance, from the rollout
            policy.critic.fit()
        stats = update_policy(policy, optimizer, buf, config, clip, row_groups=row_groups)

        # ------------------------------------------------------------ bookkeeping (one sync)
        _stop_if_nonfinite(stats, update, run.global_step, checkpoint_path)
        finished, finished_lengths = buf.finished_episodes()
        run.add_episodes(finished)
        wall = run.elapsed()
        scalars = uncertainty.measure(buf) if uncertainty is not None else {}
        scalars.update(_group_returns(env, group_history))
        if writer is not None:
            _log_update(writer, run.global_step, stats, finished, finished_lengths, wall, lr,
                        scalars)
        reached = threshold_reached(run.recent_returns, config.stop_at_return)
        if reached:
            run.threshold_steps, run.threshold_time = run.global_step, wall
        last = update + 1 == config.num_updates or reached
        if checkpoint_path is not None and (
            last or (config.checkpoint_every and (update + 1) % config.checkpoint_every == 0)
        ):
            run.update = update + 1
            _save_checkpoint(checkpoint_path, run.checkpoint(config, policy, optimizer, wall,
                                                             device))
        if progress is not None:
            progress(run.global_step)
        if episodes is not None:
            episodes(run.global_step, finished)
        if reached:
            break

    wall = run.elapsed()
    metrics: dict[str, Any] = {
        "steps": run.global_step,
        "wall_time_s": wall,
        "sps": run.global_step / max(wall, 1e-9),
        "final_return": _mean(list(run.recent_returns)) if run.recent_returns else None,
        "episodes": run.episodes,
    }
    if uncertainty is not None:
        metrics.update(uncertainty.summary())
    if group_history:
        metrics["group_returns"] = {name: _mean(list(recent))
                                    for name, recent in group_history.items()}
    if config.stop_at_return is not None:
        metrics.update(threshold_reached=run.threshold_steps is not None,
                       threshold_steps=run.threshold_steps, threshold_time_s=run.threshold_time)
    if writer is not None:
        writer.close()
    env.close()
    return TrainResult(policy=policy, metrics=metrics)


# ---------------------------------------------------------------------------------- the pieces
def make_env(config: PPOConfig, device: torch.device) -> Any:
    """The run's batched environment; a multi-agent task folded into ``N * A`` copies
    (:class:`agents.multiagent.AgentBatch`: IPPO, or MAPPO with ``centralised_critic``)."""
    env = envs.make(config.env_id, num_envs=config.num_envs, device=device, **config.env_kwargs)
    if env.kind == "multi-agent":
        return AgentBatch(env, centralised_critic=config.centralised_critic, groups=config.groups)
    for option in ("centralised_critic", "groups"):
        if getattr(config, option):
            raise ValueError(f"{option} needs a multi-agent environment; {config.env_id} is "
                             f"{env.kind}")
    return env


def make_policy(config: PPOConfig, env: Any) -> ActorCritic:
    """The policy that ``config`` describes for ``env``'s spaces (on the CPU)."""
    encoder_kwargs = dict(config.encoder_kwargs)
    node_head = encoder_kwargs.pop("node_head", None)  # the config keeps graph options together
    if isinstance(env, AgentBatch) and len(env.groups) > 1 and config.group_policies:
        from agents.groups import GroupedActorCritic

        return GroupedActorCritic(
            env.single_observation_space, env.single_action_space, env.groups, env.num_agents,
            env.id_size, core=config.core, hidden_size=config.hidden_size,
            core_kwargs=config.core_kwargs, shared_trunk=config.shared_trunk,
            critic_observation_space=env.critic_observation_space,
            communication=_communication(config, env), value_head=config.value_head,
            thompson_policy=config.thompson_policy,
        )
    return ActorCritic(
        env.single_observation_space, env.single_action_space, config.core,
        hidden_size=config.hidden_size, core_kwargs=config.core_kwargs,
        shared_trunk=config.shared_trunk,
        critic_observation_space=getattr(env, "critic_observation_space", None),
        encoder_kwargs=encoder_kwargs, node_head=node_head,
        communication=_communication(config, env), value_head=config.value_head,
        thompson_policy=config.thompson_policy,
    )


def make_rollout(config: PPOConfig, env: Any, policy: ActorCritic,
                 device: torch.device) -> Rollout:
    """Rollout storage for ``policy`` on ``env``: feed-forward cores learn from shuffled single
    steps, recurrent ones from whole sequences of ``sequence_length`` (default: the rollout)."""
    sequence_length = None
    if policy.core.recurrent:
        sequence_length = config.sequence_length or config.num_steps
    obs_shape, obs_dtype = space_spec(env.single_observation_space)
    act_space = env.single_action_space
    return Rollout(config.num_steps, env.num_envs, obs_shape, act_space.shape, obs_dtype,
                   torch_dtype(act_space), device, sequence_length,
                   group_size=policy.communication.num_agents if policy.communication else 1)


class UpdateStats(NamedTuple):
    """What one update did, on the device (read at the bookkeeping's one sync).

    Attributes:
        sums: ``[6]``: policy loss, value loss, entropy, approximate KL, clip fraction and the
            number of minibatches, summed over the minibatches.
        nonfinite: Whether any minibatch's loss was NaN or infinite.
    """

    sums: torch.Tensor
    nonfinite: torch.Tensor


def update_policy(policy: ActorCritic, optimizer: torch.optim.Optimizer, buf: Rollout,
                  config: PPOConfig, clip: float,
                  row_groups: Callable[[Any], torch.Tensor] | None = None) -> UpdateStats:
    """``update_epochs`` passes of minibatch gradient steps on ``buf`` (:func:`ppo_loss`),
    stopping early once an epoch's largest approximate KL exceeds ``target_kl``.

    ``row_groups`` (observations -> each sample's group) marks a mixed team's shared policy
    with ``balance_groups``: its loss is balanced over the groups (see
    :attr:`PPOConfig.balance_groups`)."""
    device = buf.rewards.device
    sums = torch.zeros(6, device=device)
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    for _epoch in range(config.update_epochs):
        epoch_kl = torch.zeros((), device=device)
        for mb in buf.minibatches(config.num_minibatches):
            new = policy.evaluate(mb.obs, mb.actions, mb.state, mb.episode_starts, mb.inputs,
                                  num_data=config.batch_size)
            if row_groups is not None:
                new = new._replace(groups=row_groups(mb.obs))
            terms = ppo_loss(new, mb.logprobs, mb.values, mb.advantages, mb.returns, clip=clip,
                             vf_coef=config.vf_coef, ent_coef=config.ent_coef,
                             norm_adv=config.norm_adv, clip_vloss=config.clip_vloss,
                             acting=mb.acting, balance_groups=row_groups is not None)
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm, foreach=True)
            optimizer.step()
            with torch.no_grad():
                nonfinite |= ~torch.isfinite(terms.loss)
                sums += torch.stack((terms.policy_loss, terms.value_loss, terms.entropy,
                                     terms.approx_kl, terms.clipfrac,
                                     torch.ones((), device=device)))
                epoch_kl = torch.maximum(epoch_kl, terms.approx_kl)
        if config.target_kl is not None and kl_exceeded(epoch_kl.item(), config.target_kl):
            break
    return UpdateStats(sums, nonfinite)


def threshold_reached(recent_returns: Sequence[float], stop_at_return: float | None) -> bool:
    """The stop rule: the mean return of the last 20 finished episodes reached
    ``stop_at_return`` (never when it is None or fewer than 20 episodes finished)."""
    if stop_at_return is None or len(recent_returns) < 20:
        return False
    return _mean(list(recent_returns)[-20:]) >= stop_at_return


@dataclass
class _RunState:
    """Where a run stands: what a checkpoint saves besides the networks."""

    update: int = 0
    global_step: int = 0
    elapsed_before: float = 0.0
    episodes: int = 0
    recent_returns: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    threshold_steps: int | None = None
    threshold_time: float | None = None
    started: float = 0.0

    @classmethod
    def restore(cls, saved: dict[str, Any], policy: ActorCritic,
                optimizer: torch.optim.Optimizer, device: torch.device) -> _RunState:
        """Load a checkpoint's networks, optimiser and random state; its run state."""
        policy.load_state_dict(saved["policy"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        run = cls(update=saved["update"], global_step=saved["global_step"],
                  elapsed_before=saved["elapsed_s"], episodes=saved["episodes"])
        run.recent_returns.extend(saved["recent_returns"])
        return run

    def start_clock(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds, over every resumed part of the run."""
        return self.elapsed_before + time.perf_counter() - self.started

    def add_episodes(self, returns: list[float]) -> None:
        self.recent_returns.extend(returns)
        self.episodes += len(returns)

    def checkpoint(self, config: PPOConfig, policy: ActorCritic,
                   optimizer: torch.optim.Optimizer, wall: float,
                   device: torch.device) -> dict[str, Any]:
        """What :func:`_save_checkpoint` writes (every key of :data:`_CHECKPOINT_KEYS`)."""
        return {
            "config": config.to_dict(), "policy": policy.state_dict(),
            "optimizer": optimizer.state_dict(), "update": self.update,
            "global_step": self.global_step, "elapsed_s": wall, "episodes": self.episodes,
            "recent_returns": list(self.recent_returns), "torch_rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
        }


def _open_writer(logdir: Path | None, config: PPOConfig, resumed_at: int | None) -> Any:
    """A TensorBoard writer for ``logdir`` (None without one); writes ``config.json``."""
    if logdir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    logdir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_dict(), indent=2)
    (logdir / "config.json").write_text(text + "\n")
    # Points logged after the checkpoint (by an interrupted run) are purged by TensorBoard.
    writer = SummaryWriter(str(logdir), purge_step=None if resumed_at is None else resumed_at + 1)
    if resumed_at is None:
        writer.add_text("config", "```\n" + text + "\n```")
    return writer


def _stop_if_nonfinite(stats: UpdateStats, update: int, global_step: int,
                       checkpoint_path: Path | None) -> None:
    """``FloatingPointError`` if the update's loss was NaN or infinite (one sync)."""
    if not bool(stats.nonfinite):
        return
    kept = (
        f"The last good checkpoint is kept at {checkpoint_path}."
        if checkpoint_path is not None and checkpoint_path.is_file()
        else "No checkpoint was written before it."
    )
    raise FloatingPointError(
        f"the PPO loss became NaN or infinite at update {update + 1} (global step "
        f"{global_step}) although the environment's observations and rewards were "
        f"finite; parameters after it are unusable. {kept} Try a lower learning_rate "
        "or reward_scale."
    )


def _log_update(writer: Any, global_step: int, stats: UpdateStats, finished: list[float],
                finished_lengths: list[int], wall: float, lr: float,
                scalars: dict[str, float]) -> None:
    """One update's ``charts/*``, ``losses/*`` (and ``uncertainty/*``) scalars."""
    for tag, value in scalars.items():
        writer.add_scalar(tag, value, global_step)
    policy_loss, value_loss, entropy, kl, clipfrac, count = stats.sums.tolist()
    count = max(count, 1.0)
    if finished:
        writer.add_scalar("charts/episode_return", sum(finished) / len(finished), global_step)
        writer.add_scalar("charts/episode_length",
                          sum(finished_lengths) / len(finished_lengths), global_step)
    writer.add_scalar("charts/sps", global_step / max(wall, 1e-9), global_step)
    writer.add_scalar("charts/learning_rate", lr, global_step)
    writer.add_scalar("losses/policy_loss", policy_loss / count, global_step)
    writer.add_scalar("losses/value_loss", value_loss / count, global_step)
    writer.add_scalar("losses/entropy", entropy / count, global_step)
    writer.add_scalar("losses/approx_kl", kl / count, global_step)
    writer.add_scalar("losses/clipfrac", clipfrac / count, global_step)


#: Updates over which a run's final return per group is averaged (``metrics["group_returns"]``).
GROUP_RETURN_WINDOW = 10


def _group_returns(env: Any, history: dict[str, deque[float]]) -> dict[str, float]:
    """A mixed team's ``charts/group_return/<group>`` scalars of this update (each group's mean
    episode return, the mean over its agents), also kept in ``history`` for the run's metrics;
    none for one group."""
    if not isinstance(env, AgentBatch) or len(env.groups) < 2:
        return {}
    returns = env.group_returns()
    for name, value in returns.items():
        history.setdefault(name, deque(maxlen=GROUP_RETURN_WINDOW)).append(value)
    return {f"charts/group_return/{name}": value for name, value in returns.items()}


def _shared_row_groups(config: PPOConfig, env: Any) -> Callable[[Any], torch.Tensor] | None:
    """Each sample's group, for a mixed team's shared policy with ``balance_groups``; else None."""
    mixed = isinstance(env, AgentBatch) and len(env.groups) > 1
    if mixed and not config.group_policies and config.balance_groups:
        return env.row_groups
    return None


def _param_groups(policy: ActorCritic) -> list[dict[str, Any]]:
    """Adam's parameter groups: the trainable parameters at the run's learning rate, except the
    scales of Bayesian guides, which move ``agents.bayesian.SCALE_LR_MULTIPLIER`` times faster."""
    from agents.bayesian import SCALE_LR_MULTIPLIER, guide_scale_parameters

    scales = guide_scale_parameters(policy)
    ids = {id(p) for p in scales}
    groups = [{"params": [p for p in policy.parameters() if p.requires_grad and id(p) not in ids],
               "lr_multiplier": 1.0}]
    if scales:
        groups.append({"params": scales, "lr_multiplier": SCALE_LR_MULTIPLIER})
    return groups


def _communication(config: PPOConfig, env: Any) -> dict | None:
    """The communication module's settings, or None."""
    if config.communication is None:
        return None
    if not isinstance(env, AgentBatch):
        raise ValueError(f"communication needs a multi-agent environment; {config.env_id} is "
                         f"{env.kind}")
    from graphs.communication import communication_options

    options = communication_options(config.communication)
    if options["graph"] != "complete" and options.get("position_key") is None:
        position = options.get("position_slice") or getattr(env.env, "agent_position_slice",
                                                              None)
        if position is None:
            raise ValueError(
                f"communication graph {options['graph']!r} is built from the agents' positions, "
                f"and {config.env_id} declares none (its agent_position_slice): add "
                "position_slice = [start, stop] (where the agent's own position sits in its "
                "observation) to the communication options"
            )
        # Bounds refer to the agent's own observation; AgentBatch appends the agent id after it.
        own = int(math.prod(env.env.single_observation_space.shape))
        start, stop, _ = slice(*position).indices(own)
        if stop <= start:
            raise ValueError(f"position_slice {list(position)} selects nothing of {config.env_id}"
                             f"'s observation of size {own}")
        options["position_slice"] = (start, stop)
    return {"num_agents": env.num_agents, **options}


class _UncertaintyLog:
    """``uncertainty/*`` scalars of a Bayesian value head, once per update.

    - ``uncertainty/value_std``: mean epistemic std of the values of the rollout's states (the
      states the policy visits);
    - ``uncertainty/episode_value_std``: per finished episode, the mean std over its steps,
      averaged over the episodes that ended in the rollout;
    - ``uncertainty/value_std_unvisited`` (Box observations): mean std on a fixed set of 1,024
      observations drawn uniformly from the observation space (infinite bounds cut at ±10) —
      mostly states no policy visits, e.g. CartPole positions beyond the track's end.

    :meth:`summary` gives the first and last of these (of this process, on resume) for the run's
    metrics: ``value_std_first``, ``value_std_last``, ``value_std_unvisited_first``...
    """

    def __init__(self, policy: ActorCritic, env: Any, device: torch.device, seed: int):
        from agents.bayesian import unvisited_probe

        self.policy = policy
        self.std_sum = torch.zeros(env.num_envs, device=device)
        self.steps = torch.zeros(env.num_envs, device=device)
        generator = torch.Generator().manual_seed(seed + 104_729)
        self.probe = None if getattr(env, "critic_observation_space", None) is not None else \
            unvisited_probe(env.single_observation_space, 1024, 10.0, generator, device)
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def summary(self) -> dict[str, float]:
        """First and last value of each scalar, keyed ``value_std_first``, ``value_std_last``..."""
        out = {}
        for tag in self.last:
            name = tag.split("/")[-1]
            out[f"{name}_first"], out[f"{name}_last"] = self.first[tag], self.last[tag]
        return out

    @torch.no_grad()
    def measure(self, buf: Rollout) -> dict[str, float]:
        """The ``uncertainty/*`` scalars of this rollout (a few syncs, once per update)."""
        ended_sum = torch.zeros_like(self.std_sum)  # sum of the ended episodes' mean stds
        ended = torch.zeros_like(self.std_sum)  # how many episodes ended, per copy
        for t in range(buf.num_steps):  # T small kernels once per update, no sync
            self.std_sum += buf.value_std[t]
            self.steps += 1
            done = buf.dones[t]
            ended_sum += torch.where(done, self.std_sum / self.steps, 0.0)
            ended += done
            self.std_sum.masked_fill_(done, 0.0)
            self.steps.masked_fill_(done, 0.0)
        scalars = {"uncertainty/value_std": buf.value_std.mean().item()}
        count = ended.sum().item()
        if count:
            scalars["uncertainty/episode_value_std"] = ended_sum.sum().item() / count
        if self.probe is not None:
            count = self.probe.shape[0]
            starts = torch.ones(1, count, dtype=torch.bool, device=self.probe.device)
            _, std = self.policy.value_and_std(self.probe.unsqueeze(0),
                                               self.policy.initial_state(count), starts)
            scalars["uncertainty/value_std_unvisited"] = std.mean().item()
        for tag, value in scalars.items():
            self.first.setdefault(tag, value)
            self.last[tag] = value
        return scalars


def _check_rollout_finite(buf: Rollout, env: Any, global_step: int) -> None:
    """Raise ``ValueError`` if the environment gave NaN or inf observations or rewards.

    Reads the rollout's stored observations and running episode returns (which hold the raw
    rewards), so the error names the environment rather than the learning rate. One sync.
    """
    steps, copies = buf.num_steps, env.num_envs
    when = f"the rollout of global steps {global_step}-{global_step + steps * copies}"
    per_copy = tree_map(lambda stored: stored.transpose(0, 1), buf.obs)  # [N, T, ...]
    check_finite(repr(env), when, observations=per_copy,
                 rewards=buf.episode_return.transpose(0, 1))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def previous_checkpoint(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept (``latest.pt`` -> ``previous.pt``)."""
    return path.with_name("previous.pt")


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically and keep the checkpoint before it as :func:`previous_checkpoint`.

    The new file is written and flushed to disk under a temporary name, the old one becomes the
    previous copy and the new one takes its name: a crash at any point leaves at least one
    complete checkpoint, which :func:`_load_checkpoint` falls back to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as file:
        torch.save(payload, file)
        file.flush()
        os.fsync(file.fileno())
    if path.exists():
        os.replace(path, previous_checkpoint(path))
    os.replace(tmp, path)


#: Keys every checkpoint written by :func:`train` holds.
_CHECKPOINT_KEYS = ("config", "policy", "optimizer", "update", "global_step", "elapsed_s",
                    "episodes", "recent_returns", "torch_rng")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint (tensors and plain containers only); ``ValueError`` if unreadable."""
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not ours to show
            warnings.simplefilter("ignore", UserWarning)
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text would advise unpickling: never do that
        raise ValueError(f"checkpoint {path} is unreadable: it holds objects that are not "
                         "tensors or plain containers, so it was not written by Umbra") from err
    except Exception as err:  # noqa: BLE001 - truncated, empty, garbage: torch raises anything
        reason = str(err).split(". ")[0].strip() or type(err).__name__
        raise ValueError(f"checkpoint {path} is unreadable ({type(err).__name__}: "
                         f"{reason})") from err
    missing = [key for key in _CHECKPOINT_KEYS if not isinstance(saved, dict) or key not in saved]
    if missing:
        raise ValueError(f"checkpoint {path} is unreadable: it lacks {', '.join(missing)}")
    return saved


def _load_checkpoint(path: Path | None, config: PPOConfig, resume: bool) -> dict | None:
    """The checkpoint to resume from, after checking it belongs to ``config``'s run.

    An unreadable ``latest.pt`` (truncated, empty, garbage) falls back to the previous copy with
    a warning; nothing is deleted.

    Raises:
        FileExistsError: ``path`` holds a run and ``resume`` is false.
        ValueError: no checkpoint there is readable, or the config differs.
    """
    previous = previous_checkpoint(path) if path is not None else None
    if path is None or not (path.exists() or previous.exists()):
        return None
    if not resume:
        raise FileExistsError(
            f"{path.parent.parent} already holds a run (checkpoint {path}). Pass resume=True "
            "(--resume) to continue it, or choose another logdir; nothing was overwritten."
        )
    try:
        saved = _read_checkpoint(path) if path.exists() else None
        problem = None if saved is not None else f"checkpoint {path} is missing"
    except ValueError as err:
        saved, problem = None, str(err)
    if saved is None:
        try:
            saved = _read_checkpoint(previous)
        except (ValueError, FileNotFoundError):
            raise ValueError(
                f"{problem}, and there is no readable previous checkpoint ({previous}); nothing "
                "was deleted: move the run's folder away or choose another logdir to start over"
            ) from None
        kept = ""
        if path.exists():  # kept aside, not deleted, so the next save cannot push it over
            aside = path.with_name("unreadable.pt")
            os.replace(path, aside)
            kept = f" (the unreadable file is kept as {aside})"
        warnings.warn(f"{problem}; resuming from the previous checkpoint {previous} (update "
                      f"{saved['update']}){kept}", stacklevel=3)
    # A field the saved config lacks was added to PPOConfig after the run started: the run
    # trained with what is now its default.
    old = {**PPOConfig().to_dict(), **saved["config"]}
    new = config.to_dict()
    changed = [k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        raise ValueError(
            f"cannot resume {path}: the config differs in {', '.join(changed)} "
            f"(saved: {', '.join(f'{k}={old.get(k)!r}' for k in changed)}); only "
            f"{', '.join(RESUMABLE_CHANGES)} may change on resume"
        )
    return saved
