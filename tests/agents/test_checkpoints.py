"""Checkpoints: written atomically with one previous copy; unreadable ones are named and skipped."""

import pickle
import warnings

import pytest
import torch

from agents.ppo import PPOConfig, train

CONFIG = PPOConfig(env_id="umbra/CartPole-v0", num_envs=4, num_steps=16, total_steps=64 * 3,
                   checkpoint_every=1, device="cpu")


def _interrupted_run(logdir, updates=2):
    """A run stopped after ``updates`` updates (as by Ctrl-C): latest.pt and previous.pt."""

    def stop(step):
        if step >= 64 * updates:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, logdir=logdir, progress=stop)
    return logdir / "checkpoints"


class _NotATensor:
    pass


CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: b"not a checkpoint " * 50,
    "foreign pickle": lambda data: pickle.dumps({"x": _NotATensor()}),
}


def test_each_save_keeps_the_one_before(tmp_path):
    folder = _interrupted_run(tmp_path)
    latest = torch.load(folder / "latest.pt", weights_only=True)
    previous = torch.load(folder / "previous.pt", weights_only=True)
    assert (latest["update"], previous["update"]) == (2, 1)
    assert not list(folder.glob("*.tmp"))


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_resume_falls_back_to_the_previous_checkpoint(tmp_path, corruption):
    folder = _interrupted_run(tmp_path)
    bad = CORRUPTIONS[corruption]((folder / "latest.pt").read_bytes())
    (folder / "latest.pt").write_bytes(bad)
    with pytest.warns(UserWarning, match=r"latest\.pt is unreadable.*previous checkpoint.*"
                                         r"update 1"):
        result = train(CONFIG, logdir=tmp_path, resume=True)
    assert result.metrics["steps"] == 64 * 3
    assert (folder / "unreadable.pt").read_bytes() == bad  # kept aside, not deleted
    assert torch.load(folder / "latest.pt", weights_only=True)["update"] == 3


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_no_readable_checkpoint_is_a_clear_error_that_touches_nothing(tmp_path, corruption):
    folder = _interrupted_run(tmp_path)
    for name in ("latest.pt", "previous.pt"):
        (folder / name).write_bytes(CORRUPTIONS[corruption]((folder / name).read_bytes()))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"checkpoint .*latest\.pt is unreadable") as caught:
            train(CONFIG, logdir=tmp_path, resume=True)
    message = str(caught.value)
    assert "weights_only" not in message and "trust" not in message
    assert "previous.pt" in message and "nothing was deleted" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_missing_latest_resumes_from_the_previous(tmp_path):
    """A crash between the two renames of a save leaves only previous.pt."""
    folder = _interrupted_run(tmp_path)
    (folder / "latest.pt").unlink()
    with pytest.warns(UserWarning, match="missing"):
        result = train(CONFIG, logdir=tmp_path, resume=True)
    assert result.metrics["steps"] == 64 * 3


def test_the_runner_sees_a_run_with_only_its_previous_checkpoint_as_interrupted(tmp_path):
    from benchmarks.runner import has_checkpoint

    folder = _interrupted_run(tmp_path)
    assert has_checkpoint(tmp_path)
    (folder / "latest.pt").unlink()
    assert has_checkpoint(tmp_path)  # --resume continues from previous.pt, nothing is redone
    (folder / "previous.pt").unlink()
    assert not has_checkpoint(tmp_path)


def test_a_run_saved_before_a_config_field_existed_resumes_with_its_default(tmp_path):
    # Upgrading Umbra adds config fields; a run checkpointed by the older version trained with
    # what is now the new field's default, and must resume. A real difference is still refused.
    folder = _interrupted_run(tmp_path)
    for name in ("latest.pt", "previous.pt"):
        saved = torch.load(folder / name, weights_only=False)
        del saved["config"]["balance_groups"]
        torch.save(saved, folder / name)
    with pytest.raises(ValueError, match="differs in balance_groups"):
        train(PPOConfig(**{**CONFIG.to_dict(), "balance_groups": False}), logdir=tmp_path,
              resume=True)
    assert train(CONFIG, logdir=tmp_path, resume=True).metrics["steps"] == 64 * 3
