"""Local worker processes: trials run in parallel, failures stay isolated, finished ones skip."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.backends import ProcessBackend
from benchmarks.locking import LOCK_FILE
from benchmarks.run import main
from benchmarks.runner import (
    ERROR_FILE,
    RESULT_FILE,
    TRIAL_THREADS,
    check_trials,
    run_trial,
    run_trials,
    trial_dir,
)
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


def test_the_same_trial_returns_the_same_with_1_or_2_workers(tmp_path, monkeypatch):
    # Before: --workers 2 gave each worker cpu_count // 2 torch threads (2 on 4 cores), --workers
    # 1 trained with this process's count (1 here), and Pendulum's returns differed in the 5th
    # digit; now every trial trains with TRIAL_THREADS threads, wherever it runs.
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # 2 spinning threads crawl on busy cores
    returns = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        assert main(["--env", "umbra/Pendulum-v0", "--steps", "2048", "--num-envs", "4",
                     "--seeds", "2", "--device", "cpu", "--logdir", str(root),
                     "--workers", str(workers), "--no-progress"]) == 0
        results = [json.loads(path.read_text()) for path in sorted(root.rglob(RESULT_FILE))]
        assert [r["torch_threads"] for r in results] == [TRIAL_THREADS] * 2
        returns[workers] = [r["final_return"] for r in results]
    assert returns[1] == returns[2]


def test_a_result_of_another_thread_count_is_not_skipped(tmp_path):
    [trial] = [Trial("umbra/CartPole-v0", "ppo", 0, steps=256, num_envs=2)]
    [config] = check_trials([trial], device="cpu")
    result = tmp_path / RESULT_FILE
    result.write_text(json.dumps({"config": config.to_dict(), "torch_threads": 2}))
    outcome = run_trial(trial, config, tmp_path)
    assert outcome.status == "failed"
    assert f"torch_threads: 2 there, {TRIAL_THREADS} now" in outcome.error
    assert json.loads(result.read_text())["torch_threads"] == 2  # left as it was


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds workers through /proc")
def test_workers_die_with_a_killed_main_process(tmp_path):
    # Before: after kill -9 of the main process both workers trained on at 100% CPU and wrote
    # their result.json a minute later.
    suite = tmp_path / "long.toml"
    suite.write_text('seeds = [0, 1]\nsteps = 2_000_000\nnum_envs = 8\n'
                     '[[envs]]\nid = "umbra/CartPole-v0"\n')
    root = tmp_path / "runs"
    main_process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", "--suite", str(suite), "--logdir", str(root),
         "--workers", "2", "--device", "cpu", "--no-progress"],
        cwd=Path(__file__).parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        locks = [root / "long" / "umbra" / "CartPole-v0" / "ppo" / f"seed{s}" / LOCK_FILE
                 for s in (0, 1)]
        deadline = time.monotonic() + 180
        while not all(lock.exists() and lock.read_text().strip() for lock in locks):
            assert main_process.poll() is None, "the run ended before its trials started"
            assert time.monotonic() < deadline, "the workers did not start their trials"
            time.sleep(0.2)
        workers = [json.loads(lock.read_text())["pid"] for lock in locks]
        children = _children(main_process.pid)
        assert set(workers) <= set(children) and main_process.pid not in workers
        main_process.send_signal(signal.SIGKILL)
        main_process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "workers outlived the main process"
    finally:
        if main_process.poll() is None:
            main_process.kill()
    assert not list(root.rglob(RESULT_FILE))


def test_ctrl_c_stops_the_workers_and_keeps_finished_results(tmp_path):
    trials = [Trial("umbra/CartPole-v0", "ppo", seed, steps=256, num_envs=8) for seed in range(2)]
    configs = check_trials(trials, device="cpu")
    finished = []

    def log_then_ctrl_c(line: str) -> None:
        finished.append(line)
        raise KeyboardInterrupt  # as if Ctrl-C came right after the first trial ended

    with pytest.raises(KeyboardInterrupt):
        run_trials(trials, configs, root=tmp_path, suite="s", show_progress=False,
                   log=log_then_ctrl_c, backend=ProcessBackend(workers=1))
    assert not multiprocessing.active_children(), "worker processes left running"
    [line] = finished
    seed = int(line.split(" seed")[1].split(":")[0])
    assert (trial_dir(tmp_path, "s", trials[seed]) / RESULT_FILE).exists()
