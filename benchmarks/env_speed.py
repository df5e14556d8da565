"""Environment speed: a batched multi-agent task against the same task in a PettingZoo loop.

``python -m benchmarks.env_speed [--num-envs 4096] [--device cpu|cuda] [--seconds 3]`` steps
every native multi-agent task with random actions, in one process, two ways:

- batched: ``envs.make(id, num_envs=N, device=...)``, one tensor step for all copies;
- PettingZoo: ``envs.make_pettingzoo(id)`` (one copy, the ``ParallelEnv`` adapter) stepped in a
  Python loop with a dict of actions, resetting when all agents are done, as a PettingZoo user
  would.

It prints environment steps per second (a step of one copy counts once, whatever its number of
agents) and their ratio. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

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
    else:
        actions = [torch.rand(shape, device=env.device, generator=generator) * 2 - 1
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.env_speed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args(argv)
    device = str(resolve_device(args.device))
    print(f"| task | batched ({args.num_envs} copies, {device}) | PettingZoo loop | ratio |")
    print("|---|---|---|---|")
    for env_id in envs.list_ids("multi-agent"):
        fast = batched_sps(env_id, args.num_envs, device, args.seconds)
        slow = pettingzoo_sps(env_id, args.seconds)
        print(f"| {env_id} | {fast:,.0f} steps/s | {slow:,.0f} steps/s | {fast / slow:,.0f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
