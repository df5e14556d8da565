"""``python -m benchmarks.run``: run a suite or one-off trials, then print and write a summary.

Examples::

    python -m benchmarks.run                        # the smoke suite, into runs/smoke/
    python -m benchmarks.run --suite throughput     # Umbra vs stable-baselines3 speed
    python -m benchmarks.run --suite my_suite.toml --device cuda
    python -m benchmarks.run --list                 # native environment ids
    python -m benchmarks.run --env umbra/MaskedCartPole-v0 --agent ppo --steps 200000 --seeds 3
    python -m benchmarks.run --resume               # continue interrupted trials
    python -m benchmarks.run --suite smoke --seeds 5 --workers 4
    python -m benchmarks.run --env umbra/MaskedCartPole-v0 --agent transformer \
        --set learning_rate=1e-3 --set core_kwargs.window=128   # one-off config overrides
    python -m benchmarks.run --backend ray --address auto   # one Ray task per trial

Trials land in ``<logdir>/<suite>/<env>/<agent>/seed<k>/`` (one-off trials in
``<logdir>/oneoff/...``); ``tensorboard --logdir <logdir>/<suite>`` overlays them (SCALARS,
CUSTOM SCALARS and HPARAMS), and ``<logdir>/<suite>/report.md`` holds the summary with
``results.csv`` and ``plots/`` beside it (``python -m benchmarks.report DIR`` rewrites them).
Exit status: 0 when every trial succeeded, 1 when one failed (the others still ran), 2 on bad
input, 130 when interrupted.

Where things live: suites and their file format in :mod:`benchmarks.suites`, running trials in
:mod:`benchmarks.runner` and :mod:`benchmarks.backends`, summaries in :mod:`benchmarks.report`
(statistics in :mod:`benchmarks.stats`), the speed comparison in
:mod:`benchmarks.throughput` and :mod:`benchmarks.reference`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import envs
from benchmarks import report, runner, tensorboard_views
from benchmarks.backends import RayBackend, default_workers
from benchmarks.suites import Suite, SuiteError, ThroughputSuite, Trial, list_suites, load_suite
from graphs.tasks import GRAPH_TASK_AGENTS, TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_SUITE = "smoke"
ONEOFF_SUITE = "oneoff"
#: Flags that describe a one-off trial and therefore need ``--env`` (``--seeds`` also applies to
#: a suite: it replaces the suite's seeds by 0..K-1).
_ONEOFF_FLAGS = ("agent", "steps", "num_envs", "env_kwargs")


class UsageError(Exception):
    """Bad command-line input: printed without a traceback, exit status 2."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what to do next (``str(err)``): printed without a traceback, status 130."""


#: What to do after Ctrl-C in a train suite.
_RESUME_HINT = ("finished trials keep their result.json (python -m benchmarks.report DIR "
                "summarises them); continue the others with the same command plus --resume")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Run a benchmark suite (default: smoke) or one-off trials, with a progress "
        "bar and a summary table; results go to <logdir>/<suite>/.",
    )
    what = parser.add_argument_group("what to run")
    what.add_argument("--suite", metavar="NAME|PATH",
                      help=f"a shipped suite ({', '.join(list_suites())}) or a .toml file "
                      f"(default: {DEFAULT_SUITE})")
    what.add_argument("--list", action="store_true",
                      help="print every native environment id with its kind and description")
    oneoff = parser.add_argument_group("one-off trials (instead of a suite)")
    oneoff.add_argument("--env", metavar="ID",
                        help="native id (umbra/CartPole-v0), Gymnasium id, package.module:Class "
                        "or a graph-learning task (graphs/SBM; see --list)")
    oneoff.add_argument("--agent", help="agent name (default: ppo): an Umbra preset, a "
                        "baseline, sb3-ppo, sb3-recurrent-ppo or sb3-maskable-ppo, or an agent "
                        "file such as the best.toml of python -m benchmarks.tune")
    oneoff.add_argument("--steps", type=int, metavar="N",
                        help="environment steps per trial (default: the agent preset's); "
                        "epochs for a graph-learning task")
    oneoff.add_argument("--num-envs", type=int, metavar="E",
                        help="parallel environment copies (default: the agent preset's)")
    oneoff.add_argument("--env-kwargs", metavar="JSON",
                        help='environment arguments as a JSON object, e.g. \'{"debug": true}\'')
    common = parser.add_argument_group("for suites and one-off trials")
    common.add_argument("--seeds", type=int, metavar="K",
                        help="run seeds 0..K-1 (one-off default: 1; for a suite: instead of its "
                        "own seeds)")
    common.add_argument("--device", choices=("auto", "cpu", "cuda"),
                        help="where training runs (default: the agent preset's)")
    common.add_argument("--logdir", default="runs", metavar="DIR",
                        help="root of the run folders (default: runs); checked for writing "
                        "before anything trains")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides",
                        help="set a field of every trial's config, over the suite and the "
                        "preset; repeatable. KEY: a PPOConfig field (learning_rate, "
                        "core_kwargs...), for sb3-* baselines an SB3Config field or an argument "
                        "of the algorithm (n_steps, policy_kwargs...), for graphs/... tasks a "
                        "GraphTaskConfig field (lr, hidden_size...); a dotted KEY sets one entry "
                        "of a table (core_kwargs.window=128, encoder_kwargs.node_head=true). "
                        "VALUE: a TOML or JSON literal (1e-3, true, [64, 64], {model = "
                        "\"gat\"}, null), anything else a string; typed and checked as a "
                        "suite's config")
    common.add_argument("--stop-at-return", type=float, metavar="R",
                        help="stop a trial once the mean return of its last 20 episodes reaches R")
    common.add_argument("--resume", action="store_true",
                        help="continue interrupted trials (checkpoints but no result.json)")
    common.add_argument("--workers", type=int, metavar="N",
                        help="trials at once in local processes (default: half the cores, "
                        f"here {default_workers()}); 1 runs them in this process")
    common.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="where trials run: local processes (default) or one Ray task "
                        "per trial")
    common.add_argument("--address", metavar="ADDR",
                        help="the Ray cluster for --backend ray (default: RAY_ADDRESS, else "
                        "a new local instance)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed by argparse
        return int(exit_.code or 0)
    try:
        return _dispatch(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        hint = str(interrupt) if isinstance(interrupt, Interrupted) else _RESUME_HINT
        print(f"\ninterrupted: {hint}", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.list:
        print(list_environments())
        return 0
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.backend == "ray" and args.workers is not None:
        raise UsageError("--workers applies to --backend local; Ray places one task per trial "
                         "on the cluster's CPUs")
    if args.address is not None and args.backend != "ray":
        raise UsageError("--address names a Ray cluster: add --backend ray")
    if args.stop_at_return is not None and not math.isfinite(args.stop_at_return):
        raise UsageError(f"--stop-at-return must be a finite number, got {args.stop_at_return}")
    args.overrides = parse_overrides(args.overrides)
    if args.env is not None:
        if args.suite is not None:
            raise UsageError("give either --suite or --env (a one-off trial), not both")
        suite = _oneoff_suite(args)
    else:
        given = [f"--{name.replace('_', '-')}" for name in _ONEOFF_FLAGS
                 if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} describe a one-off trial and need --env ID; "
                             "a suite sets its budgets in its .toml file")
        try:
            suite = load_suite(args.suite or DEFAULT_SUITE)
        except SuiteError as err:
            raise UsageError(str(err)) from None
        if args.seeds is not None:
            if args.seeds < 1:
                raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
            if isinstance(suite, ThroughputSuite):
                raise UsageError("--seeds does not apply to the throughput suite: set seeds in "
                                 "its .toml file")
            suite = suite.with_seeds(args.seeds)
    if isinstance(suite, ThroughputSuite):
        return _run_throughput(suite, args)
    return _run_suite(suite, args)


# ---------------------------------------------------------------------------------- modes
def list_environments() -> str:
    """Every native id with its kind and one-line description, aligned."""
    rows = [(env_id, envs.spec(env_id).kind, envs.spec(env_id).description)
            for env_id in envs.list_ids()]
    width_id = max(len(r[0]) for r in rows)
    width_kind = max(len(r[1]) for r in rows)
    lines = [f"{i.ljust(width_id)}  {k.ljust(width_kind)}  {d}" for i, k, d in rows]
    lines += ["", "Graph-learning tasks (not RL; --steps counts epochs, agents "
              f"{', '.join(GRAPH_TASK_AGENTS[:3])}, ... : <model>[-temperature|-bayes]):"]
    width = max(len(task_id) for task_id in TASKS)
    lines += [f"{task_id.ljust(width)}  {spec.description}" for task_id, spec in TASKS.items()]
    lines += ["", "Also accepted by --env: any Gymnasium id (CartPole-v1) or "
              "package.module:ClassName.", f"Suites (--suite): {', '.join(list_suites())}."]
    return "\n".join(lines)


def _oneoff_suite(args: argparse.Namespace) -> Suite:
    env_kwargs = {}
    if args.env_kwargs is not None:
        try:
            env_kwargs = json.loads(args.env_kwargs)
        except json.JSONDecodeError as err:
            raise UsageError(f"--env-kwargs is not valid JSON ({err}): pass an object such as "
                             '\'{"debug": true}\'') from None
        if not isinstance(env_kwargs, dict):
            raise UsageError(f"--env-kwargs must be a JSON object ({{...}}), got {args.env_kwargs}")
        for key, flag in (("num_envs", "--num-envs"), ("device", "--device")):
            if key in env_kwargs:
                raise UsageError(f"--env-kwargs sets {key!r}, which the trial passes to the "
                                 f"environment itself: use {flag} {env_kwargs[key]} instead")
    for flag in ("steps", "seeds", "num_envs"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    trials = tuple(
        Trial(env_id=args.env, agent=args.agent or "ppo", seed=seed, steps=args.steps,
              num_envs=args.num_envs, env_kwargs=env_kwargs)
        for seed in range(args.seeds or 1)
    )
    return Suite(name=ONEOFF_SUITE, trials=trials, description="One-off trials.")


def _run_suite(suite: Suite, args: argparse.Namespace) -> int:
    try:
        configs = runner.check_trials(suite.trials, device=args.device,
                                      stop_at_return=args.stop_at_return,
                                      overrides=args.overrides)
    except ValueError as err:
        raise UsageError(str(err)) from None
    root = Path(args.logdir)
    check_logdir(root / suite.name, args.logdir)
    backend = None
    if args.backend == "ray":
        try:
            backend = RayBackend(args.address, gpus_per_trial=1.0 if args.device == "cuda" else 0.0)
        except (ImportError, ConnectionError) as err:  # Ray missing; no cluster at --address
            raise UsageError(str(err)) from None
    runner.write_suite_file(root / suite.name, suite)
    tensorboard_views.write_layout(root / suite.name)
    print(f"suite {suite.name}: {len(suite.trials)} trials, {seeds_text(suite)}, into "
          f"{root / suite.name}/" + (f" ({suite.description})" if suite.description else "")
          + "".join(f"\n  --set {key}={json.dumps(value)}"
                    for key, value in args.overrides.items()))
    outcomes = runner.run_trials(suite.trials, configs, root=root, suite=suite.name,
                                 resume=args.resume, show_progress=not args.no_progress,
                                 workers=args.workers or default_workers(), backend=backend)
    print()
    print(report.format_table(report.summarize(outcomes)))
    calibration = report.format_calibration_table(outcomes)
    if calibration:
        print("\ncalibration on the test sets (classification trials):")
        print(calibration)
    path = report.write_report(root / suite.name, suite, outcomes)
    failed = [o for o in outcomes if o.status == "failed"]
    print(f"\nreport: {path}\ncurves: tensorboard --logdir {root / suite.name}")
    if failed:
        print(f"{len(failed)} of {len(outcomes)} trials FAILED:", file=sys.stderr)
        for o in failed:
            last = (o.error or "").strip().splitlines()[-1:] or ["unknown error"]
            print(f"  {o.trial.env_id} {o.trial.agent} seed{o.trial.seed}: {last[0]}",
                  file=sys.stderr)
        return 1
    return 0


def _run_throughput(suite: ThroughputSuite, args: argparse.Namespace) -> int:
    from benchmarks.throughput import markdown, run_throughput

    ignored = [flag for flag, given in (("--stop-at-return", args.stop_at_return is not None),
                                        ("--resume", args.resume),
                                        ("--set", bool(args.overrides)),
                                        ("--workers", args.workers is not None),
                                        ("--backend ray", args.backend == "ray")) if given]
    if ignored:
        raise UsageError(f"{', '.join(ignored)} do not apply to the throughput suite: it always "
                         "stops at its threshold, always starts fresh and times its runs one "
                         "after the other in this process")
    check_logdir(Path(args.logdir) / suite.name, args.logdir)
    try:
        summary = run_throughput(suite, args.logdir, device=args.device)
    except KeyboardInterrupt:
        raise Interrupted("the throughput suite cannot continue where it stopped (its timings "
                          "compare runs made together): run the same command again to start it "
                          "fresh") from None
    print()
    print(markdown(summary))
    print(f"written: {Path(args.logdir) / suite.name / 'throughput.json'} and report.md")
    return 0


# ---------------------------------------------------------------------------------- helpers
def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    """``["learning_rate=1e-3", "core_kwargs.window=128"]`` -> ``{KEY: typed VALUE}``.

    A VALUE is read as a TOML literal (``1e-3``, ``true``, ``"text"``, ``[64, 64]``,
    ``{ model = "gat" }``), else as JSON (``null``, ``{"model": "gat"}``), else kept as the
    string itself (``fast``, ``lin_1e-3``). Whether the key exists and the value has its field's
    type is checked with the configs (:func:`benchmarks.runner.build_config`).

    Raises:
        UsageError: an item without ``=`` or with an empty key, or a key given twice.
    """
    overrides: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set needs KEY=VALUE, e.g. --set learning_rate=1e-3, got {item!r}")
        if key in overrides:
            raise UsageError(f"--set {key} is given twice; keep one")
        overrides[key] = parse_value(text.strip())
    return overrides


def parse_value(text: str) -> object:
    """A ``--set`` VALUE: a TOML literal, else JSON, else the string (see
    :func:`parse_overrides`)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def check_logdir(folder: Path, logdir: str) -> None:
    """Create ``folder`` (a suite's folder under ``--logdir``) and write a file in it, or raise
    :class:`UsageError` saying why, before anything trains."""
    probe = folder / f".write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        where = f" ({err.filename})" if err.filename and Path(err.filename) != folder else ""
        raise UsageError(f"--logdir {logdir}: cannot create or write {folder}: {reason}{where}; "
                         "choose a folder you can write to") from None


def seeds_text(suite: Suite) -> str:
    """``"seeds 0-4"`` (or ``"seeds 0, 3, 7"``): the seeds the suite's trials run with."""
    seeds = sorted({t.seed for t in suite.trials})
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


if __name__ == "__main__":
    sys.exit(main())
