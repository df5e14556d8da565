import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    # Small networks run as fast on one thread, and one thread keeps parallel runs from
    # oversubscribing the cores.
    torch.set_num_threads(1)
