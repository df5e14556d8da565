"""Where one PPO iteration spends its time, per memory core.

``python -m benchmarks.profile [--env ID] [--agents mlp,gru,lstm,transformer,linear]
[--num-envs 1024] [--updates 3] [--warmup 1] [--device cpu] [--threads N]`` trains each agent
(``agents.presets.agent_config(agent, env)`` at ``--num-envs`` copies) through
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
                  device: str) -> dict[str, Any]:
    """Train ``agent`` for ``warmup + updates`` iterations and time the last ``updates``.

    Returns:
        ``{"agent", "ms": {phase: ms per iteration}, "total_ms", "sps"}``.
    """
    config = agent_config(agent, env_id, num_envs=num_envs, device=device, seed=0)
    config = dataclasses.replace(config, total_steps=(warmup + updates) * config.batch_size,
                                 stop_at_return=None)
    timer = PhaseTimer(resolve_device(config.device))
    iterations = {"done": 0, "start": 0.0}

    real_collect, real_update = rollout.collect, ppo.update_policy
    real_evaluate = ppo.ActorCritic.evaluate
    real_loss, real_clip = ppo.ppo_loss, torch.nn.utils.clip_grad_norm_
    real_backward, real_step = torch.autograd.backward, torch.optim.Adam.step
    real_env_step = BatchedEnv.step
    real_deferred, real_finite = BatchedEnv.check_deferred, ppo._check_rollout_finite

    def collect(*args: Any, **kwargs: Any) -> Any:
        timer.counting = iterations["done"] >= warmup
        iterations["start"] = time.perf_counter()
        with timer.phase("storage"):
            return real_collect(*args, **kwargs)

    def update(*args: Any, **kwargs: Any) -> Any:
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
    return {"agent": agent, "ms": ms, "total_ms": total,
            "sps": config.batch_size / (total / 1000) if total else float("nan")}


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
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    print(f"one PPO iteration on {args.env}, {args.num_envs} copies, {device}, "
          f"{torch.get_num_threads()} torch threads; mean of {args.updates} iterations after "
          f"{args.warmup} warm-up")
    rows = [profile_agent(agent, args.env, args.num_envs, args.updates, args.warmup, device)
            for agent in agents]
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
