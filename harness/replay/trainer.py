"""The replay backend: a surrogate behind the Trainer interface, with a simulated clock."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from harness.replay.surrogate import Surrogate
from model.train import EpochResult, EvalResult, TrainResult
from model.windows import HORIZONS


class ReplayFidelity:
    """Stands in for FidelitySampler: only the number of windows per rung matters to a surrogate."""

    def __init__(self, ladder, samples_per_rung) -> None:
        self._sizes = {
            rung.fraction: int(round(s / rung.epochs))
            for rung, s in zip(ladder.rungs, samples_per_rung)
        }

    def indices(self, fraction: float) -> np.ndarray:
        """Stand-in training indices: as many as the real subsample at ``fraction`` holds."""
        return np.arange(self._sizes[fraction])


class ReplayTrainer:
    """Answers train() and evaluate() rung by rung from the surrogate, instantly; the seconds it
    reports are the surrogate's (simulated), so the records read like a real run's."""

    device = "replay"

    def __init__(self, surrogate: Surrogate, names: tuple[str, ...], config, seed: int) -> None:
        params = {n: v for n, v in asdict(config).items() if n in names}
        rng = np.random.default_rng(seed)
        self._mae = surrogate.sample(params, rng)
        self._train, self._eval = surrogate.cost(params)
        self._rung = 0
        self.epochs_done = 0

    def train(self, indices, epochs: int, callback=None) -> TrainResult:
        """One epoch record carrying the surrogate's training seconds for the current rung."""
        seconds = float(self._train[self._rung])
        self.epochs_done += epochs
        return TrainResult(
            [EpochResult(self.epochs_done, float("nan"), len(indices) * epochs, seconds)]
        )

    def evaluate(self, split: str = "val") -> EvalResult:
        """The sampled MAE of the current rung and its simulated seconds; moves to the next rung."""
        mae = float(self._mae[self._rung])
        seconds = float(self._eval[self._rung])
        self._rung += 1
        metrics = {"mae": mae, "r2": float("nan"), **{f"mae_h{h}": float("nan") for h in HORIZONS}}
        return EvalResult(metrics, seconds)


def replay_factory(surrogate: Surrogate, names: tuple[str, ...]):
    """A factory with Trainer's signature that returns ReplayTrainers on ``surrogate``."""

    def make(data, config, *, seed, device=None, precision=None):
        return ReplayTrainer(surrogate, names, config, seed)

    return make
