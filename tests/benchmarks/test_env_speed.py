"""The multi-agent environment-speed benchmark runs and reports every multi-agent task."""

import envs
from benchmarks.env_speed import main


def test_env_speed_reports_every_multi_agent_task(capsys):
    assert main(["--num-envs", "8", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    for env_id in envs.list_ids("multi-agent"):
        assert env_id in out
    assert out.count("steps/s") >= 2 * len(envs.list_ids("multi-agent"))
