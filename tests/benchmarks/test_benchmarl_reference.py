"""The BenchMARL reference: the transcribed fine-tuned config, its CPU scaling, the report, and a
tiny run of both frameworks end to end (skipped without BenchMARL / VMAS)."""

import json
import math
import sys

import pytest

from benchmarks import benchmarl_reference as ref
from benchmarks.benchmarl_reference import (
    FINE_TUNED_VMAS,
    INSTALL_COMMAND,
    RunResult,
    scaled_experiment,
    summarize,
    umbra_settings,
)


def test_the_transcription_holds_the_fine_tuned_on_policy_values():
    # fine_tuned/vmas/conf/config.yaml of BenchMARL at f1688561 (the file's last change)
    assert FINE_TUNED_VMAS["on_policy_collected_frames_per_batch"] == 60_000
    assert FINE_TUNED_VMAS["on_policy_n_envs_per_worker"] == 600
    assert FINE_TUNED_VMAS["on_policy_n_minibatch_iters"] == 45
    assert FINE_TUNED_VMAS["on_policy_minibatch_size"] == 4096
    assert (FINE_TUNED_VMAS["gamma"], FINE_TUNED_VMAS["lr"]) == (0.9, 0.00005)
    assert FINE_TUNED_VMAS["clip_grad_norm"] is True and FINE_TUNED_VMAS["clip_grad_val"] == 5
    assert FINE_TUNED_VMAS["share_policy_params"] is True
    assert FINE_TUNED_VMAS["prefer_continuous_actions"] is True
    assert ref.BENCHMARL_VMAS_TASKS["navigation"]["max_steps"] == 100
    assert ref.BENCHMARL_VMAS_TASKS["balance"]["n_agents"] == 4


def test_scaling_keeps_the_ratios_and_changes_only_the_budget_and_bookkeeping():
    config = scaled_experiment(100_000, frames_per_batch=6_000, save_folder="/x")
    assert config["on_policy_collected_frames_per_batch"] == 6_000
    assert config["on_policy_n_envs_per_worker"] == 60  # one 100-step episode per env per batch
    assert config["on_policy_minibatch_size"] == 410  # round(4096 / 10)
    tuned_ratio = 60_000 / 4096
    assert abs(6_000 / config["on_policy_minibatch_size"] - tuned_ratio) < 0.01 * tuned_ratio
    assert config["on_policy_n_minibatch_iters"] == 45
    assert config["max_n_frames"] == 102_000  # rounded up to whole batches
    assert {config[k] for k in ("sampling_device", "train_device", "buffer_device")} == {"cpu"}
    assert config["loggers"] == ["csv"] and config["save_folder"] == "/x"
    assert not config["evaluation"] and not config["render"] and not config["create_json"]
    assert scaled_experiment(6_000, csv=False)["loggers"] == []
    changed = {k for k in FINE_TUNED_VMAS if config[k] != FINE_TUNED_VMAS[k]}
    assert changed == {
        "sampling_device", "train_device", "buffer_device", "max_n_frames",
        "on_policy_collected_frames_per_batch", "on_policy_n_envs_per_worker",
        "on_policy_minibatch_size", "render", "evaluation", "create_json", "loggers",
        "save_folder",
    }
    full = scaled_experiment(60_000, frames_per_batch=60_000)
    assert full["on_policy_n_envs_per_worker"] == 600
    assert full["on_policy_minibatch_size"] == 4096


@pytest.mark.parametrize("kwargs", [{"frames": 0}, {"frames": 10, "frames_per_batch": 150}])
def test_scaling_refuses_budgets_it_cannot_keep(kwargs):
    with pytest.raises(ValueError):
        scaled_experiment(**kwargs)


def test_umbra_gets_the_same_scenario_horizon_envs_and_budget():
    settings = umbra_settings("navigation", 10_000, seed=2, frames_per_batch=600)
    assert settings["env_id"] == "vmas:navigation" and settings["seed"] == 2
    assert settings["num_envs"] == 6 and settings["steps"] == 10_200
    assert settings["env_kwargs"] == {**ref.BENCHMARL_VMAS_TASKS["navigation"],
                                      "continuous_actions": True}
    with pytest.raises(ValueError, match="navigation"):
        umbra_settings("nav", 1_000, 0)


def test_threads_agree_with_the_runners():
    from benchmarks.runner import TRIAL_THREADS

    assert ref.THREADS == TRIAL_THREADS


def test_summary_and_report():
    runs = [RunResult("benchmarl", "balance", s, 1_000, 10.0, 100.0, float(s), [])
            for s in range(4)]
    runs += [RunResult("umbra", "balance", s, 1_000, 1.0, 1_000.0, 10.0 + s, [])
             for s in range(4)]
    rows = summarize(runs)
    assert [r["framework"] for r in rows] == ["benchmarl", "umbra"]
    assert rows[0]["iqm"] == pytest.approx(1.5) and rows[1]["iqm"] == pytest.approx(11.5)
    assert rows[0]["ci_low"] <= 1.5 <= rows[0]["ci_high"]
    assert rows[0]["fps"] == pytest.approx(100.0) and rows[1]["fps"] == pytest.approx(1_000.0)
    assert rows[0]["fps_ratio"] == rows[1]["fps_ratio"] == pytest.approx(10.0)
    meta = {"frames": 1_000, "frames_per_batch": 600, "n_envs": 6, "seeds": [0, 1, 2, 3],
            "threads": 1, "versions": {"torch": "x"}, "total_wall_time_s": 44.0}
    text = ref.report_markdown(rows, meta)
    assert "| balance | umbra | 10.00, 11.00, 12.00, 13.00 | 11.50 [" in text
    assert "| 10.00 |" in text and "f1688561" in text
    assert ref.final_score([1.0, 2.0, 3.0], 2) == 2.5 and ref.final_score([], 3) is None


def test_a_missing_benchmarl_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "benchmarl", None)  # import benchmarl raises ImportError
    assert ref.main(["--logdir", str(tmp_path), "--frames", "100"]) == 2
    err = capsys.readouterr().err
    assert INSTALL_COMMAND in err and "BenchMARL is not installed" in err
    assert not list(tmp_path.iterdir())


def test_the_umbra_side_alone(tmp_path):
    pytest.importorskip("vmas", reason="VMAS is optional (the extras .[vmas], .[benchmarl])")
    args = ref.build_parser().parse_args([
        "--scenarios", "balance", "--seeds", "1", "--frames", "400", "--frames-per-batch", "200",
        "--logdir", str(tmp_path), "--frameworks", "umbra"])
    data = ref.run(args, log=lambda line: None)
    (run,) = data["runs"]
    assert run["framework"] == "umbra" and run["frames"] >= 400 and run["score"] is not None
    config = json.loads((tmp_path / "balance" / "umbra" / "seed0" / "result.json").read_text())
    assert config["config"]["num_envs"] == 2
    assert config["config"]["env_kwargs"]["max_steps"] == 100


def test_both_frameworks_end_to_end(tmp_path):
    pytest.importorskip("benchmarl", reason="BenchMARL is optional: " + INSTALL_COMMAND)
    pytest.importorskip("vmas")
    from benchmarl.environments import VmasTask

    for scenario, kwargs in ref.BENCHMARL_VMAS_TASKS.items():
        assert dict(VmasTask[scenario.upper()].get_from_yaml().config) == kwargs
    assert ref.main(["--scenarios", "navigation", "--seeds", "2", "--frames", "200",
                     "--frames-per-batch", "200", "--logdir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / ref.JSON_FILE).read_text())
    assert [(r["framework"], r["seed"]) for r in data["runs"]] == [
        ("benchmarl", 0), ("umbra", 0), ("benchmarl", 1), ("umbra", 1)]
    bench = [r for r in data["runs"] if r["framework"] == "benchmarl"]
    assert all(r["frames"] == 200 and r["score"] is not None for r in bench)
    assert all(math.isfinite(r["score"]) for r in data["runs"])
    rows = {r["framework"]: r for r in data["summary"]}
    assert rows["umbra"]["fps_ratio"] == pytest.approx(rows["umbra"]["fps"]
                                                       / rows["benchmarl"]["fps"])
    assert data["meta"]["versions"]["benchmarl"] and data["meta"]["versions"]["torchrl"]
    assert (tmp_path / ref.REPORT_FILE).read_text().count("| navigation |") == 2
