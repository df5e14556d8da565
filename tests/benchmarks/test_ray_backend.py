"""``--backend ray``: each trial as a Ray task on a local instance (skipped where Ray is absent)."""

from __future__ import annotations

import json
import time

import pytest

from benchmarks import runner
from benchmarks.run import main
from benchmarks.runner import ERROR_FILE, RESULT_FILE

ray = pytest.importorskip("ray", reason="Ray is optional and third-party (the extra .[ray])")

CRASHING = "tests.benchmarks.crashing_env:CrashingEnv"


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:1"])
def test_no_cluster_at_the_address_is_one_line_and_exit_2(address, tmp_path, monkeypatch,
                                                          capsys):
    # before: "auto" printed Ray's 29-line traceback, 127.0.0.1:1 retried for over 10 minutes
    assert not ray.is_initialized(), "these tests must run before the module's local Ray"
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "tmp"))  # no ray_current_cluster file there
    # other developers' Ray instances on this machine must not count as "a cluster here"
    def no_gcs_processes() -> list[str]:
        return []

    no_gcs_processes.cache_clear = lambda: None  # Ray calls it
    monkeypatch.setattr("ray._private.services.find_gcs_addresses", no_gcs_processes)
    suite = tmp_path / "one.toml"
    suite.write_text('seeds = [0]\nsteps = 64\nnum_envs = 2\n[[envs]]\nid = "umbra/CartPole-v0"\n')
    start = time.monotonic()
    code = main(["--suite", str(suite), "--logdir", str(tmp_path / "runs"), "--backend", "ray",
                 "--address", address, "--no-progress"])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2
    assert elapsed < 60, f"took {elapsed:.0f} s"
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: --address {address}: ") and "Ray cluster" in line
    assert not ray.is_initialized()
    assert not list((tmp_path / "runs").rglob(RESULT_FILE))


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
