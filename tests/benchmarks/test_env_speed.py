"""The multi-agent environment-speed benchmark runs and reports every multi-agent task."""

import envs
from benchmarks.env_speed import main


def test_env_speed_reports_every_multi_agent_task(capsys):
    assert main(["--num-envs", "8", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    for env_id in envs.list_ids("multi-agent"):
        assert env_id in out
    assert out.count("steps/s") >= 2 * len(envs.list_ids("multi-agent"))


def test_popgym_table_compares_batched_ids_with_the_package(capsys):
    ids = ["popgym/PositionOnlyCartPoleEasy-v0", "popgym/NoisyPositionOnlyPendulumHard-v0"]
    assert main(["--popgym", "--num-envs", "8", "--package-copies", "2", "--seconds", "0.05",
                 "--ids", *ids]) == 0
    out = capsys.readouterr().out
    assert "| env | batched (8 copies, cpu) | package (SyncVectorEnv, 2 copies) | ratio |" in out
    for env_id in ids:
        row = next(line for line in out.splitlines() if line.startswith(f"| {env_id} |"))
        assert row.count("steps/s") == 2 and row.endswith("x |")
    assert "of 2 measured ids reach the 50x goal" in out


def test_popgym_rows_skip_ids_without_a_package_class_and_failing_packages(monkeypatch):
    from benchmarks import env_speed
    from envs.popgym.position_only_cartpole import PositionOnlyCartPole

    assert set(env_speed.popgym_ids()) >= {"popgym/PositionOnlyCartPoleEasy-v0"}
    assert all(env_id.startswith("popgym/") for env_id in env_speed.popgym_ids())
    monkeypatch.setattr(PositionOnlyCartPole, "popgym_class", None)
    [skipped] = env_speed.popgym_rows(["popgym/PositionOnlyCartPoleEasy-v0"], 4, "cpu", 0.01, 2)
    assert skipped.package_class is None and skipped.ratio is None and "skipped" in skipped.note

    def broken(*args):
        raise RuntimeError("cannot step")

    monkeypatch.setattr(env_speed, "package_sps", broken)
    [failed] = env_speed.popgym_rows(["popgym/PositionOnlyPendulumEasy-v0"], 4, "cpu", 0.01, 2)
    assert failed.batched_sps > 0 and failed.ratio is None and "cannot step" in failed.note
    table = env_speed.popgym_table([skipped, failed], 4, "cpu", 2)
    assert "skipped" in table and "cannot step" in table and "0 of 0 measured" in table
