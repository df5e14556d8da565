"""The throughput benchmark end to end on a tiny budget: files, ratios and the checks' cost."""

import json

from benchmarks.suites import load_suite
from benchmarks.throughput import run_throughput

TINY = """
kind = "throughput"
description = "tiny"
seeds = [0]
threshold = 475.0
[sb3]
env = "CartPole-v1"
total_timesteps = 512
[umbra]
env = "umbra/CartPole-v0"
agent = "ppo"
config = { total_steps = 2_048, num_envs = 8 }
[checks]
num_envs = 64
steps = 4_096
repeats = 1
"""


def test_throughput_reports_the_cost_of_the_default_checks(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    summary = run_throughput(load_suite(path), root=tmp_path / "runs", device="cpu",
                             log=lambda line: None)
    checks = summary["checks"]
    assert checks["num_envs"] == 64 and checks["repeats"] == 1
    assert checks["checked_sps"] > 0 and checks["bypassed_sps"] > 0
    assert checks["cost"] == 1 - checks["checked_sps"] / checks["bypassed_sps"]
    folder = tmp_path / "runs" / "tiny"
    assert json.loads((folder / "throughput.json").read_text())["checks"] == checks
    assert f"cost **{checks['cost']:.1%}**" in (folder / "report.md").read_text()
