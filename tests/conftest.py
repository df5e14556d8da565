import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _sb3_logs_in_pytest_tmp(tmp_path_factory):
    """Tests that drive SB3 models directly (as a user's own code would) log where pytest keeps
    its temporary files, not in empty ``SB3-<date>`` folders of the system's temporary
    directory (SB3's ``configure`` reads ``SB3_LOGDIR``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))
        yield


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    # Small networks run as fast on one thread, and one thread keeps parallel runs from
    # oversubscribing the cores.
    torch.set_num_threads(1)
