"""What the default input checks cost: steps per second with them and without, in one process.

``python -m benchmarks.check_cost [--num-envs 1024] [--device cpu|cuda] [--repeats 5]`` measures

- environment steps per second of ``umbra/CartPole-v0``, ``umbra/Pendulum-v0`` and
  ``umbra/CooperativeNavigation-v0`` under fixed valid random actions, with the checks that
  ``step`` runs by default (:meth:`envs.core.BatchedEnv.check_actions`: at once on the CPU,
  deferred to a device-side flag on an accelerator) and with them bypassed;
- PPO training steps per second (the throughput suite's preset ``agent_config("ppo",
  "umbra/CartPole-v0")`` at ``--num-envs`` copies, ``--ppo-steps`` steps) with the default checks
  (actions, and the rollout's non-finite observation/reward check) and with both bypassed.

The two variants alternate ``--repeats`` times and the medians are compared: cost = 1 - with /
without. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Iterator, Sequence
from unittest import mock

from agents import ppo
from agents.presets import agent_config
from benchmarks.env_speed import batched_sps
from envs.core import BatchedEnv, resolve_device

ENV_IDS = ("umbra/CartPole-v0", "umbra/Pendulum-v0", "umbra/CooperativeNavigation-v0")


@contextlib.contextmanager
def checks_bypassed() -> Iterator[None]:
    """Every action passes unchecked and rollouts are not scanned for NaN (a reference only)."""
    with mock.patch.object(BatchedEnv, "_validate_actions", lambda self, actions: actions), \
            mock.patch.object(ppo, "_check_rollout_finite", lambda *args: None):
        yield


def ppo_sps(num_envs: int, device: str, steps: int) -> float:
    """PPO training steps per second (no logdir) with the CartPole preset."""
    config = agent_config("ppo", "umbra/CartPole-v0", num_envs=num_envs, total_steps=steps,
                          device=device, seed=0)
    return ppo.train(config).metrics["sps"]


def compare(measure, repeats: int) -> tuple[float, float]:
    """Medians of ``measure()`` with the default checks and with them bypassed, alternating."""
    checked, bypassed = [], []
    measure()  # warm-up: first-call costs (allocations, kernels) are not the checks'
    for _ in range(repeats):
        checked.append(measure())
        with checks_bypassed():
            bypassed.append(measure())
    return statistics.median(checked), statistics.median(bypassed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per environment measurement")
    parser.add_argument("--ppo-steps", type=int, default=262_144)
    args = parser.parse_args(argv)
    device = str(resolve_device(args.device))
    print(f"default input checks on {device}, {args.num_envs} copies, medians of "
          f"{args.repeats} alternating runs")
    print(f"{'what':<34} {'checked':>12} {'bypassed':>12} {'cost':>7}")
    rows = [(env_id, lambda e=env_id: batched_sps(e, args.num_envs, device, args.seconds))
            for env_id in ENV_IDS]
    rows.append(("PPO train, umbra/CartPole-v0",
                 lambda: ppo_sps(args.num_envs, device, args.ppo_steps)))
    for name, measure in rows:
        checked, bypassed = compare(measure, args.repeats)
        print(f"{name:<34} {checked:>12,.0f} {bypassed:>12,.0f} {1 - checked / bypassed:>7.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
