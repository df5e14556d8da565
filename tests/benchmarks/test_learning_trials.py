"""Graph-learning trials in suites: the same folder layout, skip and no-overwrite rules as RL
trials, clear errors, a mixed RL + learning suite through the command line, and its report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bayes.calibration import expected_calibration_error
from benchmarks import report, runner
from benchmarks.run import main
from benchmarks.runner import PREDICTIONS_FILE, RESULT_FILE
from benchmarks.suites import Trial
from graphs.tasks import GraphTaskConfig

MIXED = """
description = "RL and graph learning in one suite"
seeds = 2

[[envs]]
id = "umbra/CartPole-v0"
agents = ["ppo"]
steps = 1024
num_envs = 8

[[envs]]
id = "graphs/KarateClub"
agents = ["gcn", "gcn-temperature"]
steps = 8                  # epochs
"""


def test_a_learning_trial_writes_its_folder_and_is_skipped_when_done(tmp_path):
    trial = Trial("graphs/KarateClub", "gcn", seed=1, steps=6, config={"hidden_size": 8})
    [config] = runner.check_trials([trial])
    assert isinstance(config, GraphTaskConfig)
    assert (config.epochs, config.model, config.head, config.seed) == (6, "gcn", "linear", 1)
    logdir = tmp_path / "seed1"

    outcome = runner.run_trial(trial, config, logdir, suite="t")
    assert outcome.status == "done", outcome.error
    result = json.loads((logdir / RESULT_FILE).read_text())
    assert set(runner.LEARNING_RESULT_KEYS + runner.SCORE_KEYS) <= set(result)
    assert result["metric"] == "test accuracy" and result["score"] == result["accuracy"]
    assert result["steps"] == 6
    assert json.loads((logdir / "config.json").read_text()) == config.to_dict()

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert [e.step for e in acc.Scalars("graph/val_accuracy")] == [1, 2, 3, 4, 5, 6]
    for tag in ("graph/train_loss", "eval/test_accuracy", "eval/test_nll", "eval/test_ece",
                "hparams/score", "hparams/test_ece"):
        assert tag in acc.Tags()["scalars"], tag

    with np.load(logdir / PREDICTIONS_FILE) as saved:
        probs, labels = saved["probs"], saved["labels"]
    assert probs.shape == (labels.shape[0], 4) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.mean(probs.argmax(1) == labels) == pytest.approx(result["accuracy"])
    assert expected_calibration_error(probs, labels) == pytest.approx(result["ece"])

    again = runner.run_trial(trial, config, logdir, suite="t")
    assert again.status == "skipped" and again.result == result
    longer = runner.build_config(Trial("graphs/KarateClub", "gcn", seed=1, steps=7,
                                       config={"hidden_size": 8}))
    clash = runner.run_trial(trial, longer, logdir, suite="t")
    assert clash.status == "failed" and "nothing was overwritten" in clash.error
    assert json.loads((logdir / RESULT_FILE).read_text()) == result


@pytest.mark.parametrize(
    ("trial", "message"),
    [
        (Trial("graphs/SMB", "gcn", 0), "unknown learning task 'graphs/SMB'; did you mean "
                                        "'graphs/SBM'"),
        (Trial("graphs/SBM", "gcn-temp", 0), "did you mean 'gcn-temperature'"),
        (Trial("graphs/SBM", "gcn", 0, config={"epoch": 3}), "unknown GraphTaskConfig field "
                                                             "'epoch'; did you mean 'epochs'"),
        (Trial("graphs/SBM", "gcn", 0, env_kwargs={"feature_nois": 2.0}),
         "did you mean 'feature_noise'"),
        (Trial("graphs/SBM", "gcn", 0, num_envs=8), "num_envs does not apply"),
        (Trial("graphs/Motifs", "gin", 0, config={"readout": "sum"}), "unknown readout 'sum'"),
    ],
)
def test_bad_learning_trials_are_clear_errors_before_anything_runs(trial, message):
    with pytest.raises(ValueError, match="trial env=.*" + message.replace("(", r"\(")):
        runner.check_trials([trial])


def test_unknown_task_on_the_command_line_exits_2(tmp_path, capsys):
    code = main(["--env", "graphs/Karate", "--agent", "gcn", "--logdir", str(tmp_path),
                 "--no-progress"])
    assert code == 2 and "did you mean 'graphs/KarateClub'" in capsys.readouterr().err


def test_a_mixed_suite_runs_reports_both_metrics_and_regenerates(tmp_path, capsys):
    path = tmp_path / "mixed.toml"
    path.write_text(MIXED, encoding="utf-8")
    logdir = tmp_path / "runs"
    assert main(["--suite", str(path), "--logdir", str(logdir), "--no-progress",
                 "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "score IQM [95% CI]" in printed and "metric" in printed
    assert "graphs/KarateClub  test accuracy  gcn-temperature" in printed
    assert "umbra/CartPole-v0  final return   ppo" in printed
    assert "calibration on the test sets" in printed

    suite_dir = logdir / "mixed"
    text = (suite_dir / report.REPORT_FILE).read_text()
    assert "| graphs/KarateClub | test accuracy | gcn | 2 | " in text
    assert "| umbra/CartPole-v0 | final return | ppo | 2 | " in text
    assert "## Calibration" in text and "| graphs/KarateClub | gcn-temperature | 2 | " in text
    for name in ("reliability_graphs_KarateClub_gcn.png", "curves_graphs_KarateClub.png",
                 "curves_umbra_CartPole-v0.png"):
        assert (suite_dir / report.PLOTS_DIR / name).read_bytes()[:4] == b"\x89PNG", name
        assert f"(plots/{name})" in text
    rows = list(csv.DictReader((suite_dir / report.CSV_FILE).open()))
    assert {r["metric"] for r in rows} == {"return", "test accuracy"}
    karate = [r for r in rows if r["env_id"] == "graphs/KarateClub"]
    assert len(karate) == 4 and all(float(r["score"]) == float(r["accuracy"]) for r in karate)

    # rebuilt from the folder alone: the same tables
    (suite_dir / report.REPORT_FILE).unlink()
    assert report.main([str(suite_dir)]) == 0
    again = (suite_dir / report.REPORT_FILE).read_text()
    table = [line for line in text.splitlines() if line.startswith("| graphs/KarateClub")]
    assert len(table) >= 4 and all(line in again for line in table)

    # a second run skips everything and trains nothing
    assert main(["--suite", str(path), "--logdir", str(logdir), "--no-progress",
                 "--workers", "1"]) == 0
    assert capsys.readouterr().out.count("skipped (done before)") == 6


def test_learning_trials_run_in_worker_processes(tmp_path):
    trials = [Trial("graphs/KarateClub", "sage", seed, steps=3) for seed in (0, 1)]
    configs = runner.check_trials(trials)
    outcomes = runner.run_trials(trials, configs, root=tmp_path, suite="w", workers=2,
                                 show_progress=False, log=lambda line: None)
    assert [o.status for o in outcomes] == ["done", "done"]
    for o in outcomes:
        assert (Path(o.logdir) / PREDICTIONS_FILE).is_file()
