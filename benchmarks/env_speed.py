"""Environment speed: a batched multi-agent task against the same task in a PettingZoo loop.

``python -m benchmarks.env_speed [--num-envs 4096] [--device cpu|cuda] [--seconds 3]`` steps
every native multi-agent task with random actions, in one process, two ways:

- batched: ``envs.make(id, num_envs=N, device=...)``, one tensor step for all copies;
- PettingZoo: ``envs.make_pettingzoo(id)`` (one copy, the ``ParallelEnv`` adapter) stepped in a
  Python loop with a dict of actions, resetting when all agents are done, as a PettingZoo user
  would.

It prints environment steps per second (a step of one copy counts once, whatever its number of
agents) and their ratio. A benchmark, not a test: it asserts nothing.

``python -m benchmarks.env_speed --popgym [--num-envs 1024] [--package-copies 16] [--ids ...]``
compares instead every registered ``popgym/`` id (``envs.list_ids()`` on that namespace, so
every family registered at the time) with random actions, in one process:

- batched: as above, 1,024 copies by default;
- package: the popgym class the id mirrors (:func:`envs.popgym.package_class`, from the class's
  ``popgym_class`` attribute) in a ``gymnasium.vector.SyncVectorEnv`` of 16 copies, stepped
  with ``action_space.sample()`` (Gymnasium's default next-step autoreset).

An id whose class names no ``popgym_class``, or whose package env fails to step, gets a row
saying so instead of numbers. The goal is a ratio of at least 50x.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

import envs
from envs.core import resolve_device


def batched_sps(env_id: str, num_envs: int, device: str, seconds: float) -> float:
    """Environment steps per second of a batched task under 16 fixed valid random action
    batches (uniform over a Discrete space, in ``[-1, 1]`` for a Box)."""
    env = envs.make(env_id, num_envs=num_envs, device=device)
    env.reset(seed=0)
    generator = torch.Generator(device=env.device).manual_seed(0)
    shape = tuple(env.action_space.shape)
    space = env.single_action_space
    if hasattr(space, "n"):
        actions = [torch.randint(int(space.n), shape, device=env.device, generator=generator)
                   for _ in range(16)]
    elif hasattr(space, "low"):
        actions = [torch.rand(shape, device=env.device, generator=generator) * 2 - 1
                   for _ in range(16)]
    else:  # MultiDiscrete, MultiBinary: the batched space's own sampler
        env.action_space.seed(0)
        actions = [torch.as_tensor(env.action_space.sample(), device=env.device)
                   for _ in range(16)]
    env.step(actions[0])  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions:
            env.step(a)
        steps += len(actions)
    env.check_deferred()
    if env.device.type == "cuda":
        torch.cuda.synchronize(env.device)
    return steps * num_envs / (time.perf_counter() - start)


def pettingzoo_sps(env_id: str, seconds: float) -> float:
    """Environment steps per second of the same task through its PettingZoo ``ParallelEnv``."""
    env = envs.make_pettingzoo(env_id, parallel=True)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        env.step(actions)
        steps += 1
        if not env.agents:
            env.reset()
    return steps / (time.perf_counter() - start)


def package_sps(cls_path: str, copies: int, seconds: float) -> float:
    """Environment steps per second of a popgym class (``"module:Class"``) in a
    ``gymnasium.vector.SyncVectorEnv`` of ``copies`` copies under ``action_space.sample()``."""
    import gymnasium as gym

    module, name = cls_path.split(":")
    cls = getattr(importlib.import_module(module), name)
    venv = gym.vector.SyncVectorEnv([cls for _ in range(copies)])
    venv.reset(seed=0)
    venv.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        venv.step(venv.action_space.sample())
        steps += copies
    elapsed = time.perf_counter() - start
    venv.close()
    return steps / elapsed


@dataclass(frozen=True)
class PopgymRow:
    """One row of the popgym table: steps/s both ways, or why there are no numbers."""

    env_id: str
    package_class: str | None
    batched_sps: float | None = None
    package_sps: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.batched_sps is None or not self.package_sps:
            return None
        return self.batched_sps / self.package_sps


def popgym_ids() -> list[str]:
    """Every registered id of the ``popgym/`` namespace."""
    return [env_id for env_id in envs.list_ids() if env_id.startswith("popgym/")]


def popgym_rows(
    ids: Sequence[str], num_envs: int, device: str, seconds: float, package_copies: int
) -> list[PopgymRow]:
    """Measure every id batched and through its popgym class; skip, with a note, an id whose
    class has no ``popgym_class`` or whose package env fails."""
    from envs.popgym import package_class

    rows = []
    for env_id in ids:
        path = package_class(env_id)
        if path is None:
            rows.append(PopgymRow(env_id, None, note="skipped: its class names no popgym_class"))
            continue
        fast = batched_sps(env_id, num_envs, device, seconds)
        try:
            slow = package_sps(path, package_copies, seconds)
        except Exception as err:  # a package env that cannot run here: say so, go on
            rows.append(PopgymRow(env_id, path, fast, note=f"package failed: {err!r}"[:120]))
            continue
        rows.append(PopgymRow(env_id, path, fast, slow))
    return rows


def popgym_table(rows: Sequence[PopgymRow], num_envs: int, device: str, copies: int) -> str:
    """The rows as a Markdown table, with a last line counting the ratios of at least 50x."""
    lines = [
        f"| env | batched ({num_envs} copies, {device}) | package (SyncVectorEnv, {copies} "
        "copies) | ratio |",
        "|---|---|---|---|",
    ]
    for row in rows:
        batched = "" if row.batched_sps is None else f"{row.batched_sps:,.0f} steps/s"
        package = row.note if row.package_sps is None else f"{row.package_sps:,.0f} steps/s"
        ratio = "" if row.ratio is None else f"{row.ratio:,.0f}x"
        lines.append(f"| {row.env_id} | {batched} | {package} | {ratio} |")
    measured = [row for row in rows if row.ratio is not None]
    met = sum(row.ratio >= 50 for row in measured)
    lines.append(f"\n{met} of {len(measured)} measured ids reach the 50x goal.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.env_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=None,
                        help="batched copies (default 4096; 1024 with --popgym)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--popgym", action="store_true",
                        help="compare the popgym/ ids with the popgym package's own envs")
    parser.add_argument("--package-copies", type=int, default=16,
                        help="copies in the package's SyncVectorEnv (--popgym)")
    parser.add_argument("--ids", nargs="+", default=None,
                        help="only these popgym/ ids (--popgym; default: every registered one)")
    args = parser.parse_args(argv)
    device = str(resolve_device(args.device))
    if args.popgym:
        num_envs = args.num_envs or 1024
        ids = args.ids or popgym_ids()
        rows = popgym_rows(ids, num_envs, device, args.seconds, args.package_copies)
        print(popgym_table(rows, num_envs, device, args.package_copies))
        return 0
    if args.ids:
        parser.error("--ids goes with --popgym")
    args.num_envs = args.num_envs or 4096
    print(f"| task | batched ({args.num_envs} copies, {device}) | PettingZoo loop | ratio |")
    print("|---|---|---|---|")
    for env_id in envs.list_ids("multi-agent"):
        fast = batched_sps(env_id, args.num_envs, device, args.seconds)
        slow = pettingzoo_sps(env_id, args.seconds)
        print(f"| {env_id} | {fast:,.0f} steps/s | {slow:,.0f} steps/s | {fast / slow:,.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
