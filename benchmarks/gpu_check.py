"""Every agent family on the GPU in one command: speed, peak memory and host synchronisations.

``python -m benchmarks.gpu_check [--device cuda] [--updates 4] [--full-copies 16384]``
trains each row of :data:`CHECKS` for a few updates through :func:`agents.ppo.train` (mlp, lstm,
gru, transformer, linear on their tasks, MAPPO on a multi-agent task, a GCN agent on
``umbra/GraphNavigation-v0``, the Bayesian value head) and the full-throughput configuration
(``--full-copies`` copies of ``umbra/CartPole-v0``), then prints a table:

- ``steps/s``: over the updates after the first (which holds CUDA's start-up costs);
- ``peak MiB``: ``torch.cuda.max_memory_allocated`` of that training;
- ``rollout syncs/update``: host synchronisations inside the rollout
  (:func:`agents.rollout.collect`), counted with ``torch.cuda.set_sync_debug_mode("warn")``;
  the rollout must make none (docs/architecture.md, "The batched environment contract"), so any
  is a failure, except where :data:`KNOWN_SYNCS` names the reason (shown as ``known``);
- ``update syncs/update``: the same inside the update (information: a recurrent core reads once
  per minibatch whether episodes start inside its sequences);
- ``status``: ``pass``, ``known`` or ``FAIL``.

Exit status: 0 when no row failed, 1 otherwise. On a machine without CUDA it prints one line,
``gpu_check skipped: ...``, and exits 0 (:data:`SKIPPED`); ``--device cpu`` runs the same code
on the CPU with sync counting off (what the tests do, with tiny budgets). The whole check is
sized to run in well under 5 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any
from unittest import mock

import torch

from agents import ppo
from agents.presets import agent_config

#: Exit status of a run that found no CUDA device (nothing failed, nothing was checked).
SKIPPED = 0


@dataclasses.dataclass(frozen=True)
class Check:
    """One row: ``agent`` (an ``agents.presets`` name) on ``env_id`` with ``num_envs`` copies."""

    agent: str
    env_id: str
    num_envs: int
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.agent


#: The agent families and the full-throughput row (its copies come from ``--full-copies``).
CHECKS: tuple[Check, ...] = (
    Check("mlp", "umbra/CartPole-v0", 4_096),
    Check("lstm", "umbra/MaskedCartPole-v0", 4_096),
    Check("gru", "umbra/MaskedCartPole-v0", 4_096),
    Check("transformer", "umbra/MaskedCartPole-v0", 1_024),
    Check("linear", "umbra/MaskedCartPole-v0", 4_096),
    Check("mappo", "umbra/CooperativeNavigation-v0", 1_024),
    Check("gcn", "umbra/GraphNavigation-v0", 512),
    Check("ppo-bayes", "umbra/CartPole-v0", 4_096),
    Check("ppo", "umbra/CartPole-v0", 16_384, label="full (ppo)"),
)

#: Agents whose rollout synchronises by design, and why (reported as ``known``, not a failure).
KNOWN_SYNCS: dict[str, str] = {
    "gcn": "graphs.batching.to_pyg_batch reads the total node and edge counts once per forward",
}

#: Part of the warning ``torch.cuda.set_sync_debug_mode("warn")`` gives at a sync ("called a
#: synchronizing CUDA operation"), matched case-insensitively.
_SYNC_WARNING = "synchronizing"


class SyncCounter:
    """Counts host synchronisations inside the wrapped functions, by phase.

    With ``enabled`` (CUDA only) each wrapped call runs under
    ``torch.cuda.set_sync_debug_mode("warn")`` and every sync warning is counted; otherwise
    calls pass through and nothing is counted.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.counts: dict[str, int] = {"rollout": 0, "update": 0}

    def wrap(self, phase: str, fn: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return fn(*args, **kwargs)
            with self._counting(phase):
                return fn(*args, **kwargs)

        return counted

    @contextlib.contextmanager
    def _counting(self, phase: str) -> Iterator[None]:
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        self.counts[phase] += count_sync_warnings(caught)


def count_sync_warnings(caught: Sequence[warnings.WarningMessage]) -> int:
    """How many of ``caught`` are CUDA sync-debug warnings."""
    return sum(_SYNC_WARNING in str(w.message).lower() for w in caught)


def _is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def run_check(check: Check, device: str, updates: int, count_syncs: bool) -> dict[str, Any]:
    """Train ``check`` for ``updates`` updates on ``device``; its row of the table."""
    cuda = _is_cuda(device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    counter = SyncCounter(count_syncs and cuda)
    ends: list[float] = []

    def progress(step: int) -> None:
        if cuda:
            torch.cuda.synchronize()
        ends.append(time.perf_counter())

    error, batch = None, 0
    with mock.patch.object(ppo, "collect", counter.wrap("rollout", ppo.collect)), \
            mock.patch.object(ppo, "update_policy", counter.wrap("update", ppo.update_policy)):
        try:
            config = agent_config(check.agent, check.env_id, **{**check.overrides,
                                                                 "num_envs": check.num_envs,
                                                                 "device": device, "seed": 0})
            batch = config.batch_size
            ppo.train(dataclasses.replace(config, total_steps=updates * batch,
                                          stop_at_return=None), progress=progress)
        except Exception as err:  # noqa: BLE001 - a failing agent is a row of the table
            error = f"{type(err).__name__}: {err}"
    timed = len(ends) - 1  # the first update holds the start-up costs
    sps = timed * batch / (ends[-1] - ends[0]) if timed > 0 else None
    checked = counter.enabled
    rollout_syncs = counter.counts["rollout"] / max(len(ends), 1) if checked else None
    update_syncs = counter.counts["update"] / max(len(ends), 1) if checked else None
    if error is not None:
        status = "FAIL"
    elif rollout_syncs:
        status = "known" if check.agent in KNOWN_SYNCS else "FAIL"
    else:
        status = "pass"
    return {"check": check.name, "agent": check.agent, "env_id": check.env_id,
            "num_envs": check.num_envs, "sps": sps,
            "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "rollout_syncs": rollout_syncs, "update_syncs": update_syncs,
            "status": status, "error": error}


def run_checks(checks: Sequence[Check], device: str, updates: int,
               count_syncs: bool = True) -> list[dict[str, Any]]:
    """:func:`run_check` of every row."""
    return [run_check(check, device, updates, count_syncs) for check in checks]


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a fixed-width table (``-`` where a value was not measured)."""

    def fmt(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    head = (f"{'agent':<12} {'env':<32} {'copies':>7} {'steps/s':>12} {'peak MiB':>9} "
            f"{'rollout syncs/update':>21} {'update syncs/update':>20} {'status':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        peak = None if r["peak_bytes"] is None else r["peak_bytes"] / 2**20
        lines.append(f"{r['check']:<12} {r['env_id']:<32} {r['num_envs']:>7,} "
                     f"{fmt(r['sps'], ',.0f'):>12} {fmt(peak, ',.0f'):>9} "
                     f"{fmt(r['rollout_syncs'], '.1f'):>21} {fmt(r['update_syncs'], '.1f'):>20} "
                     f"{r['status']:>7}")
    for r in rows:
        if r["error"]:
            lines.append(f"{r['check']}: {r['error']}")
        elif r["status"] == "known":
            lines.append(f"{r['check']}: rollout syncs known: {KNOWN_SYNCS[r['agent']]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda",
                        help="cuda (default), or cpu to run the same code without sync checks")
    parser.add_argument("--updates", type=int, default=4, help="updates per agent (>= 2)")
    parser.add_argument("--full-copies", type=int, default=16_384,
                        help="copies of umbra/CartPole-v0 in the full-throughput row")
    parser.add_argument("--full-updates", type=int, default=8)
    parser.add_argument("--agents", default=None,
                        help="comma-separated subset of the rows (default: all)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        reason = ("this torch build has no CUDA" if torch.version.cuda is None
                  else "no CUDA device is visible")
        print(f"gpu_check skipped: {reason} (torch {torch.__version__}); nothing was checked.")
        return SKIPPED
    wanted = None if args.agents is None else {a.strip() for a in args.agents.split(",")}
    rows = []
    started = time.perf_counter()
    for check in CHECKS:
        if wanted is not None and check.name not in wanted and check.agent not in wanted:
            continue
        full = check.label.startswith("full")
        if full:
            check = dataclasses.replace(check, num_envs=args.full_copies)
        rows.append(run_check(check, args.device, args.full_updates if full else args.updates,
                              count_syncs=args.device.startswith("cuda")))
        print(f"  {check.name}: {rows[-1]['status']} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"gpu_check on {name}, torch {torch.__version__}, "
          f"{time.perf_counter() - started:.0f} s")
    print(table(rows))
    return 0 if all(r["status"] != "FAIL" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
