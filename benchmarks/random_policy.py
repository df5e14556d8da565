"""The return of a uniformly random policy: ``python -m benchmarks.random_policy --env ID``.

``python -m benchmarks.random_policy --env ID [--episodes 1000] [--num-envs 64] [--seed 0]
[--env-kwargs JSON]`` plays uniformly random actions (legal ones, where the environment has
action masks) on any environment ``envs.make`` builds and prints the mean episode return with its
95% bootstrap interval, and for a team of several kinds of agents each group's (the mean over its
agents), as PPO logs them. It is the ``random`` reference of a suite's ``[[envs]]`` table and the
baseline a mixed team's groups must beat.

From Python: :func:`random_returns`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs
from agents.multiagent import AgentBatch
from benchmarks import stats


def _random_actions(env: Any, generator: torch.Generator) -> torch.Tensor:
    """One uniformly random action per copy (per agent row for a team), legal where masked."""
    space, n = env.single_action_space, env.num_envs
    if isinstance(space, gym.spaces.Discrete):
        if getattr(env, "has_action_mask", False):
            legal = env.action_masks().reshape(n, -1).float()
            return torch.multinomial(legal, 1, generator=generator)[:, 0] + int(space.start)
        return torch.randint(int(space.start), int(space.start + space.n), (n,),
                             generator=generator)
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = torch.as_tensor(space.nvec.reshape(-1))
        draws = (torch.rand(n, len(nvec), generator=generator) * nvec).long()
        return (draws + torch.as_tensor(space.start.reshape(-1))).reshape(n, *space.shape)
    if isinstance(space, gym.spaces.MultiBinary):
        return torch.randint(0, 2, (n, *space.shape), generator=generator, dtype=torch.int8)
    if isinstance(space, gym.spaces.Box):
        low = torch.as_tensor(np.clip(space.low, -1.0, None) if not space.is_bounded("below")
                              else space.low, dtype=torch.float32)
        high = torch.as_tensor(np.clip(space.high, None, 1.0) if not space.is_bounded("above")
                               else space.high, dtype=torch.float32)
        return low + (high - low) * torch.rand(n, *space.shape, generator=generator)
    raise TypeError(f"no random actions for a {space} action space")


def random_returns(env_id: str, episodes: int = 1000, num_envs: int = 64, seed: int = 0,
                   env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Returns of ``episodes`` episodes of uniformly random actions.

    Returns:
        ``{"episodes", "returns"`` (the list), ``"mean"``, ``"interval"`` (95% bootstrap of the
        mean), ``"group_returns"`` (mixed teams: each group's mean return; else absent)``}``.
        Unbounded Box dimensions are drawn from [-1, 1].
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    raw = envs.make(env_id, num_envs=num_envs, device="cpu", **(env_kwargs or {}))
    env = AgentBatch(raw) if raw.kind == "multi-agent" else raw
    generator = torch.Generator().manual_seed(seed)
    returns: list[float] = []
    try:
        env.reset(seed=seed)
        while len(returns) < episodes:
            _, _, _, _, info = env.step(_random_actions(env, generator))
            returns += info["episode_return"][info["_episode"]].tolist()
        groups = env.group_returns() if isinstance(env, AgentBatch) and len(env.groups) > 1 \
            else None
    finally:
        env.close()
    returns = returns[:episodes]
    result: dict[str, Any] = {"episodes": len(returns), "returns": returns,
                              "mean": float(np.mean(returns)),
                              "interval": stats.bootstrap_interval(np.asarray(returns), stats.mean)}
    if groups:
        result["group_returns"] = groups
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.random_policy",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="any id envs.make builds")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", default="{}", help="a JSON object")
    args = parser.parse_args(argv)
    try:
        kwargs = json.loads(args.env_kwargs)
        result = random_returns(args.env, args.episodes, args.num_envs, args.seed, kwargs)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.env}: random policy, {result['episodes']} episodes: mean return "
          f"{result['interval'].format(2)}")
    for name, value in result.get("group_returns", {}).items():
        print(f"  group {name}: {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
