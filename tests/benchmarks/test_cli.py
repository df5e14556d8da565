"""The command line ``python -m benchmarks.run``: listing, one-off trials, suites, resume, errors.

Every test calls :func:`benchmarks.run.main` in this process with budgets of a few thousand steps,
except one subprocess test of ``python -m benchmarks.run --list``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs
from benchmarks import runner
from benchmarks.run import main
from benchmarks.runner import ERROR_FILE, RESULT_FILE, RESULT_KEYS, THRESHOLD_KEYS

REPO = Path(__file__).resolve().parents[2]
#: A one-off trial small enough for a test: 8 copies x 32 steps per update.
TINY = ["--num-envs", "8", "--device", "cpu", "--no-progress"]


def write_suite(path: Path, steps: int = 1024, seeds: str = "[0, 1]", config: str = "") -> Path:
    path.write_text(
        f'description = "test suite"\nseeds = {seeds}\nsteps = {steps}\nnum_envs = 8\n'
        f"{config}\n"
        '[[envs]]\nid = "umbra/CartPole-v0"\n',
        encoding="utf-8",
    )
    return path


def scalars(logdir: Path, tag: str) -> list[int]:
    """Steps of the points logged under ``tag`` in ``logdir`` (every events file there)."""
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert tag in acc.Tags()["scalars"], acc.Tags()["scalars"]
    return [event.step for event in acc.Scalars(tag)]


# ---------------------------------------------------------------------------------- --list
def test_list_prints_every_native_id_with_its_kind(capsys):
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for env_id in envs.list_ids():
        line = next((line for line in lines if line.split()[:1] == [env_id]), None)
        assert line is not None, f"{env_id} missing from --list"
        assert envs.spec(env_id).kind in line
        assert envs.spec(env_id).description in line


def test_list_as_a_module_from_the_shell():
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--list"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for env_id in envs.list_ids():
        assert env_id in done.stdout


# ---------------------------------------------------------------------------------- one-off trials
def test_oneoff_trial_writes_result_json_and_tensorboard(tmp_path, capsys):
    code = main(["--env", "umbra/CartPole-v0", "--agent", "ppo", "--steps", "2048", "--seeds", "2",
                 "--stop-at-return", "10000", "--logdir", str(tmp_path), *TINY])
    assert code == 0
    for seed in (0, 1):
        trial = tmp_path / "oneoff" / "umbra" / "CartPole-v0" / "ppo" / f"seed{seed}"
        result = json.loads((trial / RESULT_FILE).read_text())
        assert set(RESULT_KEYS + THRESHOLD_KEYS) <= set(result)
        assert (result["env_id"], result["agent"], result["seed"]) == ("umbra/CartPole-v0", "ppo",
                                                                       seed)
        assert result["steps"] >= 2048 and result["sps"] > 0 and result["wall_time_s"] > 0
        assert result["threshold_reached"] is False and result["threshold_steps"] is None
        assert (trial / "config.json").exists() and (trial / "checkpoints").is_dir()
        assert scalars(trial, "charts/episode_return")
    out = capsys.readouterr().out
    assert "umbra/CartPole-v0" in out and "final return" in out  # the summary table
    assert (tmp_path / "oneoff" / "report.md").exists()


def test_oneoff_trial_on_a_gymnasium_id(tmp_path):
    code = main(["--env", "CartPole-v1", "--steps", "512", "--logdir", str(tmp_path), *TINY])
    assert code == 0
    assert (tmp_path / "oneoff" / "CartPole-v1" / "ppo" / "seed0" / RESULT_FILE).exists()


# ---------------------------------------------------------------------------------- suites
def test_suite_run_skips_trials_already_done(tmp_path, capsys):
    suite = write_suite(tmp_path / "tiny.toml")
    logdir = tmp_path / "runs"
    assert main(["--suite", str(suite), "--logdir", str(logdir), "--no-progress"]) == 0
    trials = sorted((logdir / "tiny").glob("umbra/CartPole-v0/ppo/seed*"))
    assert [t.name for t in trials] == ["seed0", "seed1"]
    before = {t: ((t / RESULT_FILE).stat().st_mtime_ns, sorted(t.glob("events.*"))) for t in trials}
    capsys.readouterr()

    assert main(["--suite", str(suite), "--logdir", str(logdir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 2
    after = {t: ((t / RESULT_FILE).stat().st_mtime_ns, sorted(t.glob("events.*"))) for t in trials}
    assert after == before  # nothing retrained, nothing rewritten
    assert "umbra/CartPole-v0" in (logdir / "tiny" / "report.md").read_text()


def test_a_changed_budget_does_not_overwrite_a_finished_trial(tmp_path, capsys):
    logdir = tmp_path / "runs"
    assert main(["--suite", str(write_suite(tmp_path / "s.toml", seeds="[0]")), "--logdir",
                 str(logdir), "--no-progress"]) == 0
    result = logdir / "s" / "umbra" / "CartPole-v0" / "ppo" / "seed0" / RESULT_FILE
    stamp = result.stat().st_mtime_ns
    assert main(["--suite", str(write_suite(tmp_path / "s.toml", steps=2048, seeds="[0]")),
                 "--logdir", str(logdir), "--no-progress"]) == 1
    assert "another config" in capsys.readouterr().err
    assert result.stat().st_mtime_ns == stamp


def test_a_failing_trial_is_isolated(tmp_path, monkeypatch, capsys):
    real_train = runner.train

    def flaky_train(config, logdir=None, resume=False, progress=None):
        if config.seed == 1:
            raise RuntimeError("boom in seed 1")
        return real_train(config, logdir=logdir, resume=resume, progress=progress)

    monkeypatch.setattr(runner, "train", flaky_train)
    suite = write_suite(tmp_path / "tiny.toml", seeds="[0, 1, 2]")
    logdir = tmp_path / "runs"
    args = ["--suite", str(suite), "--logdir", str(logdir), "--no-progress", "--workers", "1"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "Traceback" in captured.out and "boom in seed 1" in captured.out
    assert "1 of 3 trials FAILED" in captured.err
    base = logdir / "tiny" / "umbra" / "CartPole-v0" / "ppo"
    assert (base / "seed0" / RESULT_FILE).exists() and (base / "seed2" / RESULT_FILE).exists()
    assert not (base / "seed1" / RESULT_FILE).exists()
    error = json.loads((base / "seed1" / ERROR_FILE).read_text())
    assert "boom in seed 1" in error["error"] and "Traceback" in error["traceback"]
    assert "boom in seed 1" in (logdir / "tiny" / "report.md").read_text()

    monkeypatch.setattr(runner, "train", real_train)  # fixed: the next run retries only seed 1
    assert main(args) == 0
    assert capsys.readouterr().out.count("skipped") == 2
    assert (base / "seed1" / RESULT_FILE).exists() and not (base / "seed1" / ERROR_FILE).exists()


# ---------------------------------------------------------------------------------- resume
def test_resume_completes_an_interrupted_trial_without_duplicate_points(tmp_path, monkeypatch,
                                                                       capsys):
    # 4096 steps = 16 updates of 8 x 32; a checkpoint after every update; Ctrl-C after update 8.
    suite = write_suite(tmp_path / "tiny.toml", steps=4096, seeds="[0]",
                        config="config = { checkpoint_every = 1 }")
    args = ["--suite", str(suite), "--logdir", str(tmp_path / "runs"), "--no-progress",
            "--workers", "1"]  # in this process, where the monkeypatch applies
    real_train = runner.train

    def interrupted_train(config, logdir=None, resume=False, progress=None):
        def progress_then_ctrl_c(step: int) -> None:
            if step >= 2048:
                raise KeyboardInterrupt
        return real_train(config, logdir=logdir, resume=resume, progress=progress_then_ctrl_c)

    monkeypatch.setattr(runner, "train", interrupted_train)
    assert main(args) == 130
    assert "--resume" in capsys.readouterr().err
    trial = tmp_path / "runs" / "tiny" / "umbra" / "CartPole-v0" / "ppo" / "seed0"
    assert not (trial / RESULT_FILE).exists() and runner.has_checkpoint(trial)

    monkeypatch.setattr(runner, "train", real_train)
    # Events files are named by the second they start in, and TensorBoard reads them in name
    # order: let the resumed run start in a later second, as it would outside a test.
    time.sleep(1.1)
    assert main(args) == 1  # without --resume: refused, nothing overwritten
    assert "--resume" in capsys.readouterr().out
    assert main([*args, "--resume"]) == 0
    result = json.loads((trial / RESULT_FILE).read_text())
    assert result["steps"] == 4096 and result["resumed"] is True
    steps = scalars(trial, "charts/sps")
    assert steps == sorted(set(steps)), "duplicate or out-of-order TensorBoard points"
    assert steps[-1] == 4096 and set(range(2304, 4097, 256)) <= set(steps)


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "umbra/CartPole-v0", "--agent", "nope"], "unknown agent 'nope'"),
        (["--env", "umbra/CartPole-v0", "--env-kwargs", "{bad json"], "not valid JSON"),
        (["--env", "umbra/CartPole-v0", "--env-kwargs", "[1, 2]"], "must be a JSON object"),
        (["--env", "umbra/CartPole-v0", "--env-kwargs", '{"gravity": 1}'], "'gravity'"),
        (["--env", "umbra/CartPol-v0"], "umbra/CartPole-v0"),  # names the close match
        (["--env", "umbra/CartPole-v0", "--steps", "0"], "--steps must be at least 1"),
        (["--suite", "smok"], "did you mean 'smoke'"),
        (["--suite", "missing.toml"], "does not exist"),
        (["--steps", "100"], "need --env"),
        (["--suite", "smoke", "--env", "umbra/CartPole-v0"], "not both"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--suite", "smoke", "--seeds", "0"], "--seeds must be at least 1"),
        (["--backend", "ray", "--workers", "2"], "--workers applies to --backend local"),
        (["--address", "auto"], "add --backend ray"),
        (["--suite", "throughput", "--workers", "2"], "do not apply to the throughput suite"),
        pytest.param(["--env", "umbra/CartPole-v0", "--device", "cuda"], "torch.cuda.is_available",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, tmp_path, capsys):
    assert main([*argv, "--logdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir()), "bad input must not start anything"


def test_a_suite_file_with_a_typo_names_the_close_key(tmp_path, capsys):
    suite = tmp_path / "typo.toml"
    suite.write_text('seed = [0]\n[[envs]]\nid = "umbra/CartPole-v0"\n')
    assert main(["--suite", str(suite), "--logdir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'seed'" in err and "did you mean 'seeds'" in err
