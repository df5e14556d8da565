"""The return of a uniformly random policy: ``python -m benchmarks.random_policy --env ID``.

``python -m benchmarks.random_policy --env ID [--episodes 1000] [--num-envs 64] [--seed 0]
[--env-kwargs JSON]`` plays uniformly random actions (legal ones, where the environment has
action masks) on any environment ``envs.make`` builds and prints the mean episode return with its
95% bootstrap interval, and for a team of several kinds of agents each group's (the mean over its
agents), as PPO logs them. It is the ``random`` reference of a suite's ``[[envs]]`` table and the
baseline a mixed team's groups must beat.

``--run RUN_DIR`` (a multi-agent run folder written by ``agents.ppo.train``) puts the trained
policy in: for a mixed team it prints, per group, the group's return when every agent plays
randomly, when every agent plays the trained policy, when only that group plays it against
random others, and when only that group plays randomly against the trained others. For a group
with opposite goals the last is the fair baseline: trained prey against trained predators can
score below random prey against random predators and still have learned, if it beats random prey
against the same trained predators.
The run's environment and options are used; ``--env`` may then be omitted. ``--run`` takes
several folders, or a folder of ``seed*`` runs (``runs/<suite>/<env>/<agent>``): each run's table,
then every cell's mean over the runs with its smallest and largest value.

From Python: :func:`random_returns`, :func:`group_report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import envs
from agents.multiagent import AgentBatch
from agents.ppo import CHECKPOINT, make_env
from benchmarks import stats
from benchmarks.versus import for_play, load_policy, run_config, sample_legal


def _random_actions(env: Any, generator: torch.Generator) -> torch.Tensor:
    """One uniformly random action per copy (per agent row for a team), legal where masked."""
    space, n = env.single_action_space, env.num_envs
    if isinstance(space, gym.spaces.Discrete):
        if getattr(env, "has_action_mask", False):
            return sample_legal(env.action_masks().reshape(n, -1), generator) + int(space.start)
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
                   env_kwargs: dict[str, Any] | None = None, policy: Any = None,
                   trained: Sequence[str] = (), groups: dict[str, list[str]] | None = None,
                   ) -> dict[str, Any]:
    """Returns of ``episodes`` episodes of uniformly random actions.

    Args:
        policy, trained: A multi-agent policy (as ``agents.ppo.make_policy`` builds it) that
            plays for the agents of the groups named in ``trained`` (the others play randomly).
        groups: The run's ``PPOConfig.groups`` (None: the environment's).

    Returns:
        ``{"episodes", "returns"`` (the list), ``"mean"``, ``"interval"`` (95% bootstrap of the
        mean), ``"group_returns"`` (mixed teams: each group's mean return; else absent)``}``.
        Unbounded Box dimensions are drawn from [-1, 1].
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    raw = envs.make(env_id, num_envs=num_envs, device="cpu", **(env_kwargs or {}))
    env = AgentBatch(raw, centralised_critic=False, groups=groups) \
        if raw.kind == "multi-agent" else raw
    generator = torch.Generator().manual_seed(seed)
    returns: list[float] = []
    # The policy samples from torch's global generator: seeded here, and restored afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            played = _trained_rows(env, policy, trained)
            obs, _ = env.reset(seed=seed)
            state, start = None, torch.ones(env.num_envs, dtype=torch.bool)
            while len(returns) < episodes:
                action = _random_actions(env, generator)
                if played is not None:
                    chosen, state = policy.predict(obs, state, start, deterministic=False)
                    action = torch.where(played.reshape(-1, *[1] * (action.dim() - 1)),
                                         chosen.to(action.dtype), action)
                obs, _, terminated, truncated, info = env.step(action)
                start = terminated | truncated
                returns += info["episode_return"][info["_episode"]].tolist()
            groups_out = env.group_returns() \
                if isinstance(env, AgentBatch) and len(env.groups) > 1 else None
        finally:
            env.close()
    returns = returns[:episodes]
    result: dict[str, Any] = {"episodes": len(returns), "returns": returns,
                              "mean": float(np.mean(returns)),
                              "interval": stats.bootstrap_interval(np.asarray(returns), stats.mean)}
    if groups_out:
        result["group_returns"] = groups_out
    return result


def _trained_rows(env: Any, policy: Any, trained: Sequence[str]) -> torch.Tensor | None:
    """``[N * A]`` bool: the rows the policy plays for (None: no policy)."""
    if policy is None:
        if trained:
            raise ValueError("trained groups need a policy")
        return None
    if not isinstance(env, AgentBatch):
        raise ValueError("a trained policy plays against random agents on multi-agent "
                         "environments only")
    names = [group.name for group in env.groups]
    unknown = [name for name in trained if name not in names]
    if unknown:
        raise ValueError(f"unknown groups {unknown}; the groups are {names}")
    chosen = torch.zeros(env.num_agents, dtype=torch.bool)
    for group in env.groups:
        if group.name in trained:
            chosen[list(group.agents)] = True
    return chosen.repeat(env.env.num_envs)


def group_report(run_dir: str | Path, episodes: int = 1000, num_envs: int = 64,
                 seed: int = 0) -> dict[str, dict[str, float]]:
    """Per group of a run's mixed team: its return when all play randomly (``"random"``), all
    play the trained policy (``"trained"``), only it plays the policy against random others
    (``"trained vs random"``) and only it plays randomly against the trained others (``"random
    vs trained"``; ``"trained"`` above it says the group learned to play against the opponents
    it trained with; see the module docstring)."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    play = for_play(config, num_envs, torch.device("cpu"))
    env = make_env(play, torch.device("cpu"))
    try:
        policy = load_policy(run_dir / CHECKPOINT, play, env, "the run's").eval()
        names = [group.name for group in env.groups] if isinstance(env, AgentBatch) else []
    finally:
        env.close()
    if len(names) < 2:
        raise ValueError(f"{run_dir} was trained on {config.env_id}, which has no mixed team "
                         "(fewer than two groups)")
    common = dict(episodes=episodes, num_envs=num_envs, seed=seed, env_kwargs=config.env_kwargs,
                  groups=config.groups)
    everyone = random_returns(config.env_id, **common)["group_returns"]
    team = random_returns(config.env_id, policy=policy, trained=names, **common)["group_returns"]
    table = {name: {"random": everyone[name], "trained": team[name]} for name in names}
    for name in names:
        alone = random_returns(config.env_id, policy=policy, trained=[name], **common)
        table[name]["trained vs random"] = alone["group_returns"][name]
        others = [other for other in names if other != name]
        replaced = random_returns(config.env_id, policy=policy, trained=others, **common)
        table[name]["random vs trained"] = replaced["group_returns"][name]
    return table


def run_folders(paths: Sequence[str | Path]) -> list[Path]:
    """The run folders ``paths`` name: a run folder itself (it has ``config.json``), or the
    ``seed*`` runs inside a folder.

    Raises:
        FileNotFoundError: a path that is neither.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "config.json").is_file():
            found.append(path)
            continue
        seeds = sorted(p for p in path.glob("seed*") if (p / "config.json").is_file())
        if not seeds:
            raise FileNotFoundError(f"{path} is not a run folder (no config.json) and holds no "
                                    "seed*/ run folders")
        found.extend(seeds)
    return found


COLUMNS = ("random", "trained", "trained vs random", "random vs trained")


def _print_table(table: dict[str, dict[str, str]]) -> None:
    print(f"{'group':<16}" + "".join(f"{c:>24}" for c in COLUMNS))
    for name, row in table.items():
        print(f"{name:<16}" + "".join(f"{row[c]:>24}" for c in COLUMNS))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.random_policy",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", help="any id envs.make builds (not needed with --run)")
    parser.add_argument("--run", nargs="+", metavar="RUN_DIR",
                        help="multi-agent run folders (or folders of seed*/ runs): per group, "
                             "random vs trained")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", default="{}", help="a JSON object")
    args = parser.parse_args(argv)
    try:
        if args.run:
            tables = {run: group_report(run, args.episodes, args.num_envs, args.seed)
                      for run in run_folders(args.run)}
            first = next(iter(tables.values()))
            if any(set(table) != set(first) for table in tables.values()):
                raise ValueError("the runs have different groups: give runs of one task")
            for run, table in tables.items():
                if len(tables) > 1:
                    print(run)
                _print_table({name: {c: f"{row[c]:.2f}" for c in COLUMNS}
                              for name, row in table.items()})
            if len(tables) > 1:
                print(f"mean over {len(tables)} runs [smallest, largest]")
                summary = {}
                for name in first:
                    summary[name] = {}
                    for c in COLUMNS:
                        values = [table[name][c] for table in tables.values()]
                        summary[name][c] = (f"{np.mean(values):.2f} [{min(values):.2f}, "
                                            f"{max(values):.2f}]")
                _print_table(summary)
            return 0
        if not args.env:
            raise ValueError("give --env ID (or --run RUN_DIR)")
        kwargs = json.loads(args.env_kwargs)
        result = random_returns(args.env, args.episodes, args.num_envs, args.seed, kwargs)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.env}: random policy, {result['episodes']} episodes: mean return "
          f"{result['interval'].format(2)}")
    for name, value in result.get("group_returns", {}).items():
        print(f"  group {name}: {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
