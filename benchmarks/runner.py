"""Run trials: one folder per trial, ``result.json`` when it is done, failures isolated.

Each trial of a suite trains in ``<root>/<suite>/<env>/<agent>/seed<k>/`` (see
docs/architecture.md, "The trial runner"),
where ``<env>`` is the environment id made safe for a path (:func:`env_dirname`). Two kinds of
trial share that layout:

- **RL trials**: an agent (:data:`agents.presets.AGENTS` or a stable-baselines3 baseline) on an
  environment; the folder holds what :func:`agents.ppo.train` writes (TensorBoard events,
  ``config.json``, ``checkpoints/``). Score: ``final_return`` (metric ``return``).
- **Learning trials**: a graph-learning task of :data:`graphs.tasks.TASKS` (ids in the
  ``graphs/`` namespace: ``graphs/SBM``, ``graphs/KarateClub``, ``graphs/Motifs``), where the
  agent names a GNN and a head (:func:`graphs.tasks.graph_task_config`: ``gcn`` is the same GCN
  as the RL agent ``gcn``, ``gcn-temperature`` adds temperature scaling, ``gcn-bayes`` a Bayesian
  head). The trial's ``steps`` are **epochs**, its ``env_kwargs`` the task builder's arguments
  and its ``config`` :class:`~graphs.tasks.GraphTaskConfig` fields; ``num_envs`` and
  ``--stop-at-return`` do not apply (the first is an error, the second is ignored). The folder
  holds TensorBoard events (``graph/train_loss``, ``graph/{train,val}_{accuracy,nll}``,
  ``eval/test_{accuracy,nll,ece}`` per epoch), ``config.json`` and ``predictions.npz`` (the
  test set's predicted ``probs`` ``[N, C]`` and ``labels`` ``[N]`` of the selected epoch, from
  which the report draws reliability diagrams). Score: test accuracy (metric
  ``test accuracy``), beside ``nll``, ``ece`` and ``brier``.

Written here for both:

- ``result.json`` once the trial finished: ``env_id, agent, seed, steps, wall_time_s`` and the
  primary ``score`` with its ``metric`` name; for RL trials also ``sps, final_return, episodes``
  (and ``threshold_reached, threshold_steps, threshold_time_s`` when a return threshold was set);
  the suite name and the full config. A trial with a ``result.json`` is done and is skipped on
  the next run.
- TensorBoard hparams once the trial finished (:mod:`benchmarks.tensorboard_views`): one row
  of the HPARAMS tab per trial.
- ``error.json`` when the trial raised: the error and its traceback. The next trials still run.
  A later successful run of the trial replaces this marker by ``result.json``.

Nothing here deletes logs or results. A folder holding checkpoints but no ``result.json`` is an
interrupted trial: with ``resume=True`` it continues from its last checkpoint, otherwise it is
reported as failed with a hint to pass ``--resume``.

Trials run one after the other in this process, in local worker processes or on Ray
(:mod:`benchmarks.backends`); each writes its own files, so where it ran changes nothing here.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import math
import platform
import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import torch
from tqdm.auto import tqdm

import envs
from agents.configs import check_known_fields
from agents.policies import FLAT, is_graph_space, wants_node_head
from agents.ppo import CHECKPOINT, PPOConfig, previous_checkpoint, train
from agents.presets import AGENTS, agent_config, is_agent_file, read_agent_file
from agents.sb3 import SB3_ACTION_SPACES, SB3_AGENTS, SB3Config, sb3_config
from agents.sb3 import train as train_sb3
from benchmarks import tensorboard_views, versus
from benchmarks.backends import Backend, Job, ProcessBackend
from benchmarks.locking import TrialBusy, TrialLock
from benchmarks.suites import Suite, Trial
from envs.core import resolve_device
from graphs.tasks import TASKS, GraphTaskConfig, graph_task_config, is_graph_task, train_task

RESULT_FILE = "result.json"
ERROR_FILE = "error.json"
#: The suite (its trials, reference scores and file), recorded at the suite folder's root.
SUITE_FILE = "suite.json"
#: Keys every ``result.json`` holds.
RESULT_KEYS = ("env_id", "agent", "seed", "steps", "wall_time_s", "sps", "final_return")
#: The primary score of every trial and its metric's name (``"return"``, ``"test accuracy"``).
SCORE_KEYS = ("score", "metric")
#: Keys of a learning trial's ``result.json`` besides :data:`SCORE_KEYS` (test-set metrics).
LEARNING_RESULT_KEYS = ("env_id", "agent", "seed", "steps", "wall_time_s", "accuracy", "nll",
                        "ece", "brier")
#: Test-set predictions of a learning trial: ``probs`` ``[N, C]`` and ``labels`` ``[N]``.
PREDICTIONS_FILE = "predictions.npz"
#: Metric names of the primary score.
RETURN_METRIC = "return"
ACCURACY_METRIC = "test accuracy"
#: Per-epoch metrics of a learning trial -> TensorBoard tag.
LEARNING_TAGS = {
    "train_loss": "graph/train_loss",
    "train_accuracy": "graph/train_accuracy",
    "train_nll": "graph/train_nll",
    "val_accuracy": "graph/val_accuracy",
    "val_nll": "graph/val_nll",
    "test_accuracy": "eval/test_accuracy",
    "test_nll": "eval/test_nll",
    "test_ece": "eval/test_ece",
}
#: Keys added when the trial had a return threshold (``--stop-at-return``).
THRESHOLD_KEYS = ("threshold_reached", "threshold_steps", "threshold_time_s")
#: Torch intra-op threads of every trial, wherever it runs (this process, a worker, a Ray task),
#: recorded in ``result.json`` as ``torch_threads``. Reductions split over more threads add in
#: another order, so the thread count changed returns: Pendulum, 4 envs, 2,048 steps, seed 0:
#: -1099.2387 with 1 thread, -1099.2605 with 2, and ``--workers 1`` and ``2`` used different
#: counts. One thread is also the fastest for Umbra's small networks on a shared CPU (CartPole,
#: 64 envs, 32k steps: 3.0-4.4 s with 1, 12-34 s with 2 threads on 2 busy cores).
TRIAL_THREADS = 1
#: Config fields that may differ between a finished trial and a new request for it: where it runs
#: does not change what it computes.
_IGNORED_FOR_SKIP = ("device", "checkpoint_every")


@dataclass
class TrialOutcome:
    """What became of one trial.

    Attributes:
        trial: The trial.
        logdir: Its folder.
        status: ``"done"`` (trained now), ``"skipped"`` (``result.json`` already there) or
            ``"failed"``.
        result: The content of ``result.json`` (``None`` when failed).
        error: Why it failed, with the traceback where there is one (``None`` otherwise).
    """

    trial: Trial
    logdir: Path
    status: Literal["done", "skipped", "failed"]
    result: dict[str, Any] | None = None
    error: str | None = None


class TrialStopped(Exception):
    """Raised by a hook of :func:`run_trial` (``progress``, ``on_update``) to stop the trial at
    once, e.g. a tuning trial that a pruner cut short. :func:`run_trial` lets it through and
    writes neither ``result.json`` nor ``error.json``: the folder stays an interrupted run."""


# ---------------------------------------------------------------------------------- folders
def env_dirname(env_id: str) -> Path:
    """A relative folder for ``env_id``: ``umbra/CartPole-v0`` -> ``umbra/CartPole-v0``.

    The Gymnasium namespace stays a subfolder, so ``tensorboard --logdir runs/<suite>`` groups by
    it; ``package.module:ClassName`` becomes ``package.module__ClassName``; any other character
    outside letters, digits, ``.``, ``_`` and ``-`` becomes ``_``.
    """
    parts = []
    for part in env_id.replace(":", "__").split("/"):
        part = re.sub(r"[^A-Za-z0-9._-]", "_", part)
        if part in ("", ".", ".."):
            part = part.replace(".", "_") or "_"
        parts.append(part)
    return Path(*parts)


def trial_dir(root: str | Path, suite: str, trial: Trial) -> Path:
    """``<root>/<suite>/<env>/<agent>/seed<k>`` for ``trial`` (:func:`agent_dirname`)."""
    return (Path(root) / suite / env_dirname(trial.env_id) / agent_dirname(trial.agent)
            / f"seed{trial.seed}")


def agent_dirname(agent: str) -> str:
    """The folder of ``agent``: its name, or the stem of an agent file (``runs/x/best.toml`` ->
    ``best``; two files with one stem in a suite share the folder, and the second trial then
    fails without overwriting the first's results)."""
    return Path(agent).stem if is_agent_file(agent) else agent


def write_suite_file(suite_dir: str | Path, suite: Suite) -> Path:
    """Record ``suite`` as ``<suite_dir>/suite.json``: a report can be rebuilt from the folder."""
    path = Path(suite_dir) / SUITE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, suite.to_dict())
    return path


def read_suite_file(suite_dir: str | Path) -> Suite | None:
    """The suite recorded by :func:`write_suite_file`, or ``None`` when there is none."""
    path = Path(suite_dir) / SUITE_FILE
    if not path.is_file():
        return None
    return Suite.from_dict(json.loads(path.read_text(encoding="utf-8")))


def has_checkpoint(logdir: Path) -> bool:
    """Whether ``logdir`` holds a checkpoint that ``train(..., resume=True)`` can continue."""
    latest = logdir / CHECKPOINT
    return latest.is_file() or previous_checkpoint(latest).is_file()


# ---------------------------------------------------------------------------------- configs
#: Config fields that name a trial (its folder): overrides may not change them.
_TRIAL_IDENTITY = {"env_id": "--env or the suite's [[envs]] id", "task_id": "--env graphs/...",
                   "agent": "--agent or the suite's agents", "seed": "--seeds K"}
#: Arguments that the runner passes to ``envs.make`` itself, never through ``env_kwargs``.
_RESERVED_ENV_KWARGS = {"num_envs": "--num-envs E (one-off trials) or num_envs in the suite",
                        "device": "--device, or device in the trial's config"}


def build_config(
    trial: Trial,
    *,
    device: str | None = None,
    stop_at_return: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> PPOConfig | SB3Config | GraphTaskConfig:
    """The config of ``trial``: the agent preset with the trial's and the caller's overrides.

    An agent file (``path/to/best.toml``, :func:`agents.presets.read_agent_file`, as written by
    ``python -m benchmarks.tune``) stands for its base agent with its ``config`` over the preset
    and under the trial's config and ``overrides``.

    Umbra agents (:data:`agents.presets.AGENTS`) get a ``PPOConfig``; the stable-baselines3
    baselines (:data:`agents.sb3.SB3_AGENTS`) an ``SB3Config``, where a key of the trial's
    config that is not an ``SB3Config`` field is an argument of the algorithm. A learning task
    (an id in the ``graphs/`` namespace) gets a :class:`~graphs.tasks.GraphTaskConfig`: its
    ``steps`` are epochs, its ``env_kwargs`` the task's arguments.

    Args:
        trial: The trial.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``; ``None`` keeps the preset's.
        stop_at_return: Stop once the mean return of the last 20 finished episodes reaches it
            (RL trials only; learning trials ignore it).
        overrides: Config fields set last, over everything else (``--set KEY=VALUE``). A dotted
            key sets one entry of a dict field and keeps the others
            (``{"core_kwargs.window": 128}``); for a baseline, a key that is not an
            ``SB3Config`` field is an algorithm argument (``{"policy_kwargs.net_arch": [64]}``).
            Values are type-checked as the config's own fields. ``env_id``, ``agent``,
            ``task_id`` and ``seed`` name the trial's folder and cannot be overridden.

    Raises:
        ValueError: unknown agent or task, an unknown config field or algorithm argument
            (naming the close ones), a value of the wrong type, or ``num_envs``/``device`` in
            ``env_kwargs``.
    """
    overrides = dict(overrides or {})
    for key in overrides:
        head = key.split(".")[0]
        if head in _TRIAL_IDENTITY:
            raise ValueError(f"{head} names the trial and its folder and cannot be overridden "
                             f"(--set {key}); set it with {_TRIAL_IDENTITY[head]}")
    flat = {key: value for key, value in overrides.items() if "." not in key}
    dotted = {key: value for key, value in overrides.items() if "." in key}
    if is_agent_file(trial.agent):
        trial, dotted = _with_agent_file(trial, flat, dotted)
    if is_graph_task(trial.env_id):
        config = _graph_task_config(trial, device, flat)
        return _set_dotted(config, dotted) if dotted else config
    agents = (*AGENTS, *SB3_AGENTS)
    if trial.agent not in agents:
        close = difflib.get_close_matches(trial.agent, agents, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"unknown agent {trial.agent!r}; {hint}known agents: {', '.join(agents)}")
    if trial.agent in AGENTS:
        check_known_fields(PPOConfig, trial.config, "in the trial's config")
        for key in overrides:
            check_known_fields(PPOConfig, [key.split(".")[0]], f"(--set {key})")
    settings: dict[str, Any] = {**trial.config, "seed": trial.seed}
    if trial.steps is not None:
        settings["total_steps"] = trial.steps
    if trial.num_envs is not None:
        settings["num_envs"] = trial.num_envs
    if trial.env_kwargs:
        settings["env_kwargs"] = dict(trial.env_kwargs)
    if device is not None:
        settings["device"] = device
    if stop_at_return is not None:
        settings["stop_at_return"] = float(stop_at_return)
    settings.update(flat)
    if trial.agent in SB3_AGENTS:
        config = sb3_config(trial.agent, trial.env_id, **settings)
    else:
        config = agent_config(trial.agent, trial.env_id, **settings)
    if dotted:
        config = _set_dotted(config, dotted)
    for key in config.env_kwargs:
        if key in _RESERVED_ENV_KWARGS:
            raise ValueError(f"env_kwargs holds {key!r}, which the runner passes to envs.make "
                             f"itself: set it with {_RESERVED_ENV_KWARGS[key]} instead")
    return config


def _with_agent_file(trial: Trial, flat: dict[str, Any],
                     dotted: dict[str, Any]) -> tuple[Trial, dict[str, Any]]:
    """``trial`` as its agent file's base agent with the file's config under the trial's, and
    the dotted overrides with the file's first (those of a field set whole later are dropped)."""
    agent_file = read_agent_file(trial.agent)
    for key in agent_file.config:
        head = key.split(".")[0]
        if head in _TRIAL_IDENTITY:
            raise ValueError(f"{agent_file.path}: config sets {head}, which names the trial "
                             f"and its folder; set it with {_TRIAL_IDENTITY[head]}")
        if agent_file.agent in AGENTS and not is_graph_task(trial.env_id):
            check_known_fields(PPOConfig, [head], f"in {agent_file.path}")
    whole = set(trial.config) | set(flat)
    file_flat = {k: v for k, v in agent_file.config.items() if "." not in k}
    file_dotted = {k: v for k, v in agent_file.config.items()
                   if "." in k and k.split(".")[0] not in whole}
    trial = dataclasses.replace(trial, agent=agent_file.agent,
                                config={**file_flat, **trial.config})
    return trial, {**file_dotted, **dotted}


def check_trials(
    trials: Sequence[Trial],
    *,
    device: str | None = None,
    stop_at_return: float | None = None,
    overrides: dict[str, Any] | None = None,
) -> list[PPOConfig | SB3Config | GraphTaskConfig]:
    """Build every trial's config and one copy of its environment, before anything trains.

    Each agent is checked against what its config needs of the environment
    (:func:`check_agent_fits`): a multi-agent agent on a single-agent task, a GNN encoder on
    vector observations or a baseline on an action space its algorithm lacks is refused here,
    not in the middle of a suite.

    Args:
        trials: The trials.
        device: As :func:`build_config`.
        stop_at_return: As :func:`build_config`.
        overrides: As :func:`build_config` (``--set``), for every trial.

    Returns:
        The configs, in the order of ``trials``.

    Raises:
        ValueError: the first bad trial (unknown agent, env id, env kwarg or config field, a
            value of the wrong type, an agent that does not fit its environment, or a device
            this machine lacks), the message naming the trial and what to do.
    """
    configs = []
    checked_envs: dict[str, EnvFacts] = {}
    for trial in trials:
        label = f"trial env={trial.env_id!r} agent={trial.agent!r} seed={trial.seed}"
        try:
            config = build_config(trial, device=device, stop_at_return=stop_at_return,
                                  overrides=overrides)
            resolve_device(config.device)  # "cuda" on a machine without it fails here, not later
            if isinstance(config, GraphTaskConfig):  # its task arguments were checked already
                configs.append(config)
                continue
            env_key = json.dumps([trial.env_id, config.env_kwargs], sort_keys=True, default=str)
            if env_key not in checked_envs:
                env = envs.make(trial.env_id, num_envs=1, device="cpu", **config.env_kwargs)
                checked_envs[env_key] = EnvFacts(trial.env_id, env.kind,
                                                 env.single_observation_space,
                                                 env.single_action_space)
                env.close()
            check_agent_fits(trial.agent, config, checked_envs[env_key])
        except (ValueError, TypeError) as err:
            raise ValueError(f"{label}: {err}") from err
        configs.append(config)
    return configs


# ---------------------------------------------------------------------------------- agent fit
@dataclass(frozen=True)
class EnvFacts:
    """What an agent may need of an environment: its id, kind and single-copy spaces."""

    env_id: str
    kind: str
    observation_space: gym.Space
    action_space: gym.Space


#: Observation spaces stable-baselines3's policies take (a Dict of them too).
_SB3_OBSERVATIONS = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete,
                     gym.spaces.MultiBinary)


def check_agent_fits(agent: str, config: PPOConfig | SB3Config, env: EnvFacts) -> None:
    """Refuse an agent whose config needs what ``env`` lacks, naming both and what to do.

    What each config needs:

    - ``PPOConfig``: ``centralised_critic`` (MAPPO) and ``communication`` need a multi-agent
      environment; ``encoder_kwargs`` (a GNN ``model``, ``flat``, ``node_head``, ``readout``...)
      need graph observations. Umbra's PPO takes any action space its heads know, and every
      agent runs on multi-agent tasks (the agents share one policy).
    - ``SB3Config``: a single-agent environment, an action space of the algorithm's
      (:data:`agents.sb3.SB3_ACTION_SPACES`: MaskablePPO needs discrete actions) and
      observations its policies take (Box, Discrete, MultiDiscrete, MultiBinary or a Dict of
      them).

    Raises:
        ValueError: the agent does not fit ``env``.
    """
    if isinstance(config, PPOConfig):
        multi = env.kind == "multi-agent"
        if config.centralised_critic and not multi:
            _refuse(agent, "a multi-agent environment (its critic sees the global state: "
                    "centralised_critic=True)", f"is {env.kind}", env, _ids_of("multi-agent"),
                    "'ippo' or 'ppo'")
        if config.communication is not None and not multi:
            _refuse(agent, "a multi-agent environment (its agents pass messages: "
                    f"communication={config.communication!r})", f"is {env.kind}", env,
                    _ids_of("multi-agent"), "'ppo'")
        if config.encoder_kwargs and not is_graph_space(env.observation_space):
            model = config.encoder_kwargs.get("model")
            what = (f"a GNN encoder, model={model!r}" if model not in (None, FLAT)
                    else f"encoder_kwargs={config.encoder_kwargs!r}")
            _refuse(agent, f"graph observations ({what})",
                    f"has {_space_text(env.observation_space)}", env, _ids_of("graph"),
                    "'ppo' (or drop encoder_kwargs)")
        node_head = config.encoder_kwargs.get("node_head", True) and config.encoder_kwargs.get(
            "model") != FLAT and wants_node_head(env.observation_space, env.action_space)
        if config.thompson_policy and node_head:
            raise ValueError(f"agent {agent!r} needs an action head whose last layer it can "
                             "sample (thompson_policy=True), and the actions of "
                             f"{env.env_id} name graph nodes, scored by a node head: add --set "
                             "encoder_kwargs.node_head=false, or pick an agent such as 'ppo'")
        return
    if env.kind == "multi-agent":
        _refuse(agent, "a single-agent environment (stable-baselines3 trains one agent per "
                "copy)", f"is {env.kind}", env, _ids_of("single-agent")[:3], "'ippo' or 'mappo'")
    module, class_name, _, _ = SB3_AGENTS[config.agent]  # an agent file names its base agent
    accepted = SB3_ACTION_SPACES[config.agent]
    if not isinstance(env.action_space, accepted):
        names = [space.__name__ for space in accepted]
        wanted = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        fits = [a for a, spaces in SB3_ACTION_SPACES.items()
                if isinstance(env.action_space, spaces)]
        raise ValueError(f"agent {agent!r} needs {wanted} actions ({module}'s {class_name}); "
                         f"{env.env_id} has {env.action_space}: pick "
                         + (f"{' or '.join(repr(a) for a in fits)}, or " if fits else "")
                         + "an Umbra agent such as 'ppo'")
    spaces = (env.observation_space.spaces.values()
              if isinstance(env.observation_space, gym.spaces.Dict) else [env.observation_space])
    if not all(isinstance(space, _SB3_OBSERVATIONS) for space in spaces):
        raise ValueError(f"agent {agent!r} needs Box, Discrete, MultiDiscrete or MultiBinary "
                         f"observations or a Dict of them (stable-baselines3's policies); "
                         f"{env.env_id} observes {env.observation_space}: pick an Umbra agent "
                         "such as 'ppo'")


def _refuse(agent: str, needs: str, has: str, env: EnvFacts, fitting: list[str],
            instead: str) -> None:
    raise ValueError(f"agent {agent!r} needs {needs}; {env.env_id} {has}: pick an environment "
                     f"such as {', '.join(fitting)}, or an agent such as {instead}")


def _ids_of(kind: str) -> list[str]:
    """The native ids of ``kind`` (``single-agent``, ``multi-agent``, ``graph``)."""
    return [env_id for env_id in envs.list_ids() if envs.spec(env_id).kind == kind]


def _space_text(space: gym.Space) -> str:
    """A short description of a space: ``Box of shape (4,)``, ``Dict with x, edge_index``."""
    if isinstance(space, gym.spaces.Box):
        return f"Box observations of shape {space.shape}"
    if isinstance(space, gym.spaces.Dict):
        return f"Dict observations with {', '.join(space.spaces)}"
    return f"{space} observations"


def _set_dotted(config: Any, dotted: dict[str, Any]) -> Any:
    """``config`` with entries of its dict fields set by dotted keys (``core_kwargs.window``)."""
    data = config.to_dict()
    owner = type(config).__name__
    fields = {f.name: f for f in dataclasses.fields(config)}
    for key, value in dotted.items():
        path = key.split(".")
        if not all(path):
            raise ValueError(f"--set {key}: a dotted key needs a name between every two dots")
        if isinstance(config, SB3Config) and path[0] not in fields:
            path = ["hyperparams", *path]  # an argument of the algorithm
        check_known_fields(type(config), [path[0]], f"(--set {key})")
        node = data
        for depth, part in enumerate(path[:-1]):
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                where = ".".join(path[: depth + 1])
                raise ValueError(f"--set {key}: {owner}.{where} is {node[part]!r}, not a table "
                                 f"of options; set it whole with --set {where}=VALUE")
            node = node[part]
        node[path[-1]] = value
    return type(config).from_dict(data)


# ---------------------------------------------------------------------------------- one trial
def run_trial(
    trial: Trial,
    config: PPOConfig | SB3Config | GraphTaskConfig,
    logdir: str | Path,
    *,
    suite: str = "",
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    on_update: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrialOutcome:
    """Train ``trial`` with ``config`` into ``logdir`` unless it is done there; never raise.

    ``KeyboardInterrupt`` and :class:`TrialStopped` (raised by a hook) are the exceptions let
    through: the caller stops, and a later run with ``resume=True`` continues from the last
    checkpoint.

    Args:
        trial: The trial (written into ``result.json``).
        config: Its config (from :func:`build_config`).
        logdir: Its folder; created if missing.
        suite: Suite name, recorded in ``result.json``.
        resume: Continue an interrupted trial (checkpoints but no ``result.json``).
        progress: Called with the global step after every PPO update (the epoch, for a
            learning trial).
        on_update: Called with the global step and ``{"episode_returns": [...]}`` (the returns
            of the episodes finished in the update) after every update of an RL trial, with the
            epoch and its metrics (``val_accuracy``, ``test_accuracy``...) after every epoch of
            a learning trial: what a hyperparameter search reads while a trial trains.

    The trial trains with :data:`TRIAL_THREADS` torch threads, holding the folder's
    :class:`~benchmarks.locking.TrialLock`: while another live process holds it (a worker left
    by a killed run, say), the trial fails at once and nothing is written.
    """
    logdir = Path(logdir)
    result_path = logdir / RESULT_FILE
    if result_path.exists():
        old = json.loads(result_path.read_text(encoding="utf-8"))
        differences = _config_differences(old.get("config", {}), config.to_dict())
        threads = old.get("torch_threads", TRIAL_THREADS)  # absent before it was recorded
        if threads != TRIAL_THREADS:
            differences += (f"{'; ' if differences else ''}torch_threads: {threads!r} there, "
                            f"{TRIAL_THREADS} now (returns depend on it)")
        if differences:
            return TrialOutcome(
                trial, logdir, "failed", old,
                error=(
                    f"{result_path} holds a finished trial with another config ({differences}); "
                    "nothing was overwritten: choose another --logdir or move that folder away"
                ),
            )
        return TrialOutcome(trial, logdir, "skipped", old)
    logdir.mkdir(parents=True, exist_ok=True)
    lock = TrialLock(logdir)
    try:
        lock.acquire()
    except TrialBusy as busy:
        return TrialOutcome(trial, logdir, "failed", error=str(busy))
    try:
        if result_path.exists():  # the lock's last holder finished it meanwhile
            lock.release()
            return run_trial(trial, config, logdir, suite=suite, resume=resume)
        with torch_threads(TRIAL_THREADS):
            return _train_trial(trial, config, logdir, suite=suite, resume=resume,
                                progress=progress, on_update=on_update)
    finally:
        lock.release()


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads, then restore the count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train_trial(
    trial: Trial,
    config: PPOConfig | SB3Config | GraphTaskConfig,
    logdir: Path,
    *,
    suite: str,
    resume: bool,
    progress: Callable[[int], None] | None,
    on_update: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrialOutcome:
    """:func:`run_trial` once the folder is locked and holds no ``result.json``."""
    result_path = logdir / RESULT_FILE
    interrupted = has_checkpoint(logdir)
    if interrupted and not resume:
        return TrialOutcome(
            trial, logdir, "failed",
            error=(
                f"{logdir} holds an interrupted run (checkpoints, no {RESULT_FILE}); pass "
                "--resume to continue it, or choose another --logdir"
            ),
        )
    try:
        if isinstance(config, GraphTaskConfig):
            metrics = train_learning_task(config, logdir, progress=progress, on_epoch=on_update)
        else:
            trainer = train if isinstance(config, PPOConfig) else train_sb3
            hooks = {} if on_update is None else {"episodes": (
                lambda step, returns: on_update(step, {"episode_returns": list(returns)}))}
            trained = trainer(config, logdir=logdir, resume=interrupted, progress=progress,
                              **hooks)
            metrics = {**trained.metrics, "score": trained.metrics.get("final_return"),
                       "metric": RETURN_METRIC}
            if isinstance(config, PPOConfig) and versus.is_two_player_game(config):
                # Self-play's mean return is 0 whoever wins: score the policy against random.
                metrics.update(versus.score_against_random(logdir, seed=trial.seed))
    except (KeyboardInterrupt, TrialStopped):
        raise
    except Exception as err:  # noqa: BLE001 - isolate the trial; the traceback is kept
        text = traceback.format_exc()
        _write_json(logdir / ERROR_FILE, {
            "env_id": trial.env_id, "agent": trial.agent, "seed": trial.seed, "suite": suite,
            "error": f"{type(err).__name__}: {err}", "traceback": text,
            "failed_at": _now(), "config": config.to_dict(),
        })
        return TrialOutcome(trial, logdir, "failed", error=text)
    result = {
        "env_id": trial.env_id,
        "agent": trial.agent,
        "seed": trial.seed,
        "suite": suite,
        **{key: _plain(value) for key, value in metrics.items()},
        "resumed": interrupted,
        "host": platform.node(),
        "torch_threads": torch.get_num_threads(),
        "finished_at": _now(),
        "config": config.to_dict(),
    }
    _write_json(result_path, result)
    (logdir / ERROR_FILE).unlink(missing_ok=True)
    tensorboard_views.write_hparams(logdir, result)
    return TrialOutcome(trial, logdir, "done", result)


# ---------------------------------------------------------------------------------- many trials
def run_trials(
    trials: Sequence[Trial],
    configs: Sequence[Any],
    *,
    root: str | Path,
    suite: str,
    resume: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
    workers: int = 1,
    backend: Backend | None = None,
) -> list[TrialOutcome]:
    """Run ``trials`` under ``<root>/<suite>/``, with one progress bar over all of them.

    Trials already finished with the same config are skipped without starting anything. The
    others run in this process one after the other (``workers=1``, no ``backend``), in
    ``workers`` local processes, or on ``backend`` (e.g. a
    :class:`~benchmarks.backends.RayBackend`). The bar counts environment steps of the trials
    still to do and shows how many trials ended. Each trial prints one line when it ends; a
    failed one prints its traceback and the others go on. On Ctrl-C (``KeyboardInterrupt``, let
    through to the caller) the running trials are stopped; every finished one already has its
    ``result.json``.

    Args:
        trials: The trials.
        configs: Their configs, in the same order (:func:`check_trials`).
        root: The log root (``--logdir``).
        suite: The suite name: the first folder under ``root``.
        resume: Continue interrupted trials from their checkpoints.
        show_progress: Draw the progress bar (on stderr).
        log: Where the per-trial lines go (default: above the bar, on stdout).
        workers: Local processes; 1 runs the trials in this process.
        backend: Where to run the trials instead (its ``stop`` is called at the end).

    Returns:
        One outcome per trial, in order.
    """
    dirs = [trial_dir(root, suite, t) for t in trials]
    budgets = [budget_of(c) for c in configs]
    outcomes: list[TrialOutcome | None] = [None] * len(trials)
    jobs = []
    for index, (trial, config, logdir) in enumerate(zip(trials, configs, dirs, strict=True)):
        if (logdir / RESULT_FILE).exists():  # done before, or a conflict: decided here, now
            outcomes[index] = run_trial(trial, config, logdir, suite=suite, resume=resume)
        else:
            jobs.append(Job(index, trial, config, logdir, suite, resume))
    bar = tqdm(total=sum(budgets[job.index] for job in jobs), unit="step", unit_scale=True,
               disable=not show_progress, dynamic_ncols=True, smoothing=0.1)
    write = log or (lambda line: tqdm.write(line))
    seen = [0] * len(trials)

    def advance(index: int, step: int) -> None:
        step = min(int(step), budgets[index])
        if step > seen[index]:
            bar.update(step - seen[index])
            seen[index] = step

    def finish(index: int, outcome: TrialOutcome) -> None:
        advance(index, budgets[index])  # stopped early, or failed
        outcomes[index] = outcome
        ended = sum(outcomes[job.index] is not None for job in jobs)
        bar.set_postfix_str(f"trials {ended}/{len(jobs)}")
        write(describe(outcome))

    for index in range(len(trials)):
        if outcomes[index] is not None:
            write(describe(outcomes[index]))
    try:
        if backend is None and workers <= 1:
            for job in jobs:
                t = job.trial
                bar.set_description(f"{t.env_id} {t.agent} seed{t.seed}")
                finish(job.index, run_trial(t, job.config, job.logdir, suite=suite,
                                            resume=resume,
                                            progress=lambda step, i=job.index: advance(i, step)))
        elif jobs:
            processes = min(workers, len(jobs))
            backend = backend or ProcessBackend(processes)
            bar.set_description(f"{len(jobs)} trials")
            backend.submit(jobs)
            while any(outcomes[job.index] is None for job in jobs):
                ended, progress = backend.poll(timeout=0.25)
                for index, step in progress:
                    advance(index, step)
                for index, outcome in ended:
                    finish(index, outcome)
    finally:
        if backend is not None:
            backend.stop()
        bar.close()
    return [o for o in outcomes if o is not None]


def budget_of(config: Any) -> int:
    """Environment steps a trial will take: PPO rounds ``total_steps`` up to whole rollouts;
    a learning trial counts its epochs."""
    if isinstance(config, PPOConfig):
        return config.num_updates * config.batch_size
    if isinstance(config, GraphTaskConfig):
        return config.epochs
    return int(config.total_steps)


def describe(outcome: TrialOutcome) -> str:
    """One line about a trial's outcome (the traceback follows when it failed)."""
    t = outcome.trial
    name = f"{t.env_id} {t.agent} seed{t.seed}"
    if outcome.status == "failed":
        return f"FAILED  {name} ({outcome.logdir}):\n{outcome.error}"
    r = outcome.result or {}
    if is_graph_task(t.env_id):
        score = r.get("score")
        return (
            f"{'done' if outcome.status == 'done' else 'skipped (done before)'}  {name}: "
            f"{r['metric']} {'n/a' if score is None else f'{score:.3f}'}"
            + "".join(f", {key} {r[key]:.3f}" for key in ("nll", "ece") if r.get(key) is not None)
            + f", {r.get('steps', 0):,} epochs, {r.get('wall_time_s', 0):.1f} s"
        )
    ret = r.get("final_return")
    if r.get("metric", RETURN_METRIC) == RETURN_METRIC:
        what = f"return {'n/a' if ret is None else f'{ret:.1f}'}"
    else:  # e.g. a two-player game's score against random
        score = r.get("score")
        what = f"{r['metric']} {'n/a' if score is None else f'{score:.3f}'}"
    text = (
        f"{'done' if outcome.status == 'done' else 'skipped (done before)'}  {name}: "
        f"{what}, {r.get('steps', 0):,} steps, "
        f"{r.get('sps', 0):,.0f} steps/s, {r.get('wall_time_s', 0):.1f} s"
    )
    if r.get("group_returns"):
        text += " (" + ", ".join(f"{name} {value:.1f}"
                                 for name, value in r["group_returns"].items()) + ")"
    if r.get("threshold_reached") is not None:
        if r["threshold_reached"]:
            text += (f", threshold reached after {r['threshold_steps']:,} steps in "
                     f"{r['threshold_time_s']:.1f} s")
        else:
            text += ", threshold not reached"
    return text


# ---------------------------------------------------------------------------------- learning
def _graph_task_config(
    trial: Trial, device: str | None, overrides: dict[str, Any] | None = None
) -> GraphTaskConfig:
    """The :class:`GraphTaskConfig` of a learning trial (see the module docstring)."""
    if trial.env_id not in TASKS:
        close = difflib.get_close_matches(trial.env_id, list(TASKS), n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"unknown learning task {trial.env_id!r}; {hint}known learning tasks: "
                         f"{', '.join(TASKS)}")
    if trial.num_envs is not None:
        raise ValueError(f"num_envs does not apply to the learning task {trial.env_id}; set "
                         "num_envs on the RL environments' [[envs]] tables instead of the top "
                         "level")
    settings: dict[str, Any] = {**trial.config, "seed": trial.seed}
    if trial.steps is not None:
        settings["epochs"] = trial.steps
    if trial.env_kwargs:
        settings["task_kwargs"] = dict(trial.env_kwargs)
    if device is not None:
        settings["device"] = device
    return graph_task_config(trial.agent, trial.env_id, **{**settings, **(overrides or {})})


def train_learning_task(
    config: GraphTaskConfig, logdir: str | Path, progress: Callable[[int], None] | None = None,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train a learning trial into ``logdir``: TensorBoard, ``config.json``, ``predictions.npz``.

    Args:
        config: The trial's config.
        logdir: Its folder (created if missing).
        progress: Called with the epoch after every epoch.
        on_epoch: Called with the epoch and its metrics after every epoch.

    Returns:
        The metrics of ``result.json``: ``steps`` (epochs), ``wall_time_s``, ``score``
        (test accuracy), ``metric``, ``accuracy``, ``nll``, ``ece``, ``brier``,
        ``val_accuracy``, ``val_nll``, ``train_accuracy``, ``best_epoch``, ``temperature``,
        ``task_kind``.
    """
    import numpy as np
    from torch.utils.tensorboard import SummaryWriter

    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n",
                                        encoding="utf-8")
    with SummaryWriter(str(logdir)) as writer:
        def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
            for key, tag in LEARNING_TAGS.items():
                if metrics.get(key) is not None and math.isfinite(metrics[key]):
                    writer.add_scalar(tag, metrics[key], epoch)
            if progress is not None:
                progress(epoch)
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics))

        out = train_task(config, callback=log_epoch)
        for key in ("accuracy", "nll", "ece", "brier"):
            writer.add_scalar(f"eval/final_{key}", out[key], config.epochs)
    tmp = logdir / (PREDICTIONS_FILE + ".tmp.npz")
    np.savez_compressed(tmp, probs=out["test_probs"], labels=out["test_labels"])
    tmp.replace(logdir / PREDICTIONS_FILE)
    return {
        "steps": config.epochs,
        "wall_time_s": out["seconds"],
        "score": out["accuracy"],
        "metric": ACCURACY_METRIC,
        **{key: out[key] for key in ("accuracy", "nll", "ece", "brier", "val_accuracy",
                                     "val_nll", "train_accuracy", "best_epoch", "temperature")},
        "task_kind": config.kind,
    }


# ---------------------------------------------------------------------------------- helpers
def _config_differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted((set(old) | set(new)) - set(_IGNORED_FOR_SKIP))
    # JSON round trip so that tuples and lists compare equal
    old, new = json.loads(json.dumps(old, default=str)), json.loads(json.dumps(new, default=str))
    diffs = [f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys
             if old.get(k) != new.get(k)]
    return "; ".join(diffs)


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: tensors and numpy numbers to Python, NaN to ``None``."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
