"""stable-baselines3 and sb3-contrib as Umbra agents: the baselines of every benchmark suite.

Three agents train on any environment id that :func:`envs.make` accepts, through
:class:`envs.interop.sb3.BatchedToSB3VecEnv`:

- ``sb3-ppo``: stable-baselines3's ``PPO`` (``MlpPolicy``; ``MultiInputPolicy`` for Dicts);
- ``sb3-recurrent-ppo``: sb3-contrib's ``RecurrentPPO`` (``MlpLstmPolicy``), the LSTM baseline;
- ``sb3-maskable-ppo``: sb3-contrib's ``MaskablePPO``, with the environment's ``action_masks()``
  where it has one, else every action valid.

:func:`train` mirrors :func:`agents.ppo.train`: same arguments, same TensorBoard tags at the
global step (``charts/episode_return`` and ``charts/episode_length``, the means over the
episodes finished in each rollout, ``charts/sps``), ``config.json`` in the logdir, and the same
metrics (``steps, wall_time_s, sps, final_return, episodes``, ``threshold_*`` with a return
threshold). So reports and TensorBoard put Umbra's agents and these side by side.

>>> from agents.sb3 import sb3_config, train
>>> result = train(sb3_config("sb3-ppo", "umbra/CartPole-v0", total_steps=50_000))  # doctest: +SKIP

For graph observations (the padded form of Umbra's graph tasks and of padded
``gymnasium.spaces.Graph`` envs), :class:`GraphFeaturesExtractor` is a GNN features extractor
for SB3's ``MultiInputPolicy`` (``policy_kwargs={"features_extractor_class": ...}``).

Differences to know: an interrupted run restarts from scratch (no resume; the new TensorBoard
points replace the old ones), and training stops at whole rollouts
(``n_steps * num_envs`` samples), as stable-baselines3 does.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnvWrapper

import envs
from agents.configs import Config

#: Agent name -> (module, class, policy for vector observations, policy for Dict observations).
SB3_AGENTS: dict[str, tuple[str, str, str, str]] = {
    "sb3-ppo": ("stable_baselines3", "PPO", "MlpPolicy", "MultiInputPolicy"),
    "sb3-recurrent-ppo": ("sb3_contrib", "RecurrentPPO", "MlpLstmPolicy", "MultiInputLstmPolicy"),
    "sb3-maskable-ppo": ("sb3_contrib", "MaskablePPO", "MlpPolicy", "MultiInputPolicy"),
}
_ON_POLICY_ACTIONS = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete,
                      gym.spaces.MultiBinary)
#: Agent name -> the action spaces its algorithm accepts (the ``supported_action_spaces`` that
#: each algorithm passes to stable-baselines3's ``BaseAlgorithm``; DQN would take ``Discrete``,
#: SAC and TD3 ``Box``). Benchmarks refuse other spaces before training
#: (:func:`benchmarks.runner.check_agent_fits`); every agent of :data:`SB3_AGENTS` needs an entry.
SB3_ACTION_SPACES: dict[str, tuple[type[gym.Space], ...]] = {
    "sb3-ppo": _ON_POLICY_ACTIONS,
    "sb3-recurrent-ppo": _ON_POLICY_ACTIONS,
    "sb3-maskable-ppo": (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary),
}
#: Environment id -> tuned settings. CartPole: RL-Zoo's ``CartPole-v1`` PPO
#: (rl-baselines3-zoo ``hyperparams/ppo.yml``).
_CARTPOLE = {"num_envs": 8, "hyperparams": {
    "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
    "ent_coef": 0.0, "learning_rate": "lin_1e-3", "clip_range": "lin_0.2"}}
ENV_PRESETS: dict[str, dict[str, Any]] = {
    "umbra/CartPole-v0": _CARTPOLE,
    "umbra/MaskedCartPole-v0": _CARTPOLE,
    "CartPole-v1": _CARTPOLE,
}
#: Finished episodes whose mean return is compared with ``stop_at_return`` (as agents.ppo).
WINDOW = 20


@dataclass(frozen=True)
class SB3Config(Config):
    """Everything that defines a stable-baselines3 run. Logged with the run as ``config.json``."""

    agent: str = "sb3-ppo"
    """A key of :data:`SB3_AGENTS`."""
    env_id: str = "umbra/CartPole-v0"
    """Native id, Gymnasium id or ``package.module:ClassName`` (see ``envs.make``)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment."""
    num_envs: int = 8
    """Copies of the environment (the VecEnv's size)."""
    total_steps: int = 100_000
    """Environment steps over all copies, rounded up to whole rollouts by stable-baselines3."""
    seed: int = 0
    """Seeds the model, the sampling and the environment."""
    device: str = "cpu"
    """Where the model trains: ``cpu`` (stable-baselines3's advice for MLP policies), ``cuda``
    or ``auto``. The environment steps on the CPU."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments of the algorithm (``n_steps``, ``batch_size``, ``learning_rate``,
    ``policy_kwargs``...); ``"lin_<x>"`` for ``learning_rate`` or ``clip_range`` decays linearly
    from x to 0 (RL-Zoo's notation). Defaults are stable-baselines3's."""
    stop_at_return: float | None = None
    """Stop once the mean return of the last 20 finished episodes reaches this."""

    def __post_init__(self) -> None:
        super().__post_init__()  # the fields' types (agents/configs.py)
        if self.agent not in SB3_AGENTS:
            raise ValueError(f"unknown stable-baselines3 agent {self.agent!r}; known: "
                             f"{', '.join(SB3_AGENTS)}")
        for name in ("num_envs", "total_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SB3Config.{name} must be a positive int, got {value!r}")
        if self.stop_at_return is not None and not math.isfinite(self.stop_at_return):
            raise ValueError("SB3Config.stop_at_return must be a finite number or None, got "
                             f"{self.stop_at_return}")
        accepted = _constructor_args(self.agent)
        for key in self.hyperparams:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=3)
                hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
                raise ValueError(f"{SB3_AGENTS[self.agent][1]} has no argument {key!r}; {hint}"
                                 f"accepted: {', '.join(accepted)}")




def sb3_config(agent: str, env_id: str, **overrides: Any) -> SB3Config:
    """The config of ``agent`` on ``env_id``: defaults < env preset < overrides.

    An override that is not an :class:`SB3Config` field is an argument of the algorithm and
    goes into ``hyperparams`` (``sb3_config("sb3-ppo", id, n_steps=64)``).

    The budget is kept: stable-baselines3 trains whole rollouts of ``n_steps * num_envs``
    samples, so unless the overrides set ``n_steps`` themselves, a default or preset ``n_steps``
    whose one rollout exceeds ``total_steps`` is lowered to one rollout of the budget,
    ``ceil(total_steps / num_envs)`` (and ``batch_size`` to at most that rollout): MaskablePPO's
    default 2048 steps x 8 copies would otherwise train 16,384 steps for a budget of 4,000.
    """
    fields = {f.name for f in dataclasses.fields(SB3Config)}
    preset = ENV_PRESETS.get(env_id, {})
    settings = {k: v for k, v in preset.items() if k != "hyperparams"}
    hyperparams = dict(preset.get("hyperparams", {}))
    chosen: set[str] = set()  # algorithm arguments the overrides set
    for key, value in overrides.items():
        if key == "hyperparams":
            hyperparams.update(value)
            chosen.update(value)
        elif key in fields:
            settings[key] = value
        else:
            hyperparams[key] = value
            chosen.add(key)
    if agent in SB3_AGENTS and "n_steps" not in chosen:
        _fit_rollout_to_budget(agent, hyperparams, settings.get("num_envs", SB3Config.num_envs),
                               settings.get("total_steps", SB3Config.total_steps))
    return SB3Config(agent=agent, env_id=env_id, **settings, hyperparams=hyperparams)


def _fit_rollout_to_budget(agent: str, hyperparams: dict[str, Any], num_envs: Any,
                           total_steps: Any) -> None:
    """Lower ``n_steps`` (in place) so that one rollout fits in ``total_steps`` (see
    :func:`sb3_config`); values of the wrong type are left for :class:`SB3Config` to name."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
               for v in (num_envs, total_steps)):
        return
    module, class_name, _, _ = SB3_AGENTS[agent]
    defaults = inspect.signature(
        getattr(importlib.import_module(module), class_name).__init__).parameters
    if "n_steps" not in defaults:  # an off-policy algorithm: no rollouts
        return
    n_steps = hyperparams.get("n_steps", defaults["n_steps"].default)
    if not isinstance(n_steps, int) or n_steps * num_envs <= total_steps:
        return
    hyperparams["n_steps"] = -(-total_steps // num_envs)  # ceil: at most num_envs - 1 more
    rollout = hyperparams["n_steps"] * num_envs
    batch_size = hyperparams.get("batch_size", defaults["batch_size"].default)
    if isinstance(batch_size, int) and batch_size > rollout:
        hyperparams["batch_size"] = rollout


def silent_logger() -> Any:
    """An SB3 ``Logger`` that writes nothing. Without one, every ``learn`` without
    ``tensorboard_log`` leaves an empty ``SB3-<date>`` folder in the system's temporary directory
    (SB3's ``configure``); Umbra logs through its own callback."""
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def schedule(value: float | str) -> float | Callable[[float], float]:
    """RL-Zoo's notation: ``"lin_1e-3"`` decays linearly from 1e-3 to 0; a number is constant.

    stable-baselines3 calls a schedule with ``progress_remaining``, from 1 to 0 over the run.
    """
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ValueError(f"expected a number or 'lin_<start>' (e.g. 'lin_1e-3'), got {value!r}")
        start = float(value[len("lin_"):])
        return lambda progress_remaining: progress_remaining * start
    return float(value)


@dataclass
class SB3Result:
    """What :func:`train` returns: the trained model and the run's final metrics."""

    model: Any
    metrics: dict[str, Any]


def train(
    config: SB3Config,
    logdir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    episodes: Callable[[int, list[float]], None] | None = None,
) -> SB3Result:
    """Train a stable-baselines3 baseline, logging as :func:`agents.ppo.train` does.

    Args:
        config: The run's configuration.
        logdir: Where TensorBoard events and ``config.json`` go; ``None`` logs nothing.
        resume: Accepted for the same signature as :func:`agents.ppo.train`; these runs always
            start from scratch (their TensorBoard points replace an earlier run's).
        progress: Called with the global step after every rollout.
        episodes: Called after every rollout with the global step and the returns of the
            episodes finished in it, as in :func:`agents.ppo.train`.

    Returns:
        The model and metrics: ``steps, wall_time_s, sps, final_return`` (mean of the last 100
        finished episodes, None if none finished), ``episodes``, and with ``stop_at_return``:
        ``threshold_reached, threshold_steps, threshold_time_s``.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    from envs.interop.sb3 import BatchedToSB3VecEnv

    module, class_name, mlp_policy, dict_policy = SB3_AGENTS[config.agent]
    algorithm = getattr(importlib.import_module(module), class_name)
    venv = BatchedToSB3VecEnv(envs.make(config.env_id, num_envs=config.num_envs, device="cpu",
                                        **config.env_kwargs))
    if config.agent == "sb3-maskable-ppo" and not venv.has_attr("action_masks"):
        venv = AllActionsValid(venv)
    hyperparams = dict(config.hyperparams)
    for key in ("learning_rate", "clip_range"):
        if key in hyperparams:
            hyperparams[key] = schedule(hyperparams[key])
    policy = dict_policy if isinstance(venv.observation_space, gym.spaces.Dict) else mlp_policy
    model = algorithm(policy, venv, seed=config.seed, device=config.device, verbose=0,
                      **hyperparams)

    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        (logdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        writer = SummaryWriter(str(logdir), purge_step=0)  # a restart replaces earlier points
        writer.add_text("config", "```\n" + json.dumps(config.to_dict(), indent=2) + "\n```")

    class Log(BaseCallback):
        """Collect finished episodes; log and report after each rollout; stop at the threshold."""

        def __init__(self) -> None:
            super().__init__()
            self.recent: deque[float] = deque(maxlen=100)
            self.rollout_returns: list[float] = []
            self.rollout_lengths: list[int] = []
            self.episodes = 0
            self.start = 0.0
            self.threshold_steps: int | None = None
            self.threshold_time: float | None = None

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:  # written by the adapter when an episode ends
                    self.recent.append(float(info["episode"]["r"]))
                    self.rollout_returns.append(float(info["episode"]["r"]))
                    self.rollout_lengths.append(int(info["episode"]["l"]))
                    self.episodes += 1
            window = list(self.recent)[-WINDOW:]
            if (config.stop_at_return is not None and len(window) == WINDOW
                    and sum(window) / WINDOW >= config.stop_at_return):
                self.threshold_steps = self.num_timesteps
                self.threshold_time = time.perf_counter() - self.start
                self._log()
                return False
            return True

        def _on_rollout_end(self) -> None:
            self._log()

        def _log(self) -> None:
            step = self.num_timesteps
            if writer is not None:
                if self.rollout_returns:
                    writer.add_scalar("charts/episode_return", float(np.mean(
                        self.rollout_returns)), step)
                    writer.add_scalar("charts/episode_length", float(np.mean(
                        self.rollout_lengths)), step)
                writer.add_scalar("charts/sps", step / max(time.perf_counter() - self.start,
                                                           1e-9), step)
            if episodes is not None:
                episodes(step, self.rollout_returns)
            self.rollout_returns, self.rollout_lengths = [], []
            if progress is not None:
                progress(step)

    log = Log()
    model.set_logger(silent_logger())
    model.learn(total_timesteps=config.total_steps, callback=log)
    wall = time.perf_counter() - log.start
    venv.close()
    if writer is not None:
        writer.close()
    metrics: dict[str, Any] = {
        "steps": int(model.num_timesteps),
        "wall_time_s": wall,
        "sps": model.num_timesteps / max(wall, 1e-9),
        "final_return": float(np.mean(log.recent)) if log.recent else None,
        "episodes": log.episodes,
    }
    if config.stop_at_return is not None:
        metrics.update(threshold_reached=log.threshold_steps is not None,
                       threshold_steps=log.threshold_steps, threshold_time_s=log.threshold_time)
    return SB3Result(model=model, metrics=metrics)


def action_mask_size(space: gym.Space) -> int:
    """Length of sb3-contrib's flat action mask for ``space``."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, gym.spaces.MultiBinary):
        return 2 * int(np.prod(space.n))
    raise ValueError(f"MaskablePPO needs a discrete action space, got {space}")


class AllActionsValid(VecEnvWrapper):
    """A VecEnv whose ``action_masks()`` allows every action, for MaskablePPO on envs without
    masks (it then behaves as PPO)."""

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        return self.venv.step_wait()

    def action_masks(self) -> np.ndarray:
        """All ones, ``[num_envs, mask size]``."""
        return np.ones((self.num_envs, action_mask_size(self.action_space)), dtype=bool)

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == "action_masks" or self.venv.has_attr(attr_name)

    def env_method(self, method_name: str, *args: Any, indices: Any = None,
                   **kwargs: Any) -> list[Any]:
        if method_name == "action_masks":
            return list(self.action_masks()[self._get_indices(indices)])
        return self.venv.env_method(method_name, *args, indices=indices, **kwargs)


def _constructor_args(agent: str) -> list[str]:
    """Keyword arguments of the agent's algorithm class, less the ones :func:`train` sets."""
    module, class_name, _, _ = SB3_AGENTS[agent]
    algorithm = getattr(importlib.import_module(module), class_name)
    names = inspect.signature(algorithm.__init__).parameters
    return [n for n in names if n not in ("self", "policy", "env", "seed", "device", "verbose")]


# ---------------------------------------------------------------------------- graph observations
class GraphFeaturesExtractor(BaseFeaturesExtractor):
    """A stable-baselines3 features extractor for padded graph observations, by a PyG GNN.

    stable-baselines3 cannot batch ``gymnasium.spaces.Graph`` observations; Umbra's graph tasks
    (and third-party Graph envs through :class:`envs.interop.gymnasium.GymnasiumToBatched` /
    :class:`envs.interop.graph_padding.GraphPadding`) hand out the padded graph form
    (docs/architecture.md, "Graph observations") instead, a Dict of Boxes that SB3's
    ``MultiInputPolicy`` batches like any other. This extractor embeds it with
    :class:`graphs.GraphEncoder` (GCN, GAT, GATv2, GIN or GraphSAGE with a mean / max / attention
    readout); SB3 hands every entry over as float32, which the encoder accepts (masks: non-zero =
    kept; ``edge_index`` is rounded).

    The features are, concatenated in this order:

    1. the graph embedding, ``features_dim`` wide (permutation invariant);
    2. with ``node_embeddings=True``, the node embeddings flattened in slot order,
       ``N_max * features_dim`` wide (zero at masked slots; permutation equivariant): what a
       policy needs to name a node (``Discrete(N_max)`` node-selection actions);
    3. every other entry of the Dict (e.g. ``action_mask``), flattened, as SB3's
       ``CombinedExtractor`` would pass it on.

    ``self.features_dim`` is their total width, which SB3 reads to size the policy and value
    networks.

    Args:
        observation_space: A Dict with ``x`` ``[N_max, F]``, ``edge_index`` ``[2, E_max]``,
            ``node_mask`` ``[N_max]``, ``edge_mask`` ``[E_max]`` (optionally ``edge_attr``
            ``[E_max, D]``, used by ``"gat"``/``"gatv2"``) and any other Box entries.
        features_dim: Width of the GNN layers and of the graph embedding. (default: ``64``)
        model: ``"gcn"``, ``"gat"``, ``"gatv2"``, ``"gin"`` or ``"sage"``. (default: ``"gcn"``)
        num_layers: Message-passing layers. (default: ``2``)
        readout: ``"mean"``, ``"max"`` or ``"attention"``. (default: ``"mean"``)
        node_embeddings: Add the flattened node embeddings (see above). (default: ``False``)
        **encoder_kwargs: Passed on to :class:`graphs.GraphEncoder` (``dropout``, ``act``,
            ``edge_dim``, ``heads``...).

    Raises:
        TypeError: ``observation_space`` is not a padded graph Dict.

    Example (sb3-contrib's ``MaskablePPO`` takes the same ``policy_kwargs``)::

        from stable_baselines3 import PPO
        from envs.interop.sb3 import BatchedToSB3VecEnv

        venv = BatchedToSB3VecEnv(envs.make("umbra/GraphNavigation-v0", num_envs=4))
        model = PPO("MultiInputPolicy", venv, policy_kwargs={
            "features_extractor_class": GraphFeaturesExtractor,
            "features_extractor_kwargs": {"model": "gin", "node_embeddings": True}})
    """

    def __init__(
        self,
        observation_space: gym.spaces.Dict,
        features_dim: int = 64,
        model: str = "gcn",
        num_layers: int = 2,
        readout: str = "mean",
        node_embeddings: bool = False,
        **encoder_kwargs: Any,
    ) -> None:
        from agents.policies import GRAPH_KEYS, is_graph_space
        from graphs import GraphEncoder

        if not is_graph_space(observation_space):
            raise TypeError(
                "GraphFeaturesExtractor needs the padded graph form: a Dict with 'x', "
                f"'edge_index', 'node_mask' and 'edge_mask' entries, got {observation_space} (a "
                "gymnasium.spaces.Graph env is padded by envs.interop.graph_padding.GraphPadding)"
            )
        self.extra_keys = [k for k in observation_space.spaces if k not in GRAPH_KEYS]
        for key in self.extra_keys:
            if not isinstance(observation_space[key], gym.spaces.Box):
                raise TypeError(
                    f"GraphFeaturesExtractor passes non-graph entries on flattened and needs them "
                    f"to be Boxes; {key!r} is {observation_space[key]}"
                )
        max_nodes, in_features = observation_space["x"].shape
        extra = sum(int(np.prod(observation_space[k].shape)) for k in self.extra_keys)
        width = features_dim * (1 + (max_nodes if node_embeddings else 0)) + extra
        super().__init__(observation_space, width)
        if ("edge_attr" in observation_space.spaces and model in ("gat", "gatv2")
                and "edge_dim" not in encoder_kwargs):
            encoder_kwargs["edge_dim"] = int(np.prod(observation_space["edge_attr"].shape[1:]))
        self.graph_keys = [k for k in GRAPH_KEYS if k in observation_space.spaces]
        self.node_embeddings = bool(node_embeddings)
        self.encoder = GraphEncoder(int(in_features), features_dim, num_layers, model, readout,
                                    **encoder_kwargs)

    def forward(self, observations: dict[str, Any]) -> Any:
        """``[B, features_dim]`` features of a batch of padded graphs (see the class docstring)."""
        nodes, graph = self.encoder({k: observations[k] for k in self.graph_keys})
        parts = [graph]
        if self.node_embeddings:
            parts.append(nodes.flatten(1))
        parts += [observations[k].flatten(1).float() for k in self.extra_keys]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
