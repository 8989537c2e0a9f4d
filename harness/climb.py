"""The one rung loop: a configuration trained up the fidelity ladder, rung by rung.

The objective (with Optuna's report/prune hooks and the records), the noise floor and the
false-prune audit all climb through `climb`; one function owns the training seed of a
trial and one builds a Trainer from an experiment (its precision included), so a retrained
configuration reproduces its recorded rungs exactly on the same CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from model.flops import training_flops
from model.train import EvalResult, Trainer, TrainResult


def trial_seed(run_seed: int, trial_number: int) -> int:
    """The training seed of trial ``trial_number`` of the run with seed ``run_seed``."""
    return run_seed * 100_003 + trial_number


def base_trial_flops(experiment, fidelity) -> float:
    """Training FLOPs of the experiment's base configuration (v4) climbing the whole ladder:
    the unit of a compute budget."""
    config = experiment.base_config()
    return sum(training_flops(config, n) for n in experiment.ladder.samples(fidelity).values())


def fresh_seed(k: int) -> int:
    """The k-th training seed that no trial of any run uses (retrains for the noise floor)."""
    return 9_000_000 + k


def build_trainer(
    experiment,
    data,
    config,
    *,
    seed: int,
    device: str,
    factory: Callable[..., Trainer] = Trainer,
) -> Trainer:
    """A Trainer (or a backend's stand-in made by ``factory``) of model ``config`` with the
    experiment's precision: the one place a trial, a retrain or the final check makes one."""
    return factory(data, config, seed=seed, device=device, precision=experiment.precision)


def train_to_convergence(
    experiment,
    data,
    config,
    *,
    seed: int,
    device: str,
    max_epochs: int,
    patience: int,
    init_state: dict | None = None,
) -> tuple[Trainer, TrainResult, list[EvalResult]]:
    """``config`` trained on every training window with early stopping on validation, the best
    epoch's weights kept: how `final`, horizon trust and v4's weights train (``init_state``:
    trained weights to start from where the shapes match). Returns the trainer, its history
    and the evaluation after each epoch."""
    factory = Trainer if init_state is None else partial(Trainer, init_state=init_state)
    trainer = build_trainer(experiment, data, config, seed=seed, device=device, factory=factory)
    history, evals = trainer.fit(np.arange(len(data.splits["train"])), max_epochs, patience)
    return trainer, history, evals


@dataclass(frozen=True)
class Rung:
    """One rung climbed: what training and evaluation returned, and how long they really took.

    ``failure`` is set (and ``evaluation`` may be None) when the rung diverged; the climb
    stops after such a rung.
    """

    number: int  # 1-based
    step: int  # the budget in units of the first rung (what the pruner sees)
    fraction: float
    train: TrainResult
    evaluation: EvalResult | None
    real_seconds: float  # wall-clock actually spent in train + evaluate
    failure: str = ""

    @property
    def mae(self) -> float:
        """The rung's validation MAE (NaN when it was not evaluated)."""
        return self.evaluation.metrics["mae"] if self.evaluation else math.nan


def climb(trainer: Trainer, ladder, fidelity) -> Iterator[Rung]:
    """Train ``trainer`` rung after rung of ``ladder``, yielding each rung once evaluated.

    The caller may stop early (pruning) simply by not asking for the next rung. A rung whose
    training loss or validation MAE is not finite is yielded with its ``failure`` and ends
    the climb.
    """
    for rung in ladder.rungs:
        number, step, fraction = rung.number, rung.step, rung.fraction
        start = time.perf_counter()
        result = trainer.train(rung.indices(fidelity), rung.epochs)
        if result.diverged:
            reason = getattr(result, "diverged_reason", "") or "non-finite training loss"
            failure = f"diverged: {reason} at epoch {result.diverged_at_epoch} (rung {number})"
            yield Rung(number, step, fraction, result, None, time.perf_counter() - start, failure)
            return
        evaluation = trainer.evaluate("val")
        real = time.perf_counter() - start
        mae = evaluation.metrics["mae"]
        failure = (
            "" if math.isfinite(mae) else f"diverged: non-finite validation MAE at rung {number}"
        )
        yield Rung(number, step, fraction, result, evaluation, real, failure)
        if failure:
            return


def final_mae(rungs: Iterator[Rung]) -> float:
    """The validation MAE after the last rung of a whole climb; NaN if it diverged."""
    mae = math.nan
    for rung in rungs:
        if rung.failure:
            return math.nan
        mae = rung.mae
    return mae
