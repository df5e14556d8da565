"""Where one PPO iteration spends its time, per memory core.

``python -m benchmarks.profile [--env ID] [--agents mlp,gru,lstm,transformer,linear]
[--num-envs 1024] [--updates 3] [--warmup 1] [--device cpu] [--threads N] [--ops K]`` trains
each agent (``agents.presets.agent_config(agent, env)`` at ``--num-envs`` copies) through
:func:`agents.ppo.train` itself and times its phases by wrapping the functions the loop calls:

=================  ==========================================================================
phase              what it times
=================  ==========================================================================
env step           ``env.step`` (with its default action checks)
policy act         ``ActorCritic.act`` in the rollout
bootstrap          ``truncation_bootstrap`` (``gamma * V(final_obs)`` for truncated copies)
storage            the rest of ``collect``: writing the step into the rollout, the last value
GAE                ``compute_gae``
checks             ``env.check_deferred`` and the rollout's non-finite check
minibatch          building the minibatches (gathers) and the loop around the update
update forward     ``ActorCritic.evaluate`` and ``ppo_loss``
update backward    ``loss.backward()``
optimiser          gradient clipping and ``Adam.step``
bookkeeping        everything else of the iteration (episode statistics, stop rule)
=================  ==========================================================================

Times are perf_counter intervals; on CUDA each wrapped call synchronises before and after, so
the phases add up but the total is slower than an unprofiled run (the ``sps`` column is the
profiled run's). The first ``--warmup`` iterations are not counted. A measurement, not a test.

``--ops K`` runs one more iteration's update (not counted above) under ``torch.profiler`` and
prints, per agent, how many operator calls it made, their mean time, the matrix products'
floating-point work and the rate achieved, beside the rate of one large matrix product on the
same threads: the gap between the two says whether the update is bound by arithmetic or by the
cost of launching many small operations. Then the ``K`` operators with the most time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from unittest import mock

import torch

from agents import ppo, rollout
from agents.presets import agent_config
from envs.core import BatchedEnv, resolve_device

#: The phases in table order (see the module docstring).
PHASES = ("env step", "policy act", "bootstrap", "storage", "GAE", "checks", "minibatch",
          "update forward", "update backward", "optimiser", "bookkeeping")
AGENTS = ("mlp", "gru", "lstm", "transformer", "linear")


class PhaseTimer:
    """Sums of wall-clock seconds per phase; nested phases are subtracted from their parent."""

    def __init__(self, device: torch.device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []  # [start, seconds spent in children]
        self.counting = True

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.sync()
        self._stack.append([time.perf_counter(), 0.0])
        try:
            yield
        finally:
            self.sync()
            start, children = self._stack.pop()
            spent = time.perf_counter() - start
            if self.counting:
                self.totals[name] += spent - children
            if self._stack:
                self._stack[-1][1] += spent

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return fn(*args, **kwargs)

        return timed


def profile_agent(agent: str, env_id: str, num_envs: int, updates: int, warmup: int,
                  device: str, ops: int = 0) -> dict[str, Any]:
    """Train ``agent`` for ``warmup + updates`` iterations and time the last ``updates``; with
    ``ops``, one more iteration's update runs under ``torch.profiler`` (:func:`operator_profile`).

    Returns:
        ``{"agent", "ms": {phase: ms per iteration}, "total_ms", "sps"}``, and ``"ops"`` (the
        operator summary) when ``ops`` is set.
    """
    config = agent_config(agent, env_id, num_envs=num_envs, device=device, seed=0)
    extra = 1 if ops else 0
    config = dataclasses.replace(config, total_steps=(warmup + updates + extra) * config.batch_size,
                                 stop_at_return=None)
    timer = PhaseTimer(resolve_device(config.device))
    iterations = {"done": 0, "start": 0.0}
    summary: dict[str, Any] = {}

    real_collect, real_update = rollout.collect, ppo.update_policy
    real_evaluate = ppo.ActorCritic.evaluate
    real_loss, real_clip = ppo.ppo_loss, torch.nn.utils.clip_grad_norm_
    real_backward, real_step = torch.autograd.backward, torch.optim.Adam.step
    real_env_step = BatchedEnv.step
    real_deferred, real_finite = BatchedEnv.check_deferred, ppo._check_rollout_finite

    def collect(*args: Any, **kwargs: Any) -> Any:
        timer.counting = warmup <= iterations["done"] < warmup + updates
        iterations["start"] = time.perf_counter()
        with timer.phase("storage"):
            return real_collect(*args, **kwargs)

    def update(*args: Any, **kwargs: Any) -> Any:
        if iterations["done"] == warmup + updates:  # the extra, profiled iteration
            with torch.profiler.profile(with_flops=True) as prof:
                result = real_update(*args, **kwargs)
            summary.update(operator_profile(prof, ops))
            return result
        with timer.phase("minibatch"):
            return real_update(*args, **kwargs)

    def progress(step: int) -> None:  # called at the end of every iteration
        timer.sync()
        if timer.counting:
            timer.totals["iteration"] += time.perf_counter() - iterations["start"]
        iterations["done"] += 1

    patches = [
        mock.patch.object(ppo, "collect", collect),
        mock.patch.object(ppo, "update_policy", update),
        mock.patch.object(BatchedEnv, "step", timer.wrap("env step", real_env_step)),
        mock.patch.object(ppo.ActorCritic, "act", timer.wrap("policy act", ppo.ActorCritic.act)),
        mock.patch.object(rollout, "truncation_bootstrap",
                          timer.wrap("bootstrap", rollout.truncation_bootstrap)),
        mock.patch.object(rollout, "compute_gae", timer.wrap("GAE", rollout.compute_gae)),
        mock.patch.object(BatchedEnv, "check_deferred", timer.wrap("checks", real_deferred)),
        mock.patch.object(ppo, "_check_rollout_finite", timer.wrap("checks", real_finite)),
        mock.patch.object(ppo.ActorCritic, "evaluate", timer.wrap("update forward",
                                                                  real_evaluate)),
        mock.patch.object(ppo, "ppo_loss", timer.wrap("update forward", real_loss)),
        mock.patch.object(torch.autograd, "backward", timer.wrap("update backward",
                                                                 real_backward)),
        mock.patch.object(torch.nn.utils, "clip_grad_norm_", timer.wrap("optimiser", real_clip)),
        mock.patch.object(torch.optim.Adam, "step", timer.wrap("optimiser", real_step)),
    ]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        ppo.train(config, progress=progress)
    claimed = sum(timer.totals.get(name, 0.0) for name in PHASES)
    timer.totals["bookkeeping"] = timer.totals["iteration"] - claimed
    ms = {name: 1000 * timer.totals.get(name, 0.0) / updates for name in PHASES}
    total = sum(ms.values())
    row = {"agent": agent, "ms": ms, "total_ms": total,
           "sps": config.batch_size / (total / 1000) if total else float("nan")}
    if ops:
        row["ops"] = summary
    return row


def operator_profile(prof: Any, top: int) -> dict[str, Any]:
    """What one update's operators cost, from a finished ``torch.profiler.profile``: operator
    calls (``aten::`` ones, which do the work), their summed self CPU time in ms, the floating-point
    operations the profiler counts (matrix products), and the ``top`` operators by self time as
    ``(name, calls, ms)``."""
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "calls": sum(e.count for e in events),
        "self_ms": sum(e.self_cpu_time_total for e in events) / 1000,
        "flops": sum(e.flops or 0 for e in events),
        "top": [(e.key, e.count, e.self_cpu_time_total / 1000) for e in events[:top]],
    }


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of one ``size x size`` float32 matrix product on the CPU's current threads: what
    arithmetic-bound code could reach here."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def operator_table(rows: Sequence[dict[str, Any]], peak: float | None) -> str:
    """Per agent: the update's operator calls, mean us per call, matrix GFLOP and GFLOP/s, then
    its most expensive operators."""
    lines = [f"one update under torch.profiler (matrix products' rate: "
             f"{'n/a' if peak is None else f'{peak:,.0f} GFLOP/s on a 2048x2048 product'})",
             f"{'agent':<14}{'op calls':>10}{'us/call':>10}{'op ms':>10}{'GFLOP':>10}"
             f"{'GFLOP/s':>10}"]
    for r in rows:
        o = r["ops"]
        rate = o["flops"] / 1e9 / (o["self_ms"] / 1000) if o["self_ms"] else float("nan")
        lines.append(f"{r['agent']:<14}{o['calls']:>10,}{1000 * o['self_ms'] / o['calls']:>10.1f}"
                     f"{o['self_ms']:>10.1f}{o['flops'] / 1e9:>10.2f}{rate:>10.1f}")
    for r in rows:
        top = ", ".join(f"{name[6:]} {ms:.0f} ms/{calls}" for name, calls, ms in r["ops"]["top"])
        lines.append(f"  {r['agent']}: {top}")
    return "\n".join(lines)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The phases as rows, one ``ms  %`` column pair per agent."""
    head = f"{'phase':<16}" + "".join(f"{r['agent']:>20}" for r in rows)
    lines = [head, f"{'':<16}" + "".join(f"{'ms/iter':>12}{'%':>8}" for _ in rows)]
    for name in PHASES:
        cells = "".join(f"{r['ms'][name]:>12.1f}{100 * r['ms'][name] / r['total_ms']:>7.1f}%"
                        for r in rows)
        lines.append(f"{name:<16}{cells}")
    lines.append(f"{'total':<16}" + "".join(f"{r['total_ms']:>12.1f}{'100.0%':>8}"
                                              for r in rows))
    lines.append(f"{'steps/s':<16}" + "".join(f"{r['sps']:>20,.0f}" for r in rows))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="umbra/MaskedCartPole-v0")
    parser.add_argument("--agents", default=",".join(AGENTS),
                        help="comma-separated agent presets (agents/presets.py)")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--updates", type=int, default=3, help="timed iterations per agent")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--ops", type=int, default=0, metavar="K",
                        help="also profile one update's operators and list the K costliest")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    print(f"one PPO iteration on {args.env}, {args.num_envs} copies, {device}, "
          f"{torch.get_num_threads()} torch threads; mean of {args.updates} iterations after "
          f"{args.warmup} warm-up")
    if args.ops < 0:
        parser.error(f"--ops must be 0 or more, got {args.ops}")
    rows = [profile_agent(agent, args.env, args.num_envs, args.updates, args.warmup, device,
                          ops=args.ops)
            for agent in agents]
    print(table(rows))
    if args.ops:
        print(operator_table(rows, matmul_rate() if device == "cpu" else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
