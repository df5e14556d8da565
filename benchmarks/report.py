"""Summaries of a suite's trials: the table printed at the end of a run and ``report.md``.

Rows group the trials of one environment and agent across seeds: the number of seeds, the mean
and standard deviation (across seeds, ``ddof=1``) of ``final_return``, the mean steps per second
and the mean wall time per trial, and, when the trials had a return threshold, how many reached it
and the median steps and seconds it took. Interquartile means with bootstrap intervals come with
the statistics of the benchmarks issue.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.runner import TrialOutcome

REPORT_FILE = "report.md"


@dataclass(frozen=True)
class Row:
    """One environment and agent, aggregated over its finished seeds."""

    env_id: str
    agent: str
    seeds: int
    failed: int
    return_mean: float | None
    return_std: float | None
    sps: float | None
    wall_time_s: float | None
    threshold_reached: int | None = None
    threshold_steps: float | None = None
    threshold_time_s: float | None = None


def summarize(outcomes: Sequence[TrialOutcome]) -> list[Row]:
    """One :class:`Row` per (env, agent), in the order they first appear."""
    groups: dict[tuple[str, str], list[TrialOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.trial.env_id, outcome.trial.agent), []).append(outcome)
    rows = []
    for (env_id, agent), group in groups.items():
        results = [o.result for o in group if o.status != "failed" and o.result is not None]
        returns = [r["final_return"] for r in results if r.get("final_return") is not None]
        row = Row(
            env_id=env_id,
            agent=agent,
            seeds=len(results),
            failed=len(group) - len(results),
            return_mean=statistics.fmean(returns) if returns else None,
            return_std=statistics.stdev(returns) if len(returns) > 1 else None,
            sps=_mean([r.get("sps") for r in results]),
            wall_time_s=_mean([r.get("wall_time_s") for r in results]),
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


def _columns(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    threshold = any(r.threshold_reached is not None for r in rows)
    header = ["env", "agent", "seeds", "final return (mean ± std)", "steps/s", "wall time/trial"]
    if threshold:
        header += ["reached threshold", "steps to threshold", "time to threshold"]
    body = []
    for r in rows:
        ret = "n/a" if r.return_mean is None else f"{r.return_mean:.1f}"
        if r.return_std is not None:
            ret += f" ± {r.return_std:.1f}"
        cells = [
            r.env_id,
            r.agent,
            f"{r.seeds}" + (f" ({r.failed} failed)" if r.failed else ""),
            ret,
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
    header, body = _columns(rows)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])


def markdown_report(
    suite: str,
    outcomes: Sequence[TrialOutcome],
    suite_dir: str | Path,
    description: str = "",
    source: str = "",
) -> str:
    """``report.md``: the summary table, then one line per trial, then the failures.

    Args:
        suite: Suite name (the title).
        outcomes: The trials, done now or before.
        suite_dir: The suite's folder, named in the TensorBoard hint.
        description: The suite's one-line description.
        source: Where the suite file was read from.
    """
    header, body = _columns(summarize(outcomes))
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# Suite `{suite}`", ""]
    if description:
        lines += [description, ""]
    lines += [f"Written {now}" + (f" from `{source}`" if source else "") + ".", ""]
    lines += _markdown_table(header, body)
    lines += ["", "## Trials", ""]
    trial_rows = []
    for o in outcomes:
        r = o.result or {}
        ret = r.get("final_return")
        trial_rows.append([
            o.trial.env_id, o.trial.agent, str(o.trial.seed),
            "failed" if o.status == "failed" else "done",
            "n/a" if ret is None else f"{ret:.1f}",
            f"{r['steps']:,}" if "steps" in r else "n/a",
            f"{r['sps']:,.0f}" if r.get("sps") is not None else "n/a",
            f"{r['wall_time_s']:.1f} s" if r.get("wall_time_s") is not None else "n/a",
            f"`{o.logdir}`",
        ])
    lines += _markdown_table(
        ["env", "agent", "seed", "status", "final return", "steps", "steps/s", "wall time",
         "folder"],
        trial_rows,
    )
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["", "## Failures", ""]
        for o in failed:
            last = (o.error or "").strip().splitlines()[-1:] or ["unknown error"]
            lines.append(f"- {o.trial.env_id} {o.trial.agent} seed{o.trial.seed}: {last[0]}")
    lines += ["", f"Learning curves: `tensorboard --logdir {suite_dir}`", ""]
    return "\n".join(lines)


def write_report(
    suite_dir: str | Path,
    suite: str,
    outcomes: Sequence[TrialOutcome],
    description: str = "",
    source: str = "",
) -> Path:
    """Write :func:`markdown_report` to ``<suite_dir>/report.md`` and return that path."""
    path = Path(suite_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = markdown_report(suite, outcomes, suite_dir, description, source)
    path.write_text(text, encoding="utf-8")
    return path


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
