"""``python -m benchmarks.tune``: search spaces, constraints, a tiny study end to end, pruning,
resume after ``kill -9``, the Ray Tune backend and bad input (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from agents.ppo import PPOConfig
from agents.presets import read_agent_file
from agents.sb3 import sb3_config
from benchmarks import runner
from benchmarks import tune as tuning
from benchmarks.run import main as run_main
from benchmarks.suites import load_suite
from benchmarks.tune_space import (
    SpaceError,
    list_spaces,
    load_space,
    nearest_divisor,
    parse_params,
    resolve,
    shipped_space,
)

ROOT = Path(__file__).resolve().parents[2]
CARTPOLE = "umbra/CartPole-v0"


def _states(study_dir: Path) -> dict[int, optuna.trial.FrozenTrial]:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(study_dir / tuning.STORAGE_FILE)))
    study = optuna.load_study(study_name=tuning.STUDY_NAME, storage=storage)
    return {t.number: t for t in study.trials}


# ---------------------------------------------------------------------------------- spaces
def test_a_space_file_parses_into_optuna_distributions_and_extends_the_default(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('remove = ["ent_coef"]\n[params]\n'
                    'learning_rate = { type = "float", low = 1e-3, high = 1e-2, log = true }\n'
                    'clip_coef = { type = "float", low = 0.1, high = 0.3, step = 0.1 }\n'
                    'num_envs = { type = "int", low = 8, high = 64, log = true }\n'
                    '"core_kwargs.window" = { type = "categorical", choices = [16, 32] }\n')
    default = shipped_space("ppo")
    space = load_space(path, default)
    assert "ent_coef" in default.params and "ent_coef" not in space.params  # removed
    assert space.params["learning_rate"].low == 1e-3  # replaced
    assert "update_epochs" in space.params  # kept from the default
    assert space.params["clip_coef"].values() == pytest.approx([0.1, 0.2, 0.3])
    assert isinstance(space.params["num_envs"].distribution(), optuna.distributions.IntDistribution)
    assert space.params["core_kwargs.window"].distribution().choices == (16, 32)
    replaced = tmp_path / "only.toml"
    replaced.write_text('replace = true\n[params]\ngamma = { type = "categorical", '
                        'choices = [0.9, 0.99] }\n')
    assert list(load_space(replaced, default).params) == ["gamma"]


def test_every_shipped_space_extends_what_it_names():
    assert {"ppo", "recurrent", "linear", "transformer", "gnn", "sb3-ppo", "sb3-recurrent-ppo",
            "graph-task"} <= set(list_spaces())
    assert "sequence_length" in shipped_space("recurrent").params
    assert {"core_kwargs.window", "core_kwargs.num_heads", "core_kwargs.num_layers"} <= set(
        shipped_space("transformer").params)
    assert {"encoder_kwargs.model", "encoder_kwargs.num_layers", "encoder_kwargs.readout"} <= set(
        shipped_space("gnn").params)
    assert {"n_steps", "batch_size", "n_epochs", "clip_range"} <= set(
        shipped_space("sb3-ppo").params)
    assert "policy_kwargs.lstm_hidden_size" in shipped_space("sb3-recurrent-ppo").params


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "float", "low": 1e-2, "high": 1e-4}, "low = 0.01 > high = 0.0001"),
    ({"type": "float", "low": 0.0, "high": 0.1, "log": True}, "log = true needs low > 0"),
    ({"type": "int", "low": 1.5, "high": 4}, "low must be an integer"),
    ({"type": "int", "low": 1, "high": 4, "step": 0}, "step must be a positive integer"),
    ({"type": "float", "low": 1e-3, "high": 1.0, "log": True, "step": 0.1},
     "step and log = true cannot go together"),
    ({"type": "categorical", "choices": []}, "choices must be a non-empty list"),
    ({"type": "categorical", "choices": [1, 1]}, "repeated choice"),
    ({"type": "categorical", "choices": [[64, 64]]}, "a choice must be a number"),
    ({"type": "flaot", "low": 0, "high": 1}, "did you mean 'float'?"),
    ({"type": "float", "low": 0, "hihg": 1}, "unknown key 'hihg'; did you mean 'high'?"),
])
def test_a_bad_parameter_is_an_error_naming_it(spec, message):
    with pytest.raises(SpaceError, match="parameter 'x'") as err:
        parse_params({"x": spec}, "space.toml")
    assert message in str(err.value)


def test_unknown_keys_name_the_close_ones(tmp_path):
    with pytest.raises(tuning.TuneError, match="did you mean 'learning_rate'"):
        _prepare_with_space('learnig_rate = { type = "float", low = 1e-4, high = 1e-2 }',
                            tmp=tmp_path)
    with pytest.raises(tuning.TuneError, match="'windw' is not an entry of core_kwargs; did you "
                       "mean 'window'"):
        _prepare_with_space('"core_kwargs.windw" = { type = "categorical", choices = [8] }',
                            agent="transformer", tmp=tmp_path)
    with pytest.raises(tuning.TuneError, match="did you mean 'n_epochs'"):
        _prepare_with_space('n_epoch = { type = "int", low = 1, high = 5 }', agent="sb3-ppo",
                            tmp=tmp_path)
    with pytest.raises(tuning.TuneError, match="'learning_rate' = 'fast' gives no valid config"):
        _prepare_with_space('learning_rate = { type = "categorical", choices = ["fast"] }',
                            tmp=tmp_path)


_PREPARE = {"trials": 1, "steps": 1000, "sampler": "random", "pruner": "none",
            "metric": "final_return", "seeds_per_trial": 1, "workers": 1, "backend": "local",
            "resume": False, "study": "study", "timeout": None, "eval_seeds": 0,
            "threshold": None, "overrides": {}, "device": "cpu"}


def _prepare_with_space(params: str, agent: str = "ppo", *, tmp: Path, **kwargs):
    folder = tmp
    space = folder / "space.toml"
    space.write_text(f"[params]\n{params}\n")
    return tuning.prepare(CARTPOLE, agent, **{**_PREPARE, "space": space,
                                               "logdir": folder / "runs", **kwargs})


@pytest.mark.parametrize(("env", "agent", "space"), [
    (CARTPOLE, "ppo", "ppo"), ("umbra/MaskedCartPole-v0", "gru", "recurrent"),
    ("umbra/MaskedCartPole-v0", "transformer", "transformer"), (CARTPOLE, "linear", "linear"),
    ("umbra/GraphNavigation-v0", "gcn", "gnn"), (CARTPOLE, "sb3-ppo", "sb3-ppo"),
    (CARTPOLE, "sb3-recurrent-ppo", "sb3-recurrent-ppo"), ("graphs/SBM", "gcn", "graph-task"),
])
def test_each_agent_family_gets_its_default_space_and_every_value_builds(env, agent, space,
                                                                         tmp_path):
    metric = "test_accuracy" if env.startswith("graphs/") else "final_return"
    spec = tuning.prepare(env, agent, **{**_PREPARE, "space": None, "logdir": tmp_path,
                                         "metric": metric})
    assert spec.space.sources[-1] == f"tune_spaces/{space}.toml"
    assert list(spec.space.params) == list(shipped_space(space).params)


# ---------------------------------------------------------------------------------- constraints
def test_constraints_are_resolved_to_the_nearest_valid_value():
    base = PPOConfig(env_id=CARTPOLE, num_envs=16, num_steps=32, total_steps=2000,
                     core="transformer", hidden_size=64)
    values = {"num_steps": 128, "num_minibatches": 3, "sequence_length": 12,
              "core_kwargs.num_heads": 3}
    changed = resolve(values, base)
    # 16 * 128 > 2000 steps: num_steps 125; sequence 12 -> 5 of 125's divisors 1, 5, 25, 125
    # (distance 7 vs 13); 3 minibatches -> 2 and 3 heads -> 2 (2 and 4 divide 2000 and 64 and
    # tie; the smaller wins)
    assert values == {"num_steps": 125, "num_minibatches": 2, "sequence_length": 5,
                      "core_kwargs.num_heads": 2}
    assert changed["num_steps"] == (128, 125)
    assert set(changed) == set(values)
    config = PPOConfig.from_dict({**base.to_dict(), **{k: v for k, v in values.items()
                                                       if "." not in k}})
    assert config.batch_size % config.num_minibatches == 0
    sb3 = sb3_config("sb3-ppo", CARTPOLE, total_steps=1000, num_envs=4)
    values = {"n_steps": 512, "batch_size": 64}
    resolve(values, sb3)
    assert values == {"n_steps": 250, "batch_size": 50}  # 4 * 250 = 1000: 50 divides it
    assert nearest_divisor(7, 1, at_least=2) == 7


# ---------------------------------------------------------------------------------- a study
def test_a_tiny_random_study_writes_runs_best_toml_and_a_report(tmp_path, capsys):
    summary = tuning.tune(CARTPOLE, "ppo", trials=3, steps=2000, sampler="random",
                          pruner="none", logdir=tmp_path, eval_seeds=2, show_progress=False,
                          device="cpu")
    study = tmp_path / "tune" / "umbra" / "CartPole-v0" / "ppo" / "study"
    assert summary.study_dir == study
    assert (summary.complete, summary.pruned, summary.failed) == (3, 0, 0)
    for number in range(3):
        result = json.loads((study / f"trial{number:04d}" / "seed0" / "result.json").read_text())
        assert result["steps"] >= 2000 and result["final_return"] is not None
        assert (study / f"trial{number:04d}" / "seed0" / "config.json").is_file()
    assert (study / tuning.STORAGE_FILE).is_file() and (study / tuning.STUDY_FILE).is_file()
    states = _states(study)
    best = max(states.values(), key=lambda t: t.value)
    assert summary.best_trial == best.number and summary.best_value == best.value
    # best.toml: an agent file with the best trial's config
    agent_file = read_agent_file(study / "best.toml")
    assert agent_file.agent == "ppo"
    assert agent_file.config["learning_rate"] == pytest.approx(best.params["learning_rate"])
    # the report: top trials, history, importances, re-evaluation on fresh seeds
    report = (study / "report.md").read_text()
    for part in ("## Top trials", "![optimisation history](history.png)",
                 "## Parameter importances", "## Re-evaluation on fresh seeds",
                 "seeds 1000, 1001: never used while tuning (tuning used seeds 0)",
                 "P(improvement)"):
        assert part in report, part
    assert (study / "history.png").stat().st_size > 0
    assert summary.evaluation["seeds"] == [1000, 1001]
    assert len(summary.evaluation["tuned"]["scores"]) == 2
    # the comparison is with what --agent gives on the task (its preset), named so
    assert len(summary.evaluation["preset"]["scores"]) == 2 and "| preset | 2 |" in report
    # --agent best.toml in benchmarks.run trains with the tuned config
    code = run_main(["--env", CARTPOLE, "--agent", str(study / "best.toml"), "--steps", "256",
                     "--logdir", str(tmp_path / "runs"), "--no-progress", "--workers", "1"])
    assert code == 0
    [result] = (tmp_path / "runs" / "oneoff").rglob("result.json")
    assert result.parent.parent.name == "best"
    config = json.loads(result.read_text())["config"]
    assert config["learning_rate"] == pytest.approx(best.params["learning_rate"])
    # ... and in a suite's agents, relative to the suite file
    (tmp_path / "suite.toml").write_text(
        'agents = ["ppo", "tune/umbra/CartPole-v0/ppo/study/best.toml"]\nsteps = 256\n'
        '[[envs]]\nid = "umbra/CartPole-v0"\n')
    suite = load_suite(tmp_path / "suite.toml")
    configs = runner.check_trials(suite.trials)
    assert configs[1].learning_rate == pytest.approx(best.params["learning_rate"])
    assert configs[0].learning_rate != configs[1].learning_rate


class _FirstGoodThenBad(optuna.samplers.RandomSampler):
    """Trial 0 gets episodes of up to 500 steps, every later trial episodes of 5: clearly
    worse at every point of training."""

    def sample_independent(self, study, trial, param_name, param_distribution):
        return 500 if trial.number == 0 else 5


def test_a_median_pruner_prunes_trials_that_are_clearly_worse(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('replace = true\n[params]\n"env_kwargs.max_episode_steps" = '
                     '{ type = "categorical", choices = [500, 5] }\n')
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    summary = tuning.tune("CartPole-v1", "ppo", trials=3, steps=2048, space=space,
                          sampler=_FirstGoodThenBad(), pruner=pruner, logdir=tmp_path,
                          eval_seeds=0, show_progress=False, device="cpu",
                          overrides={"num_envs": 8, "num_steps": 16})
    assert (summary.complete, summary.pruned) == (1, 2)
    states = _states(summary.study_dir)
    assert states[0].state == optuna.trial.TrialState.COMPLETE
    for number in (1, 2):
        trial = states[number]
        assert trial.state == optuna.trial.TrialState.PRUNED
        assert trial.params["env_kwargs.max_episode_steps"] == 5
        folder = summary.study_dir / f"trial{number:04d}" / "seed0"
        # stopped during training: no result, no error, a run TensorBoard shows
        assert not (folder / "result.json").exists() and not (folder / "error.json").exists()
        assert max(trial.intermediate_values) < 2048
    assert summary.best_trial == 0


@pytest.mark.parametrize(("pruner", "grace", "expected"), [
    ("hyperband", None, 500), ("halving", None, 500), ("median", None, 2_000),
    ("hyperband", 6_000, 6_000), ("halving", 6_000, 6_000), ("median", 6_000, 6_000),
])
def test_grace_steps_set_where_each_pruner_starts_pruning(pruner, grace, expected, tmp_path):
    # 10,000 steps x 2 seeds: the default grace is one grid step (10,000 / 20) for Hyperband and
    # successive halving (their min_resource) and a fifth of the steps for the median rule
    spec = tuning.prepare(CARTPOLE, "ppo", **{**_PREPARE, "steps": 10_000, "pruner": pruner,
                                               "seeds_per_trial": 2, "logdir": tmp_path,
                                               "space": None, "grace_steps": grace})
    assert spec.grace == expected
    made = tuning.make_pruner(spec)
    if pruner == "median":
        assert made._n_warmup_steps == expected
    elif pruner == "halving":
        assert made._min_resource == expected
    else:
        assert made._min_resource == expected and made._max_resource == 20_000


def test_no_trial_is_pruned_before_its_grace_steps(tmp_path):
    # the median test's setting, where trials 1 and 2 are worse at every point of training, with
    # successive halving: without a grace they would be pruned at their first report (a few
    # hundred steps); with --grace-steps 1024 not before 1024
    space = tmp_path / "space.toml"
    space.write_text('replace = true\n[params]\n"env_kwargs.max_episode_steps" = '
                     '{ type = "categorical", choices = [500, 5] }\n')
    summary = tuning.tune("CartPole-v1", "ppo", trials=3, steps=2048, space=space,
                          sampler=_FirstGoodThenBad(), pruner="halving", grace_steps=1024,
                          logdir=tmp_path, eval_seeds=0, show_progress=False, device="cpu",
                          overrides={"num_envs": 8, "num_steps": 16})
    assert (summary.complete, summary.pruned) == (1, 2)
    for number in (1, 2):
        trial = _states(summary.study_dir)[number]
        assert trial.state == optuna.trial.TrialState.PRUNED
        assert 1024 <= max(trial.intermediate_values) < 2048
        assert min(trial.intermediate_values) < 1024  # it reported before, unpruned
    assert "pruner halving (grace 1,024 steps)" in (summary.study_dir / "report.md").read_text()


def test_a_threshold_study_scores_the_steps_each_run_took_to_reach_it(tmp_path):
    # a return of 30 on CartPole (random play: 22) is reached within a few thousand steps; the
    # run stops there and the trial's value is the steps it took
    summary = tuning.tune(CARTPOLE, "ppo", trials=2, steps=20_000, sampler="random",
                          pruner="none", logdir=tmp_path, eval_seeds=0, show_progress=False,
                          device="cpu", metric="time_to_threshold", threshold=30.0,
                          overrides={"num_envs": 16, "num_steps": 32})
    assert summary.complete == 2
    for number, trial in _states(summary.study_dir).items():
        result = json.loads((summary.study_dir / f"trial{number:04d}" / "seed0"
                             / "result.json").read_text())
        assert result["threshold_reached"] and result["steps"] < 20_000
        assert trial.value == result["threshold_steps"]
    # a run that never reaches it is censored at the steps it trained: the budget, no better
    # than any run that reached it
    missed = {"steps": 20_000, "threshold_steps": None}
    assert tuning.seed_score("time_to_threshold", missed, tmp_path) == 20_000


def test_a_study_killed_mid_trial_resumes_and_completes(tmp_path):
    command = [sys.executable, "-m", "benchmarks.tune", "--env", CARTPOLE, "--trials", "3",
               "--steps", "4096", "--sampler", "random", "--pruner", "none", "--eval-seeds",
               "0", "--logdir", str(tmp_path), "--device", "cpu", "--no-progress",
               "--set", "num_envs=8", "--set", "num_steps=16"]
    study = tmp_path / "tune" / "umbra" / "CartPole-v0" / "ppo" / "study"
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        checkpoint = study / "trial0001" / "seed0" / "checkpoints" / "latest.pt"
        deadline = time.monotonic() + 240
        while not checkpoint.exists():
            assert process.poll() is None, "the study ended before it could be killed"
            assert time.monotonic() < deadline, "trial 1 wrote no checkpoint in 240 s"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    first = study / "trial0000" / "seed0" / "result.json"
    before = first.read_text()
    assert not (study / "trial0001" / "seed0" / "result.json").exists()
    assert tuning.main([*command[3:], "--resume"]) == 0
    states = _states(study)
    counted = [t for t in states.values() if not t.user_attrs.get("interrupted")]
    assert len(counted) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    assert first.read_text() == before  # the finished trial was kept, not trained again
    [interrupted] = [t for t in states.values() if t.user_attrs.get("interrupted")]
    assert interrupted.number == 1
    [again] = [t for t in counted if t.user_attrs.get("resumes") == 1]
    assert again.params == interrupted.params
    result = json.loads((study / "trial0001" / "seed0" / "result.json").read_text())
    assert result["resumed"] is True  # continued from the checkpoint in the same folder
    assert (study / "best.toml").is_file()


def test_a_tiny_study_runs_on_ray_tune(tmp_path):
    pytest.importorskip("ray.tune", reason="Ray Tune is optional (the extra .[ray])")
    pytest.importorskip("ray.tune.search.optuna")
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = tuning.tune(CARTPOLE, "ppo", trials=2, steps=1024, sampler="random",
                              pruner="hyperband", backend="ray", logdir=tmp_path, eval_seeds=0,
                              show_progress=False, device="cpu", overrides={"num_envs": 8})
    finally:
        if started:
            ray.shutdown()
    assert summary.complete + summary.pruned == 2 and summary.failed == 0
    assert summary.best_trial is not None and (summary.study_dir / "best.toml").is_file()
    results = list(summary.study_dir.glob("trial*/seed0/result.json"))
    assert len(results) == summary.complete >= 1
    assert (summary.study_dir / "report.md").is_file()


# ---------------------------------------------------------------------------------- bad input
def _bad_space(tmp_path: Path) -> str:
    path = tmp_path / "bad.toml"
    path.write_text('[params]\nlearning_rate = { type = "float", low = 1e-2, high = 1e-4 }\n')
    return str(path)


@pytest.mark.parametrize(("extra", "message"), [
    (lambda tmp: ["--space", _bad_space(tmp)], "low = 0.01 > high = 0.0001"),
    (lambda tmp: ["--metric", "reward"], "unknown metric 'reward'"),
    (lambda tmp: ["--sampler", "grid"], "--sampler grid needs a finite space"),
    (lambda tmp: ["--metric", "time_to_threshold"], "needs --threshold"),
    (lambda tmp: ["--threshold", "475"], "--threshold applies to --metric time_to_threshold, "
                                         "not final_return"),
    (lambda tmp: ["--resume"], "--resume: there is no study"),
    (lambda tmp: ["--pruner", "medain"], "did you mean 'median'"),
    (lambda tmp: ["--grace-steps", "0"], "--grace-steps must be an integer of at least 1"),
    (lambda tmp: ["--grace-steps", "300"], "--grace-steps 300 is past the end of a trial: at "
                                           "most 256"),
    (lambda tmp: ["--grace-steps", "100", "--pruner", "none"],
     "--grace-steps applies to a pruner; --pruner none prunes nothing"),
    (lambda tmp: ["--metric", "test_accuracy"], "test_accuracy is the metric of graph-learning"),
    (lambda tmp: ["--agent", "pp0"], "unknown agent 'pp0'"),
    (lambda tmp: ["--set", "learnig_rate=1e-3"], "did you mean 'learning_rate'"),
    (lambda tmp: ["--first-seed", "-1"], "--first-seed must be an integer of at least 0"),
    (lambda tmp: ["--first-seed", "999", "--seeds-per-trial", "2"],
     "tuning seeds 999..1000 (--first-seed, --seeds-per-trial) must stay below 1000"),
])
def test_bad_input_fails_before_anything_runs_in_one_line_exit_2(extra, message, tmp_path,
                                                                 capsys):
    code = tuning.main(["--env", CARTPOLE, "--trials", "1", "--steps", "256", "--logdir",
                        str(tmp_path / "runs"), "--no-progress", *extra(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not list((tmp_path / "runs").rglob("*.journal"))


def test_a_study_folder_of_another_command_is_refused_naming_the_difference(tmp_path, capsys):
    args = ["--env", CARTPOLE, "--trials", "1", "--steps", "256", "--logdir", str(tmp_path),
            "--no-progress", "--sampler", "random", "--pruner", "none"]
    spec = tuning.prepare(CARTPOLE, "ppo", **{**_PREPARE, "space": None, "logdir": tmp_path,
                                              "steps": 256})
    study = Path(spec.study_dir)
    (study / tuning.STUDY_FILE).write_text(json.dumps({**spec.identity(), "metric": "auc"}))
    assert tuning.main([*args, "--resume"]) == 2
    line = capsys.readouterr().err.strip()
    assert "made by another command" in line and 'metric: "auc" there, "final_return" now' in line
    assert "--logdir" in line
    (study / tuning.STUDY_FILE).write_text(json.dumps(spec.identity()))
    assert tuning.main(args) == 2  # the same study without --resume
    assert "add --resume to continue it" in capsys.readouterr().err


def test_tuning_seeds_start_at_first_seed_and_an_older_study_file_means_seed_0(tmp_path):
    # --first-seed keeps the tuning seeds apart from those that will evaluate the result (a
    # suite's seeds 0-2); the trial folders are still seed<k> with k the real seed.
    summary = tuning.tune(CARTPOLE, "ppo", trials=1, steps=256, sampler="random",
                          pruner="none", logdir=tmp_path, first_seed=7, eval_seeds=0,
                          show_progress=False, device="cpu")
    assert summary.complete == 1
    assert (summary.study_dir / "trial0000" / "seed7" / "result.json").is_file()
    assert "seeds = [7]" in (summary.study_dir / "best.toml").read_text()
    # a study.json from before --first-seed existed holds no first_seed: it was seed 0
    spec = tuning.prepare(CARTPOLE, "ppo", **{**_PREPARE, "space": None,
                                              "logdir": tmp_path / "old", "steps": 256})
    record = Path(spec.study_dir) / tuning.STUDY_FILE
    old = spec.identity()
    del old["first_seed"]
    record.write_text(json.dumps(old))
    resumed = {**_PREPARE, "space": None, "logdir": tmp_path / "old", "steps": 256,
               "resume": True}
    assert tuning.prepare(CARTPOLE, "ppo", **resumed).seeds == [0]
    with pytest.raises(tuning.TuneError, match="first_seed"):
        tuning.prepare(CARTPOLE, "ppo", **resumed, first_seed=3)


def test_a_resume_with_another_pruner_or_grace_is_refused_and_an_older_study_file_is_not(
        tmp_path):
    # which trials a study stopped was decided by its pruner and grace: resuming it with others
    # would mix two rules in one study, so the command must repeat them (or start a new study)
    made = {**_PREPARE, "space": None, "logdir": tmp_path, "steps": 256, "pruner": "hyperband"}
    spec = tuning.prepare(CARTPOLE, "ppo", **made, grace_steps=64)
    record = Path(spec.study_dir) / tuning.STUDY_FILE
    record.write_text(json.dumps(spec.identity()))
    resumed = {**made, "resume": True}
    assert tuning.prepare(CARTPOLE, "ppo", **resumed, grace_steps=64).grace == 64
    assert json.loads(record.read_text())["pruning"] == {"pruner": "hyperband", "grace": 64}
    with pytest.raises(tuning.TuneError, match=r"pruning differs in grace \(grace: 64 there, 12 "
                                               r"now\)"):
        tuning.prepare(CARTPOLE, "ppo", **resumed)  # the default grace: 256 / 20
    with pytest.raises(tuning.TuneError, match=r"pruner: \"?hyperband\"? there, \"?none\"? now"):
        tuning.prepare(CARTPOLE, "ppo", **{**resumed, "pruner": "none"})
    # a study.json that records the pruning as its text (as before it was structured) is
    # compared as text
    texts = {**spec.identity(), "pruning": "hyperband (grace 64 steps)"}
    record.write_text(json.dumps(texts))
    assert tuning.prepare(CARTPOLE, "ppo", **resumed, grace_steps=64).grace == 64
    with pytest.raises(tuning.TuneError, match=r'"hyperband \(grace 12 steps\)" now'):
        tuning.prepare(CARTPOLE, "ppo", **resumed)
    # a study.json from before the pruning was recorded resumes under whatever the command says
    old = spec.identity()
    del old["pruning"]
    record.write_text(json.dumps(old))
    assert tuning.prepare(CARTPOLE, "ppo", **{**resumed, "pruner": "none"}).pruner == "none"
