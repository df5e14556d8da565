"""stable-baselines3 baselines as agents: same folders, tags and result.json as Umbra's PPO."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs
from agents import sb3
from benchmarks.run import main
from benchmarks.runner import RESULT_KEYS, THRESHOLD_KEYS, check_trials
from benchmarks.suites import Trial
from envs.interop.sb3 import BatchedToSB3VecEnv


@pytest.mark.parametrize("agent", list(sb3.SB3_AGENTS))
def test_each_baseline_runs_as_a_oneoff_trial(agent, tmp_path, monkeypatch):
    temporary = tmp_path / "system_tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    # CartPole's preset: 8 copies x 32 steps per rollout, so 512 steps are 2 rollouts.
    assert main(["--env", "umbra/CartPole-v0", "--agent", agent, "--steps", "512",
                 "--stop-at-return", "10000", "--logdir", str(tmp_path), "--no-progress"]) == 0
    trial = tmp_path / "oneoff" / "umbra" / "CartPole-v0" / agent / "seed0"
    result = json.loads((trial / "result.json").read_text())
    assert set(RESULT_KEYS + THRESHOLD_KEYS) <= set(result)
    assert result["agent"] == agent and result["steps"] == 512 and result["episodes"] > 0
    assert result["threshold_reached"] is False and result["config"]["agent"] == agent
    acc = EventAccumulator(str(trial))
    acc.Reload()
    assert [e.step for e in acc.Scalars("charts/sps")] == [256, 512]  # at the global step
    assert [e.step for e in acc.Scalars("charts/episode_return")] == [256, 512]
    assert acc.Scalars("hparams/final_return")[0].value == pytest.approx(result["final_return"])
    assert list(temporary.iterdir()) == []  # no empty SB3-<date> folder left behind


def test_maskable_ppo_never_takes_a_masked_action(monkeypatch):
    calls = []
    real_make = envs.make

    def make_with_masks(env_id, num_envs=1, device="cpu", **kwargs):
        env = real_make(env_id, num_envs=num_envs, device=device, **kwargs)

        def action_masks():  # only "push left" is allowed
            calls.append(1)
            return torch.tensor([[True, False]] * num_envs)

        env.action_masks = action_masks
        return env

    monkeypatch.setattr(sb3.envs, "make", make_with_masks)
    config = sb3.sb3_config("sb3-maskable-ppo", "umbra/CartPole-v0", total_steps=512)
    result = sb3.train(config)
    assert calls, "the environment's action_masks() was not used"
    # Always pushing left tips the pole over in about 9 steps; random play lasts about 22.
    assert result.metrics["final_return"] < 12


def test_without_masks_every_action_is_valid():
    venv = sb3.AllActionsValid(BatchedToSB3VecEnv(envs.make("umbra/CartPole-v0", num_envs=3)))
    assert venv.has_attr("action_masks")
    np.testing.assert_array_equal(np.stack(venv.env_method("action_masks")), np.ones((3, 2)))


def test_bad_baseline_settings_fail_before_training():
    with pytest.raises(ValueError, match="did you mean 'n_steps'"):
        check_trials([Trial("umbra/CartPole-v0", "sb3-ppo", 0, config={"n_step": 8})])
    with pytest.raises(ValueError, match="did you mean 'sb3-ppo'"):
        check_trials([Trial("umbra/CartPole-v0", "sb3-pppo", 0)])
