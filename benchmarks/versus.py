"""Win, draw and loss rates of a trained two-player policy: ``python -m benchmarks.versus``.

``python -m benchmarks.versus RUN_DIR [--opponent random|CHECKPOINT_OR_RUN_DIR] [--games 200]
[--seed 0]`` loads the policy of a run folder written by ``agents.ppo.train(config,
logdir=RUN_DIR)`` (``config.json`` and ``checkpoints/latest.pt``), plays ``games`` games of the
run's environment (a two-player game such as ``pettingzoo.classic.tictactoe_v3:env``, see
docs/architecture.md, "Turn-based games") against the opponent and prints, from the trained
policy's side, wins, draws and losses with their rates and 95% Wilson intervals, per seat and in
total. The trained policy takes the first seat in the even-numbered games and the second in the
odd ones, so each seat gets half the games.

Opponents: ``random`` (uniform over the legal moves), or another checkpoint of the same
environment: a ``.pt`` file (e.g. ``RUN_DIR/checkpoints/previous.pt``, the one before the last)
or a run folder (its ``checkpoints/latest.pt``).

The policies see what they saw in training: the environment is built by
``agents.ppo.make_env``, which shows the game to PPO through ``agents.multiagent.AgentBatch``
(row ``n * A + a`` is seat ``a`` of copy ``n``); each seat's action is taken from its own row.
Policies sample their actions (``--greedy``: the most likely action), so that two fixed policies
still play different games. A policy without action masks in its observation may pick an
illegal move; it is replaced by a uniformly random legal one and counted in ``illegal_moves``.

From Python: :func:`play_versus` returns the same numbers as a dict, :func:`format_table` prints
them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from agents.multiagent import AgentBatch
from agents.policies import ActorCritic, PolicyState
from agents.ppo import CHECKPOINT, PPOConfig, _read_checkpoint, make_env, make_policy
from envs.core import resolve_device

#: The opponent that plays uniformly random legal moves.
RANDOM = "random"
#: Copies played at once (more games are played in rounds).
MAX_COPIES = 128
#: Steps after which an unfinished evaluation is an error (a game that never ends).
MAX_STEPS = 100_000
#: The metric of a two-player game's trials in a suite (see :func:`score_against_random`).
VERSUS_RANDOM_METRIC = "score vs random"
#: Games a suite trial plays against the random opponent when it has trained.
SUITE_GAMES = 200


# ---------------------------------------------------------------------------------- statistics
def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% for ``z = 1.96``).

    Wilson (1927), "Probable inference, the law of succession, and statistical inference":
    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = successes / n``.
    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes.
    ``(0.0, 1.0)`` when there are no trials.
    """
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = p + z * z / (2 * trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


def outcome_stats(wins: int, draws: int, losses: int) -> dict[str, Any]:
    """Counts, rates, their Wilson intervals and the score ``(wins + draws / 2) / games``."""
    games = wins + draws + losses
    stats: dict[str, Any] = {"games": games, "wins": wins, "draws": draws, "losses": losses}
    for name, count in (("win", wins), ("draw", draws), ("loss", losses)):
        stats[f"{name}_rate"] = count / games if games else float("nan")
        stats[f"{name}_ci"] = wilson_interval(count, games)
    stats["score"] = (wins + draws / 2) / games if games else float("nan")
    return stats


# ---------------------------------------------------------------------------------- players
class Player(Protocol):
    """Chooses an action for every row of an :class:`~agents.multiagent.AgentBatch`."""

    def __call__(self, obs: Any, legal: torch.Tensor, episode_start: torch.Tensor
                 ) -> torch.Tensor:
        """Actions ``[rows]`` for ``obs``; ``legal`` ``[rows, n]`` bool marks the legal moves,
        ``episode_start`` ``[rows]`` the rows whose game has just started."""
        ...


class RandomPlayer:
    """Uniformly random legal moves, from its own generator."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, obs: Any, legal: torch.Tensor, episode_start: torch.Tensor
                 ) -> torch.Tensor:
        return sample_legal(legal, self.generator)


class PolicyPlayer:
    """A trained :class:`~agents.policies.ActorCritic`; its memory state is carried."""

    def __init__(self, policy: ActorCritic, deterministic: bool = False):
        self.policy = policy.eval()
        self.deterministic = deterministic
        self.state: PolicyState | None = None

    def __call__(self, obs: Any, legal: torch.Tensor, episode_start: torch.Tensor
                 ) -> torch.Tensor:
        device = next(self.policy.parameters()).device
        action, self.state = self.policy.predict(
            obs, self.state, episode_start.to(device), deterministic=self.deterministic)
        return action.to(legal.device)


def sample_legal(legal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One uniformly random legal action index per row of the mask ``legal`` ``[B, n]``."""
    return torch.multinomial(legal.float().cpu(), 1, generator=generator)[:, 0].to(legal.device)


# ---------------------------------------------------------------------------------- playing
def play_games(env: AgentBatch, trained: Player, opponent: Player, games: int,
               seed: int = 0) -> dict[str, Any]:
    """Play ``games`` games of a two-player ``env``; the results from ``trained``'s side.

    Game ``g`` is played by copy ``g % num_copies`` with ``trained`` in seat ``g % 2``. A game
    is won by the seat with the larger return (drawn when they are equal).

    Args:
        env: A two-player environment seen through :class:`~agents.multiagent.AgentBatch`.
        trained, opponent: The two players.
        games: Games to play, at least 1.
        seed: Seeds the environment, and the sampling of the policies (without touching torch's
            global random state) and of the random replacement of illegal moves.

    Returns:
        ``{"games", "seats": {seat name: stats, ..., "total": stats}, "illegal_moves":
        {"trained": int, "opponent": int}}`` with the stats of :func:`outcome_stats`.
    """
    raw = env.env
    agents, seats = raw.possible_agents, raw.num_agents
    copies = raw.num_envs
    device = env.device
    seat_of_row = torch.arange(seats, device=device).repeat(copies)
    game_of = torch.arange(copies)
    counts = [[0, 0, 0] for _ in range(seats)]  # per seat of the trained policy: W, D, L
    illegal = {"trained": 0, "opponent": 0}
    returns = torch.zeros(copies, seats, dtype=torch.float64)
    fallback = torch.Generator().manual_seed(seed + 1)
    width = int(env.single_action_space.n)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        obs, _ = env.reset(seed=seed)
        episode_start = torch.ones(env.num_envs, dtype=torch.bool, device=device)
        for _ in range(MAX_STEPS):
            legal = (raw.action_masks().reshape(env.num_envs, width) if raw.has_action_mask
                     else torch.ones(env.num_envs, width, dtype=torch.bool, device=device))
            trained_seat = (game_of % seats).to(device).repeat_interleave(seats)
            mine = seat_of_row == trained_seat
            with torch.no_grad():
                actions = torch.where(mine, trained(obs, legal, episode_start),
                                      opponent(obs, legal, episode_start))
            bad = ~legal.gather(1, actions[:, None])[:, 0]
            if bool(bad.any()):
                illegal["trained"] += int((bad & mine).sum())
                illegal["opponent"] += int((bad & ~mine).sum())
                actions = torch.where(bad, sample_legal(legal, fallback), actions)
            obs, reward, terminated, truncated, _ = env.step(actions)
            returns += reward.reshape(copies, seats).double().cpu()
            episode_start = terminated | truncated
            for n in episode_start.reshape(copies, seats)[:, 0].nonzero()[:, 0].tolist():
                game = int(game_of[n])
                if game < games:
                    seat = game % seats
                    mine_return = returns[n, seat]
                    best_other = torch.cat((returns[n, :seat], returns[n, seat + 1:])).max()
                    outcome = 0 if mine_return > best_other else 1 if mine_return == best_other \
                        else 2
                    counts[seat][outcome] += 1
                game_of[n] += copies
                returns[n] = 0.0
            if sum(map(sum, counts)) == games:
                break
        else:
            raise RuntimeError(f"{games} games of {raw!r} did not end within {MAX_STEPS} steps")
    table = {f"{agents[seat]}": outcome_stats(*counts[seat]) for seat in range(seats)}
    table["total"] = outcome_stats(*(sum(c[i] for c in counts) for i in range(3)))
    return {"games": games, "seats": table, "illegal_moves": illegal}


def play_versus(run_dir: str | Path, opponent: str | Path = RANDOM, games: int = 200,
                seed: int = 0, device: str = "cpu", deterministic: bool = False
                ) -> dict[str, Any]:
    """Play the trained policy of ``run_dir`` against ``opponent``.

    Args:
        run_dir: A run folder written by ``agents.ppo.train(config, logdir=run_dir)`` on a
            two-player environment.
        opponent: ``"random"``, a checkpoint file, or a run folder (its latest checkpoint), of
            the same environment.
        games: Games to play (the seats alternate), at least 1.
        seed: Seeds the games and the sampling.
        device: Where the policies run.
        deterministic: Play each policy's most likely action instead of sampling one.

    Returns:
        The dict of :func:`play_games` with ``run_dir``, ``env_id`` and ``opponent`` added.

    Raises:
        FileNotFoundError: ``run_dir`` (or its ``config.json`` or checkpoint) or the opponent's
            checkpoint does not exist.
        ValueError: the run's environment is no two-player game; the opponent was trained on
            another environment or its network does not fit; ``games < 1``.
    """
    if isinstance(games, bool) or not isinstance(games, int) or games < 1:
        raise ValueError(f"games must be a positive int, got {games!r}")
    torch_device = resolve_device(device)
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    play_config = for_play(config, min(games, MAX_COPIES), torch_device)
    env = make_env(play_config, torch_device)
    try:
        _check_two_players(env, run_dir, config)
        trained = PolicyPlayer(load_policy(run_dir / CHECKPOINT, play_config, env, "the run's"),
                               deterministic)
        if str(opponent) == RANDOM:
            rival: Player = RandomPlayer(seed)
        else:
            rival = PolicyPlayer(_opponent_policy(Path(opponent), config, play_config, env),
                                 deterministic)
        result = play_games(env, trained, rival, games, seed)
    finally:
        env.close()
    return {"run_dir": str(run_dir), "env_id": config.env_id, "opponent": str(opponent),
            **result}


def is_two_player_game(config: PPOConfig) -> bool:
    """Whether ``config``'s environment is a turn-based game of two players (one copy is built
    to tell)."""
    import envs

    if ":" not in config.env_id:  # native and Gymnasium ids are never turn-based
        return False
    env = envs.make(config.env_id, num_envs=1, **config.env_kwargs)
    try:
        return bool(getattr(env, "turn_based", False)) and env.num_agents == 2
    finally:
        env.close()


def score_against_random(run_dir: str | Path, seed: int = 0,
                         games: int = SUITE_GAMES) -> dict[str, Any]:
    """What a suite records for a trial on a two-player game: the trained policy against the
    uniformly random opponent, ``games`` games with the seats alternated.

    The mean return of self-play says nothing (a zero-sum game's is 0 whoever wins), so the
    trial's ``score`` becomes ``(wins + draws / 2) / games`` under the metric
    :data:`VERSUS_RANDOM_METRIC` (0.5: no better than random), with the counts beside it.
    """
    total = play_versus(run_dir, RANDOM, games=games, seed=seed)["seats"]["total"]
    return {"score": total["score"], "metric": VERSUS_RANDOM_METRIC,
            "versus_random": {key: total[key] for key in
                              ("games", "wins", "draws", "losses", "win_rate", "draw_rate",
                               "loss_rate")}}


def run_config(run_dir: Path) -> PPOConfig:
    """The :class:`PPOConfig` of a run folder (its ``config.json``)."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} has no config.json: it is not a run folder written by "
            "agents.ppo.train(config, logdir=...)"
        )
    return PPOConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))


def for_play(config: PPOConfig, copies: int, device: torch.device) -> PPOConfig:
    """``config`` with ``copies`` copies (one minibatch, so that any number is valid)."""
    return dataclasses.replace(config, num_envs=copies, num_minibatches=1, device=str(device))


def _check_two_players(env: Any, run_dir: Path, config: PPOConfig) -> None:
    if not isinstance(env, AgentBatch):
        raise ValueError(
            f"{run_dir} was trained on {config.env_id}, a {env.kind} environment: versus plays "
            "two-player games (e.g. pettingzoo.classic.tictactoe_v3:env)"
        )
    if env.num_agents != 2:
        raise ValueError(
            f"{run_dir} was trained on {config.env_id}, with {env.num_agents} agents: versus "
            "plays two-player games"
        )


def load_policy(path: Path, config: PPOConfig, env: Any, whose: str) -> ActorCritic:
    """The policy of the checkpoint ``path``, built as ``agents.ppo.train`` built it."""
    if not path.is_file():
        raise FileNotFoundError(f"{whose} checkpoint {path} does not exist")
    saved = _read_checkpoint(path)
    policy = make_policy(config, env)
    try:
        policy.load_state_dict(saved["policy"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:2]
        raise ValueError(f"{whose} checkpoint {path} does not fit the policy that its config "
                         f"describes for {config.env_id}: {' '.join(first)}") from err
    return policy.to(resolve_device(config.device))


def _opponent_policy(path: Path, config: PPOConfig, play_config: PPOConfig,
                     env: Any) -> ActorCritic:
    """The opponent's policy; ``ValueError`` unless it was trained on the run's environment."""
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(
            f"opponent {path} does not exist: pass 'random', a checkpoint file or a run folder"
        )
    theirs = PPOConfig.from_dict(_read_checkpoint(path)["config"])
    if (theirs.env_id, theirs.env_kwargs) != (config.env_id, config.env_kwargs):
        raise ValueError(
            f"opponent {path} was trained on {_game(theirs)}, the run on {_game(config)}: both "
            "must play the same game"
        )
    their_play = for_play(theirs, play_config.num_envs, resolve_device(play_config.device))
    if theirs.centralised_critic != config.centralised_critic:
        # The networks follow the opponent's own config; only its critic input differs.
        spaces_env = make_env(dataclasses.replace(their_play, num_envs=1), env.device)
        try:
            return load_policy(path, their_play, spaces_env, "the opponent's")
        finally:
            spaces_env.close()
    return load_policy(path, their_play, env, "the opponent's")


def _game(config: PPOConfig) -> str:
    return config.env_id + (f" {config.env_kwargs}" if config.env_kwargs else "")


# ---------------------------------------------------------------------------------- output
def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`play_versus` (or :func:`play_games`) as a text table."""
    header = (f"{'seat':<18}{'games':>6}{'wins':>6}{'draws':>6}{'losses':>7}  "
              f"{'win rate [95% CI]':<22}{'draw rate [95% CI]':<22}{'loss rate [95% CI]':<22}"
              f"{'score':>6}")
    lines = []
    if "env_id" in result:
        lines.append(f"{result['run_dir']} ({result['env_id']}) versus {result['opponent']}: "
                     f"{result['games']} games, from the trained policy's side")
    lines += [header, "-" * len(header)]
    for index, (seat, stats) in enumerate(result["seats"].items()):
        name = seat if seat == "total" else f"{seat} ({'first' if index == 0 else 'second'})"

        def rate(key: str, stats: dict[str, Any] = stats) -> str:
            low, high = stats[f"{key}_ci"]
            return f"{stats[f'{key}_rate']:.3f} [{low:.3f}, {high:.3f}]"

        lines.append(f"{name:<18}{stats['games']:>6}{stats['wins']:>6}{stats['draws']:>6}"
                     f"{stats['losses']:>7}  {rate('win'):<22}{rate('draw'):<22}"
                     f"{rate('loss'):<22}{stats['score']:>6.3f}")
    illegal = result["illegal_moves"]
    if illegal["trained"] or illegal["opponent"]:
        lines.append(f"illegal moves replaced by random legal ones: trained {illegal['trained']},"
                     f" opponent {illegal['opponent']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.versus RUN_DIR``: see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.versus",
        description="Play the trained policy of a two-player run against an opponent; print "
        "wins, draws and losses with 95%% Wilson intervals, per seat and in total.")
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a run folder written by agents.ppo.train(config, logdir=...)")
    parser.add_argument("--opponent", default=RANDOM,
                        help="'random' (legal moves, uniformly), a checkpoint file (e.g. "
                        "RUN_DIR/checkpoints/previous.pt) or a run folder (default: random)")
    parser.add_argument("--games", type=int, default=200, help="games to play (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the games (default: 0)")
    parser.add_argument("--device", default="cpu", help="where the policies run (default: cpu)")
    parser.add_argument("--greedy", action="store_true",
                        help="play each policy's most likely action instead of sampling")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        result = play_versus(args.run_dir, args.opponent, args.games, args.seed, args.device,
                             args.greedy)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
