import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    # Small tensors and a shared 2-core machine: one intra-op thread is fastest and steady.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
