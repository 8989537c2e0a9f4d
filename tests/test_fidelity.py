import numpy as np
import pytest

from model.fidelity import FidelitySampler


def test_nested_and_sized(tiny_data):
    f = FidelitySampler(tiny_data, seed=0)
    n = len(tiny_data.splits["train"])
    small, mid, full = f.indices(1 / 9), f.indices(1 / 3), f.indices(1.0)
    assert set(small) <= set(mid) <= set(full)  # a smaller fraction is inside a larger one
    assert len(full) == n
    assert 1 / 9 <= len(small) / n < 1 / 9 + 0.1  # ceil per stratum adds a little, never less


@pytest.mark.parametrize("fraction", [1 / 27, 1 / 9, 1 / 3])
def test_every_stratum_present(tiny_data, fraction):
    f = FidelitySampler(tiny_data, seed=0)
    assert set(f.strata[f.indices(fraction)]) == set(f.strata)  # every station x part of week


def test_seeded(tiny_data):
    a, b, c = (
        FidelitySampler(tiny_data, 1),
        FidelitySampler(tiny_data, 1),
        FidelitySampler(tiny_data, 2),
    )
    np.testing.assert_array_equal(a.indices(0.2), b.indices(0.2))
    assert not np.array_equal(a.indices(0.2), c.indices(0.2))


@pytest.mark.parametrize("bad", [0, -0.5, 1.5])
def test_bad_fraction(tiny_data, bad):
    with pytest.raises(ValueError, match="fraction"):
        FidelitySampler(tiny_data).indices(bad)
