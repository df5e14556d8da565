"""``python -m benchmarks.random_policy``: the return of uniformly random (legal) actions."""

import pytest

from benchmarks.random_policy import main, random_returns


def test_cartpole_random_return_is_the_known_one():
    # A uniformly random CartPole policy lasts about 22 steps (a widely reproduced number).
    result = random_returns("umbra/CartPole-v0", episodes=2000, num_envs=64)
    assert result["episodes"] == 2000 and 20.0 < result["mean"] < 24.5
    assert result["interval"].low < result["mean"] < result["interval"].high
    assert "group_returns" not in result


def test_a_mixed_team_gets_a_return_per_group(capsys):
    assert main(["--env", "mpe2.simple_tag_v3:parallel_env", "--episodes", "64",
                 "--num-envs", "16"]) == 0
    out = capsys.readouterr().out
    assert "group adversary:" in out and "group agent:" in out


def test_masked_actions_are_never_played():
    # tictactoe refuses an illegal move with a ValueError: 200 games without one pass.
    result = random_returns("pettingzoo.classic.tictactoe_v3:env", episodes=200, num_envs=16)
    assert result["episodes"] == 200 and result["mean"] == pytest.approx(0.0)


def test_bad_input_is_a_clear_error(capsys):
    assert main(["--env", "umbra/CartPole-v0", "--episodes", "0"]) == 2
    assert "episodes must be a positive int" in capsys.readouterr().err
    assert main(["--env", "umbra/NoSuchEnv-v0"]) == 2
