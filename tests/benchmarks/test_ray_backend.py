"""``--backend ray``: each trial as a Ray task on a local instance (skipped where Ray is absent)."""

from __future__ import annotations

import json

import pytest

from benchmarks import runner
from benchmarks.run import main
from benchmarks.runner import ERROR_FILE, RESULT_FILE

ray = pytest.importorskip("ray")

CRASHING = "tests.benchmarks.crashing_env:CrashingEnv"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_tiny_suite_runs_as_ray_tasks(local_ray, tmp_path, monkeypatch, capsys):
    def not_here(*args, **kwargs):
        raise AssertionError("a trial trained in the driver process, not in a Ray task")

    monkeypatch.setattr(runner, "train", not_here)  # Ray's workers import the real one
    suite = tmp_path / "ray.toml"
    suite.write_text(f'seeds = [0, 100]\nsteps = 256\nnum_envs = 2\n'
                     f'[[envs]]\nid = "{CRASHING}"\n')
    args = ["--suite", str(suite), "--logdir", str(tmp_path / "runs"), "--backend", "ray"]
    assert main(args) == 1  # seed 100 crashes in its task; seed 0 finishes
    assert "1 of 2 trials FAILED" in capsys.readouterr().err
    base = tmp_path / "runs" / "ray" / "tests.benchmarks.crashing_env__CrashingEnv" / "ppo"
    result = json.loads((base / "seed0" / RESULT_FILE).read_text())
    assert result["steps"] == 256 and result["final_return"] == 8.0
    error = json.loads((base / "seed100" / ERROR_FILE).read_text())
    assert "CrashingEnv: seed >= 100" in error["error"] and "Traceback" in error["traceback"]
    assert (tmp_path / "runs" / "ray" / "report.md").exists()
