"""The report's figures, drawn with matplotlib's Agg backend (no display needed).

- :func:`plot_curves`: one environment's learning curves, one line per agent (IQM across seeds)
  with its 95% interval band.
- :func:`plot_intervals`: point estimates with 95% intervals, one row per agent, one panel per
  statistic or environment (rliable's interval plot).
- :func:`plot_profiles`: performance profiles, the fraction of runs above each score.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from benchmarks.curves import Band  # noqa: E402
from benchmarks.stats import Interval  # noqa: E402


def plot_curves(title: str, bands: Mapping[str, Band], path: str | Path,
                ylabel: str = "episode return", xlabel: str = "environment steps") -> Path:
    """Learning curves of several agents on one environment.

    Args:
        title: The figure's title (the environment id).
        bands: Agent -> its :class:`~benchmarks.curves.Band`.
        path: Where the PNG goes (folders are created).
        ylabel: Label of the y axis.
        xlabel: Label of the x axis (``"epochs"`` for a learning task).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for agent, b in bands.items():
        (line,) = ax.plot(b.steps, b.point, label=f"{agent} (IQM of {b.runs} seeds)")
        ax.fill_between(b.steps, b.low, b.high, color=line.get_color(), alpha=0.25, linewidth=0)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if bands:
        ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def plot_intervals(
    title: str, panels: Mapping[str, Mapping[str, Interval]], path: str | Path, xlabel: str
) -> Path:
    """Point estimates with 95% intervals: one panel per key of ``panels``, one row per agent.

    Args:
        title: The figure's title.
        panels: Panel title -> agent -> interval.
        path: Where the PNG goes.
        xlabel: Label of every x axis.
    """
    agents = list(dict.fromkeys(a for panel in panels.values() for a in panel))
    fig, axes = plt.subplots(1, max(len(panels), 1), squeeze=False, sharey=True,
                             figsize=(2.2 + 2.6 * len(panels), 0.6 + 0.45 * len(agents) + 0.8),
                             layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (name, intervals) in zip(axes[0], panels.items(), strict=False):
        _fit_x(ax, [v for iv in intervals.values() for v in (iv.low, iv.point, iv.high)])
        for row, agent in enumerate(agents):
            iv = intervals.get(agent)
            if iv is None or np.isnan(iv.point):
                continue
            color = colors[row % len(colors)]
            if not np.isnan(iv.low):
                ax.barh(row, iv.high - iv.low, left=iv.low, height=0.6, color=color, alpha=0.6)
            ax.plot([iv.point, iv.point], [row - 0.3, row + 0.3], color="black", linewidth=1.5)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(agents)), agents)
    axes[0][0].invert_yaxis()
    fig.suptitle(title)
    return _save(fig, path)


def plot_profiles(
    title: str, taus: np.ndarray, profiles: Mapping[str, np.ndarray], path: str | Path,
    xlabel: str = r"normalised score $\tau$",
) -> Path:
    """Performance profiles: for each agent, the fraction of runs with a score above ``tau``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for agent, fractions in profiles.items():
        ax.plot(taus, fractions, label=agent)
    ax.set(title=title, xlabel=xlabel, ylabel=r"fraction of runs with score $> \tau$",
           ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    if profiles:
        ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _fit_x(ax: plt.Axes, values: list[float]) -> None:
    """Show ``values`` with a margin of a fifth of their span on each side, and 4 ticks."""
    finite = [v for v in values if np.isfinite(v)]
    if finite:
        low, high = min(finite), max(finite)
        pad = 0.2 * (high - low) or 0.05 * max(abs(high), 1.0)
        ax.set_xlim(low - pad, high + pad)
    ax.xaxis.set_major_locator(MaxNLocator(4))


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
