"""Local worker processes: trials run in parallel, failures stay isolated, finished ones skip."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from benchmarks.backends import ProcessBackend, threads_per_worker
from benchmarks.run import main
from benchmarks.runner import ERROR_FILE, RESULT_FILE, check_trials, run_trials, trial_dir
from benchmarks.suites import Trial

CRASHING = "tests.benchmarks.crashing_env:CrashingEnv"


def test_trials_in_two_worker_processes(tmp_path, capsys):
    suite = tmp_path / "par.toml"
    suite.write_text(f'seeds = [0, 1, 100]\nsteps = 256\nnum_envs = 2\n'
                     f'[[envs]]\nid = "{CRASHING}"\n')
    args = ["--suite", str(suite), "--logdir", str(tmp_path / "runs")]
    assert main([*args, "--workers", "2"]) == 1  # seed 100 crashes in its worker; the others finish
    captured = capsys.readouterr()
    assert "1 of 3 trials FAILED" in captured.err and "seed >= 100" in captured.err
    assert "768/768" in captured.err and "trials 3/3" in captured.err  # the bar: steps, trials
    base = tmp_path / "runs" / "par" / "tests.benchmarks.crashing_env__CrashingEnv" / "ppo"
    for seed in (0, 1):
        result = json.loads((base / f"seed{seed}" / RESULT_FILE).read_text())
        assert result["steps"] == 256 and result["final_return"] == 8.0
    error = json.loads((base / "seed100" / ERROR_FILE).read_text())
    assert "RuntimeError: CrashingEnv" in error["error"] and "Traceback" in error["traceback"]
    assert "seed >= 100" in (tmp_path / "runs" / "par" / "report.md").read_text()

    # again (in this process): the finished trials are skipped, the failed one is retried
    assert main([*args, "--workers", "1", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert out.count("skipped (done before)") == 2 and out.count("FAILED") == 1


def test_threads_are_shared_out(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert threads_per_worker(4) == 2 and threads_per_worker(16) == 1 and threads_per_worker(1) == 8


def test_ctrl_c_stops_the_workers_and_keeps_finished_results(tmp_path):
    trials = [Trial("umbra/CartPole-v0", "ppo", seed, steps=256, num_envs=8) for seed in range(2)]
    configs = check_trials(trials, device="cpu")
    finished = []

    def log_then_ctrl_c(line: str) -> None:
        finished.append(line)
        raise KeyboardInterrupt  # as if Ctrl-C came right after the first trial ended

    with pytest.raises(KeyboardInterrupt):
        run_trials(trials, configs, root=tmp_path, suite="s", show_progress=False,
                   log=log_then_ctrl_c, backend=ProcessBackend(workers=1, threads=1))
    assert not multiprocessing.active_children(), "worker processes left running"
    [line] = finished
    seed = int(line.split(" seed")[1].split(":")[0])
    assert (trial_dir(tmp_path, "s", trials[seed]) / RESULT_FILE).exists()
