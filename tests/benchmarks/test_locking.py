"""One writer per trial folder: a live holder makes the trial busy, a dead one's lock is taken."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.locking import LOCK_FILE, TrialBusy, TrialLock
from benchmarks.runner import RESULT_FILE, check_trials, run_trial
from benchmarks.suites import Trial

HOLD = ("import sys, time\nfrom benchmarks.locking import TrialLock\n"
        "TrialLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(120)\n")


@pytest.fixture
def holder(tmp_path):
    """Another process holding ``tmp_path/trial``'s lock (as a worker of a killed run would)."""
    logdir = tmp_path / "trial"
    logdir.mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(logdir)],
                               cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield logdir, process
    process.kill()
    process.wait()


def test_a_trial_held_by_a_live_process_is_busy_and_nothing_is_written(holder):
    logdir, process = holder
    [trial] = [Trial("umbra/CartPole-v0", "ppo", 0, steps=256, num_envs=2)]
    [config] = check_trials([trial], device="cpu")
    outcome = run_trial(trial, config, logdir, resume=True)
    assert outcome.status == "failed"
    assert f"PID {process.pid} on {platform.node()}" in outcome.error
    assert "busy" in outcome.error and "nothing was written" in outcome.error
    assert sorted(p.name for p in logdir.iterdir()) == [LOCK_FILE]
    assert json.loads((logdir / LOCK_FILE).read_text())["pid"] == process.pid

    # its holder killed (kill -9: no clean-up), the lock is taken over and the trial runs
    process.kill()
    process.wait()
    outcome = run_trial(trial, config, logdir, resume=True)
    assert outcome.status == "done", outcome.error
    assert (logdir / RESULT_FILE).exists() and not (logdir / LOCK_FILE).exists()


def test_the_lock_is_exclusive_and_released(tmp_path):
    with TrialLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(TrialBusy, match=f"PID {os.getpid()} "):
            TrialLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()
    TrialLock(tmp_path).acquire().release()  # free again


def test_a_lock_of_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 4242, "host": "elsewhere"}))
    with pytest.raises(TrialBusy, match="PID 4242 on elsewhere.*delete"):
        TrialLock(tmp_path).acquire()
