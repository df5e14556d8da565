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


def test_a_trained_mixed_team_is_compared_with_random_per_group(tmp_path, capsys):
    # TwoKinds (tests/agents/test_groups.py): naming one's own token pays 1 per round, 8 rounds;
    # random play earns 8/3 (speaker) and 8/5 (listener).
    from agents.ppo import PPOConfig, train
    from benchmarks.random_policy import group_report

    config = PPOConfig(env_id="tests.agents.test_groups:TwoKinds", num_envs=32, num_steps=16,
                       total_steps=24_576, learning_rate=3e-3, device="cpu",
                       centralised_critic=True, num_minibatches=2, update_epochs=2)
    train(config, logdir=tmp_path / "run")
    table = group_report(tmp_path / "run", episodes=256, num_envs=32)
    # The trained policy samples its actions: the same seed gives the same table.
    assert group_report(tmp_path / "run", episodes=256, num_envs=32) == table
    assert set(table) == {"speaker", "listener"}
    assert table["speaker"]["random"] == pytest.approx(8 / 3, abs=0.5)
    assert table["listener"]["random"] == pytest.approx(8 / 5, abs=0.5)
    for row in table.values():
        assert row["trained"] > 6.5 and row["trained vs random"] > 6.5, table
        assert row["random vs trained"] < 3.5, table  # the group's own random play
    assert main(["--run", str(tmp_path / "run"), "--episodes", "64"]) == 0
    assert "trained vs random" in capsys.readouterr().out
    assert main(["--run", str(tmp_path / "nothing")]) == 2

    # A folder of seed runs: each run's table, then the mean over them with its range.
    import shutil

    for seed in (0, 1):
        shutil.copytree(tmp_path / "run", tmp_path / "agent" / f"seed{seed}")
    assert main(["--run", str(tmp_path / "agent"), "--episodes", "64"]) == 0
    out = capsys.readouterr().out
    assert "seed0" in out and "seed1" in out and "mean over 2 runs" in out
    summary = out.split("mean over 2 runs")[1].split("\n", 1)[1]
    assert summary.count("[") == 8  # 2 groups x 4 columns, each with its range
    assert main(["--run", str(tmp_path)]) == 2  # neither a run nor a folder of seed runs
