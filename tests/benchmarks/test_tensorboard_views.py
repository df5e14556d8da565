"""TensorBoard comparison: HPARAMS rows per trial and the custom-scalars layout parse back."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.hparams import metadata as hparams_metadata

from benchmarks import tensorboard_views
from benchmarks.run import main


def accumulate(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def test_a_suite_run_writes_one_hparams_row_per_trial_and_a_layout(tmp_path):
    suite = tmp_path / "tb.toml"
    suite.write_text('seeds = 2\nsteps = 512\nnum_envs = 8\n[[envs]]\nid = "umbra/CartPole-v0"\n')
    assert main(["--suite", str(suite), "--logdir", str(tmp_path / "runs"), "--no-progress"]) == 0
    suite_dir = tmp_path / "runs" / "tb"

    for seed in (0, 1):
        acc = accumulate(suite_dir / "umbra" / "CartPole-v0" / "ppo" / f"seed{seed}")
        content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
        start = hparams_metadata.parse_session_start_info_plugin_data(
            content[hparams_metadata.SESSION_START_INFO_TAG])
        hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                   for k, v in start.hparams.items()}
        assert hparams["agent"] == "ppo" and hparams["env"] == "umbra/CartPole-v0"
        assert hparams["seed"] == seed and hparams["num_envs"] == 8
        assert hparams["learning_rate"] > 0 and "device" not in hparams
        assert hparams_metadata.SESSION_END_INFO_TAG in content
        for tag in tensorboard_views.METRICS.values():
            [point] = acc.Scalars(tag)
            assert point.step == 512
        assert "charts/episode_return" in acc.Tags()["scalars"]  # the same run as the curves

    root = accumulate(suite_dir)  # the layout proto is the value of the custom-scalars tag
    assert custom_scalar_metadata.CONFIG_SUMMARY_TAG in root.PluginTagToContent(
        custom_scalar_metadata.PLUGIN_NAME)
    [event] = root.Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag)
              for category in layout.category for chart in category.chart}
    assert charts["episode return"] == ["charts/episode_return"]
    assert charts["steps per second"] == ["charts/sps"]

    # a second run of the suite (all trials skipped) adds no second layout nor hparams row
    before = sorted(p.name for p in suite_dir.rglob("events.out.tfevents.*"))
    assert main(["--suite", str(suite), "--logdir", str(tmp_path / "runs"), "--no-progress"]) == 0
    assert sorted(p.name for p in suite_dir.rglob("events.out.tfevents.*")) == before


def test_config_values_become_hparams_columns():
    result = {"agent": "sb3-ppo", "env_id": "CartPole-v1", "seed": 3,
              "config": {"n_steps": 32, "policy_kwargs": {"net_arch": [64]}, "target_kl": None,
                         "device": "cpu"}}
    assert tensorboard_views.hparams_of(result) == {
        "agent": "sb3-ppo", "env": "CartPole-v1", "seed": 3, "n_steps": 32,
        "policy_kwargs": '{"net_arch": [64]}', "target_kl": "none",
    }
