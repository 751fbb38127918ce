import pytest


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    # Every core test works on small tensors (see the single_thread fixture).
    yield
