"""The command line's reliability: an unwritable --logdir, --set overrides and typed configs, and
the smaller slips (interrupt hints, reserved env kwargs, non-finite thresholds, seed headers,
TensorBoard purge warnings, SB3 budgets, README notes).

Every test calls :func:`benchmarks.run.main` or a library function in this process; trainings
are a few hundred steps.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata
from torch.utils.tensorboard import SummaryWriter

from agents.ppo import PPOConfig
from agents.sb3 import SB3Config, sb3_config
from benchmarks import curves, runner
from benchmarks.run import main, parse_overrides
from benchmarks.runner import RESULT_FILE, check_trials
from benchmarks.suites import Trial
from graphs.tasks import GraphTaskConfig

REPO = Path(__file__).resolve().parents[2]
TINY = ["--num-envs", "8", "--device", "cpu", "--no-progress"]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------------- --logdir
def test_a_logdir_under_a_regular_file_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")  # refused even for root
    code, out, err = run_cli(["--env", "umbra/CartPole-v0", "--steps", "256", "--logdir",
                              str(blocker / "runs"), *TINY], capsys)
    assert code == 2
    line = one_line_error(err)
    assert f"--logdir {blocker / 'runs'}" in line and "cannot create or write" in line
    assert "choose a folder you can write to" in line
    assert "done" not in out  # nothing trained


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_a_read_only_logdir_is_refused_before_training(tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run_cli(["--env", "umbra/CartPole-v0", "--steps", "256", "--logdir",
                                str(folder), *TINY], capsys)
    finally:
        folder.chmod(0o755)
    assert code == 2
    assert "Permission denied" in one_line_error(err)
    assert not any(folder.iterdir())


def test_the_throughput_suite_checks_its_logdir_too(tmp_path, capsys, monkeypatch):
    import benchmarks.throughput

    def never(*args, **kwargs):
        raise AssertionError("the throughput runs started")

    monkeypatch.setattr(benchmarks.throughput, "run_throughput", never)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(["--suite", "throughput", "--logdir", str(blocker)], capsys)
    assert code == 2 and "cannot create or write" in one_line_error(err)


# ---------------------------------------------------------------------------------- --set
def test_set_overrides_land_in_config_json_result_json_and_hparams(tmp_path, capsys):
    code, out, _ = run_cli(["--env", "umbra/MaskedCartPole-v0", "--agent", "transformer",
                            "--steps", "256", "--set", "learning_rate=0.0007",
                            "--set", "core_kwargs.window=16", "--set", "anneal_lr=false",
                            "--logdir", str(tmp_path), *TINY], capsys)
    assert code == 0, out
    trial = tmp_path / "oneoff" / "umbra" / "MaskedCartPole-v0" / "transformer" / "seed0"
    for path in (trial / "config.json", trial / RESULT_FILE):
        data = json.loads(path.read_text())
        config = data.get("config", data)
        assert config["learning_rate"] == 0.0007 and config["anneal_lr"] is False
        # the dotted key set one entry; the preset's other core options stay
        assert config["core_kwargs"] == {"window": 16, "num_heads": 4, "num_layers": 1}
    acc = EventAccumulator(str(trial))
    acc.Reload()
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG])
    hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    assert hparams["learning_rate"] == pytest.approx(0.0007) and not hparams["anneal_lr"]
    assert json.loads(hparams["core_kwargs"])["window"] == 16
    assert '--set core_kwargs.window=16' in out  # the header lists the overrides


def test_set_applies_to_every_trial_of_a_suite_over_its_config(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('seeds = [0, 1]\nsteps = 256\nnum_envs = 8\n'
                     'config = { learning_rate = 0.01, ent_coef = 0.02 }\n'
                     '[[envs]]\nid = "umbra/CartPole-v0"\n'
                     '[[envs]]\nid = "umbra/Pendulum-v0"\n')
    from benchmarks.suites import load_suite

    overrides = parse_overrides(["learning_rate=1e-4"])
    configs = check_trials(load_suite(suite).trials, overrides=overrides)
    assert len(configs) == 4
    assert all(c.learning_rate == 1e-4 and c.ent_coef == 0.02 for c in configs)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 1e-3), ("128", 128), ("true", True), ("false", False), ("[64, 64]", [64, 64]),
     ('{model = "gat", k = 2}', {"model": "gat", "k": 2}), ('{"model": "gat"}', {"model": "gat"}),
     ("null", None), ("fast", "fast"), ("lin_1e-3", "lin_1e-3"), ('"128"', "128")],
)
def test_set_values_are_toml_or_json_literals_else_strings(text, value):
    assert parse_overrides([f"key={text}"]) == {"key": value}


def test_set_reaches_every_kind_of_config():
    graph = Trial("umbra/GraphNavigation-v0", "gcn", 0)
    [ppo] = check_trials([graph], overrides=parse_overrides(["encoder_kwargs.node_head=false"]))
    assert ppo.encoder_kwargs == {"model": "gcn", "node_head": False}

    baseline = Trial("umbra/CartPole-v0", "sb3-ppo", 0, steps=1024)
    [sb3] = check_trials([baseline], overrides=parse_overrides(
        ["n_steps=16", "policy_kwargs.net_arch=[8]", "num_envs=4"]))
    assert isinstance(sb3, SB3Config) and sb3.num_envs == 4
    assert sb3.hyperparams["n_steps"] == 16 and sb3.hyperparams["policy_kwargs"] == {
        "net_arch": [8]}

    task = Trial("graphs/SBM", "gcn-bayes", 0, steps=5)
    [learning] = check_trials([task], overrides=parse_overrides(["lr=0.05",
                                                                 "head_kwargs.prior_scale=2"]))
    assert isinstance(learning, GraphTaskConfig)
    assert learning.lr == 0.05 and learning.head_kwargs == {"prior_scale": 2}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "learning_rate=fast"],
         "PPOConfig.learning_rate must be a float, got 'fast' (str)"),
        (["--set", "lerning_rate=1e-3"], "did you mean 'learning_rate'"),
        (["--set", "core_kwargs.windw=3", "--set", "num_stepz=8"], "did you mean 'num_steps'"),
        (["--set", "learning_rate.x=1"], "not a table of options"),
        (["--set", "seed=3"], "set it with --seeds K"),
        (["--set", "learning_rate"], "--set needs KEY=VALUE"),
        (["--set", "gamma=1", "--set", "gamma=0.9"], "given twice"),
        (["--set", "num_envs=2.5"], "PPOConfig.num_envs must be an int, got 2.5 (float)"),
        (["--agent", "sb3-ppo", "--set", "n_step=8"], "did you mean 'n_steps'"),
        (["--agent", "sb3-ppo", "--set", "total_steps=many"],
         "SB3Config.total_steps must be an int, got 'many' (str)"),
    ],
)
def test_bad_set_exits_2_naming_the_field(argv, message, tmp_path, capsys):
    code, _, err = run_cli(["--env", "umbra/CartPole-v0", *argv, "--logdir", str(tmp_path)],
                           capsys)
    assert code == 2
    assert message in one_line_error(err)
    assert not any(tmp_path.iterdir())


def test_a_wrongly_typed_suite_config_names_the_field(tmp_path, capsys):
    suite = tmp_path / "typed.toml"
    suite.write_text('seeds = [0]\nconfig = { learning_rate = "fast" }\n'
                     '[[envs]]\nid = "umbra/CartPole-v0"\n')
    code, _, err = run_cli(["--suite", str(suite), "--logdir", str(tmp_path / "runs")], capsys)
    assert code == 2
    assert "PPOConfig.learning_rate must be a float, got 'fast' (str)" in one_line_error(err)


def test_every_config_field_is_type_checked_and_ints_become_floats():
    assert PPOConfig(learning_rate=1).learning_rate == 1.0
    assert isinstance(PPOConfig(learning_rate=1).learning_rate, float)
    with pytest.raises(ValueError, match=r"PPOConfig.target_kl must be a float or None"):
        PPOConfig(target_kl="0.1")
    with pytest.raises(ValueError, match=r"PPOConfig.anneal_lr must be a bool"):
        PPOConfig(anneal_lr=1)
    with pytest.raises(ValueError, match=r"PPOConfig.communication must be a string, a table"):
        PPOConfig(communication=3)
    with pytest.raises(ValueError, match=r"SB3Config.hyperparams must be a table"):
        SB3Config(hyperparams=[1])
    with pytest.raises(ValueError, match=r"GraphTaskConfig.dropout must be a float, got 'x'"):
        GraphTaskConfig(dropout="x")


# ---------------------------------------------------------------------------------- smaller ones
def test_ctrl_c_in_the_throughput_suite_does_not_advise_resume(tmp_path, capsys, monkeypatch):
    import benchmarks.throughput

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmarks.throughput, "run_throughput", interrupted)
    code, _, err = run_cli(["--suite", "throughput", "--logdir", str(tmp_path)], capsys)
    assert code == 130
    assert "--resume" not in err
    assert "run the same command again" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env-kwargs", '{"num_envs": 3}'], "use --num-envs 3 instead"),
        (["--env-kwargs", '{"device": "cpu"}'], "use --device cpu instead"),
        (["--stop-at-return", "nan"], "--stop-at-return must be a finite number"),
        (["--stop-at-return", "inf"], "--stop-at-return must be a finite number"),
        (["--set", "stop_at_return=nan"], "stop_at_return must be a finite number"),
    ],
)
def test_smaller_bad_inputs_exit_2(argv, message, tmp_path, capsys):
    code, _, err = run_cli(["--env", "umbra/CartPole-v0", *argv, "--logdir", str(tmp_path)],
                           capsys)
    assert code == 2 and message in one_line_error(err)


def test_num_envs_in_a_suites_env_kwargs_points_to_num_envs(tmp_path, capsys):
    suite = tmp_path / "kw.toml"
    suite.write_text('seeds = [0]\n[[envs]]\nid = "umbra/CartPole-v0"\n'
                     'env_kwargs = { num_envs = 3 }\n')
    code, _, err = run_cli(["--suite", str(suite), "--logdir", str(tmp_path / "runs")], capsys)
    assert code == 2 and "num_envs in the suite" in one_line_error(err)


def test_the_suite_header_states_the_seeds_that_run(tmp_path, capsys, monkeypatch):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_trials", stop)
    code, out, _ = run_cli(["--suite", "smoke", "--seeds", "5", "--logdir", str(tmp_path)],
                           capsys)
    assert code == 130
    header = out.splitlines()[0]
    assert header.startswith("suite smoke: 15 trials, seeds 0-4, into"), header
    assert "2 seeds" not in header


def test_reading_a_resumed_trial_logs_no_purge_warning(tmp_path, caplog):
    with SummaryWriter(str(tmp_path)) as writer:  # an interrupted run: points up to step 5
        for step in range(1, 6):
            writer.add_scalar(curves.TAG, float(step), step)
    with SummaryWriter(str(tmp_path), purge_step=3) as writer:  # resumed from step 2
        for step in range(3, 8):
            writer.add_scalar(curves.TAG, 10.0 * step, step)
    with caplog.at_level(logging.WARNING):
        curve = curves.read_curve(tmp_path)
    assert "out of order" not in caplog.text
    assert list(curve.steps) == [1, 2, 3, 4, 5, 6, 7]  # the stale 3..5 were purged
    assert list(curve.values) == [1, 2, 30, 40, 50, 60, 70]


def test_a_baseline_trains_within_its_budget(tmp_path):
    config = sb3_config("sb3-maskable-ppo", "umbra/TMazeEasy-v0", total_steps=4000)
    assert config.hyperparams["n_steps"] * config.num_envs == 4000  # not 2048 x 8 = 16,384
    explicit = sb3_config("sb3-maskable-ppo", "umbra/TMazeEasy-v0", total_steps=4000, n_steps=64)
    assert explicit.hyperparams["n_steps"] == 64  # what the user asked for is kept
    assert main(["--env", "umbra/TMazeEasy-v0", "--agent", "sb3-maskable-ppo", "--steps", "400",
                 "--num-envs", "4", "--logdir", str(tmp_path), "--no-progress"]) == 0
    result = json.loads((tmp_path / "oneoff" / "umbra" / "TMazeEasy-v0" / "sb3-maskable-ppo"
                         / "seed0" / RESULT_FILE).read_text())
    assert result["steps"] == 400


def test_readme_says_which_install_brings_mpe2_and_tox():
    text = (REPO / "README.md").read_text()
    commands = [line for line in text.split("## ")[0].splitlines()
                if line.startswith("python3 -m venv")]
    assert commands == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -c constraints.txt -e . "
        "&& python -m benchmarks.run",
        "python3 -m venv .venv && . .venv/bin/activate && pip install -c constraints.txt -e "
        '".[test,ray]" && pytest -q',
    ]
    mpe2 = text.index('envs.make("mpe2.simple_spread_v3:parallel_env"')
    assert "`test`" in text[mpe2: mpe2 + 300]
    tox = text.index("`tox` runs")
    assert "pip install tox" in text[tox: tox + 200]
    assert "--set KEY=VALUE" in text
