"""A suite's report: the table printed after a run, ``report.md``, ``results.csv`` and plots.

Each trial has one primary ``score`` with a named ``metric``: for an RL trial its
``final_return`` (mean return of its last 100 episodes, metric ``return``), for a graph-learning
trial its test accuracy (metric ``test accuracy``); results written before scores existed fall
back to ``final_return``. Per environment and agent the report gives, across seeds, the
interquartile mean, mean and median of the score with stratified-bootstrap 95% intervals
(:mod:`benchmarks.stats`); the probability that one agent's run beats another's, per environment
and averaged over them (scale-free, so RL tasks and learning tasks average together); and, over
the environments the suite gives reference scores, the same statistics on normalised scores plus
performance profiles. Learning trials add a calibration table (accuracy, NLL, ECE and Brier score
on the test set, mean with 95% intervals across seeds) and a reliability diagram per task and
agent, pooled over seeds from each trial's ``predictions.npz``. Files written into the suite
folder:

- ``report.md``: those tables, the plots, every trial, failures, the suite's file, package
  versions and the machine;
- ``results.csv``: one row per trial (with its ``mmer``, below);
- ``plots/curves_<env>.png``: learning curves (``charts/episode_return`` read from each seed's
  TensorBoard events, IQM across seeds with 95% bands) per environment;
  learning tasks show ``graph/val_accuracy`` per epoch instead;
  ``plots/aggregate.png``: the intervals of the aggregate (normalised) scores, or of each
  environment's IQM when the suite has no reference scores; ``plots/profiles.png``: performance
  profiles (with reference scores only); ``plots/reliability_<task>_<agent>.png``: reliability
  diagrams of learning tasks; ``plots/uncertainty_<env>.png``: the epistemic std of Bayesian
  value heads on visited and never-seen states (``uncertainty/value_std`` and
  ``uncertainty/value_std_unvisited``), where trials logged them.

RL trials also get POPGym's metric, the MMER (Morad et al., 2023, "POPGym: Benchmarking
Partially Observable Reinforcement Learning"): the maximum over training of the mean episodic
return, read from the trial's ``charts/episode_return`` curve, whose points are the mean return
of the episodes finished in one PPO update (:func:`mmer_of`). ``report.md`` gives it per
environment and agent (mean with 95% interval across seeds) in its own table, beside the
published GRU MMER of :data:`POPGYM_PAPER_GRU_MMER` for ``popgym/`` ids.

``python -m benchmarks.report runs/smoke`` regenerates all of it from the finished trials in a
suite folder (the ``result.json`` and ``error.json`` files under it, and the ``suite.json`` that
``python -m benchmarks.run`` records there).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import stats
from benchmarks.runner import (
    ERROR_FILE,
    PREDICTIONS_FILE,
    RESULT_FILE,
    RETURN_METRIC,
    TrialOutcome,
    env_dirname,
    read_suite_file,
)
from benchmarks.stats import Interval
from benchmarks.suites import Suite, Trial
from benchmarks.versus import SUITE_GAMES, VERSUS_RANDOM_METRIC

REPORT_FILE = "report.md"
CSV_FILE = "results.csv"
PLOTS_DIR = "plots"
#: Packages whose versions the report records.
PACKAGES = ("umbra", "torch", "numpy", "scipy", "gymnasium", "pettingzoo", "stable-baselines3",
            "sb3-contrib", "tensorboard", "matplotlib", "ray")
CSV_COLUMNS = ("suite", "env_id", "agent", "seed", "status", "metric", "score", "normalized_score",
               "final_return", "normalized_return", "mmer", "accuracy", "nll", "ece", "brier",
               "steps", "wall_time_s", "sps", "episodes", "threshold_reached", "threshold_steps",
               "threshold_time_s", "resumed", "host", "folder", "error")
#: Test-set metrics of classification trials, in the calibration table: key -> column title.
CALIBRATION_METRICS = {"accuracy": "accuracy", "nll": "NLL", "ece": "ECE", "brier": "Brier"}
#: Value uncertainty of Bayesian value heads (agents/ppo.py): tag -> which states.
UNCERTAINTY_TAGS = {"uncertainty/value_std": "visited states",
                    "uncertainty/value_std_unvisited": "states never seen"}
#: TensorBoard tag of the learning curves per metric (default: the episode return's).
CURVE_TAGS = {"test accuracy": ("graph/val_accuracy", "validation accuracy", "epochs")}
#: The GRU's MMER per ``popgym/`` id as published in the POPGym paper (Morad et al., ICLR 2023,
#: appendix B, table 3: MMER mean over 3 trials of 15M steps), shown beside the measured MMER.
#: The paper's own table could not be retrieved here; these are the Easy rows of a third-party
#: transcription of it (:data:`POPGYM_PAPER_SOURCE`), not checked against the PDF. It names
#: the paper's StatelessCartPole PositionOnlyCartPole (popgym 1.0's name) and has no rows for
#: Battleship, Concentration, the Labyrinths, MineSweeper, the Pendulums or
#: VelocityOnlyCartPole (n/a in the report). Replace with the paper's values when they can be read.
POPGYM_PAPER_GRU_MMER: dict[str, float] = {
    "popgym/AutoencodeEasy-v0": -0.283,
    "popgym/CountRecallEasy-v0": 0.177,
    "popgym/HigherLowerEasy-v0": 0.529,
    "popgym/MultiarmedBanditEasy-v0": 0.619,
    "popgym/NoisyPositionOnlyCartPoleEasy-v0": 0.995,
    "popgym/PositionOnlyCartPoleEasy-v0": 1.000,
    "popgym/RepeatFirstEasy-v0": 1.000,
    "popgym/RepeatPreviousEasy-v0": 1.000,
}
#: Where :data:`POPGYM_PAPER_GRU_MMER` was read (the report says so under its table).
POPGYM_PAPER_SOURCE = ("github.com/bryjudy/fly-critic, flycritic/popgym/results.py at commit "
                       "a93e8b9f, a transcription of the paper's appendix B table 3, unverified")


def mmer_of(logdir: str | Path) -> float | None:
    """POPGym's MMER of one trial: the maximum over training of the mean episodic return.

    Each point of the trial's ``charts/episode_return`` curve is the mean return of the
    episodes finished in one PPO update (POPGym takes the mean per training epoch); the MMER is
    the largest point. ``None`` when the folder has no such curve (no episode finished, or a
    learning trial).
    """
    from benchmarks import curves

    curve = curves.read_curve(logdir, curves.TAG)
    return None if curve is None or not len(curve.values) else float(curve.values.max())


def score_of(result: dict[str, Any]) -> float | None:
    """A result's primary score: ``score``, else (older results) ``final_return``."""
    value = result.get("score", result.get("final_return"))
    return None if value is None else float(value)


def metric_of(result: dict[str, Any]) -> str:
    """The name of a result's score (``"return"`` unless it says otherwise)."""
    return str(result.get("metric") or RETURN_METRIC)


def _digits(metric: str) -> int:
    """Decimals to show for ``metric``: returns are large, accuracies lie in [0, 1]."""
    return 1 if metric == RETURN_METRIC else 3


# ---------------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Row:
    """One environment and agent, aggregated over its finished seeds.

    Attributes:
        env_id: The environment.
        agent: The agent.
        seeds: Finished seeds with a score.
        failed: Trials that failed.
        scores: Each finished seed's score (:func:`score_of`).
        iqm: Interquartile mean of ``scores`` with its 95% interval (``None`` without scores).
        mean: Mean, likewise.
        median: Median, likewise.
        sps: Mean steps per second.
        wall_time_s: Mean wall time per trial.
        threshold_reached: Seeds that reached the return threshold (``None``: no threshold).
        threshold_steps: Median steps to the threshold over the seeds that reached it.
        threshold_time_s: Median seconds to the threshold, likewise.
    """

    env_id: str
    agent: str
    seeds: int
    failed: int
    scores: tuple[float, ...]
    iqm: Interval | None
    mean: Interval | None
    median: Interval | None
    sps: float | None
    wall_time_s: float | None
    threshold_reached: int | None = None
    threshold_steps: float | None = None
    threshold_time_s: float | None = None
    metric: str = RETURN_METRIC


def summarize(outcomes: Sequence[TrialOutcome], *, reps: int = stats.DEFAULT_REPS,
              seed: int = 0) -> list[Row]:
    """One :class:`Row` per (env, agent), in the order they first appear."""
    rows = []
    for (env_id, agent), group in _groups(outcomes).items():
        results = [o.result for o in group if o.status != "failed" and o.result is not None]
        scores = tuple(score for score in map(score_of, results) if score is not None)
        summary = stats.summarize(scores, reps=reps, seed=seed) if scores else {}
        row = Row(
            env_id=env_id,
            agent=agent,
            seeds=len(scores),
            failed=len(group) - len(results),
            scores=scores,
            iqm=summary.get("iqm"),
            mean=summary.get("mean"),
            median=summary.get("median"),
            sps=_mean([r.get("sps") for r in results]),
            wall_time_s=_mean([r.get("wall_time_s") for r in results]),
            metric=metric_of(results[0]) if results else RETURN_METRIC,
        )
        with_threshold = [r for r in results if r.get("threshold_reached") is not None]
        if with_threshold:
            reached = [r for r in with_threshold if r["threshold_reached"]]
            row = dataclasses.replace(
                row,
                threshold_reached=len(reached),
                threshold_steps=_median([r["threshold_steps"] for r in reached]),
                threshold_time_s=_median([r["threshold_time_s"] for r in reached]),
            )
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Comparison:
    """``P(X > Y)`` of agent ``x`` over agent ``y`` on ``envs`` (all shared envs, or one)."""

    x: str
    y: str
    envs: tuple[str, ...]
    probability: Interval


def compare(rows: Sequence[Row], *, reps: int = stats.DEFAULT_REPS,
            seed: int = 0) -> list[Comparison]:
    """Probability of improvement for every pair of agents, in suite order.

    For each pair, one comparison per environment both agents have scores on and, with more
    than one such environment, one over all of them (the mean over environments).
    """
    return compare_scores({(r.env_id, r.agent): r.scores for r in rows}, reps=reps, seed=seed)


def compare_scores(table: dict[tuple[str, str], Sequence[float]], *, per_env: bool = True,
                   reps: int = stats.DEFAULT_REPS, seed: int = 0) -> list[Comparison]:
    """:func:`compare` on any score: ``(env, agent) -> scores over seeds``, in suite order.

    ``per_env=False`` keeps only the comparison over all shared environments (the one
    environment's where the pair shares only one).
    """
    scores = {key: np.asarray(values) for key, values in table.items() if len(values)}
    agents = list(dict.fromkeys(agent for _, agent in scores))
    env_ids = list(dict.fromkeys(env_id for env_id, _ in scores))
    comparisons = []
    for x, y in itertools.combinations(agents, 2):
        shared = [e for e in env_ids if (e, x) in scores and (e, y) in scores]
        groups = ([[e] for e in shared] if per_env or len(shared) == 1 else []) + (
            [shared] if len(shared) > 1 else [])
        for group in groups:
            interval = stats.probability_of_improvement_interval(
                [scores[e, x] for e in group], [scores[e, y] for e in group], reps=reps,
                seed=seed)
            comparisons.append(Comparison(x, y, tuple(group), interval))
    return comparisons


def normalized_scores(rows: Sequence[Row],
                      references: dict[str, dict[str, float]]) -> dict[str, list[np.ndarray]]:
    """Agent -> one array of normalised scores per environment, over the environments that have
    reference scores (:func:`aggregated_envs`); an empty dict when none has (aggregating raw
    scores of different tasks would mean nothing)."""
    by_agent: dict[str, list[np.ndarray]] = {}
    for r in rows:
        if r.scores and r.env_id in references:
            ref = references[r.env_id]
            by_agent.setdefault(r.agent, []).append(
                stats.normalize(r.scores, ref["random"], ref["expert"]))
    return by_agent


def aggregated_envs(rows: Sequence[Row], references: dict[str, dict[str, float]]) -> list[str]:
    """The environments with scores and reference scores: those the aggregates cover."""
    return list(dict.fromkeys(r.env_id for r in rows if r.scores and r.env_id in references))


def aggregate(rows: Sequence[Row], references: dict[str, dict[str, float]], *,
              reps: int = stats.DEFAULT_REPS, seed: int = 0) -> dict[str, dict[str, Interval]]:
    """Agent -> IQM, mean and median of its normalised scores over all environments, each with
    a bootstrap interval stratified by environment; empty without reference scores."""
    return {agent: stats.summarize(groups, reps=reps, seed=seed)
            for agent, groups in normalized_scores(rows, references).items()}


# ---------------------------------------------------------------------------------- tables
def _score_name(metric: str) -> str:
    return "final return" if metric == RETURN_METRIC else metric


def _columns(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """The summary table: one metric named in the header, or a ``metric`` column when the
    suite mixes them (RL returns and test accuracies)."""
    threshold = any(r.threshold_reached is not None for r in rows)
    metrics = list(dict.fromkeys(r.metric for r in rows if r.seeds)) or [RETURN_METRIC]
    mixed = len(metrics) > 1
    score = "score" if mixed else _score_name(metrics[0])
    header = ["env", *(["metric"] if mixed else []), "agent", "seeds",
              f"{score} IQM [95% CI]", "mean [95% CI]", "median [95% CI]", "steps/s",
              "wall time/trial"]
    if threshold:
        header += ["reached threshold", "steps to threshold", "time to threshold"]
    body = []
    for r in rows:
        cells = [
            r.env_id,
            *([_score_name(r.metric)] if mixed else []),
            r.agent,
            f"{r.seeds}" + (f" ({r.failed} failed)" if r.failed else ""),
            *("n/a" if iv is None else iv.format(_digits(r.metric))
              for iv in (r.iqm, r.mean, r.median)),
            "n/a" if r.sps is None else f"{r.sps:,.0f}",
            "n/a" if r.wall_time_s is None else f"{r.wall_time_s:.1f} s",
        ]
        if threshold:
            cells += [
                "n/a" if r.threshold_reached is None else f"{r.threshold_reached}/{r.seeds}",
                "n/a" if r.threshold_steps is None else f"{r.threshold_steps:,.0f}",
                "n/a" if r.threshold_time_s is None else f"{r.threshold_time_s:.1f} s",
            ]
        body.append(cells)
    return header, body


def format_table(rows: Sequence[Row]) -> str:
    """The summary as an aligned plain-text table (what ``python -m benchmarks.run`` prints)."""
    return _aligned(*_columns(rows))


def format_calibration_table(outcomes: Sequence[TrialOutcome], *,
                             reps: int = stats.DEFAULT_REPS) -> str:
    """The calibration table of the classification trials as aligned text; ``""`` without
    any."""
    table = calibration_rows(outcomes, reps=reps)
    if not table:
        return ""
    header = ["task", "agent", "seeds",
              *(f"{title} mean [95% CI]" for title in CALIBRATION_METRICS.values())]
    body = [[env_id, agent, str(n), *(iv.format(3) for iv in intervals.values())]
            for (env_id, agent), (n, intervals) in table.items()]
    return _aligned(header, body)


def _aligned(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])


# ---------------------------------------------------------------------------------- report.md
def markdown_report(
    suite: Suite,
    outcomes: Sequence[TrialOutcome],
    suite_dir: str | Path,
    plots: Sequence[Path] = (),
    *,
    reps: int = stats.DEFAULT_REPS,
) -> str:
    """The text of ``report.md``.

    Args:
        suite: The suite (name, description, source, reference scores, file text).
        outcomes: The trials, done now or before.
        suite_dir: The suite's folder: plot links are relative to it.
        plots: The figures to show, from :func:`write_plots`.
        reps: Bootstrap resamples per interval.
    """
    suite_dir = Path(suite_dir)
    rows = summarize(outcomes, reps=reps)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# Suite `{suite.name}`", ""]
    if suite.description:
        lines += [suite.description, ""]
    lines += [f"Written {now}" + (f" from `{suite.source}`" if suite.source else "") + ".", ""]

    metrics = list(dict.fromkeys(r.metric for r in rows if r.seeds))
    what = {RETURN_METRIC: "final return (mean return of the last 100 episodes of each trial)",
            "test accuracy": "test accuracy (classification accuracy on the test split, at the "
            "epoch of best validation accuracy)",
            VERSUS_RANDOM_METRIC: "score vs random for two-player games ((wins + draws / 2) / "
            f"games of the trained policy against a uniformly random player, {SUITE_GAMES} games, "
            "seats alternated; 0.5 is random play)"}
    lines += ["## Results", "",
              "Score per environment: "
              + "; ".join(what.get(m, m) for m in metrics or [RETURN_METRIC])
              + ". Across seeds: interquartile mean, mean and median with stratified-bootstrap "
              f"95% confidence intervals ({reps:,} resamples; none with a single seed).", ""]
    lines += _markdown_table(*_columns(rows))

    lines += _mmer_section(outcomes, reps=reps)
    lines += _group_section(outcomes, reps=reps)

    aggregates = aggregate(rows, suite.references, reps=reps)
    if aggregates:
        covered = aggregated_envs(rows, suite.references)
        lines += ["", "## Aggregate over environments", "",
                  "Normalised score `(score - random) / (expert - random)` with the suite's "
                  "reference scores (0: random policy, 1: expert); intervals from a bootstrap "
                  f"stratified by environment. Over the {len(covered)} environments with "
                  f"reference scores: {', '.join(covered)}.", ""]
        body = [[agent, *(s[name].format(3) for name in stats.STATISTICS)]
                for agent, s in aggregates.items()]
        lines += _markdown_table(["agent", *(f"{n.upper() if n == 'iqm' else n} [95% CI]"
                                             for n in stats.STATISTICS)], body)
        lines += ["", "Reference scores: " + ", ".join(
            f"{e} random {r['random']:g} / expert {r['expert']:g}"
            for e, r in suite.references.items()) + "."]

    comparisons = compare(rows, reps=reps)
    if comparisons:
        lines += ["", "## Probability of improvement", "",
                  "P(X > Y): the probability that a run of X has a higher score than a "
                  "run of Y (ties count half), per environment and averaged over environments; "
                  "0.5 is no difference. An improvement is meaningful when the interval's lower "
                  "bound is above 0.5.", ""]
        lines += _comparison_table(comparisons, "P(X > Y) [95% CI]")

    calibration = calibration_rows(outcomes, reps=reps)
    reliability = [p for p in plots if p.name.startswith(RELIABILITY_PREFIX)]
    if calibration:
        lines += ["", "## Calibration", "",
                  "Test-set accuracy, negative log-likelihood (nats), expected calibration "
                  "error (15 equal-width confidence bins) and Brier score of the classification "
                  "trials: mean across seeds with bootstrap 95% confidence intervals. Lower is "
                  "better for NLL, ECE and Brier.", ""]
        header = ["task", "agent", "seeds",
                  *(f"{title} [95% CI]" for title in CALIBRATION_METRICS.values())]
        body = [[env_id, agent, str(n), *(iv.format(3) for iv in intervals.values())]
                for (env_id, agent), (n, intervals) in calibration.items()]
        lines += _markdown_table(header, body)
        if reliability:
            lines += ["", "Reliability diagrams (test predictions pooled over seeds; bars: "
                      "accuracy per confidence bin, diagonal: perfect calibration):", ""]
            lines += [f"![{p.stem}]({p.relative_to(suite_dir).as_posix()})" for p in reliability]

    others = [p for p in plots if p not in reliability]
    if others:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.relative_to(suite_dir).as_posix()})" for p in others]

    lines += ["", "## Trials", ""]
    trial_rows = []
    for o in outcomes:
        r = o.result or {}
        score = score_of(r)
        metric = metric_of(r)
        trial_rows.append([
            o.trial.env_id, o.trial.agent, str(o.trial.seed),
            "failed" if o.status == "failed" else "done",
            "n/a" if score is None else (f"{score:.1f}" if metric == RETURN_METRIC
                                         else f"{score:.3f} ({metric})"),
            f"{r['steps']:,}" if "steps" in r else "n/a",
            f"{r['sps']:,.0f}" if r.get("sps") is not None else "n/a",
            f"{r['wall_time_s']:.1f} s" if r.get("wall_time_s") is not None else "n/a",
            f"`{o.logdir}`",
        ])
    lines += _markdown_table(
        ["env", "agent", "seed", "status", "score", "steps (epochs)", "steps/s", "wall time",
         "folder"],
        trial_rows,
    )
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["", "## Failures", ""]
        for o in failed:
            lines.append(f"- {o.trial.env_id} {o.trial.agent} seed{o.trial.seed}: "
                         f"{_last_line(o.error)}")

    lines += ["", "## Suite", ""]
    if suite.text:
        lines += ["```toml", suite.text.rstrip(), "```"]
    else:
        lines += ["```json", json.dumps([dataclasses.asdict(t) for t in suite.trials],
                                        indent=1), "```"]
    lines += ["", "## Versions and machine", ""]
    lines += [f"- {name}: {version}" for name, version in versions().items()]
    lines += [f"- {name}: {value}" for name, value in machine().items()]
    lines += ["", "The machine is the one that wrote this report; each trial's host is in "
              f"`{CSV_FILE}`.", "", f"Learning curves: `tensorboard --logdir {suite_dir}`", ""]
    return "\n".join(lines)


def mmer_scores(outcomes: Sequence[TrialOutcome]) -> dict[tuple[str, str], list[float]]:
    """(env, agent) -> the MMER of each finished RL trial (:func:`mmer_of`), seeds in order;
    groups without one are left out."""
    table = {}
    for key, group in _groups(outcomes).items():
        values = [m for o in group if o.status != "failed" and o.result is not None
                  and metric_of(o.result) == RETURN_METRIC
                  and (m := mmer_of(o.logdir)) is not None]
        if values:
            table[key] = values
    return table


def _mmer_section(outcomes: Sequence[TrialOutcome], *, reps: int) -> list[str]:
    """The ``## MMER`` lines of ``report.md``; none without RL curves."""
    scores = mmer_scores(outcomes)
    if not scores:
        return []
    popgym = any(env_id.startswith("popgym/") for env_id, _ in scores)
    header = ["env", "agent", "seeds", "MMER mean [95% CI]"]
    header += ["POPGym paper GRU MMER"] if popgym else []
    body = []
    for (env_id, agent), values in scores.items():
        interval = stats.summarize(values, reps=reps)["mean"]
        paper = POPGYM_PAPER_GRU_MMER.get(env_id)
        body.append([env_id, agent, str(len(values)), interval.format(3)]
                    + ([f"{paper:.3f}" if paper is not None else "n/a"] if popgym else []))
    lines = ["", "## MMER", "",
             "POPGym's metric (Morad et al., 2023): the maximum over training of the mean "
             "episodic return, each point of `charts/episode_return` being the mean return of "
             "the episodes finished in one update; mean across seeds with bootstrap 95% "
             "intervals."]
    if popgym:
        lines[-1] += (" The paper's column is the GRU's published MMER after 15M steps "
                      "(`benchmarks.report.POPGYM_PAPER_GRU_MMER`; n/a where it holds none), "
                      f"read from {POPGYM_PAPER_SOURCE}.")
    lines += [""] + _markdown_table(header, body)
    comparisons = compare_scores(scores, per_env=False, reps=reps)
    if comparisons:
        lines += ["", "P(X > Y) on MMER (as under Probability of improvement, with the MMER "
                  "for score), over all the environments both agents have an MMER on.", ""]
        lines += _comparison_table(comparisons, "P(X > Y) on MMER [95% CI]")
    return lines


def group_return_rows(outcomes: Sequence[TrialOutcome], *, reps: int = stats.DEFAULT_REPS,
                      ) -> dict[tuple[str, str, str], tuple[int, dict[str, Interval]]]:
    """(env, agent, group) -> (seeds, IQM/mean/median of the group's final return across them
    with 95% intervals), for trials of mixed teams (their ``group_returns``)."""
    table = {}
    for (env_id, agent), group in _groups(outcomes).items():
        per_group: dict[str, list[float]] = {}
        for o in group:
            if o.status != "failed" and o.result is not None:
                for name, value in (o.result.get("group_returns") or {}).items():
                    per_group.setdefault(name, []).append(value)
        for name, values in per_group.items():
            table[(env_id, agent, name)] = (len(values), stats.summarize(values, reps=reps))
    return table


def _group_section(outcomes: Sequence[TrialOutcome], *, reps: int) -> list[str]:
    """The ``## Returns per group`` lines of ``report.md``; none without mixed teams."""
    table = group_return_rows(outcomes, reps=reps)
    if not table:
        return []
    header = ["env", "agent", "group", "seeds", "IQM [95% CI]", "mean [95% CI]"]
    body = [[env_id, agent, name, str(n), s["iqm"].format(2), s["mean"].format(2)]
            for (env_id, agent, name), (n, s) in table.items()]
    return ["", "## Returns per group", "",
            "Teams of several kinds of agents (predators and prey, speakers and listeners): each "
            "group's final return (the mean over its agents of their episode return, over the "
            "last updates of each trial), on its own, so that opposite goals are not averaged "
            "into one number. Across seeds with stratified-bootstrap 95% intervals.", ""] \
        + _markdown_table(header, body)


def write_report(
    suite_dir: str | Path,
    suite: Suite,
    outcomes: Sequence[TrialOutcome],
    *,
    plots: bool = True,
    reps: int = stats.DEFAULT_REPS,
) -> Path:
    """Write ``report.md``, ``results.csv`` and (with ``plots``) the figures into ``suite_dir``.

    Returns:
        The path of ``report.md``.
    """
    suite_dir = Path(suite_dir)
    suite_dir.mkdir(parents=True, exist_ok=True)
    write_csv(suite_dir / CSV_FILE, suite.name, outcomes, suite.references)
    figures = write_plots(suite_dir, outcomes, suite.references, reps=reps) if plots else []
    path = suite_dir / REPORT_FILE
    path.write_text(markdown_report(suite, outcomes, suite_dir, figures, reps=reps),
                    encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- csv
def write_csv(path: str | Path, suite: str, outcomes: Sequence[TrialOutcome],
              references: dict[str, dict[str, float]] | None = None) -> Path:
    """``results.csv``: one row per trial (:data:`CSV_COLUMNS`); empty cells for missing values.

    ``normalized_score`` (and ``normalized_return`` for RL trials) is filled where the suite has
    reference scores for the environment.
    """
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for o in outcomes:
            r = o.result or {}
            ref = (references or {}).get(o.trial.env_id)
            ret = r.get("final_return")
            score = score_of(r)
            writer.writerow({
                **{key: r.get(key) for key in CSV_COLUMNS if key in r},
                "suite": suite, "env_id": o.trial.env_id, "agent": o.trial.agent,
                "seed": o.trial.seed, "status": o.status, "folder": str(o.logdir),
                "score": score, "metric": metric_of(r) if o.result else None,
                "normalized_score": (None if ref is None or score is None
                                     else float(stats.normalize(score, **ref))),
                "normalized_return": (None if ref is None or ret is None
                                      else float(stats.normalize(ret, **ref))),
                "mmer": (mmer_of(o.logdir) if o.status != "failed" and o.result
                         and metric_of(r) == RETURN_METRIC else None),
                "error": _last_line(o.error) if o.status == "failed" else None,
            })
    return path


# ---------------------------------------------------------------------------------- plots
def write_plots(
    suite_dir: str | Path,
    outcomes: Sequence[TrialOutcome],
    references: dict[str, dict[str, float]] | None = None,
    *,
    reps: int = stats.DEFAULT_REPS,
) -> list[Path]:
    """Draw the learning curves of every environment and the aggregate plot(s).

    Returns:
        The PNG files written, curves first.
    """
    from benchmarks import curves, plots

    suite_dir = Path(suite_dir)
    out = suite_dir / PLOTS_DIR
    written = []
    done = [o for o in outcomes if o.status != "failed"]
    for env_id, env_outcomes in _by_env(done).items():
        metric = next((metric_of(o.result) for o in env_outcomes if o.result), RETURN_METRIC)
        tag, ylabel, xlabel = CURVE_TAGS.get(metric, (curves.TAG, "episode return",
                                                      "environment steps"))
        bands = {}
        for agent, group in _by_agent(env_outcomes).items():
            runs = [c for c in (curves.read_curve(o.logdir, tag) for o in group) if c is not None]
            if runs:
                grid = curves.step_grid(runs)
                bands[agent] = curves.band(curves.on_grid(runs, grid), grid)
        if bands:
            name = f"curves_{_slug(env_id)}.png"
            written.append(plots.plot_curves(env_id, bands, out / name, ylabel=ylabel,
                                             xlabel=xlabel))
        bands = {}
        for agent, group in _by_agent(env_outcomes).items():
            for tag, where in UNCERTAINTY_TAGS.items():
                runs = [c for c in (curves.read_curve(o.logdir, tag) for o in group)
                        if c is not None]
                if runs:
                    grid = curves.step_grid(runs)
                    bands[f"{agent}, {where}"] = curves.band(curves.on_grid(runs, grid), grid)
        if bands:
            written.append(plots.plot_curves(
                f"{env_id}: value uncertainty", bands,
                out / f"uncertainty_{_slug(env_id)}.png", ylabel="epistemic std of the value"))

    rows = summarize(outcomes, reps=reps)
    normalized = normalized_scores(rows, references or {})
    if normalized:
        summaries = {agent: stats.summarize(g, reps=reps) for agent, g in normalized.items()}
        panels = {name.upper() if name == "iqm" else name: {a: s[name] for a, s in
                                                             summaries.items()}
                  for name in stats.STATISTICS}
        written.append(plots.plot_intervals(
            f"Aggregate over {len(aggregated_envs(rows, references or {}))} environments "
            "(95% CIs)",
            panels, out / "aggregate.png", xlabel="normalised score"))
        taus = np.linspace(min(0.0, *(g.min() for gs in normalized.values() for g in gs)),
                           max(1.0, *(g.max() for gs in normalized.values() for g in gs)), 101)
        profiles = {a: stats.performance_profile(g, taus) for a, g in normalized.items()}
        written.append(plots.plot_profiles("Performance profiles", taus, profiles,
                                           out / "profiles.png"))
    elif any(r.iqm is not None for r in rows):
        panels = {}
        for r in rows:
            if r.iqm is not None:
                panels.setdefault(r.env_id, {})[r.agent] = r.iqm
        metrics = list(dict.fromkeys(r.metric for r in rows if r.iqm is not None))
        label = _score_name(metrics[0]) if len(metrics) == 1 else "score"
        written.append(plots.plot_intervals(f"{label.capitalize()} IQM per environment "
                                            "(95% CIs)", panels, out / "aggregate.png",
                                            xlabel=label))
    written += write_reliability_diagrams(out, done)
    return written


# ---------------------------------------------------------------------------------- calibration
#: File-name prefix of the reliability diagrams under ``plots/``.
RELIABILITY_PREFIX = "reliability_"


def calibration_rows(
    outcomes: Sequence[TrialOutcome], *, reps: int = stats.DEFAULT_REPS, seed: int = 0
) -> dict[tuple[str, str], tuple[int, dict[str, Interval]]]:
    """(task, agent) -> (seeds, metric -> mean with its bootstrap 95% interval across seeds),
    for the trials whose results hold every :data:`CALIBRATION_METRICS` key; in suite order."""
    table = {}
    for key, group in _groups(outcomes).items():
        results = [o.result for o in group if o.status != "failed" and o.result is not None
                   and all(o.result.get(m) is not None for m in CALIBRATION_METRICS)]
        if results:
            table[key] = (len(results), {
                m: stats.bootstrap_interval(np.array([float(r[m]) for r in results]),
                                            stats.mean, reps=reps, seed=seed)
                for m in CALIBRATION_METRICS})
    return table


def load_predictions(logdir: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A learning trial's test ``(probs [N, C], labels [N])``, or ``None`` without the file."""
    path = Path(logdir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        return data["probs"].astype(np.float64), data["labels"].astype(np.int64)


def write_reliability_diagrams(out: str | Path, outcomes: Sequence[TrialOutcome]) -> list[Path]:
    """One reliability diagram per (task, agent), test predictions pooled over its seeds.

    Returns:
        The PNG files written (``<out>/reliability_<task>_<agent>.png``).
    """
    from bayes.calibration import reliability_diagram

    written = []
    for (env_id, agent), group in _groups(outcomes).items():
        found = [p for p in (load_predictions(o.logdir) for o in group
                             if o.status != "failed") if p is not None]
        if not found:
            continue
        probs = np.concatenate([p for p, _ in found])
        probs = probs / probs.sum(axis=1, keepdims=True)  # float32 on disk: renormalise
        labels = np.concatenate([y for _, y in found])
        path = Path(out) / f"{RELIABILITY_PREFIX}{_slug(env_id)}_{_slug(agent)}.png"
        written.append(reliability_diagram(probs, labels, path,
                                           title=f"{env_id} {agent} ({len(found)} seeds)"))
    return written


# ---------------------------------------------------------------------------------- regenerate
def load_outcomes(suite_dir: str | Path) -> list[TrialOutcome]:
    """The finished and failed trials recorded under ``suite_dir``.

    A folder with ``result.json`` is a finished trial (status ``"skipped"``: done before); one
    with only ``error.json`` a failed one. Trials come in the order of the suite recorded in
    ``suite.json`` where there is one, then sorted by environment, agent and seed.
    """
    suite_dir = Path(suite_dir)
    found: dict[tuple[str, str, int], TrialOutcome] = {}
    for path in sorted(suite_dir.rglob(RESULT_FILE)):
        result = json.loads(path.read_text(encoding="utf-8"))
        trial = Trial(result["env_id"], result["agent"], int(result["seed"]))
        found[trial.key] = TrialOutcome(trial, path.parent, "skipped", result)
    for path in sorted(suite_dir.rglob(ERROR_FILE)):
        error = json.loads(path.read_text(encoding="utf-8"))
        trial = Trial(error["env_id"], error["agent"], int(error["seed"]))
        if trial.key not in found:
            found[trial.key] = TrialOutcome(trial, path.parent, "failed",
                                            error=error.get("traceback") or error.get("error"))
    suite = read_suite_file(suite_dir)
    order = {t.key: i for i, t in enumerate(suite.trials)} if suite else {}
    return sorted(found.values(),
                  key=lambda o: (order.get(o.trial.key, len(order)), o.trial.key))


def regenerate(suite_dir: str | Path, *, plots: bool = True) -> Path:
    """Rewrite the report of ``suite_dir`` from its recorded trials; return ``report.md``'s path.

    Raises:
        FileNotFoundError: no ``result.json`` or ``error.json`` under ``suite_dir``.
    """
    suite_dir = Path(suite_dir)
    outcomes = load_outcomes(suite_dir)
    if not outcomes:
        raise FileNotFoundError(
            f"no {RESULT_FILE} or {ERROR_FILE} under {suite_dir}: pass the folder of a suite "
            "(e.g. runs/smoke), where python -m benchmarks.run wrote its trials"
        )
    suite = read_suite_file(suite_dir) or Suite(
        name=suite_dir.name, trials=tuple(o.trial for o in outcomes))
    return write_report(suite_dir, suite, outcomes, plots=plots)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report DIR``: regenerate the report of a suite folder."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Regenerate report.md, results.csv and the plots of a suite folder from "
        f"its finished trials (their {RESULT_FILE} and TensorBoard events).")
    parser.add_argument("suite_dir", metavar="DIR", help="the suite's folder, e.g. runs/smoke")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        path = regenerate(args.suite_dir, plots=not args.no_plots)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    outcomes = load_outcomes(args.suite_dir)
    print(format_table(summarize(outcomes)))
    print(f"\nreport: {path}")
    return 0


# ---------------------------------------------------------------------------------- context
def versions() -> dict[str, str]:
    """Python's and :data:`PACKAGES`' versions (``not installed`` where missing)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, str]:
    """The operating system, CPU, core count, memory and GPU of this machine."""
    info = {"os": platform.platform(), "cpu": _cpu_name(), "cores": str(os.cpu_count())}
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        info["memory"] = f"{memory / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):  # not on every system
        pass
    import torch

    info["gpu"] = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
    return info


def _cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------- helpers
def _groups(outcomes: Sequence[TrialOutcome]) -> dict[tuple[str, str], list[TrialOutcome]]:
    return _group(outcomes, lambda t: (t.env_id, t.agent))


def _by_env(outcomes: Sequence[TrialOutcome]) -> dict[str, list[TrialOutcome]]:
    return _group(outcomes, lambda t: t.env_id)


def _by_agent(outcomes: Sequence[TrialOutcome]) -> dict[str, list[TrialOutcome]]:
    return _group(outcomes, lambda t: t.agent)


def _group(outcomes: Sequence[TrialOutcome], key: Callable[[Trial], Any]) -> dict[Any, Any]:
    """Outcomes grouped by ``key(trial)``, groups in order of first appearance."""
    groups: dict[Any, list[TrialOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(key(outcome.trial), []).append(outcome)
    return groups


def _slug(env_id: str) -> str:
    """A file-name part for ``env_id``: ``umbra/CartPole-v0`` -> ``umbra_CartPole-v0``."""
    return "_".join(env_dirname(env_id).parts)


def _last_line(text: str | None) -> str:
    return ((text or "").strip().splitlines()[-1:] or ["unknown error"])[0]


def _comparison_table(comparisons: Sequence[Comparison], title: str) -> list[str]:
    body = [[c.x, c.y, c.envs[0] if len(c.envs) == 1 else f"all {len(c.envs)}",
             c.probability.format(2)] for c in comparisons]
    return _markdown_table(["X", "Y", "environments", title], body)


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, body)]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


if __name__ == "__main__":
    sys.exit(main())
