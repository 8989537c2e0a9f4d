"""The objective: the only code that talks to both the model and Optuna's trial API."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna

from harness.experiment import Experiment
from harness.records import RunRecorder
from model.config import count_parameters
from model.fidelity import FidelitySampler
from model.runtime import release_device_memory
from model.train import Trainer
from model.windows import ForecastData

QUEUE_EMPTY = "not run: every queued configuration was already taken (grid exhausted)"


def _was_queued(trial: optuna.Trial) -> bool:
    # Optuna marks trials popped from the queue with a "fixed_params" system attribute; Trial no
    # longer exposes system attributes in Optuna 5, the storage does.
    return "fixed_params" in trial.study._storage.get_trial_system_attrs(trial._trial_id)


class TrialFailed(Exception):
    """Training went wrong (diverged, crashed); the reason is stored on the trial and recorded."""


@dataclass
class TrialTimes:
    train: float = 0.0  # reported seconds (simulated under replay)
    eval: float = 0.0
    real_work: float = 0.0  # wall-clock actually spent in train + evaluate
    rungs: int = 0
    last_step: int = 0
    reason: str = ""
    params: dict = field(default_factory=dict)
    parameters: int = 0  # the network's trainable parameters


class Objective:
    def __init__(
        self,
        experiment: Experiment,
        data: ForecastData,
        fidelity: FidelitySampler,
        recorder: RunRecorder,
        *,
        strategy: str,
        seed: int,
        device: str,
        precision: str,
        on_rung: Callable[[int, int, float], None] | None = None,
        queued_only: bool = False,
        trainer_factory: Callable[..., Trainer] = Trainer,
        objectives: int = 1,
    ) -> None:
        self.experiment, self.data, self.fidelity, self.recorder = (
            experiment,
            data,
            fidelity,
            recorder,
        )
        self.strategy, self.seed, self.device, self.precision = strategy, seed, device, precision
        self.on_rung = on_rung
        self.queued_only = queued_only
        self.trainer_factory = (
            trainer_factory  # the replay backend passes a surrogate with Trainer's interface
        )
        self.objectives = objectives  # 2: return (MAE, training seconds); no reports, no pruning
        self.base = experiment.base_config()
        self.times: dict[int, TrialTimes] = {}  # by trial number, for the trial table

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        if self.queued_only and not _was_queued(trial):
            # Another worker took the last queued point between our check and this trial's creation.
            trial.set_user_attr("fail_reason", QUEUE_EMPTY)
            trial.study.stop()
            raise TrialFailed(QUEUE_EMPTY)
        params = self.experiment.space.suggest(trial)
        times = self.times.setdefault(trial.number, TrialTimes(params=params))
        try:
            return self._climb(trial, params, times)
        except (optuna.TrialPruned, KeyboardInterrupt):
            raise
        except TrialFailed as exc:
            times.reason = str(exc)
        except Exception as exc:  # any crash inside training fails this trial, not the study
            times.reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[
                :300
            ]
        release_device_memory()
        trial.set_user_attr("fail_reason", times.reason)
        raise TrialFailed(times.reason)

    def _climb(
        self, trial: optuna.Trial, params: dict, times: TrialTimes
    ) -> float | tuple[float, float]:
        ladder = self.experiment.ladder
        config = self.base.with_params(params)
        times.parameters = count_parameters(
            config, self.experiment.data.stations if self.data is None else self.data.n_stations
        )
        trainer = self.trainer_factory(
            self.data,
            config,
            seed=self.seed * 100_003 + trial.number,
            device=self.device,
            precision=self.precision,
        )
        mae = math.nan
        for rung, (fraction, epochs, step) in enumerate(
            zip(ladder.fractions, ladder.epochs, ladder.steps), start=1
        ):
            start = time.perf_counter()
            result = trainer.train(self.fidelity.indices(fraction), epochs)
            times.train += result.seconds
            if result.diverged:
                raise TrialFailed(
                    f"diverged: non-finite training loss at epoch {result.diverged_at_epoch} (rung {rung})"
                )
            ev = trainer.evaluate("val")
            times.eval += ev.seconds
            times.real_work += time.perf_counter() - start
            mae = ev.metrics["mae"]
            if not math.isfinite(mae):
                raise TrialFailed(f"diverged: non-finite validation MAE at rung {rung}")
            if self.objectives == 1:
                trial.report(mae, step)
            pruned = self.objectives == 1 and rung < len(ladder) and trial.should_prune()
            times.rungs, times.last_step = rung, step
            self.recorder.add_rung(
                {
                    "strategy": self.strategy,
                    "seed": self.seed,
                    "trial": trial.number,
                    "rung": rung,
                    "step": step,
                    "fraction": fraction,
                    "epochs": trainer.epochs_done,
                    "samples": result.samples,
                    "train_loss": result.train_loss,
                    "val_mae": mae,
                    **{f"val_mae_h{h}": ev.metrics[f"mae_h{h}"] for h in (1, 2, 3)},
                    "val_r2": ev.metrics["r2"],
                    "train_seconds": result.seconds,
                    "eval_seconds": ev.seconds,
                    "device": str(trainer.device),
                    "pruned": pruned,
                    "replayed": self.trainer_factory is not Trainer,
                },
                params,
            )
            if self.on_rung:
                self.on_rung(trial.number, rung, mae)
            if pruned:
                raise optuna.TrialPruned(f"pruned after rung {rung} (step {step}) at MAE {mae:.4f}")
        return mae if self.objectives == 1 else (mae, times.train)
