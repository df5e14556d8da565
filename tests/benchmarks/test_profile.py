"""``python -m benchmarks.profile``: one PPO iteration's phase table and its operator summary."""

from __future__ import annotations

import pytest

from benchmarks import profile


def test_phases_add_up_to_the_iteration_and_the_update_is_timed():
    row = profile.profile_agent("gru", "umbra/MaskedCartPole-v0", num_envs=8, updates=1,
                                warmup=1, device="cpu")
    assert set(row["ms"]) == set(profile.PHASES)
    assert all(ms >= 0 for ms in row["ms"].values())
    assert row["total_ms"] == pytest.approx(sum(row["ms"].values()))
    for phase in ("env step", "policy act", "update forward", "update backward", "optimiser"):
        assert row["ms"][phase] > 0, phase
    # 8 copies x 32 steps per iteration
    assert row["sps"] == pytest.approx(8 * 32 / (row["total_ms"] / 1000))
    assert "ops" not in row


def test_operator_summary_counts_the_update_of_one_extra_iteration():
    row = profile.profile_agent("mlp", "umbra/MaskedCartPole-v0", num_envs=8, updates=1,
                                warmup=0, device="cpu", ops=3)
    ops = row["ops"]
    assert ops["calls"] > 100  # 4 epochs x 4 minibatches of forward, backward and Adam
    assert ops["flops"] > 0  # the linear layers' products
    assert 0 < len(ops["top"]) <= 3
    times = [ms for _, _, ms in ops["top"]]
    assert times == sorted(times, reverse=True)
    assert all(name.startswith("aten::") for name, _, _ in ops["top"])
    table = profile.operator_table([row], peak=100.0)
    assert "op calls" in table and "mlp" in table and "100 GFLOP/s" in table


def test_command_prints_both_tables(capsys):
    assert profile.main(["--agents", "mlp", "--num-envs", "8", "--updates", "1",
                         "--warmup", "0", "--ops", "2"]) == 0
    out = capsys.readouterr().out
    assert "update backward" in out and "steps/s" in out
    assert "op calls" in out and "GFLOP/s" in out


def test_negative_ops_is_refused(capsys):
    with pytest.raises(SystemExit):
        profile.main(["--ops", "-1"])
    assert "--ops must be 0 or more" in capsys.readouterr().err
