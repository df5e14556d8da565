"""``python -m benchmarks.tune``: hyperparameter search with Optuna, locally or on Ray Tune.

Examples::

    python -m benchmarks.tune --env umbra/CartPole-v0 --agent ppo --trials 50 --steps 50000
    python -m benchmarks.tune --env umbra/MaskedCartPole-v0 --agent gru --trials 100 \\
        --steps 200000 --seeds-per-trial 3 --workers 4 --metric auc
    python -m benchmarks.tune --env umbra/CartPole-v0 --agent sb3-ppo --trials 50 --steps 50000
    python -m benchmarks.tune --env graphs/SBM --agent gcn --metric test_accuracy --steps 100
    python -m benchmarks.tune ... --resume          # continue an interrupted study
    python -m benchmarks.tune ... --backend ray     # the same study on Ray Tune
    python -m benchmarks.run --env umbra/CartPole-v0 \
        --agent runs/tune/umbra/CartPole-v0/ppo/study/best.toml   # the best config

**The study.** Samplers and pruners are Optuna's: ``--sampler tpe`` (the default; Bayesian
optimisation with a tree-structured Parzen estimator, multivariate), ``random`` or ``grid``;
``--pruner hyperband`` (the default; with TPE the BOHB-style pairing), ``halving`` (successive
halving), ``median`` or ``none``. The study lives in Optuna storage in its folder (a
``JournalStorage`` file, ``study.journal``), so that ``--workers W`` local processes share it
and an interrupted study continues with ``--resume``: finished trials are kept, and a trial that
was running when the process died runs again with the same parameters in its own folder, its
finished seeds skipped and its interrupted seed continued from the checkpoint. The resumed
command must define the same study (``study.json``: env, agent, metric, budget, seeds, space,
``--set``, and the pruner with its grace, since they decide which trials were stopped); a
sampler may change. ``--trials N``
counts finished trials (complete, pruned or failed). ``--backend ray`` runs the study on Ray
Tune instead (``OptunaSearch`` on the same storage, ASHA for ``halving`` and ``hyperband``, the
median stopping rule for ``median``), on a local Ray instance or the cluster at ``--address``.

**A trial** samples the search space (:mod:`benchmarks.tune_space`: per-agent default spaces,
``--space FILE`` to change them, constraints resolved), builds each seed's config with
:func:`benchmarks.runner.build_config` (so ``--set`` and validation are those of
``benchmarks.run``) and trains seeds ``S..S+K-1`` (``--first-seed S``, default 0;
``--seeds-per-trial K``) one after the other, each with :func:`benchmarks.runner.run_trial` into
a normal run folder. Its value is the mean
of the seeds' scores (:data:`METRICS`): ``final_return`` (the mean return of the last episodes,
as ``result.json`` has it), ``auc`` (the mean of the ``charts/episode_return`` curve over
training, read from the trial's TensorBoard events), ``time_to_threshold`` (environment steps
until the mean return of 20 episodes reaches ``--threshold``, which also stops the run; censored
at the steps trained; minimised) or ``test_accuracy`` (graph-learning tasks, ``graphs/...``).

**Pruning with K seeds.** While seed ``k`` trains, the trial reports at position
``k * steps + s`` (``s`` on a grid of :data:`REPORTS_PER_SEED` points per seed) the running
seed average: the finished seeds' scores and seed ``k``'s score so far, averaged. Every trial
runs the same seeds in the same order, so two trials' values at one position compare the same
seeds at the same point of training, the last report is the trial's value, and a pruner may stop
a trial during any seed, not only the first; the resource of Hyperband and successive halving is
``K * steps``. No trial is pruned before position ``--grace-steps G`` (Ray Tune's
``grace_period``; Optuna's ``min_resource`` for Hyperband and successive halving, the median
rule's ``n_warmup_steps``); by default G is one grid step (``steps / 20``) for Hyperband and
successive halving and a fifth of ``steps`` for the median rule. Raise it where every
configuration looks alike early in training (a memory task whose return stays at chance until
the agent learns to remember): there the first rungs compare noise.

**The folder** (``tensorboard --logdir`` on it shows every run)::

    <logdir>/tune/<env>/<agent>/<study>/     --logdir (runs), --study (study)
      study.json          what defines the study: env, agent, metric, budget, seeds, space, --set,
                          pruner and grace
      study.journal       the Optuna storage (optuna.storages.JournalStorage)
      trial0000/seed0/    one run folder per trial and seed (config.json, result.json, events)
      best.toml           the best trial as an agent file: --agent path/to/best.toml
      eval/               the re-evaluation: best config and the agent's preset on fresh seeds
      report.md  history.png

**The report** lists the top trials, the optimisation history, Optuna's parameter importances
and a re-evaluation of the best config on ``--eval-seeds E`` fresh seeds (``1000..1000+E-1``,
never used while tuning) against the agent's preset (with its tuned entry for the task, if
any) at the same budget: IQM with 95% stratified bootstrap intervals and the probability of
improvement (:mod:`benchmarks.stats`).

Bad input (a bad space, an unknown metric, a sampler that cannot take the space,
``time_to_threshold`` without ``--threshold``, a study folder made by another command,
``--resume`` without a study) fails before anything trains: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import runner, stats
from benchmarks.suites import Trial
from benchmarks.tune_space import Space, SpaceError, check_keys, load_space, resolve, shipped_space
from graphs.tasks import is_graph_task

#: Metric -> Optuna direction.
METRICS = {"final_return": "maximize", "auc": "maximize", "time_to_threshold": "minimize",
           "test_accuracy": "maximize"}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("hyperband", "halving", "median", "none")
STUDY_FILE = "study.json"
STORAGE_FILE = "study.journal"
BEST_FILE = "best.toml"
REPORT_FILE = "report.md"
#: The two sides of the re-evaluation: the best config and the agent's preset.
EVAL_LABELS = ("tuned", "preset")
HISTORY_PLOT = "history.png"
#: The Optuna study's name inside its storage (one study per folder).
STUDY_NAME = "study"
#: Re-evaluation seeds start here; tuning seeds are ``--first-seed`` .. ``--first-seed + K - 1``
#: (all below this).
EVAL_SEED_START = 1000
#: Intermediate values reported per seed (the pruners' grid).
REPORTS_PER_SEED = 20
#: What ``study.json`` holds that a resumed study must share with the command.
IDENTITY = ("env_id", "agent", "metric", "steps", "seeds_per_trial", "first_seed", "threshold",
            "overrides", "space", "pruning")
#: What a ``study.json`` written before an identity key existed means by its absence.
_IDENTITY_DEFAULTS = {"first_seed": 0}
#: Identity keys that a ``study.json`` written before they existed does not record; such a
#: study is resumed whatever the command says of them.
_UNRECORDED = ("pruning",)
#: Config keys that say where a run trains, not what it computes (left out of best.toml).
_RUNTIME_KEYS = ("device", "checkpoint_every")


class TuneError(ValueError):
    """Bad input: printed as one line, exit status 2, before anything trains."""


class TrialFailed(Exception):
    """A trial's training raised; the study records it as failed and goes on."""


def _pruned_class() -> type:
    import optuna

    class Pruned(runner.TrialStopped, optuna.TrialPruned):
        """Stops the training under way (through :func:`benchmarks.runner.run_trial`) and
        marks the Optuna trial pruned."""

    return Pruned


@dataclass(frozen=True)
class StudySpec:
    """Everything that defines a study and how it runs; sent to worker processes.

    Attributes:
        env_id: Environment id or graph-learning task.
        agent: Agent name or agent file.
        metric: A key of :data:`METRICS`.
        steps: Budget per seed (environment steps; epochs for a learning task).
        seeds_per_trial: Seeds per trial, ``first_seed`` onwards.
        threshold: Return threshold of ``time_to_threshold``.
        overrides: ``--set`` (every trial's fixed config keys).
        space: The search space.
        study_dir: The study folder (absolute).
        trials: Finished trials to reach.
        sampler: A name of :data:`SAMPLERS` or an Optuna sampler.
        pruner: A name of :data:`PRUNERS` or an Optuna pruner.
        workers: Local processes (or Ray's concurrent trials).
        device: ``--device`` (None: the preset's).
        grace_steps: ``--grace-steps`` (None: the pruner's default, :attr:`grace`).
    """

    env_id: str
    agent: str
    metric: str
    steps: int
    seeds_per_trial: int
    threshold: float | None
    overrides: dict[str, Any]
    space: Space
    study_dir: str
    trials: int
    sampler: Any = "tpe"
    pruner: Any = "hyperband"
    workers: int = 1
    device: str | None = None
    first_seed: int = 0
    grace_steps: int | None = None

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    @property
    def seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds_per_trial))

    @property
    def grid_step(self) -> int:
        """Steps between two intermediate values."""
        return max(1, self.steps // REPORTS_PER_SEED)

    @property
    def budget(self) -> int:
        """A trial's steps over its seeds, ``K * steps``: the pruners' resource."""
        return self.steps * self.seeds_per_trial

    @property
    def grace(self) -> int:
        """The position before which no trial is pruned: ``--grace-steps``, else one grid step
        (the median rule: a fifth of ``steps``)."""
        if self.grace_steps is not None:
            return self.grace_steps
        return self.steps // 5 if self.pruner == "median" else self.grid_step

    def identity(self) -> dict[str, Any]:
        """What ``study.json`` records and ``--resume`` compares (:data:`IDENTITY`)."""
        data = {"env_id": self.env_id, "agent": self.agent, "metric": self.metric,
                "steps": self.steps, "seeds_per_trial": self.seeds_per_trial,
                "first_seed": self.first_seed,
                "threshold": self.threshold, "overrides": self.overrides,
                "space": self.space.to_dict(), "pruning": self.pruning()}
        return json.loads(json.dumps(data, default=str))

    def pruning(self) -> dict[str, Any]:
        """The pruner's name and, where it prunes, its grace in steps (an identity key)."""
        if not isinstance(self.pruner, str) or self.pruner == "none":
            return {"pruner": _name(self.pruner), "grace": None}
        return {"pruner": self.pruner, "grace": self.grace}

    def trial(self, seed: int) -> Trial:
        return Trial(env_id=self.env_id, agent=self.agent, seed=seed, steps=self.steps)

    def config(self, seed: int, values: dict[str, Any]) -> Any:
        """The run config of ``seed`` with the sampled ``values`` (ValueError if invalid)."""
        return runner.build_config(self.trial(seed), device=self.device,
                                   stop_at_return=self.threshold,
                                   overrides={**self.overrides, **values})


@dataclass
class StudySummary:
    """What :func:`tune` returns.

    Attributes:
        study_dir: The study folder.
        direction: ``"maximize"`` or ``"minimize"``.
        complete: Trials that finished. pruned, failed: the others.
        best_trial: Number of the best trial (None when none completed).
        best_value: Its value.
        best_params: Its sampled parameters.
        best_config: The config keys it trained with (resolved values and ``--set``).
        best_file: ``best.toml`` (None when no trial completed).
        report: ``report.md``.
        evaluation: The re-evaluation (:func:`evaluate_best`), empty with ``eval_seeds=0``.
    """

    study_dir: Path
    direction: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_config: dict[str, Any] = field(default_factory=dict)
    best_file: Path | None = None
    report: Path | None = None
    evaluation: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- the API
def tune(
    env: str,
    agent: str = "ppo",
    *,
    trials: int = 20,
    steps: int = 50_000,
    sampler: Any = "tpe",
    pruner: Any = "hyperband",
    metric: str = "final_return",
    seeds_per_trial: int = 1,
    first_seed: int = 0,
    space: str | Path | None = None,
    workers: int = 1,
    backend: str = "local",
    resume: bool = False,
    logdir: str | Path = "runs",
    study: str = "study",
    timeout: float | None = None,
    eval_seeds: int = 5,
    threshold: float | None = None,
    overrides: dict[str, Any] | None = None,
    device: str | None = None,
    address: str | None = None,
    grace_steps: int | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> StudySummary:
    """Run (or continue) a study, then write ``best.toml``, re-evaluate and write the report.

    Args:
        env: Environment id (``umbra/CartPole-v0``) or graph-learning task (``graphs/SBM``).
        agent: Agent name, baseline (``sb3-ppo``) or agent file.
        trials: Finished trials (complete, pruned or failed) the study should hold.
        steps: Budget of each seed (epochs for a learning task).
        sampler: ``"tpe"``, ``"random"``, ``"grid"`` or an ``optuna.samplers`` instance.
        pruner: ``"hyperband"``, ``"halving"``, ``"median"``, ``"none"`` or an
            ``optuna.pruners`` instance (local backend).
        metric: A key of :data:`METRICS`.
        seeds_per_trial: Seeds per trial (``first_seed`` onwards); the value is their mean.
        first_seed: The first tuning seed: keep tuning seeds apart from the seeds that will
            evaluate the result (a suite's ``seeds = 3`` runs 0-2).
        space: A ``--space`` file (see :mod:`benchmarks.tune_space`); None: the default space.
        workers: Local processes sharing the study (with Ray: concurrent trials).
        backend: ``"local"`` or ``"ray"``.
        resume: Continue the study in the folder (it must exist).
        logdir: Root of the run folders.
        study: The study's name (its folder).
        timeout: Start no new trial after this many seconds.
        eval_seeds: Fresh seeds of the re-evaluation (0: none).
        threshold: The return of ``time_to_threshold``.
        overrides: ``--set``: fixed config keys of every trial (not searched).
        device: ``auto``, ``cpu`` or ``cuda`` (None: the preset's).
        address: Ray cluster (``--backend ray``).
        grace_steps: No trial is pruned before this position (environment steps over its
            seeds, ``K * steps`` in all); None: the pruner's default (module docstring).
        show_progress: Draw the progress bar over trials.
        log: Where lines go.

    Returns:
        The summary; ``best_trial`` is None when no trial completed.

    Raises:
        TuneError: bad input, before anything trains.
    """
    spec = prepare(env, agent, trials=trials, steps=steps, sampler=sampler, pruner=pruner,
                   metric=metric, seeds_per_trial=seeds_per_trial, first_seed=first_seed,
                   space=space, workers=workers,
                   backend=backend, resume=resume, logdir=logdir, study=study, timeout=timeout,
                   eval_seeds=eval_seeds, threshold=threshold, overrides=overrides or {},
                   device=device, grace_steps=grace_steps)
    study_dir = Path(spec.study_dir)
    from benchmarks.locking import TrialBusy, TrialLock

    lock = TrialLock(study_dir)
    try:
        lock.acquire()
    except TrialBusy as busy:
        raise TuneError(f"{study_dir} is being tuned by another process ({busy}); wait for it "
                        "or choose another --study") from None
    try:
        if not resume:
            _write_json(study_dir / STUDY_FILE, {**spec.identity(), "created_by":
                                                 "python -m benchmarks.tune"})
        log(f"study {study_dir}: {spec.trials} trials of {spec.agent} on {spec.env_id}, "
            f"{spec.steps:,} steps x seeds {_seeds_text(spec.seeds)}, {spec.metric} "
            f"({spec.direction}), sampler {_name(spec.sampler)}, pruner {_pruner_text(spec)}, "
            f"{len(spec.space.params)} parameters ({', '.join(spec.space.sources) or '--set'})")
        deadline = None if timeout is None else time.time() + timeout
        if backend == "ray":
            _run_ray(spec, deadline, address, show_progress, log)
        else:
            _run_local(spec, deadline, show_progress, log)
        return finish(spec, eval_seeds=eval_seeds, backend=backend, address=address,
                      show_progress=show_progress, log=log)
    finally:
        lock.release()


def prepare(env: str, agent: str, *, trials: int, steps: int, sampler: Any, pruner: Any,
            metric: str, seeds_per_trial: int, space: str | Path | None, workers: int,
            backend: str, resume: bool, logdir: str | Path, study: str, timeout: float | None,
            eval_seeds: int, threshold: float | None, overrides: dict[str, Any],
            device: str | None, first_seed: int = 0,
            grace_steps: int | None = None) -> StudySpec:
    """Check everything and build the :class:`StudySpec`; nothing trains.

    Raises:
        TuneError: the first bad input, in one line that says what to do.
    """
    for name, value, least in (("--trials", trials, 1), ("--steps", steps, 1),
                               ("--seeds-per-trial", seeds_per_trial, 1),
                               ("--first-seed", first_seed, 0),
                               ("--workers", workers, 1), ("--eval-seeds", eval_seeds, 0),
                               *([("--grace-steps", grace_steps, 1)]
                                 if grace_steps is not None else [])):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise TuneError(f"{name} must be an integer of at least {least}, got {value!r}")
    if first_seed + seeds_per_trial > EVAL_SEED_START:
        raise TuneError(f"the tuning seeds {first_seed}..{first_seed + seeds_per_trial - 1} "
                        f"(--first-seed, --seeds-per-trial) must stay below {EVAL_SEED_START}, "
                        "where the re-evaluation seeds start")
    if timeout is not None and not timeout > 0:
        raise TuneError(f"--timeout must be a positive number of seconds, got {timeout}")
    if metric not in METRICS:
        raise TuneError(f"unknown metric {metric!r}{_close(metric, METRICS)}; known metrics: "
                        f"{', '.join(METRICS)}")
    graph = is_graph_task(env)
    if graph and metric != "test_accuracy":
        raise TuneError(f"{env} is a graph-learning task: its metric is test_accuracy, not "
                        f"{metric} (add --metric test_accuracy)")
    if not graph and metric == "test_accuracy":
        raise TuneError(f"test_accuracy is the metric of graph-learning tasks (graphs/...); "
                        f"{env} is an RL environment: use final_return, auc or "
                        "time_to_threshold")
    if metric == "time_to_threshold":
        if threshold is None:
            raise TuneError("--metric time_to_threshold needs --threshold R, the mean return "
                            "(over 20 episodes) whose reaching stops the clock")
        if not math.isfinite(threshold):
            raise TuneError(f"--threshold must be a finite number, got {threshold}")
    elif threshold is not None:
        raise TuneError(f"--threshold applies to --metric time_to_threshold, not {metric}")
    if isinstance(sampler, str) and sampler not in SAMPLERS:
        raise TuneError(f"unknown sampler {sampler!r}{_close(sampler, SAMPLERS)}; known: "
                        f"{', '.join(SAMPLERS)}")
    if isinstance(pruner, str) and pruner not in PRUNERS:
        raise TuneError(f"unknown pruner {pruner!r}{_close(pruner, PRUNERS)}; known: "
                        f"{', '.join(PRUNERS)}")
    if grace_steps is not None:
        _check_grace(grace_steps, pruner, steps * seeds_per_trial)
    if backend not in ("local", "ray"):
        raise TuneError(f"--backend must be local or ray, got {backend!r}")
    if backend == "ray":
        if not (isinstance(sampler, str) and isinstance(pruner, str)):
            raise TuneError("--backend ray takes sampler and pruner names (Ray Tune's "
                            "schedulers stand for the pruners)")
        try:
            import ray.tune  # noqa: F401
            import ray.tune.search.optuna  # noqa: F401
        except ImportError as err:
            raise TuneError(f"--backend ray needs Ray Tune ({err}): pip install -c "
                            "constraints.txt -e '.[ray]'") from None
    study_dir = (Path(logdir) / "tune" / runner.env_dirname(env) / runner.agent_dirname(agent)
                 / study).absolute()
    # the trial itself: env id, agent, --set, device, agent fit (as benchmarks.run checks it)
    try:
        [base] = runner.check_trials([Trial(env_id=env, agent=agent, seed=0, steps=steps)],
                                     device=device, stop_at_return=threshold,
                                     overrides=overrides)
    except ValueError as err:
        raise TuneError(str(err)) from None
    try:
        from benchmarks.tune_space import default_space_name

        searched = shipped_space(default_space_name(base))
        if space is not None:
            searched = load_space(space, searched)
        searched = _without_fixed(searched, overrides)
        source = str(space) if space is not None else searched.sources[-1]
        check_keys(searched, base, source)
        if sampler == "grid":
            searched.grid()
    except SpaceError as err:
        raise TuneError(str(err)) from None
    spec = StudySpec(env_id=env, agent=agent, metric=metric, steps=steps,
                     seeds_per_trial=seeds_per_trial, threshold=threshold,
                     overrides=dict(overrides), space=searched, study_dir=str(study_dir),
                     trials=trials, sampler=sampler, pruner=pruner, workers=workers,
                     device=device, first_seed=first_seed, grace_steps=grace_steps)
    _check_values(spec, base, source)
    _check_study_folder(spec, resume, logdir, study)
    return spec


def _check_grace(grace_steps: int, pruner: Any, budget: int) -> None:
    """``--grace-steps`` (an integer >= 1, checked with the other counts): within ``K * steps``,
    for a pruner named here that prunes."""
    if grace_steps > budget:
        raise TuneError(f"--grace-steps {grace_steps:,} is past the end of a trial: at most "
                        f"{budget:,} (--steps x --seeds-per-trial)")
    if not isinstance(pruner, str):
        raise TuneError("--grace-steps sets a pruner named by --pruner (hyperband, halving, "
                        "median); give a pruner instance its own warm-up instead")
    if pruner == "none":
        raise TuneError("--grace-steps applies to a pruner; --pruner none prunes nothing")


def _without_fixed(space: Space, overrides: dict[str, Any]) -> Space:
    """``space`` less the keys that ``--set`` fixes (a key, or the whole table it is in)."""
    fixed = [name for name in space.params
             if name in overrides or name.split(".")[0] in overrides]
    if not fixed:
        return space
    params = {name: p for name, p in space.params.items() if name not in fixed}
    if not params:
        raise SpaceError(f"--set fixes every parameter of the space ({', '.join(fixed)}): "
                         "nothing is left to search")
    return Space(params, space.sources, tuple(fixed))


def _check_values(spec: StudySpec, base: Any, source: str) -> None:
    """Build a config for every value of every parameter (bounds for continuous ones), so that
    a value of the wrong type fails now rather than in a trial."""
    for name, param in spec.space.params.items():
        for value in param.values()[:64]:
            values = {name: value}
            resolve(values, base)
            try:
                spec.config(0, values)
            except (ValueError, TypeError) as err:
                raise TuneError(f"{source}: parameter {name!r} = {value!r} gives no valid "
                                f"config: {err}") from None


def _check_study_folder(spec: StudySpec, resume: bool, logdir: str | Path, study: str) -> None:
    study_dir = Path(spec.study_dir)
    record = study_dir / STUDY_FILE
    if record.is_file():
        old = {**_IDENTITY_DEFAULTS, **json.loads(record.read_text(encoding="utf-8"))}
        new = spec.identity()
        if isinstance(old.get("pruning"), str):  # an older study.json records it as text
            new["pruning"] = _pruner_text(spec)
        diffs = [_difference(key, old.get(key), new[key]) for key in IDENTITY
                 if old.get(key) != new[key] and (key in old or key not in _UNRECORDED)]
        if diffs:
            raise TuneError(f"{study_dir} holds a study made by another command "
                            f"({'; '.join(diffs)}): choose another --logdir or --study NAME, or "
                            "repeat that command with --resume")
        if not resume:
            raise TuneError(f"{study_dir} already holds this study: add --resume to continue it "
                            "(up to --trials finished trials), or choose another --study NAME "
                            "or --logdir")
    elif resume:
        raise TuneError(f"--resume: there is no study in {study_dir} (no {STUDY_FILE}); leave "
                        "out --resume to start one")
    elif study_dir.exists() and any(study_dir.iterdir()):
        raise TuneError(f"{study_dir} exists and holds no study ({STUDY_FILE} is missing): "
                        "choose another --logdir or --study NAME")
    from benchmarks.run import UsageError, check_logdir

    try:
        check_logdir(study_dir, str(logdir))
    except UsageError as err:
        raise TuneError(str(err)) from None


# ---------------------------------------------------------------------------------- Optuna
def storage(spec: StudySpec) -> Any:
    """The study's Optuna storage: a journal file that local processes share."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(Path(spec.study_dir) / STORAGE_FILE)))


def make_sampler(spec: StudySpec, seed: int | None) -> Any:
    """Optuna's sampler for ``spec.sampler``; TPE is multivariate (with a constant liar when
    trials run in parallel), with 5 random startup trials as RL-Zoo."""
    import optuna

    if not isinstance(spec.sampler, str):
        return spec.sampler
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler(spec.space.grid(), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(n_startup_trials=5, multivariate=True, seed=seed,
                                          constant_liar=spec.workers > 1)


def make_pruner(spec: StudySpec) -> Any:
    """Optuna's pruner for ``spec.pruner``, its resource in steps (``K * steps`` in all)."""
    import optuna

    if not isinstance(spec.pruner, str):
        return spec.pruner
    grace, total = spec.grace, spec.budget
    return {
        "none": lambda: optuna.pruners.NopPruner(),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5,
                                                      n_warmup_steps=grace),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=grace,
                                                                  reduction_factor=3),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=grace,
                                                            max_resource=total,
                                                            reduction_factor=3),
    }[spec.pruner]()


def load(spec: StudySpec, seed: int | None = None) -> Any:
    """The study (created if missing) with this process's sampler and pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=STUDY_NAME, storage=storage(spec),
                               sampler=make_sampler(spec, seed), pruner=make_pruner(spec),
                               direction=spec.direction, load_if_exists=True)


def counted(study: Any) -> int:
    """Finished trials that count towards ``--trials``: complete, pruned, and failed ones
    except those interrupted (and run again) by a dead process."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")))


def target(spec: StudySpec) -> int:
    """``--trials``, capped at the grid's size for the grid sampler."""
    if spec.sampler == "grid":
        return min(spec.trials, math.prod(len(v) for v in spec.space.grid().values()))
    return spec.trials


def requeue_interrupted(spec: StudySpec) -> list[int]:
    """Fail the trials left running by a dead process and queue each again with its parameters
    and folder (``resumes``); return their numbers. Only call it while holding the study lock
    (no live process runs this study)."""
    import optuna
    from optuna.trial import TrialState

    store = storage(spec)
    study = optuna.create_study(study_name=STUDY_NAME, storage=store,
                                direction=spec.direction, load_if_exists=True)
    study_id = store.get_study_id_from_name(STUDY_NAME)
    numbers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = store.get_trial_id_from_study_id_trial_number(study_id, t.number)
        store.set_trial_user_attr(trial_id, "interrupted", True)
        store.set_trial_state_values(trial_id, TrialState.FAIL)
        folder = t.user_attrs.get("resumes", t.number)
        study.enqueue_trial(t.params, user_attrs={"resumes": folder})
        numbers.append(t.number)
    return numbers


def sample(spec: StudySpec, trial: Any) -> tuple[dict[str, Any], int, bool]:
    """Sample ``trial``'s parameters and resolve their constraints.

    Returns:
        The config keys to train with, the number of the trial's folder (an earlier trial's
        when it continues an interrupted one) and whether it continues one.
    """
    values = spec.space.suggest(trial)
    changed = resolve(values, _base_config(spec))
    trial.set_user_attr("config", values)
    if changed:
        trial.set_user_attr("resolved", {k: list(v) for k, v in changed.items()})
    resumes = trial.user_attrs.get("resumes")
    number = trial.number if resumes is None else int(resumes)
    trial.set_user_attr("folder", trial_folder(number))
    return values, number, resumes is not None


_BASES: dict[str, Any] = {}


def _base_config(spec: StudySpec) -> Any:
    key = spec.study_dir
    if key not in _BASES:
        _BASES[key] = spec.config(0, {})
    return _BASES[key]


def trial_folder(number: int) -> str:
    """The folder of trial ``number`` in the study folder."""
    return f"trial{number:04d}"


def run_seeds(spec: StudySpec, values: dict[str, Any], number: int, resume: bool,
              report: Callable[[float, int], bool]) -> tuple[float, list[float]]:
    """Train the seeds of one trial, one run folder each; return the mean score and the scores.

    Args:
        spec: The study.
        values: Config keys to train with.
        number: The trial folder's number.
        resume: Continue interrupted runs in the folder.
        report: Called with each intermediate value and its position; True stops the trial
            (raising :class:`~benchmarks.runner.TrialStopped` out of the training).

    Raises:
        optuna.TrialPruned: the values give no valid config, or ``report`` said stop.
        TrialFailed: a run raised.
    """
    import optuna

    pruned = _pruned_class()
    watcher = Intermediate(spec, report, pruned)
    scores: list[float] = []
    folder = Path(spec.study_dir) / trial_folder(number)
    for k, seed in enumerate(spec.seeds):
        try:
            config = spec.config(seed, values)
        except (ValueError, TypeError) as err:
            raise optuna.TrialPruned(f"no valid config: {err}") from None
        watcher.start(k)
        outcome = runner.run_trial(spec.trial(seed), config, folder / f"seed{seed}",
                                   suite=f"tune/{Path(spec.study_dir).name}", resume=resume,
                                   on_update=watcher.update)
        if outcome.status == "failed":
            last = (outcome.error or "").strip().splitlines()[-1:] or ["unknown error"]
            raise TrialFailed(f"seed {seed} failed ({folder / f'seed{seed}'}): {last[0]}")
        score = seed_score(spec.metric, outcome.result or {}, outcome.logdir)
        if score is None:
            raise TrialFailed(f"seed {seed} has no {spec.metric} (no episode finished in "
                              f"{outcome.result.get('steps')} steps?)")
        scores.append(score)
        watcher.finish(score, last=k + 1 == len(spec.seeds))
    return float(np.mean(scores)), scores


class Intermediate:
    """The running seed average of one trial, reported on a grid of positions (see the module
    docstring, "Pruning with K seeds")."""

    def __init__(self, spec: StudySpec, report: Callable[[float, int], bool], pruned: type):
        self.spec, self.report, self.pruned = spec, report, pruned
        self.done: list[float] = []
        self.k = 0
        self.last = -1

    def start(self, k: int) -> None:
        self.k = k
        self.recent: deque[float] = deque(maxlen=100)  # as agents.ppo's final_return
        self.curve: list[float] = []
        self.reached: int | None = None

    def update(self, step: int, data: dict[str, Any]) -> None:
        metric = self.spec.metric
        if metric == "test_accuracy":
            value = data.get("val_accuracy")  # the test set is not looked at while training
        else:
            returns = data.get("episode_returns", [])
            self.recent.extend(returns)
            if returns:
                self.curve.append(float(np.mean(returns)))
            if metric == "final_return":
                value = float(np.mean(self.recent)) if self.recent else None
            elif metric == "auc":
                value = float(np.mean(self.curve)) if self.curve else None
            else:
                window = list(self.recent)[-20:]
                if (self.reached is None and len(window) == 20
                        and np.mean(window) >= self.spec.threshold):
                    self.reached = step
                value = float(self.reached if self.reached is not None else step)
        if value is None or not math.isfinite(value):
            return
        grid = self.spec.grid_step
        position = self.k * self.spec.steps + min(step, self.spec.steps) // grid * grid
        self._report((sum(self.done) + value) / (self.k + 1), position, step)

    def finish(self, score: float, last: bool) -> None:
        self.done.append(score)
        if not last:
            self._report(float(np.mean(self.done)), len(self.done) * self.spec.steps, None)

    def _report(self, value: float, position: int, step: int | None) -> None:
        if position <= self.last:
            return
        self.last = position
        if self.report(value, position):
            where = (f"seed {self.spec.seeds[self.k]} step {step}" if step is not None
                     else f"after seed {self.spec.seeds[self.k]}")
            raise self.pruned(f"pruned at {where}: running value {value:.4g}")


def seed_score(metric: str, result: dict[str, Any], folder: Path) -> float | None:
    """One run's score under ``metric`` (:data:`METRICS`) from its ``result.json`` and events."""
    if metric == "final_return":
        return result.get("final_return")
    if metric == "test_accuracy":
        return result.get("score")
    if metric == "time_to_threshold":
        reached = result.get("threshold_steps")
        return float(reached if reached is not None else result.get("steps"))
    from benchmarks.curves import read_curve

    curve = read_curve(folder)
    return None if curve is None else float(np.mean(curve.values))


# ---------------------------------------------------------------------------------- local
def _objective(spec: StudySpec) -> Callable[[Any], float]:
    def objective(trial: Any) -> float:
        values, number, resume = sample(spec, trial)

        def report(value: float, position: int) -> bool:
            trial.report(value, position)
            return trial.should_prune()

        try:
            value, scores = run_seeds(spec, values, number, resume, report)
        except TrialFailed as err:
            trial.set_user_attr("error", str(err))
            raise
        except KeyboardInterrupt:  # Optuna fails the trial: queue it again for --resume
            trial.set_user_attr("interrupted", True)
            trial.study.enqueue_trial(trial.params, user_attrs={"resumes": number})
            raise
        trial.set_user_attr("scores", scores)
        return value

    return objective


def work(spec: StudySpec, worker: int, deadline: float | None,
         after_trial: Callable[[Any], None] | None = None) -> None:
    """One worker: run trials of the study until it holds :func:`target` finished trials (or
    the deadline passed). Workers share the study through its storage."""
    import optuna

    study = load(spec)
    study.sampler = make_sampler(spec, seed=1000 * worker + len(study.get_trials(
        deepcopy=False)))
    objective = _objective(spec)
    callbacks = [lambda study, trial: after_trial(study)] if after_trial else []
    while deadline is None or time.time() < deadline:
        running = len(study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.RUNNING,)))
        if counted(study) + running >= target(spec):
            break
        study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=callbacks,
                       gc_after_trial=False)


def _worker_main(spec: StudySpec, worker: int, deadline: float | None, parent: int) -> None:
    from benchmarks.backends import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    die_with_parent(parent)
    work(spec, worker, deadline)


def _run_local(spec: StudySpec, deadline: float | None, show_progress: bool,
               log: Callable[[str], None]) -> None:
    study = load(spec)
    again = requeue_interrupted(spec)
    if again:
        log(f"trials {', '.join(map(str, again))} were interrupted: running them again in "
            "their folders")
    bar = _Bar(spec, study, show_progress)
    try:
        if spec.workers == 1:
            work(spec, 0, deadline, after_trial=bar.update)
        else:
            context = multiprocessing.get_context("spawn")
            processes = [context.Process(target=_worker_main, name=f"tune-worker-{i}",
                                         args=(spec, i, deadline, os.getpid()))
                         for i in range(spec.workers)]
            for process in processes:
                process.start()
            try:
                while any(p.is_alive() for p in processes):
                    for p in processes:
                        p.join(timeout=1.0)
                    bar.update(study)
            finally:
                for p in processes:
                    if p.is_alive():
                        p.terminate()
                        p.join()
        bar.update(study)
    finally:
        bar.close()


class _Bar:
    """A tqdm bar over finished trials with the best value so far."""

    def __init__(self, spec: StudySpec, study: Any, show: bool):
        from tqdm.auto import tqdm

        self.spec = spec
        self.bar = tqdm(total=target(spec), unit="trial", disable=not show, dynamic_ncols=True,
                        desc=f"tune {spec.agent} {spec.env_id}")
        self.update(study)

    def update(self, study: Any) -> None:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        self.bar.n = min(counted(study), self.bar.total)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        pruned = sum(t.state == TrialState.PRUNED for t in trials)
        best = None
        if complete:
            pick = max if self.spec.direction == "maximize" else min
            best = pick(complete, key=lambda t: t.value)
        self.bar.set_postfix_str(
            (f"best {best.value:.4g} (trial {best.number})" if best else "best n/a")
            + f", pruned {pruned}")
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------------------------- Ray Tune
def _run_ray(spec: StudySpec, deadline: float | None, address: str | None,
             show_progress: bool, log: Callable[[str], None]) -> None:
    """The study on Ray Tune: ``OptunaSearch`` on the study's storage and sampler, a scheduler
    for the pruner, one trial per Ray actor."""
    # Ray's own TensorBoard logger would add a run per trial to the study's TensorBoard
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from benchmarks.backends import _init_ray, check_ray_address

    again = requeue_interrupted(spec)
    if again:
        log(f"trials {', '.join(map(str, again))} were interrupted: running them again")
    study = load(spec)
    remaining = target(spec) - counted(study)
    if remaining <= 0:
        return
    started = not ray.is_initialized()
    if started:
        try:
            _init_ray(ray, check_ray_address(address))
        except ConnectionError as err:
            raise TuneError(str(err)) from None

    class Search(OptunaSearch):
        """Ray's OptunaSearch; a trial stopped by the scheduler is pruned, not complete."""

        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:
            if result and not result.get("finished"):
                result = {k: v for k, v in result.items() if k != self.metric}
            super().on_trial_complete(trial_id, result, error)

    mode = "max" if spec.direction == "maximize" else "min"
    searcher = Search(space=_RaySpace(spec), metric="objective", mode=mode,
                      sampler=make_sampler(spec, seed=len(study.get_trials(deepcopy=False))),
                      study_name=STUDY_NAME, storage=storage(spec))
    # max_t one past the last intermediate position: the scheduler never stops a trial that
    # reached its budget before it wrote its result
    grace, total = spec.grace, spec.budget + 1
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    scheduler = {
        "none": lambda: FIFOScheduler(),
        "median": lambda: MedianStoppingRule(time_attr="position", grace_period=grace,
                                             min_samples_required=5),
        "halving": lambda: ASHAScheduler(time_attr="position", max_t=total, grace_period=grace,
                                         reduction_factor=3, brackets=1),
        "hyperband": lambda: ASHAScheduler(time_attr="position", max_t=total,
                                           grace_period=grace, reduction_factor=3, brackets=3),
    }[spec.pruner]()
    bar = _Bar(spec, study, show_progress)

    class Progress(tune.Callback):
        """The bar over finished trials, in the driver."""

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            bar.update(study)

        on_trial_error = on_trial_complete

    resources = {"cpu": 1, "gpu": 1 if spec.device == "cuda" else 0}
    trainable = tune.with_resources(tune.with_parameters(_ray_trainable, spec=spec), resources)
    time_budget = None if deadline is None else max(1.0, deadline - time.time())
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=remaining, time_budget_s=time_budget,
                                    max_concurrent_trials=spec.workers,
                                    metric="objective", mode=mode),
        run_config=tune.RunConfig(name="ray", storage_path=str(Path(spec.study_dir)),
                                  verbose=0, callbacks=[JsonLoggerCallback(),
                                                        CSVLoggerCallback(), Progress()]),
    )
    try:
        tuner.fit()
        bar.update(study)
    finally:
        bar.close()
        if started:
            ray.shutdown()


class _RaySpace:
    """OptunaSearch's define-by-run space: sample, resolve, name the folder (picklable)."""

    def __init__(self, spec: StudySpec):
        self.spec = spec

    def __call__(self, trial: Any) -> dict[str, Any]:
        values, number, resume = sample(self.spec, trial)
        return {"umbra_values": values, "umbra_number": number, "umbra_resume": resume}


def _ray_trainable(config: dict[str, Any], spec: StudySpec) -> None:
    """A Ray Tune function trainable: one trial's seeds, reporting to Ray's scheduler."""
    from ray import tune

    def report(value: float, position: int) -> bool:
        tune.report({"objective": value, "position": position})
        return False  # Ray's scheduler stops the actor itself

    value, scores = run_seeds(spec, config["umbra_values"], config["umbra_number"],
                              config["umbra_resume"], report)
    tune.report({"objective": value, "position": spec.budget + 1,
                 "finished": True})


# ---------------------------------------------------------------------------------- outputs
def finish(spec: StudySpec, *, eval_seeds: int, backend: str = "local",
           address: str | None = None, show_progress: bool = True,
           log: Callable[[str], None] = print) -> StudySummary:
    """After the study: ``best.toml``, the re-evaluation and ``report.md``."""
    from optuna.trial import TrialState

    study = load(spec)
    trials = study.get_trials(deepcopy=False)
    study_dir = Path(spec.study_dir)
    summary = StudySummary(
        study_dir, spec.direction,
        complete=sum(t.state == TrialState.COMPLETE for t in trials),
        pruned=sum(t.state == TrialState.PRUNED for t in trials),
        failed=sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
                   for t in trials))
    best = _best(spec, trials)
    if best is not None:
        summary.best_trial, summary.best_value = best.number, best.value
        summary.best_params = dict(best.params)
        summary.best_config = best_config(spec, best)
        summary.best_file = write_best(spec, best)
        if eval_seeds:
            summary.evaluation = evaluate_best(spec, best, eval_seeds, backend=backend,
                                               address=address, show_progress=show_progress)
    summary.report = write_report(spec, study, summary)
    return summary


def _best(spec: StudySpec, trials: Sequence[Any]) -> Any:
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    pick = max if spec.direction == "maximize" else min
    return pick(complete, key=lambda t: (t.value, -t.number) if pick is max
                else (t.value, t.number))


def best_config(spec: StudySpec, best: Any) -> dict[str, Any]:
    """The config keys of the best trial: ``--set`` then its resolved values, less the keys
    that only say where it ran."""
    keys = {**spec.overrides, **best.user_attrs.get("config", best.params)}
    return {k: v for k, v in keys.items() if k.split(".")[0] not in _RUNTIME_KEYS}


def write_best(spec: StudySpec, best: Any, path: Path | None = None) -> Path:
    """Write the best trial as an agent file (:func:`agents.presets.read_agent_file`)."""
    from agents.presets import is_agent_file, read_agent_file

    base, config = spec.agent, best_config(spec, best)
    if is_agent_file(spec.agent):  # tuned from an agent file: keep its base and its config
        inherited = read_agent_file(spec.agent)
        base, config = inherited.agent, {**inherited.config, **config}
    path = path or Path(spec.study_dir) / BEST_FILE
    lines = [
        f"# The best trial of the study in {spec.study_dir}",
        f"# (python -m benchmarks.tune): trial {best.number}, {spec.metric} {best.value:.6g}, "
        f"mean over seeds {_seeds_text(spec.seeds)} at {spec.steps:,} steps.",
        f"# Use it as an agent: python -m benchmarks.run --env {spec.env_id} --agent {path}",
        f"agent = {_toml(base)}",
        "",
        "[config]",
        *(f"{_toml_key(key)} = {_toml(value)}" for key, value in sorted(config.items())),
        "",
        "[tuned]",
        f"env = {_toml(spec.env_id)}",
        f"metric = {_toml(spec.metric)}",
        f"value = {_toml(float(best.value))}",
        f"trial = {best.number}",
        f"steps = {spec.steps}",
        f"seeds = {_toml(spec.seeds)}",
        f"from = {_toml(spec.agent)}",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def evaluate_best(spec: StudySpec, best: Any, eval_seeds: int, *, backend: str = "local",
                  address: str | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Train the best config and the agent's preset on ``eval_seeds`` fresh seeds at the study's
    budget (both with ``--set``), under ``<study>/eval/``; compare them.

    Returns:
        ``seeds``, per agent label its ``scores`` and ``iqm`` interval, and
        ``p_improvement`` (the tuned config beats the preset; for a minimised metric,
        lower is better) with its interval; ``failed`` lists runs that failed.
    """
    from benchmarks.backends import ProcessBackend, RayBackend

    study_dir = Path(spec.study_dir)
    eval_root = study_dir / "eval"
    eval_root.mkdir(parents=True, exist_ok=True)
    tuned_file = eval_root / f"{trial_folder(best.number)}.toml"
    write_best(spec, best, tuned_file)
    seeds = list(range(EVAL_SEED_START, EVAL_SEED_START + eval_seeds))
    labels = {str(tuned_file): "tuned", spec.agent: "preset"}
    trials = [Trial(env_id=spec.env_id, agent=agent, seed=seed, steps=spec.steps)
              for agent in labels for seed in seeds]
    overrides = {k: v for k, v in spec.overrides.items()}
    configs = runner.check_trials(trials, device=spec.device, stop_at_return=spec.threshold,
                                  overrides=overrides)
    chosen = None
    if backend == "ray":
        chosen = RayBackend(address, gpus_per_trial=1.0 if spec.device == "cuda" else 0.0)
    elif spec.workers > 1:
        chosen = ProcessBackend(min(spec.workers, len(trials)))
    outcomes = runner.run_trials(trials, configs, root=study_dir, suite="eval", resume=True,
                                 show_progress=show_progress, log=lambda line: None,
                                 backend=chosen)
    scores: dict[str, list[float]] = {label: [] for label in EVAL_LABELS}
    failed = []
    for outcome in outcomes:
        label = labels[outcome.trial.agent]
        score = (seed_score(spec.metric, outcome.result or {}, outcome.logdir)
                 if outcome.status != "failed" else None)
        if score is None:
            failed.append(f"{label} seed{outcome.trial.seed}: "
                          + ((outcome.error or "no score").strip().splitlines() or [""])[-1])
        else:
            scores[label].append(float(score))
    result: dict[str, Any] = {"seeds": seeds, "tuning_seeds": spec.seeds, "failed": failed,
                              "trial": best.number}
    for label, values in scores.items():
        result[label] = {"scores": values,
                         "iqm": stats.bootstrap_interval(values, stats.iqm) if values else None}
    if scores["tuned"] and scores["preset"]:
        sign = 1.0 if spec.direction == "maximize" else -1.0
        result["p_improvement"] = stats.probability_of_improvement_interval(
            sign * np.asarray(scores["tuned"]), sign * np.asarray(scores["preset"]))
    return result


def importances(study: Any) -> dict[str, float] | str:
    """Optuna's parameter importances (PED-ANOVA by default), or why there are none."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return (f"not enough trials: importances need at least 2 completed trials with "
                f"different values ({len(complete)} completed)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError) as err:
        return f"Optuna could not compute importances for this study: {err}"


def plot_history(study: Any, spec: StudySpec, path: Path) -> Path | None:
    """The optimisation history: every trial's value (pruned ones at their last report) and
    the best so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE]
    pruned = [(t.number, t.intermediate_values[max(t.intermediate_values)])
              for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if not complete and not pruned:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if complete:
        ax.scatter(*zip(*complete, strict=True), label="complete", color="tab:blue", zorder=3)
        best, line = None, []
        better = (lambda a, b: a > b) if spec.direction == "maximize" else (lambda a, b: a < b)
        for number, value in sorted(complete):
            best = value if best is None or better(value, best) else best
            line.append((number, best))
        ax.step(*zip(*line, strict=True), where="post", color="tab:red", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), marker="x", color="grey",
                   label="pruned (last report)")
    ax.set_xlabel("trial")
    ax.set_ylabel(spec.metric)
    ax.set_title(f"{spec.agent} on {spec.env_id}: optimisation history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(spec: StudySpec, study: Any, summary: StudySummary) -> Path:
    """``report.md`` (with ``history.png``) in the study folder."""
    from optuna.trial import TrialState

    study_dir = Path(spec.study_dir)
    trials = study.get_trials(deepcopy=False)
    lines = [f"# Tuning {spec.agent} on {spec.env_id}", "",
             f"- metric: **{spec.metric}** ({spec.direction}), mean over tuning seeds "
             f"{_seeds_text(spec.seeds)}, {spec.steps:,} "
             f"{'epochs' if is_graph_task(spec.env_id) else 'steps'} per seed"
             + (f", threshold {spec.threshold}" if spec.threshold is not None else ""),
             f"- sampler {_name(spec.sampler)}, pruner {_pruner_text(spec)}; trials: "
             f"{summary.complete} complete, {summary.pruned} pruned, {summary.failed} failed",
             f"- space ({', '.join(spec.space.sources) or '--set'}): "
             + ", ".join(f"`{name}`" for name in spec.space.params)
             + (f"; fixed by --set: {', '.join(spec.space.dropped)}" if spec.space.dropped
                else ""),
             f"- study: `{STORAGE_FILE}` (Optuna JournalStorage); runs: "
             f"`tensorboard --logdir {study_dir}`", ""]
    if summary.best_trial is None:
        lines += ["No trial completed: nothing to report as best.", ""]
    else:
        best = next(t for t in trials if t.number == summary.best_trial)
        lines += ["## Best trial", "",
                  f"Trial {best.number} ({best.user_attrs.get('folder', '')}/): "
                  f"{spec.metric} **{best.value:.6g}** (seeds: "
                  f"{', '.join(f'{s:.4g}' for s in best.user_attrs.get('scores', []))}). "
                  f"As an agent: `--agent {summary.best_file}`.", "",
                  "| key | value |", "| --- | --- |",
                  *(f"| `{k}` | {_cell(v)} |" for k, v in summary.best_config.items()), ""]
        resolved = best.user_attrs.get("resolved")
        if resolved:
            lines += ["Resolved to fit the constraints (sampled -> used): "
                      + ", ".join(f"`{k}` {a} -> {b}" for k, (a, b) in resolved.items()), ""]
    lines += _top_trials(spec, trials)
    plot = plot_history(study, spec, study_dir / HISTORY_PLOT)
    if plot is not None:
        lines += ["## Optimisation history", "", f"![optimisation history]({HISTORY_PLOT})", ""]
    found = importances(study)
    lines += ["## Parameter importances", ""]
    if isinstance(found, str):
        lines += [found, ""]
    else:
        lines += ["Optuna's `get_param_importances` (PED-ANOVA), normalised to sum to 1.", "",
                  "| parameter | importance |", "| --- | --- |",
                  *(f"| `{k}` | {v:.3f} |" for k, v in found.items()), ""]
    lines += _evaluation_lines(spec, summary.evaluation)
    path = study_dir / REPORT_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    _ = TrialState  # (imported for readers of the states above)
    return path


def _top_trials(spec: StudySpec, trials: Sequence[Any], top: int = 10) -> list[str]:
    from optuna.trial import TrialState

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    complete.sort(key=lambda t: t.value, reverse=spec.direction == "maximize")
    if not complete:
        return []
    names = list(spec.space.params)
    lines = [f"## Top trials ({min(top, len(complete))} of {len(complete)} complete)", "",
             "| trial | " + spec.metric + " | " + " | ".join(f"`{n}`" for n in names) + " |",
             "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    for t in complete[:top]:
        used = t.user_attrs.get("config", t.params)
        lines.append(f"| {t.number} | {t.value:.4g} | "
                     + " | ".join(_cell(used.get(n)) for n in names) + " |")
    return [*lines, ""]


def _evaluation_lines(spec: StudySpec, evaluation: dict[str, Any]) -> list[str]:
    if not evaluation:
        return []
    lines = ["## Re-evaluation on fresh seeds", "",
             f"The best config (trial {evaluation['trial']}) and the preset of `{spec.agent}` "
             "(what `--agent` gives on this task, including any entry tuned for it before) at "
             f"the same budget ({spec.steps:,} per run, `--set` for both), on seeds "
             f"{_seeds_text(evaluation['seeds'])}: never used while tuning (tuning used seeds "
             f"{_seeds_text(evaluation['tuning_seeds'])}). Runs in `eval/`. IQM across seeds "
             "with its 95% stratified-bootstrap interval.", "",
             f"| agent | runs | IQM {spec.metric} [95% CI] | scores |", "| --- | --- | --- | --- |"]
    for label in EVAL_LABELS:
        entry = evaluation[label]
        iqm = entry["iqm"].format(2) if entry["iqm"] is not None else "n/a"
        lines.append(f"| {label} | {len(entry['scores'])} | {iqm} | "
                     + ", ".join(f"{s:.4g}" for s in entry["scores"]) + " |")
    lines.append("")
    if "p_improvement" in evaluation:
        p = evaluation["p_improvement"]
        better = "higher" if spec.direction == "maximize" else "lower"
        lines += [f"P(improvement) = P(tuned run scores {better} than a preset run): "
                  f"**{p.format(2)}** (0.5: no difference; meaningful when the lower bound "
                  "exceeds 0.5).", ""]
    if evaluation.get("failed"):
        lines += ["Failed runs: " + "; ".join(evaluation["failed"]), ""]
    return lines


# ---------------------------------------------------------------------------------- helpers
def _toml(value: Any) -> str:
    """A TOML literal for a config value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if value is None:
        raise ValueError("TOML has no null: leave the key out")
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    """A bare or dotted TOML key (``core_kwargs.window`` is a key of the table core_kwargs)."""
    import re

    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
                    for part in key.split("."))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _seeds_text(seeds: Sequence[int]) -> str:
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _name(thing: Any) -> str:
    return thing if isinstance(thing, str) else type(thing).__name__


def _pruner_text(spec: StudySpec) -> str:
    """The pruner's name, with the steps before which it prunes nothing where it prunes."""
    pruning = spec.pruning()
    if pruning["grace"] is None:
        return pruning["pruner"]
    return f"{pruning['pruner']} (grace {pruning['grace']:,} steps)"


def _difference(key: str, old: Any, new: Any) -> str:
    """One difference between a recorded study and the command: the parameters that differ
    for the space and ``--set``, the values otherwise."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
        each = "; ".join(f"{k}: {_short(old.get(k))} there, {_short(new.get(k))} now"
                         for k in keys[:3])
        return f"{key} differs in {', '.join(keys)} ({each})"
    return f"{key}: {_short(old)} there, {_short(new)} now"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _close(word: str, options: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(word), list(options), n=2)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tune",
        description="Hyperparameter search for one agent on one environment with Optuna "
        "(locally or on Ray Tune): every trial a normal run folder, then best.toml (an agent "
        "file), a re-evaluation on fresh seeds and report.md in "
        "<logdir>/tune/<env>/<agent>/<study>/.")
    parser.add_argument("--env", required=True, metavar="ID",
                        help="environment id (umbra/CartPole-v0, a Gymnasium id...) or a "
                        "graph-learning task (graphs/SBM)")
    parser.add_argument("--agent", default="ppo", help="agent: an Umbra preset, sb3-ppo, "
                        "sb3-recurrent-ppo or an agent file (best.toml) (default: ppo)")
    parser.add_argument("--trials", type=int, default=20, metavar="N",
                        help="finished trials (complete, pruned or failed) (default: 20)")
    parser.add_argument("--steps", type=int, default=50_000, metavar="S",
                        help="budget per seed: environment steps, epochs for a graph-learning "
                        "task (default: 50000)")
    parser.add_argument("--sampler", default="tpe", help=f"{', '.join(SAMPLERS)} (default: tpe, "
                        "Bayesian optimisation)")
    parser.add_argument("--pruner", default="hyperband", help=f"{', '.join(PRUNERS)} (default: "
                        "hyperband; with tpe the BOHB-style pairing)")
    parser.add_argument("--grace-steps", type=int, metavar="G",
                        help="no trial is pruned before it has trained G steps (over its seeds; "
                        "default: steps/20 for hyperband and halving, steps/5 for median)")
    parser.add_argument("--metric", default="final_return",
                        help=f"{', '.join(METRICS)} (default: final_return)")
    parser.add_argument("--threshold", type=float, metavar="R",
                        help="return that --metric time_to_threshold waits for")
    parser.add_argument("--seeds-per-trial", type=int, default=1, metavar="K",
                        help="seeds per trial, from --first-seed on; its value is their mean "
                        "(default: 1)")
    parser.add_argument("--first-seed", type=int, default=0, metavar="S",
                        help="the first tuning seed (default: 0); choose one apart from the seeds "
                        "that will evaluate the result (a suite's seeds = 3 runs 0-2)")
    parser.add_argument("--space", metavar="FILE.toml",
                        help="search space file; extends the agent's default space (replace = "
                        "true in the file replaces it); see benchmarks/tune_space.py")
    parser.add_argument("--workers", type=int, default=1, metavar="W",
                        help="local processes sharing the study (with --backend ray: concurrent "
                        "trials) (default: 1)")
    parser.add_argument("--backend", default="local", choices=("local", "ray"),
                        help="local processes (default) or Ray Tune")
    parser.add_argument("--address", metavar="ADDR",
                        help="the Ray cluster for --backend ray (default: RAY_ADDRESS, else a "
                        "new local instance)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the study in the folder (interrupted trials run again)")
    parser.add_argument("--logdir", default="runs", metavar="DIR",
                        help="root of the run folders (default: runs)")
    parser.add_argument("--study", default="study", metavar="NAME",
                        help="the study's folder name (default: study)")
    parser.add_argument("--timeout", type=float, metavar="T",
                        help="start no new trial after T seconds")
    parser.add_argument("--eval-seeds", type=int, default=5, metavar="E",
                        help=f"re-evaluate the best config and the agent's preset on E fresh "
                        f"seeds ({EVAL_SEED_START}..) (default: 5; 0: skip)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"),
                        help="where training runs (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="fix a config key for every trial, as in "
                        "python -m benchmarks.run (a fixed key is not searched); repeatable")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 done, 1 no trial completed, 2 bad input,
    130 interrupted)."""
    from benchmarks.run import UsageError, parse_overrides

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        summary = tune(args.env, args.agent, trials=args.trials, steps=args.steps,
                       sampler=args.sampler, pruner=args.pruner, metric=args.metric,
                       seeds_per_trial=args.seeds_per_trial, first_seed=args.first_seed,
                       space=args.space,
                       workers=args.workers, backend=args.backend, resume=args.resume,
                       logdir=args.logdir, study=args.study, timeout=args.timeout,
                       eval_seeds=args.eval_seeds, threshold=args.threshold,
                       overrides=parse_overrides(args.overrides), device=args.device,
                       address=args.address, grace_steps=args.grace_steps,
                       show_progress=not args.no_progress)
    except (TuneError, UsageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are kept in the study; continue it with the same "
              "command plus --resume", file=sys.stderr)
        return 130
    print(f"\n{summary.complete} complete, {summary.pruned} pruned, {summary.failed} failed")
    if summary.best_trial is None:
        print(f"no trial completed; report: {summary.report}", file=sys.stderr)
        return 1
    print(f"best: trial {summary.best_trial}, {args.metric} {summary.best_value:.6g}")
    for key, value in summary.best_config.items():
        print(f"  {key} = {value!r}")
    evaluation = summary.evaluation
    if evaluation:
        for label in EVAL_LABELS:
            iqm = evaluation[label]["iqm"]
            print(f"re-evaluation, {label}: IQM {iqm.format(2) if iqm else 'n/a'} over seeds "
                  f"{_seeds_text(evaluation['seeds'])}")
        if "p_improvement" in evaluation:
            print(f"P(improvement) {evaluation['p_improvement'].format(2)}")
    print(f"agent file: {summary.best_file}\nreport: {summary.report}\ncurves: tensorboard "
          f"--logdir {summary.study_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
