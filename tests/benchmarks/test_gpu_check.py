"""benchmarks.gpu_check: the CPU-only skip, the table, and the sync verdicts, without a GPU."""

import dataclasses
import warnings

import pytest
import torch

from benchmarks import gpu_check
from benchmarks.gpu_check import CHECKS, Check, run_check, table


def test_without_cuda_it_says_why_it_skipped_and_exits_0(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == gpu_check.SKIPPED == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("gpu_check skipped: ")


def test_every_agent_family_and_the_full_configuration_are_checked():
    agents = {check.agent for check in CHECKS}
    assert {"mlp", "lstm", "gru", "transformer", "linear", "mappo", "gcn", "ppo-bayes"} <= agents
    full = [check for check in CHECKS if check.name.startswith("full")]
    assert len(full) == 1 and full[0].env_id == "umbra/CartPole-v0"
    assert full[0].num_envs >= 16_384


@pytest.mark.parametrize("agent", ["mlp", "gru", "gcn"])
def test_a_cpu_run_fills_a_row_and_the_table(agent):
    check = next(c for c in CHECKS if c.agent == agent)
    check = dataclasses.replace(check, num_envs=8)
    row = run_check(check, "cpu", updates=2, count_syncs=False)
    assert row["status"] == "pass" and row["error"] is None
    assert row["sps"] > 0 and row["num_envs"] == 8
    assert row["peak_bytes"] is None and row["rollout_syncs"] is None  # not measured on CPU
    lines = table([row]).splitlines()
    assert lines[0].split()[:4] == ["agent", "env", "copies", "steps/s"]
    assert lines[2].split()[0] == agent and lines[2].split()[-1] == "pass"


def test_a_failing_agent_is_a_row_not_a_crash():
    row = run_check(Check("mlp", "umbra/CartPole-v0", 8, {"hidden_size": -1}), "cpu", 2, False)
    assert row["status"] == "FAIL" and "hidden_size" in row["error"]
    assert "FAIL" in table([row]) and "hidden_size" in table([row])


def test_sync_warnings_are_counted_per_phase():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert gpu_check.count_sync_warnings(caught) == 1


def test_rows_with_rollout_syncs_fail_unless_known(monkeypatch):
    class Counted(gpu_check.SyncCounter):  # a fake CUDA counter: every rollout syncs once
        def __init__(self, enabled):
            super().__init__(True)

        def _counting(self, phase):
            self.counts[phase] += phase == "rollout"
            return warnings.catch_warnings()

    monkeypatch.setattr(gpu_check, "SyncCounter", Counted)
    monkeypatch.setattr(gpu_check, "_is_cuda", lambda device: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 1)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    plain = run_check(Check("mlp", "umbra/CartPole-v0", 8), "cpu", 2, True)
    assert plain["rollout_syncs"] == 1.0 and plain["update_syncs"] == 0.0
    assert plain["status"] == "FAIL"
    known = run_check(Check("gcn", "umbra/GraphNavigation-v0", 8), "cpu", 2, True)
    assert known["status"] == "known"
    assert gpu_check.KNOWN_SYNCS["gcn"] in table([known])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_mlp_rollout_makes_no_host_sync():
    row = run_check(dataclasses.replace(CHECKS[0], num_envs=256), "cuda", 2, True)
    assert row["status"] == "pass", row
    assert row["rollout_syncs"] == 0 and row["peak_bytes"] > 0
