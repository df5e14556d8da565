"""Reports: tables with intervals from recorded trials, results.csv, plots, and regeneration."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from benchmarks import curves, report
from benchmarks.run import main as run_main
from benchmarks.runner import ERROR_FILE, RESULT_FILE, write_suite_file
from benchmarks.suites import parse_suite

SUITE = """
description = "two agents, one env"
agents = ["ppo", "mlp"]
seeds = 4
[[envs]]
id = "umbra/CartPole-v0"
reference = { random = 0.0, expert = 100.0 }
"""
#: Final returns by hand: IQM of 4 seeds drops the lowest and the highest.
RETURNS = {"ppo": [10.0, 20.0, 30.0, 1000.0], "mlp": [0.0, 0.0, 5.0, 5.0]}


def fake_suite(root: Path, failing_seed: int | None = None) -> Path:
    """A finished suite folder without training: result.json and a short curve per trial."""
    suite = parse_suite(SUITE, name="fake")
    suite_dir = root / "fake"
    write_suite_file(suite_dir, suite)
    for trial in suite.trials:
        folder = suite_dir / "umbra" / "CartPole-v0" / trial.agent / f"seed{trial.seed}"
        folder.mkdir(parents=True)
        common = {"env_id": trial.env_id, "agent": trial.agent, "seed": trial.seed}
        if trial.agent == "mlp" and trial.seed == failing_seed:
            (folder / ERROR_FILE).write_text(json.dumps(
                {**common, "error": "RuntimeError: boom", "traceback": "Traceback\nboom"}))
            continue
        final = RETURNS[trial.agent][trial.seed]
        (folder / RESULT_FILE).write_text(json.dumps(
            {**common, "steps": 300, "wall_time_s": 2.0, "sps": 150.0, "final_return": final}))
        with SummaryWriter(str(folder)) as writer:
            for step, value in ((100, 0.0), (200, final / 2), (300, final)):
                writer.add_scalar(curves.TAG, value, step)
    return suite_dir


def test_report_from_recorded_trials_has_hand_checked_statistics(tmp_path, capsys):
    suite_dir = fake_suite(tmp_path)
    assert report.main([str(suite_dir)]) == 0
    text = (suite_dir / report.REPORT_FILE).read_text()
    # ppo: IQM = mean(20, 30) = 25, mean = 265, median = 25; mlp: IQM 2.5, mean 2.5, median 2.5
    assert "| umbra/CartPole-v0 | ppo | 4 | 25.0 [" in text
    assert "| 265.0 [" in text
    assert "| umbra/CartPole-v0 | mlp | 4 | 2.5 [" in text
    # every ppo run beats every mlp run: P = 1 with a degenerate interval
    assert "| ppo | mlp | umbra/CartPole-v0 | 1.00 [1.00, 1.00] |" in text
    # normalised with random 0, expert 100: ppo's aggregate IQM is 0.25
    assert "## Aggregate over environments" in text and "| ppo | 0.250 [" in text
    assert 'agents = ["ppo", "mlp"]' in text  # the suite's file
    assert "- torch: " in text and "- scipy: " in text and "- cores: " in text
    for name in ("curves_umbra_CartPole-v0.png", "aggregate.png", "profiles.png"):
        path = suite_dir / report.PLOTS_DIR / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"(plots/{name})" in text
    assert "25.0 [" in capsys.readouterr().out  # the table is printed too

    rows = list(csv.DictReader((suite_dir / report.CSV_FILE).open()))
    assert len(rows) == 8
    ppo3 = next(r for r in rows if r["agent"] == "ppo" and r["seed"] == "3")
    assert float(ppo3["final_return"]) == 1000.0 and float(ppo3["normalized_return"]) == 10.0
    assert ppo3["status"] == "skipped" and ppo3["folder"].endswith("seed3")


def test_a_failed_trial_is_listed_and_left_out_of_the_statistics(tmp_path):
    suite_dir = fake_suite(tmp_path, failing_seed=0)
    assert report.main([str(suite_dir), "--no-plots"]) == 0
    text = (suite_dir / report.REPORT_FILE).read_text()
    assert "| mlp | 3 (1 failed) | 3.3 [" in text  # 3 seeds left, [0, 5, 5]: nothing cut
    assert "## Failures" in text and "mlp seed0: boom" in text
    rows = list(csv.DictReader((suite_dir / report.CSV_FILE).open()))
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == "boom"
    assert not (suite_dir / report.PLOTS_DIR).exists()


def test_regenerating_an_empty_folder_says_what_to_pass(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "no result.json" in capsys.readouterr().err


def test_curves_are_interpolated_on_a_common_grid():
    curve = curves.Curve(np.array([100.0, 200.0]), np.array([1.0, 3.0]))
    grid = np.array([0.0, 100.0, 150.0, 200.0, 300.0])
    np.testing.assert_allclose(curves.on_grid([curve], grid)[0], [np.nan, 1, 2, 3, 3])
    values = np.array([[np.nan, 1.0, 2.0], [0.0, 3.0, 4.0]])
    b = curves.band(values, np.array([0.0, 1.0, 2.0]), reps=100)
    np.testing.assert_allclose(b.steps, [1.0, 2.0])  # only where every seed has a value
    np.testing.assert_allclose(b.point, [2.0, 3.0])
    assert np.all(b.low <= b.point) and np.all(b.point <= b.high) and b.runs == 2


def test_a_real_tiny_suite_writes_the_report_and_regenerates_it(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text('seeds = 2\nsteps = 1024\nnum_envs = 8\n'
                    '[[envs]]\nid = "umbra/CartPole-v0"\n', encoding="utf-8")
    logdir = tmp_path / "runs"
    assert run_main(["--suite", str(path), "--logdir", str(logdir), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    suite_dir = logdir / "tiny"
    first = (suite_dir / report.REPORT_FILE).read_text()
    assert "final return IQM [95% CI]" in printed and "final return IQM [95% CI]" in first
    curve = curves.read_curve(suite_dir / "umbra" / "CartPole-v0" / "ppo" / "seed0")
    assert curve is not None and curve.steps[-1] == 1024 and np.all(np.diff(curve.steps) > 0)
    assert (suite_dir / report.PLOTS_DIR / "curves_umbra_CartPole-v0.png").stat().st_size > 0
    assert len(list(csv.DictReader((suite_dir / report.CSV_FILE).open()))) == 2

    (suite_dir / report.REPORT_FILE).unlink()
    assert report.main([str(suite_dir)]) == 0
    again = (suite_dir / report.REPORT_FILE).read_text()
    table = [line for line in first.splitlines() if line.startswith("| umbra/CartPole-v0 | ppo")]
    assert table and all(line in again for line in table)


def test_mmer_is_the_peak_of_the_mean_episodic_return_curve(tmp_path):
    """POPGym's MMER: the largest point of charts/episode_return, not the last; per trial in
    results.csv, mean across seeds in report.md beside the paper's GRU column (n/a where it has
    none)."""
    suite = parse_suite('agents = ["gru"]\nseeds = 2\n[[envs]]\n'
                        'id = "popgym/PositionOnlyCartPoleEasy-v0"\n[[envs]]\n'
                        'id = "popgym/BattleshipEasy-v0"\n', name="mmer")
    suite_dir = tmp_path / "mmer"
    write_suite_file(suite_dir, suite)
    peaks = {0: 0.5, 1: 0.7}
    for trial in suite.trials:
        folder = suite_dir / trial.env_id.replace("/", "_") / f"seed{trial.seed}"
        folder.mkdir(parents=True)
        (folder / RESULT_FILE).write_text(json.dumps(
            {"env_id": trial.env_id, "agent": "gru", "seed": trial.seed, "steps": 300,
             "final_return": 0.1}))
        with SummaryWriter(str(folder)) as writer:
            for step, value in ((100, 0.2), (200, peaks[trial.seed]), (300, 0.1)):
                writer.add_scalar(curves.TAG, value, step)
    assert report.main([str(suite_dir), "--no-plots"]) == 0
    rows = list(csv.DictReader((suite_dir / report.CSV_FILE).open()))
    assert sorted(float(r["mmer"]) for r in rows) == [0.5, 0.5, 0.699999988079071,
                                                      0.699999988079071]  # float32 events
    text = (suite_dir / report.REPORT_FILE).read_text()
    assert "## MMER" in text and "POPGym paper GRU MMER" in text
    [cartpole] = [line for line in text.splitlines()
                  if line.startswith("| popgym/PositionOnlyCartPoleEasy-v0 | gru | 2 | 0.600 [")]
    assert cartpole.endswith("| 1.000 |")  # the paper's value
    [battleship] = [line for line in text.splitlines()
                    if line.startswith("| popgym/BattleshipEasy-v0 | gru | 2 | 0.600 [")]
    assert battleship.endswith("| n/a |")  # none published
    assert report.POPGYM_PAPER_SOURCE in text


def test_the_ranking_on_mmer_is_read_on_the_peak_not_on_the_final_return(tmp_path):
    """POPGym ranks by MMER: P(X > Y) on MMER pools every shared env, apart from the
    final-return comparison (here the two disagree: gru peaks higher, mlp ends higher)."""
    suite = parse_suite('agents = ["gru", "mlp"]\nseeds = 2\n[[envs]]\n'
                        'id = "popgym/RepeatFirstEasy-v0"\n[[envs]]\n'
                        'id = "popgym/CountRecallEasy-v0"\n', name="rank")
    suite_dir = tmp_path / "rank"
    write_suite_file(suite_dir, suite)
    curve = {"gru": (0.9, 0.1), "mlp": (0.3, 0.2)}  # (peak, final)
    for trial in suite.trials:
        folder = suite_dir / trial.env_id.replace("/", "_") / trial.agent / f"seed{trial.seed}"
        folder.mkdir(parents=True)
        peak, final = curve[trial.agent]
        peak += 0.01 * trial.seed
        (folder / RESULT_FILE).write_text(json.dumps(
            {"env_id": trial.env_id, "agent": trial.agent, "seed": trial.seed, "steps": 300,
             "final_return": final}))
        with SummaryWriter(str(folder)) as writer:
            for step, value in ((100, 0.0), (200, peak), (300, final)):
                writer.add_scalar(curves.TAG, value, step)
    assert report.main([str(suite_dir), "--no-plots"]) == 0
    text = (suite_dir / report.REPORT_FILE).read_text()
    mmer = text[text.index("## MMER"):text.index("## Probability of improvement")]
    assert "| gru | mlp | all 2 | 1.00 [1.00, 1.00] |" in mmer
    assert "| gru | mlp | popgym/RepeatFirstEasy-v0 |" not in mmer  # per env: final return's
    final = text[text.index("## Probability of improvement"):]
    assert "| gru | mlp | all 2 | 0.00 [0.00, 0.00] |" in final


def test_each_group_of_a_mixed_team_is_reported_on_its_own(tmp_path):
    # Predators and prey: averaging their opposite returns would hide both.
    suite_dir = fake_suite(tmp_path)
    groups = {0: (10.0, -20.0), 1: (12.0, -22.0), 2: (14.0, -24.0), 3: (16.0, -26.0)}
    for seed, (predator, prey) in groups.items():
        path = suite_dir / "umbra" / "CartPole-v0" / "ppo" / f"seed{seed}" / RESULT_FILE
        result = json.loads(path.read_text())
        result["group_returns"] = {"adversary": predator, "agent": prey}
        path.write_text(json.dumps(result))
    assert report.main([str(suite_dir), "--no-plots"]) == 0
    text = (suite_dir / report.REPORT_FILE).read_text()
    section = text[text.index("## Returns per group"):]
    section = section[: section.index("\n## ", 3)]
    # IQM of 4 seeds: the mean of the middle two
    assert "| umbra/CartPole-v0 | ppo | adversary | 4 | 13.00 [" in section
    assert "| umbra/CartPole-v0 | ppo | agent | 4 | -23.00 [" in section
    assert "| mlp |" not in section  # trials without groups have no rows


def test_a_suite_without_mixed_teams_has_no_group_section(tmp_path):
    suite_dir = fake_suite(tmp_path)
    assert report.main([str(suite_dir), "--no-plots"]) == 0
    assert "## Returns per group" not in (suite_dir / report.REPORT_FILE).read_text()
