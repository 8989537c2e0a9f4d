import pytest

from harness.datasets import DataSpec, load_data


@pytest.fixture(scope="session")
def tiny_data():
    """12 synthetic stations x 14 days: small enough to train in seconds."""
    return load_data(DataSpec(stations=12, days=14, seed=3))
