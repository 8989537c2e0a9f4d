import numpy as np
import pytest

from harness.climb import climb
from model.config import ModelConfig
from model.fidelity import FidelitySampler
from model.train import Trainer
from strategies.space import Ladder


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


LADDER = Ladder((1 / 9, 1 / 3, 1.0), (2, 2, 3))


def test_the_ladder_yields_each_rung_with_its_samples(tiny_data):
    f = FidelitySampler(tiny_data, seed=0)
    rungs = LADDER.rungs
    assert [(r.number, r.fraction, r.epochs, r.step) for r in rungs] == [
        (1, 1 / 9, 2, 1),
        (2, 1 / 3, 2, 3),
        (3, 1.0, 3, 14),  # 1 x 3 epochs over 1/9 x 2 epochs = 13.5, rounded
    ]
    assert LADDER.samples(f) == {r.number: len(f.indices(r.fraction)) * r.epochs for r in rungs}
    assert LADDER.budget == pytest.approx(2 / 9 + 2 / 3 + 3)
    longer = LADDER.with_top_epochs(6)
    assert longer.epochs == (2, 2, 6) and longer.budget == pytest.approx(LADDER.budget + 3)


class _FirstStations:
    """A fidelity of another kind (whole stations, not windows in every stratum): a sampler with
    ``indices(fraction)`` is all the ladder and the rung loop ask of one."""

    def __init__(self, data) -> None:
        self.station = data.splits["train"].station
        self.stations = np.unique(self.station)

    def indices(self, fraction: float) -> np.ndarray:
        keep = self.stations[: max(1, round(fraction * len(self.stations)))]
        return np.flatnonzero(np.isin(self.station, keep))


def test_a_new_kind_of_fidelity_is_a_sampler_and_nothing_else(tiny_data):
    """The README's recipe: the rungs, their samples and the rung loop take any sampler."""
    stations = _FirstStations(tiny_data)
    trainer = Trainer(tiny_data, ModelConfig(hidden_1=8, batch_size=256), seed=0, device="cpu")
    climbed = list(climb(trainer, Ladder((1 / 3, 1.0), (1, 1)), stations))
    assert [r.train.samples for r in climbed] == list(
        Ladder((1 / 3, 1.0), (1, 1)).samples(stations).values()
    )
    assert climbed[0].train.samples < climbed[1].train.samples == len(tiny_data.splits["train"])
