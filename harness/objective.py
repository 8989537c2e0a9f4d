"""The objective: the only code that talks to both the model and Optuna's trial API.

It climbs the ladder through `harness.climb` and adds what a study needs around each rung:
the report to the pruner, the prune decision, the rung's record, the trial's timings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import optuna

from harness import signals
from harness.backends import Workload
from harness.climb import Rung, build_trainer, climb, trial_seed
from harness.errors import UserError
from harness.experiment import Experiment
from harness.records import RunRecorder
from harness.study import FLOPS_ATTR, OWNER_ATTR, this_process
from model.config import count_parameters
from model.flops import training_flops
from model.runtime import release_device_memory
from model.windows import HORIZONS
from strategies import SearchSpace, Strategy

QUEUE_EMPTY = "not run: every queued configuration was already taken (grid exhausted)"


def _was_queued(trial: optuna.Trial) -> bool:
    # Optuna marks trials popped from the queue with a "fixed_params" system attribute; Trial no
    # longer exposes system attributes in Optuna 5, the storage does.
    return "fixed_params" in trial.study._storage.get_trial_system_attrs(trial._trial_id)


class TrialFailed(Exception):
    """Training went wrong (diverged, crashed); the reason is stored on the trial and recorded."""


class TrialInterrupted(BaseException):
    """Ctrl-C or SIGTERM during trial ``number``. Not a KeyboardInterrupt, so Optuna lets it
    through without failing the trial: the trial stays RUNNING in the storage and the next run
    trains it again under its own number (harness.study.stuck_trials)."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number


@dataclass
class TrialTimes:
    """What one trial has spent and reached so far (read by the trial table)."""

    train: float = 0.0  # reported seconds (simulated under replay)
    eval: float = 0.0
    real_work: float = 0.0  # wall-clock actually spent in train + evaluate
    rungs: int = 0
    last_step: int = 0
    reason: str = ""
    params: dict = field(default_factory=dict)
    parameters: int = 0  # the network's trainable parameters
    flops: float = 0.0  # training FLOPs spent: the fair currency of a compute budget


@dataclass(frozen=True)
class _Pruned:
    """Returned, not raised, by the climb: the trainer's frame is gone before TrialPruned is
    raised, so a pruned trial's model and optimizer are freed at once, not at the next GC."""

    message: str


class Objective:
    """Called by Optuna once per trial: suggests a configuration, climbs the ladder, reports
    every rung, records it, and returns the last rung's validation MAE (and the training
    seconds for a two-objective strategy).

    Args:
        experiment: the experiment (space, ladder, precision).
        workload: what the backend prepared (data, fidelities, trainer factory).
        recorder: the run's records.
        strategy: the strategy being run (queued configurations, number of objectives).
        seed: the run seed (training seeds derive from it and the trial number).
        device: the torch device name.
        on_rung: called with (trial number, rung, MAE) after every rung (progress).
    """

    def __init__(
        self,
        experiment: Experiment,
        workload: Workload,
        recorder: RunRecorder,
        *,
        strategy: Strategy,
        seed: int,
        device: str,
        on_rung: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.experiment, self.workload, self.recorder = experiment, workload, recorder
        self.strategy, self.seed, self.device = strategy, seed, device
        self.on_rung = on_rung
        self.times: dict[int, TrialTimes] = {}  # by trial number, for the trial table

    @property
    def _searched(self) -> SearchSpace:
        """What the trial suggests: the space, or the part of it a .search- twin searches."""
        space, searched = self.experiment.space, self.strategy.searched
        return space.only(searched) if searched else space

    def full_params(self, params: dict) -> dict:
        """A trial's configuration whole: a .search- twin's unsearched parameters at v4's."""
        if not (self.strategy.searched and params):  # a trial stopped before it suggested
            return params
        return {**self.experiment.space.defaults(), **params}

    @property
    def _multi(self) -> bool:  # two objectives: no reports, no pruning
        return self.strategy.objectives > 1

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        try:
            with signals.released():  # the loop around holds stops; a trial may be cut
                return self._trial(trial)
        except KeyboardInterrupt:
            raise TrialInterrupted(trial.number) from None

    def _trial(self, trial: optuna.Trial) -> float | tuple[float, float]:
        if self.strategy.queue is not None and not _was_queued(trial):
            # Another worker took the last queued point between our check and this trial's creation.
            trial.set_user_attr("fail_reason", QUEUE_EMPTY)
            trial.study.stop()
            raise TrialFailed(QUEUE_EMPTY)
        trial.set_user_attr(OWNER_ATTR, this_process())  # a resume leaves live trials alone
        params = self.full_params(self._searched.suggest(trial))
        times = self.times.setdefault(trial.number, TrialTimes(params=params))
        try:
            outcome = self._climb(trial, params, times)
        except (KeyboardInterrupt, UserError):  # a failed storage or records write: stop the run
            raise
        except TrialFailed as exc:
            times.reason = str(exc)
        except Exception as exc:  # any crash inside training fails this trial, not the study
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            times.reason = f"{type(exc).__name__}: {first_line}"[:300]
        else:
            if isinstance(outcome, _Pruned):
                raise optuna.TrialPruned(outcome.message)
            return outcome
        error = release_device_memory()
        if error:
            times.reason += f" (then {error})"
        trial.set_user_attr("fail_reason", times.reason)
        raise TrialFailed(times.reason)

    def _climb(self, trial: optuna.Trial, params: dict, times: TrialTimes):
        data = self.workload.data
        stations = self.experiment.data.stations if data is None else data.n_stations
        config = self.experiment.base_config().with_params(params)
        times.parameters = count_parameters(config, stations)
        trainer = build_trainer(
            self.experiment,
            data,
            config,
            seed=trial_seed(self.seed, trial.number),
            device=self.device,
            factory=self.workload.make_trainer,
        )
        last = len(self.experiment.ladder)
        mae = float("nan")
        for rung in climb(trainer, self.experiment.ladder, self.workload.fidelity):
            times.train += rung.train.seconds
            times.eval += rung.evaluation.seconds if rung.evaluation else 0.0
            times.real_work += rung.real_seconds
            rung_flops = training_flops(config, rung.train.samples)
            times.flops += rung_flops
            trial.set_user_attr(FLOPS_ATTR, times.flops)  # any process can sum a study's spend
            if rung.failure:
                raise TrialFailed(rung.failure)
            mae = rung.mae
            if not self._multi:
                trial.report(mae, rung.step)
            pruned = not self._multi and rung.number < last and trial.should_prune()
            times.rungs, times.last_step = rung.number, rung.step
            row = self._rung_row(trial.number, rung, trainer, pruned)
            self.recorder.add_rung({**row, "train_flops": rung_flops}, params)
            if self.on_rung:
                self.on_rung(trial.number, rung.number, mae)
            if pruned:
                return _Pruned(
                    f"pruned after rung {rung.number} (step {rung.step}) at MAE {mae:.4f}"
                )
        return (mae, times.train) if self._multi else mae

    def _rung_row(self, trial: int, rung: Rung, trainer, pruned: bool) -> dict:
        metrics = rung.evaluation.metrics
        return {
            "strategy": self.strategy.name,
            "seed": self.seed,
            "trial": trial,
            "rung": rung.number,
            "step": rung.step,
            "fraction": rung.fraction,
            "epochs_done": trainer.epochs_done,
            "samples": rung.train.samples,
            "train_loss": rung.train.train_loss,
            "val_mae": rung.mae,
            **{f"val_mae_h{h}": metrics[f"mae_h{h}"] for h in HORIZONS},
            "val_r2": metrics["r2"],
            "train_seconds": rung.train.seconds,
            "eval_seconds": rung.evaluation.seconds,
            "device": str(trainer.device),
            "pruned": pruned,
            "replayed": self.workload.replayed,
            "inherited_share": getattr(getattr(trainer, "inherited", None), "share", ""),
        }
