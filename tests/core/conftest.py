import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    # The core tests use many small tensors, for which intra-op threads only add overhead.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
