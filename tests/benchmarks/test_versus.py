"""``python -m benchmarks.versus``: a trained two-player policy against random or a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.ppo import CHECKPOINT, PPOConfig, make_env, train
from benchmarks.versus import (
    RandomPlayer,
    format_table,
    main,
    play_games,
    play_versus,
    wilson_interval,
)

TICTACTOE = "pettingzoo.classic.tictactoe_v3:env"
#: Importing the classic games warns about PettingZoo's own old creation API; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The old environment creation API")


def _tiny_run(logdir: Path, env_id: str, **overrides) -> Path:
    """A run folder of two updates (so that ``previous.pt`` exists too)."""
    config = PPOConfig(env_id=env_id, num_envs=4, num_steps=8, total_steps=64, device="cpu",
                       num_minibatches=1, update_epochs=1, checkpoint_every=1, **overrides)
    train(config, logdir=logdir)
    return logdir


@pytest.fixture(scope="module")
def tictactoe_run(tmp_path_factory) -> Path:
    return _tiny_run(tmp_path_factory.mktemp("runs") / "tictactoe", TICTACTOE)


def test_wilson_interval_matches_closed_forms():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # never empty at 0
    assert wilson_interval(3, 20) == pytest.approx(tuple(1 - x for x in
                                                         reversed(wilson_interval(17, 20))))
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_random_against_random_scores_half_and_the_first_seat_wins_more():
    """Seats alternate, so two random players score 0.5 in total; the first mover wins more
    often (about 58% against 29% in random tictactoe)."""
    config = PPOConfig(env_id=TICTACTOE, num_envs=100, num_minibatches=1, device="cpu")
    env = make_env(config, torch.device("cpu"))
    result = play_games(env, RandomPlayer(1), RandomPlayer(2), games=200, seed=0)
    first, second, total = (result["seats"][key] for key in ("player_1", "player_2", "total"))
    assert first["games"] == second["games"] == 100 and total["games"] == 200
    assert total["wins"] + total["draws"] + total["losses"] == 200
    # Score sd <= 0.5 / sqrt(200) = 0.035: the bounds are more than three of them.
    assert 0.38 < total["score"] < 0.62
    assert first["win_rate"] > second["win_rate"] + 0.1
    assert first["win_ci"][0] < 0.58 < first["win_ci"][1]
    assert result["illegal_moves"] == {"trained": 0, "opponent": 0}


def test_the_command_plays_a_run_against_random_and_prints_the_table(tictactoe_run, capsys):
    assert main([str(tictactoe_run), "--games", "20", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    for text in ("versus random: 20 games", "player_1 (first)", "player_2 (second)", "total",
                 "win rate [95% CI]", "score"):
        assert text in out
    again = play_versus(tictactoe_run, games=20, seed=3)
    assert format_table(again) in out  # same seed, same games
    assert sum(again["seats"][seat]["games"] for seat in ("player_1", "player_2")) == 20


def test_an_earlier_checkpoint_or_a_run_folder_is_an_opponent(tictactoe_run):
    previous = tictactoe_run / "checkpoints" / "previous.pt"
    result = play_versus(tictactoe_run, opponent=previous, games=10)
    assert result["opponent"] == str(previous) and result["seats"]["total"]["games"] == 10
    itself = play_versus(tictactoe_run, opponent=tictactoe_run, games=10, seed=1)
    assert itself["seats"]["total"]["games"] == 10


def test_bad_input_is_a_clear_error(tictactoe_run, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="run folder .*nowhere does not exist"):
        play_versus(missing)
    assert main([str(missing)]) == 2
    assert "error: run folder" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no config.json"):
        play_versus(tmp_path)
    with pytest.raises(FileNotFoundError, match="opponent .* does not exist"):
        play_versus(tictactoe_run, opponent=tmp_path / "other.pt", games=2)
    with pytest.raises(ValueError, match="games must be a positive int"):
        play_versus(tictactoe_run, games=0)

    cartpole = _tiny_run(tmp_path / "cartpole", "umbra/CartPole-v0")
    with pytest.raises(ValueError, match="CartPole-v0, a single-agent environment: versus plays"):
        play_versus(cartpole, games=2)
    connect_four = _tiny_run(tmp_path / "connect_four", "pettingzoo.classic.connect_four_v3:env")
    with pytest.raises(ValueError, match="trained on pettingzoo.classic.connect_four_v3:env, the "
                                         "run on pettingzoo.classic.tictactoe_v3:env"):
        play_versus(tictactoe_run, opponent=connect_four / CHECKPOINT, games=2)


@pytest.mark.slow
def test_self_play_beats_random(tmp_path):
    """Shared-parameter PPO by self-play learns tictactoe well enough to beat a random player
    (about 0.68 after 32k steps, some 60 s on one CPU; 300k steps take about ten minutes)."""
    config = PPOConfig(env_id=TICTACTOE, num_envs=32, num_steps=32, total_steps=300_000,
                       device="cpu", ent_coef=0.01, learning_rate=1e-3, hidden_size=128)
    train(config, logdir=tmp_path / "run")
    result = play_versus(tmp_path / "run", games=200)
    assert result["seats"]["total"]["score"] > 0.7, format_table(result)


def test_a_suite_trial_on_a_two_player_game_is_scored_against_random(tmp_path):
    # Self-play's mean return is 0 whoever wins; the suite's score must be the games won.
    from benchmarks.runner import describe, run_trial
    from benchmarks.suites import Trial

    config = PPOConfig(env_id=TICTACTOE, num_envs=4, num_steps=8, total_steps=64, device="cpu",
                       num_minibatches=1, update_epochs=1)
    outcome = run_trial(Trial(TICTACTOE, "mappo", 0, steps=64), config, tmp_path / "game")
    result = outcome.result
    assert outcome.status == "done" and result["metric"] == "score vs random"
    counts = result["versus_random"]
    assert counts["games"] == 200 and counts["wins"] + counts["draws"] + counts["losses"] == 200
    assert result["score"] == pytest.approx((counts["wins"] + counts["draws"] / 2) / 200)
    assert "score vs random" in describe(outcome) and "64 steps" in describe(outcome)
    # a cooperative multi-agent task keeps its return
    coop = PPOConfig(env_id="umbra/CooperativeNavigation-v0", num_envs=2, num_steps=8,
                     total_steps=32, device="cpu", num_minibatches=1, update_epochs=1)
    other = run_trial(Trial("umbra/CooperativeNavigation-v0", "mappo", 0, steps=32), coop,
                      tmp_path / "coop")
    assert other.result["metric"] == "return" and "versus_random" not in other.result
