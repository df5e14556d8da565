"""BenchMARL's MAPPO beside Umbra's ``mappo`` on VMAS, at equal frames.

``python -m benchmarks.benchmarl_reference [--scenarios navigation balance] [--frames F]
[--seeds 3] [--logdir DIR]`` trains, for every scenario and seed, BenchMARL's MAPPO
(:func:`run_benchmarl`) and Umbra's ``mappo`` preset (:func:`run_umbra`) on the same VMAS
scenario with the same scenario parameters, episode horizon (``max_steps``), number of parallel
environments and frame budget, one run after the other on the CPU with the same torch thread
count, and writes ``report.md`` and ``benchmarl_reference.json`` into the log folder: per-seed
returns, IQM [95% CI] per framework and scenario (:mod:`benchmarks.stats`), wall-clock, frames/s,
the ratio of frames/s and the exact versions.

What each side runs:

- BenchMARL: algorithm MAPPO with BenchMARL's own ``mappo`` config, model ``layers/mlp`` for
  actor and critic, task ``vmas/<scenario>`` with BenchMARL's task config
  (:data:`BENCHMARL_VMAS_TASKS`), and the experiment config of BenchMARL's fine-tuned VMAS
  configuration (:data:`FINE_TUNED_VMAS`) scaled to a CPU budget by :func:`scaled_experiment`.
- Umbra: the ``mappo`` preset (:mod:`agents.presets`) through :func:`benchmarks.runner.run_trial`
  on ``vmas:<scenario>`` with the same scenario kwargs and ``num_envs``; the rest of its config is
  the preset's own (each framework keeps its own hyperparameters).

Return at equal frames: both frameworks count a frame as one step of one VMAS environment copy
(all agents of the copy together), and both report an episode's return as the mean over agents of
each agent's summed reward (BenchMARL's ``collection/reward/episode_reward_mean``, Umbra's
``episode_return``). The score of a run is the mean return of the last ``n_envs`` episodes that
finished during training (for BenchMARL: the episodes of its last collected batch, which holds
exactly one episode per environment, since a batch is ``n_envs * max_steps`` frames). BenchMARL's
periodic evaluation is off (it needs a logger and costs time); both scores are training returns.

Installation: BenchMARL 1.5.2 declares ``torchvision`` and ``av<14``, which it does not import for
MAPPO on VMAS, and PyPI's torchvision does not import beside this project's torch, so BenchMARL is
installed without its dependencies next to the ``benchmarl`` extra (torchrl, tensordict, hydra,
vmas), with torch held by ``constraints.txt``: see :data:`INSTALL_COMMAND`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import stats

INSTALL_COMMAND = (
    'pip install -c constraints.txt -e ".[benchmarl]" && '
    "pip install --no-deps -c constraints.txt benchmarl"
)

#: BenchMARL's fine-tuned VMAS experiment config, transcribed from
#: ``fine_tuned/vmas/conf/config.yaml`` of https://github.com/facebookresearch/BenchMARL at commit
#: f1688561a0063fdab3440f544351aa64fb1194fc ("[Fine-tune] Restore VMAS gamma", the file's last
#: change; unchanged at 179a956, the newest commit read). That file's defaults are
#: ``experiment: base_experiment``, ``model: layers/mlp``, ``model@critic_model: layers/mlp``
#: (algorithm and task given on the command line); it lists only the experiment fields below.
#: The off-policy fields do not apply to MAPPO and are kept for a faithful transcription.
FINE_TUNED_VMAS: dict[str, Any] = {
    "sampling_device": "cuda",
    "train_device": "cuda",
    "buffer_device": "cuda",
    "share_policy_params": True,
    "prefer_continuous_actions": True,
    "gamma": 0.9,
    "lr": 0.00005,
    "clip_grad_norm": True,
    "clip_grad_val": 5,
    "soft_target_update": True,
    "polyak_tau": 0.005,
    "hard_target_update_frequency": 5,
    "exploration_eps_init": 0.8,
    "exploration_eps_end": 0.01,
    "exploration_anneal_frames": 1_000_000,
    "max_n_iters": None,
    "max_n_frames": 10_000_000,
    "on_policy_collected_frames_per_batch": 60_000,
    "on_policy_n_envs_per_worker": 600,
    "on_policy_n_minibatch_iters": 45,
    "on_policy_minibatch_size": 4096,
    "off_policy_collected_frames_per_batch": 6000,
    "off_policy_n_envs_per_worker": 60,
    "off_policy_n_optimizer_steps": 1000,
    "off_policy_train_batch_size": 128,
    "off_policy_memory_size": 1_000_000,
    "evaluation": True,
    "render": True,
    "evaluation_interval": 120_000,
    "evaluation_episodes": 200,
    "loggers": ["wandb"],
    "create_json": True,
    "save_folder": None,
    "restore_file": None,
    "checkpoint_interval": 0,
}
FINE_TUNED_SOURCE = ("facebookresearch/BenchMARL fine_tuned/vmas/conf/config.yaml "
                     "@ f1688561a0063fdab3440f544351aa64fb1194fc")

#: BenchMARL 1.5.2's task configs (``benchmarl/conf/task/vmas/<scenario>.yaml``): the VMAS
#: scenario kwargs both frameworks get. ``max_steps`` is the episode horizon.
BENCHMARL_VMAS_TASKS: dict[str, dict[str, Any]] = {
    "navigation": {
        "max_steps": 100, "n_agents": 3, "collisions": True, "agents_with_same_goal": 1,
        "split_goals": False, "observe_all_goals": False, "shared_rew": False,
        "lidar_range": 0.35, "agent_radius": 0.1,
    },
    "balance": {
        "max_steps": 100, "n_agents": 4, "random_package_pos_on_line": True, "package_mass": 5,
    },
}
SCENARIOS = tuple(BENCHMARL_VMAS_TASKS)

#: Frames per collected batch on the CPU: the fine-tuned 60,000 scaled by 1/10 (60 environments
#: of 100 steps, minibatches of 410 frames; see :func:`scaled_experiment`).
DEFAULT_FRAMES_PER_BATCH = 6_000
#: Default frame budget per run (BenchMARL's ``max_n_frames``, Umbra's ``total_steps``); see the
#: README for the time it takes.
DEFAULT_FRAMES = 60_000
DEFAULT_SEEDS = 3
DEFAULT_LOGDIR = "runs/benchmarl_reference"
#: Torch intra-op threads of every BenchMARL run: Umbra's trials run with
#: :data:`benchmarks.runner.TRIAL_THREADS` (1), tests/benchmarks checks that they agree.
THREADS = 1
JSON_FILE = "benchmarl_reference.json"
REPORT_FILE = "report.md"
#: Distributions whose versions the report records.
VERSIONED = ("torch", "benchmarl", "torchrl", "tensordict", "vmas", "hydra-core", "omegaconf",
             "numpy")


class BenchMARLMissing(RuntimeError):
    """BenchMARL (or torchrl) is not importable; the message says how to install it."""


def require_benchmarl() -> None:
    """Raise :class:`BenchMARLMissing` with the install command unless BenchMARL imports."""
    try:
        import benchmarl  # noqa: F401
        import torchrl  # noqa: F401
    except ImportError as err:
        raise BenchMARLMissing(
            f"BenchMARL is not installed ({err}). Install it, without changing torch, from the "
            f"repository root with:\n    {INSTALL_COMMAND}"
        ) from err


# ---------------------------------------------------------------------------------- configs
def scaled_experiment(
    frames: int,
    *,
    frames_per_batch: int = DEFAULT_FRAMES_PER_BATCH,
    max_steps: int = 100,
    save_folder: str | None = None,
    csv: bool = True,
) -> dict[str, Any]:
    """The fine-tuned VMAS experiment config scaled to ``frames`` on the CPU.

    Scaling: ``s = frames_per_batch / 60,000``. The collected batch is ``frames_per_batch``
    frames from ``frames_per_batch / max_steps`` environments (600 * s: one full episode per
    environment per batch, as the fine-tuned 60,000 frames of 600 environments of 100 steps);
    the minibatch is ``round(4096 * s)`` frames, so that a batch still splits into about 14.6
    minibatches, and the 45 epochs (``on_policy_n_minibatch_iters``) are kept: the optimizer
    steps per collected frame are the fine-tuned ones. Learning rate, gamma, clipping and the
    rest are unchanged. ``max_n_frames`` is ``frames`` rounded up to whole batches.

    CPU and bookkeeping changes: every device ``cpu``; no rendering, no periodic evaluation (it
    needs a logger; the return is read from the collected batches), ``loggers`` csv (into
    ``save_folder``, where BenchMARL also writes its ``config.pkl``) or none when not ``csv``,
    no marl-eval JSON, no checkpoints.

    Raises:
        ValueError: a budget or batch that is not positive, or a batch that is not a whole number
            of episodes of ``max_steps``.
    """
    if frames <= 0 or frames_per_batch <= 0 or max_steps <= 0:
        raise ValueError(f"frames ({frames}), frames_per_batch ({frames_per_batch}) and "
                         f"max_steps ({max_steps}) must be positive")
    if frames_per_batch % max_steps:
        raise ValueError(f"frames_per_batch ({frames_per_batch}) must be a multiple of "
                         f"max_steps ({max_steps}): one whole episode per environment per batch")
    tuned = FINE_TUNED_VMAS
    scale = frames_per_batch / tuned["on_policy_collected_frames_per_batch"]
    config = dict(tuned)
    config.update(
        sampling_device="cpu", train_device="cpu", buffer_device="cpu",
        max_n_frames=math.ceil(frames / frames_per_batch) * frames_per_batch,
        on_policy_collected_frames_per_batch=frames_per_batch,
        on_policy_n_envs_per_worker=frames_per_batch // max_steps,
        on_policy_minibatch_size=max(1, round(tuned["on_policy_minibatch_size"] * scale)),
        render=False, evaluation=False, create_json=False,
        loggers=["csv"] if csv else [],
        save_folder=save_folder, checkpoint_interval=0, checkpoint_at_end=False,
    )
    return config


def task_kwargs(scenario: str) -> dict[str, Any]:
    """BenchMARL's task config of ``scenario`` (a copy), or a ValueError naming the scenarios."""
    if scenario not in BENCHMARL_VMAS_TASKS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    return dict(BENCHMARL_VMAS_TASKS[scenario])


def umbra_settings(scenario: str, frames: int, seed: int,
                   frames_per_batch: int = DEFAULT_FRAMES_PER_BATCH) -> dict[str, Any]:
    """The Umbra trial's fields: ``env_id``, ``num_envs``, ``steps``, ``seed``, ``env_kwargs``.

    ``num_envs`` is BenchMARL's number of environments (:func:`scaled_experiment`), ``steps`` the
    same budget rounded up to BenchMARL's whole batches, ``env_kwargs`` the task config with its
    ``max_steps``; the preset's other fields (rollout length, learning rate...) are its own.
    """
    kwargs = task_kwargs(scenario)
    experiment = scaled_experiment(frames, frames_per_batch=frames_per_batch,
                                   max_steps=kwargs["max_steps"])
    kwargs["continuous_actions"] = FINE_TUNED_VMAS["prefer_continuous_actions"]
    return {"env_id": f"vmas:{scenario}", "num_envs": experiment["on_policy_n_envs_per_worker"],
            "steps": experiment["max_n_frames"], "seed": seed, "env_kwargs": kwargs}


def final_score(returns: Sequence[float], n_envs: int) -> float | None:
    """Mean of the last ``n_envs`` episode returns (all of them if fewer); None if none."""
    tail = list(returns)[-n_envs:]
    return float(np.mean(tail)) if tail else None


# ---------------------------------------------------------------------------------- runs
class RecordReturns:
    """A BenchMARL callback (its hooks, duck-typed so that this module imports without
    BenchMARL): ``experiment.mean_return`` and the frames after every collected batch.

    Module-level and picklable without its experiment: BenchMARL pickles its callbacks into the
    experiment folder's ``config.pkl``.
    """

    def __init__(self) -> None:
        self.experiment: Any = None
        self.curve: list[tuple[int, float]] = []

    def __getstate__(self) -> dict[str, Any]:
        return {"curve": self.curve}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.experiment = None
        self.curve = state["curve"]

    def on_batch_collected(self, batch: Any) -> None:
        self.curve.append((int(self.experiment.total_frames), float(self.experiment.mean_return)))

    def on_setup(self) -> None: ...
    def on_load_state_dict(self, state_dict: dict[str, Any]) -> None: ...
    def on_train_step(self, batch: Any, group: str) -> Any:
        return None
    def on_train_end(self, training_td: Any, group: str) -> None: ...
    def on_evaluation_end(self, rollouts: Any) -> None: ...
    def on_state_dict(self, state_dict: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    """One training run of one framework."""

    framework: str
    scenario: str
    seed: int
    frames: int
    wall_time_s: float
    fps: float
    score: float | None
    curve: list[tuple[int, float]]
    """``(frames, mean return of the episodes finished in that batch)`` per batch."""

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "scenario": self.scenario, "seed": self.seed,
                "frames": self.frames, "wall_time_s": self.wall_time_s, "fps": self.fps,
                "score": self.score, "curve": [list(point) for point in self.curve]}


def run_benchmarl(scenario: str, frames: int, seed: int, folder: str | Path, *,
                  frames_per_batch: int = DEFAULT_FRAMES_PER_BATCH,
                  csv: bool = True) -> RunResult:
    """Train BenchMARL's MAPPO on ``vmas/<scenario>`` for ``frames`` frames on the CPU.

    The experiment config is :func:`scaled_experiment`'s (BenchMARL's CSV logger writes into
    ``folder`` when ``csv``); the algorithm is BenchMARL's default ``mappo`` config, actor and
    critic BenchMARL's ``layers/mlp``, the task BenchMARL's ``vmas/<scenario>`` config. A callback
    records ``experiment.mean_return`` and the frames after every collected batch. The wall-clock
    counts :meth:`Experiment.run` (model and environments already built), as Umbra's does.
    """
    require_benchmarl()
    import torch
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import VmasTask
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    task = VmasTask[scenario.upper()].get_from_yaml()
    if dict(task.config) != task_kwargs(scenario):
        raise RuntimeError(f"BenchMARL's vmas/{scenario} config {dict(task.config)} differs from "
                           f"the transcribed {task_kwargs(scenario)}; update "
                           "BENCHMARL_VMAS_TASKS")
    config = ExperimentConfig.get_from_yaml()
    values = scaled_experiment(frames, frames_per_batch=frames_per_batch,
                               max_steps=task.config["max_steps"],
                               save_folder=str(folder.resolve()), csv=csv)
    for key, value in values.items():
        if not hasattr(config, key):
            raise RuntimeError(f"BenchMARL's ExperimentConfig has no field {key!r}")
        setattr(config, key, value)

    record = RecordReturns()
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    # torchrl turns torch's distribution argument validation off when imported; an Umbra run in
    # between turns it back on (Pyro's enable_validation), and torchrl 0.11's TanhNormal.support
    # then fails (it calls constraints.real, an instance). Run BenchMARL as torchrl expects.
    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        experiment = Experiment(task=task, algorithm_config=MappoConfig.get_from_yaml(),
                                model_config=MlpConfig.get_from_yaml(),
                                critic_model_config=MlpConfig.get_from_yaml(),
                                seed=seed, config=config, callbacks=[record])
        start = time.perf_counter()
        experiment.run()
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
        torch.distributions.Distribution.set_default_validate_args(validate)
    total = int(experiment.total_frames)
    # The last batch holds one finished episode per environment (a batch is n_envs * max_steps
    # frames), so its mean return is the mean of the last n_envs episodes.
    last = record.curve[-1][1] if record.curve else float("nan")
    return RunResult("benchmarl", scenario, seed, total, wall, total / max(wall, 1e-9),
                     None if math.isnan(last) else last, record.curve)


def run_umbra(scenario: str, frames: int, seed: int, folder: str | Path, *,
              frames_per_batch: int = DEFAULT_FRAMES_PER_BATCH,
              agent: str = "mappo") -> RunResult:
    """Train Umbra's ``agent`` preset on ``vmas:<scenario>`` (:func:`umbra_settings`).

    Runs through :func:`benchmarks.runner.run_trial` into ``folder`` (its ``result.json``,
    TensorBoard events), CPU, :data:`benchmarks.runner.TRIAL_THREADS` threads. The score is the
    mean of the last ``num_envs`` finished episodes, read from the trial's update hook.
    """
    from benchmarks import runner
    from benchmarks.suites import Trial

    settings = umbra_settings(scenario, frames, seed, frames_per_batch)
    trial = Trial(env_id=settings["env_id"], agent=agent, seed=seed, steps=settings["steps"],
                  num_envs=settings["num_envs"], env_kwargs=settings["env_kwargs"])
    config = runner.build_config(trial, device="cpu", overrides={"checkpoint_every": 0})
    returns: list[float] = []
    curve: list[tuple[int, float]] = []

    def on_update(step: int, info: dict[str, Any]) -> None:
        finished = info.get("episode_returns") or []
        returns.extend(float(r) for r in finished)
        if finished:
            curve.append((int(step), float(np.mean(finished))))

    outcome = runner.run_trial(trial, config, folder, suite="benchmarl_reference",
                               on_update=on_update)
    if outcome.status != "done":
        raise RuntimeError(f"the Umbra trial in {folder} {outcome.status}: {outcome.error}")
    result = outcome.result or {}
    frames_done = int(result["steps"])
    wall = float(result["wall_time_s"])
    return RunResult("umbra", scenario, seed, frames_done, wall, frames_done / max(wall, 1e-9),
                     final_score(returns, settings["num_envs"]), curve)


# ---------------------------------------------------------------------------------- report
def versions() -> dict[str, str | None]:
    """Installed versions of :data:`VERSIONED` (None when missing) and Python's."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def summarize(results: Sequence[RunResult], *, seed: int = 0) -> list[dict[str, Any]]:
    """Per scenario and framework: scores per seed, IQM [95% CI], wall-clock and frames/s.

    Each row also holds ``fps_ratio``: Umbra's frames/s over BenchMARL's (total frames over total
    wall-clock of the scenario's runs), on the Umbra row and the BenchMARL row alike.
    """
    rows: list[dict[str, Any]] = []
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    for scenario in scenarios:
        fps: dict[str, float] = {}
        block = []
        for framework in ("benchmarl", "umbra"):
            runs = [r for r in results if r.scenario == scenario and r.framework == framework]
            if not runs:
                continue
            scores = [r.score for r in runs if r.score is not None]
            interval = (stats.bootstrap_interval(np.asarray(scores), stats.iqm, seed=seed)
                        if scores else stats.Interval(float("nan"), float("nan"), float("nan")))
            frames = sum(r.frames for r in runs)
            wall = sum(r.wall_time_s for r in runs)
            fps[framework] = frames / max(wall, 1e-9)
            block.append({
                "scenario": scenario, "framework": framework,
                "seeds": [r.seed for r in runs], "scores": [r.score for r in runs],
                "iqm": interval.point, "ci_low": interval.low, "ci_high": interval.high,
                "frames_per_run": [r.frames for r in runs],
                "wall_time_s": wall, "wall_time_s_per_run": [r.wall_time_s for r in runs],
                "fps": fps[framework],
            })
        ratio = (fps["umbra"] / fps["benchmarl"]
                 if "umbra" in fps and fps.get("benchmarl") else None)
        for row in block:
            row["fps_ratio"] = ratio
        rows.extend(block)
    return rows


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def report_markdown(summary: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """``report.md``: the table of :func:`summarize` and how it was run."""
    lines = [
        "# BenchMARL MAPPO vs Umbra mappo on VMAS",
        "",
        f"Frames per run: {meta['frames']:,} (batches of {meta['frames_per_batch']:,} frames, "
        f"{meta['n_envs']} environments, max_steps 100); seeds {meta['seeds']}; "
        f"{meta['threads']} torch thread(s), CPU.",
        f"BenchMARL: MAPPO (its mappo.yaml), layers/mlp actor and critic, experiment from "
        f"{FINE_TUNED_SOURCE}, scaled by {meta['frames_per_batch']}/60000. "
        "Umbra: the mappo preset. Score: mean return (per agent, summed over the episode) of the "
        "last n_envs training episodes; IQM [95% bootstrap CI] over seeds.",
        "",
        "| scenario | framework | scores per seed | IQM [95% CI] | wall-clock s | frames/s "
        "| Umbra/BenchMARL frames/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        interval = stats.Interval(row["iqm"], row["ci_low"], row["ci_high"])
        scores = ", ".join(_fmt(s) for s in row["scores"])
        lines.append(
            f"| {row['scenario']} | {row['framework']} | {scores} | {interval.format(2)} "
            f"| {row['wall_time_s']:.0f} | {row['fps']:,.0f} | {_fmt(row['fps_ratio'])} |"
        )
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
              f"Total wall-clock: {meta['total_wall_time_s']:.0f} s", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.benchmarl_reference",
        description="BenchMARL's MAPPO (fine-tuned VMAS config, scaled) vs Umbra's mappo on VMAS "
                    "at equal frames.")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help=f"frames per run (default {DEFAULT_FRAMES:,})")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds 0..K-1")
    parser.add_argument("--frames-per-batch", type=int, default=DEFAULT_FRAMES_PER_BATCH,
                        help="BenchMARL's collected batch; sets the number of environments "
                             "(batch / 100) of both frameworks (default %(default)s)")
    parser.add_argument("--logdir", default=DEFAULT_LOGDIR)
    parser.add_argument("--frameworks", nargs="+", default=["benchmarl", "umbra"],
                        choices=["benchmarl", "umbra"], help=argparse.SUPPRESS)
    return parser


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    """Run every (scenario, seed, framework) of ``args`` and write the report; return its data."""
    if "benchmarl" in args.frameworks:
        require_benchmarl()
    logdir = Path(args.logdir)
    if (logdir / JSON_FILE).exists():
        raise FileExistsError(f"{logdir / JSON_FILE} exists: choose another --logdir or move it")
    logdir.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    start = time.perf_counter()
    for scenario in args.scenarios:
        for seed in range(args.seeds):
            for framework in args.frameworks:
                folder = logdir / scenario / framework / f"seed{seed}"
                runner_fn = run_benchmarl if framework == "benchmarl" else run_umbra
                result = runner_fn(scenario, args.frames, seed, folder,
                                   frames_per_batch=args.frames_per_batch)
                results.append(result)
                log(f"{scenario} {framework} seed {seed}: score {_fmt(result.score)}, "
                    f"{result.frames:,} frames in {result.wall_time_s:.1f} s "
                    f"({result.fps:,.0f} frames/s)")
    meta = {
        "frames": args.frames, "frames_per_batch": args.frames_per_batch,
        "n_envs": args.frames_per_batch // 100, "seeds": list(range(args.seeds)),
        "scenarios": list(args.scenarios), "threads": THREADS,
        "benchmarl_experiment": scaled_experiment(args.frames,
                                                  frames_per_batch=args.frames_per_batch),
        "fine_tuned_source": FINE_TUNED_SOURCE, "task_kwargs": {
            s: task_kwargs(s) for s in args.scenarios},
        "versions": versions(), "total_wall_time_s": time.perf_counter() - start,
        "host": platform.node(),
    }
    summary = summarize(results)
    data = {"meta": meta, "summary": summary, "runs": [r.to_dict() for r in results]}
    (logdir / JSON_FILE).write_text(json.dumps(data, indent=2, default=str) + "\n",
                                    encoding="utf-8")
    (logdir / REPORT_FILE).write_text(report_markdown(summary, meta), encoding="utf-8")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data = run(args)
    except (BenchMARLMissing, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report_markdown(data["summary"], data["meta"]))
    print(f"written: {Path(args.logdir) / REPORT_FILE}, {Path(args.logdir) / JSON_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
