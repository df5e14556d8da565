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


def test_window_rows_report_the_peak_resident_memory_growth():
    import sys

    import torch

    from benchmarks.throughput import RSSPeak, _memory_markdown, _window_run

    with RSSPeak() as rss:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    if not sys.platform.startswith("linux"):
        assert rss.growth is None
        return
    assert rss.growth >= 32 * 2**20
    row = _window_run("linear", 8, "umbra/MaskedCartPole-v0",
                      {"num_envs": 8, "device": "cpu"}, 512, log=lambda line: None)
    assert row["rss_peak_growth_bytes"] >= 0 and row["cuda_peak_bytes"] is None
    memory = {"env_id": "umbra/MaskedCartPole-v0", "umbra": {}, "ratios": {}, "windows": [row],
              "sb3": {"median": {"sps": 1.0, "threshold_steps": None, "threshold_time_s": None,
                                 "reached": "0/1"}, "settings": {"max_steps": 10}}}
    text = "\n".join(_memory_markdown(memory))
    assert "peak RSS growth" in text and " MiB |" in text
