"""The optimize loop of one process: Optuna's `study.optimize` with a progress bar, a trial
table row after every trial, and the stops (budget met, failures in a row, Ctrl-C)."""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from harness import signals
from harness.objective import Objective, TrialFailed, TrialInterrupted
from harness.records import RunRecorder, unfinished_row
from harness.resumed_trial import ResumedTrial
from harness.storage import storage_errors
from harness.study import (
    FLOPS_ATTR,
    INTERRUPTED_BY_USER,
    best_value,
    count_done,
    has_waiting,
    mae_of,
    trial_id,
)

MAX_CONSECUTIVE_FAILURES = 5


@dataclass(frozen=True)
class Limits:
    """When a run stops, study-wide.

    ``trials``: the trial budget, in finished trials (inf: no count); ``deadline``: a
    time.time() value (None: no wall-clock limit); ``flops``: training FLOPs all trials may
    spend (None: not counted); ``simulated_seconds``: the wall-clock budget in reported
    seconds when the clock is simulated (None otherwise).
    """

    trials: float
    deadline: float | None = None
    flops: float | None = None
    simulated_seconds: float | None = None

    def open(self, study: optuna.Study) -> bool:
        """Whether the study may still train (as far as storage and clock can tell)."""
        return (
            count_done(study) < self.trials
            and (self.deadline is None or self.deadline > time.time())
            and (self.flops is None or spent_flops(study) < self.flops)
        )


@dataclass(frozen=True)
class LoopContext:
    """Everything one process's optimize loop needs. ``shared``: other processes train the
    same study; ``resume``: trials a stopped process left RUNNING, trained again first under
    their own numbers; ``requeue``: a trial stopped by Ctrl-C or SIGTERM is failed and its
    configuration queued again (database storages, whose heartbeats retry stale trials)
    instead of being left RUNNING for the next run to resume."""

    study: optuna.Study
    objective: Objective
    recorder: RunRecorder
    limits: Limits
    shared: bool
    progress: bool
    resume: tuple[int, ...] = ()
    requeue: bool = False


def spent_flops(study: optuna.Study) -> float:
    """Training FLOPs every finished or running trial of the study has spent so far."""
    return float(sum(t.user_attrs.get(FLOPS_ATTR, 0.0) for t in study.get_trials(deepcopy=False)))


class TrialBook:
    """The callback after every trial: its row in trials.csv, the progress bar, and the stops."""

    def __init__(self, ctx: LoopContext, bar: tqdm) -> None:
        self.ctx, self.bar = ctx, bar
        self.best = best_value(ctx.study)
        self.failures_in_a_row = 0
        self.done = count_done(ctx.study)
        self.running = 0  # other processes' trials in flight (shared studies): they count too
        # wall-clock of this process's trials (simulated work counted as reported)
        self.elapsed = 0.0
        self.flops = spent_flops(ctx.study) if ctx.limits.flops is not None else 0.0
        self.last = time.perf_counter()

    def on_rung(self, number: int, rung: int, mae: float) -> None:
        """Progress while a trial climbs."""
        rungs = len(self.ctx.objective.experiment.ladder)
        self.bar.set_postfix_str(
            f"trial {number} rung {rung}/{rungs} MAE {mae:.3f} | best {self.best:.3f}"
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.account(study, trial)
        if self.should_stop(trial):
            study.stop()

    def account(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Record a finished trial and count it against the budget."""
        self._record(trial)
        failed = trial.state == TrialState.FAIL
        self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
        if trial.state == TrialState.COMPLETE:
            self.best = min(self.best, mae_of(trial))
        if failed:
            reason = trial.user_attrs.get("fail_reason", "unknown reason")
            self.bar.write(f"trial {trial.number} failed: {reason}")
        if self.ctx.shared:  # study-wide, all workers
            self.done = count_done(study)
            self.running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            self.flops = spent_flops(study) if self.ctx.limits.flops is not None else 0.0
        else:
            self.done += not failed
            self.flops += trial.user_attrs.get(FLOPS_ATTR, 0.0)
        self.bar.n = self.done
        self.bar.refresh()

    def _record(self, trial: FrozenTrial) -> None:
        objective = self.ctx.objective
        now = time.perf_counter()
        times = objective.times.pop(trial.number, None)
        real_wall, self.last = now - self.last, now
        train, ev, real_work = (times.train, times.eval, times.real_work) if times else (0, 0, 0)
        wall = real_wall - real_work + train + ev  # equal to real_wall unless the work is simulated
        self.elapsed += wall
        row = {
            "strategy": objective.strategy.name,
            "seed": objective.seed,
            "trial": trial.number,
            "state": trial.state.name,
            "fail_reason": trial.user_attrs.get("fail_reason", ""),
            "rungs_done": times.rungs if times else 0,
            "last_step": times.last_step if times else 0,
            "val_mae": mae_of(trial) if trial.state != TrialState.FAIL else "",
            "train_seconds": train,
            "eval_seconds": ev,
            "wall_seconds": wall,
            "harness_seconds": max(0.0, wall - train - ev),
            "parameters": times.parameters if times else "",
            "train_flops": times.flops if times else 0.0,
            # A simulated clock (replay) has no real span: its wall_seconds are the clock there.
            "finished_at": "" if objective.workload.replayed else time.time(),
        }
        self.ctx.recorder.add_trial(row, self.ctx.objective.full_params(trial.params))

    def should_stop(self, trial: FrozenTrial) -> bool:
        """Whether the run's budget (or its failures in a row) ends it after ``trial``."""
        limits = self.ctx.limits
        if self.failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
            last = trial.user_attrs.get("fail_reason")
            self.bar.write(
                f"stopping: {self.failures_in_a_row} trials failed in a row (last: {last})"
            )
            return True
        return (
            self.done + self.running >= limits.trials  # in-flight trials finish the budget
            or (limits.flops is not None and self.flops >= limits.flops)
            or (self.ctx.objective.strategy.queue is not None and not has_waiting(self.ctx.study))
            or (limits.simulated_seconds is not None and self.elapsed >= limits.simulated_seconds)
        )

    def record_interrupted(self, stopped: int | None) -> None:
        """After Ctrl-C or SIGTERM, for the trials in flight (``stopped``: the one the signal
        reached, if known): left RUNNING for the next run to train again under the same number,
        or, where ``requeue``, failed, recorded and queued again."""
        objective, study = self.ctx.objective, self.ctx.study
        numbers = set(objective.times) | ({stopped} if stopped is not None else set())
        for number in sorted(numbers):
            times = objective.times.get(number)
            trial = study._storage.get_trial(trial_id(study, number))
            if trial.state != TrialState.RUNNING:  # it finished; the records will catch up
                continue
            if not self.ctx.requeue:
                self.bar.write(
                    f"trial {number} stopped mid-trial; the same command trains it again "
                    "from its start",
                    file=sys.stderr,
                )
                continue
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", INTERRUPTED_BY_USER)
            study.tell(number, state=TrialState.FAIL)
            row = unfinished_row(
                objective.strategy.name,
                objective.seed,
                number,
                INTERRUPTED_BY_USER,
                rungs_done=times.rungs if times else 0,
                last_step=times.last_step if times else 0,
                train_seconds=times.train if times else 0.0,
                eval_seconds=times.eval if times else 0.0,
                wall_seconds=time.perf_counter() - self.last,
            )
            self.ctx.recorder.add_trial(row, self.ctx.objective.full_params(trial.params))
            if trial.params:
                study.enqueue_trial(trial.params, skip_if_exists=False)


def optimize(ctx: LoopContext) -> bool:
    """Train until the study-wide budget is met; returns True if the user interrupted."""
    done = count_done(ctx.study)
    bar = tqdm(
        total=None if math.isinf(ctx.limits.trials) else ctx.limits.trials,
        initial=done,
        desc=f"{ctx.objective.strategy.name} seed {ctx.objective.seed}",
        unit="trial",
        disable=not ctx.progress,
        dynamic_ncols=True,
    )
    book = TrialBook(ctx, bar)
    ctx.objective.on_rung = book.on_rung
    try:
        # A stop waits for the objective (signals.released): landing in Optuna's bookkeeping
        # between trials, it would fail Optuna's own `finally` instead of stopping cleanly.
        with storage_errors(), signals.held():
            if _resume(ctx, book) and ctx.limits.open(ctx.study):
                deadline = ctx.limits.deadline
                ctx.study.optimize(
                    ctx.objective,
                    n_trials=None,
                    timeout=None if deadline is None else max(0.0, deadline - time.time()),
                    callbacks=[book],
                    catch=(TrialFailed,),
                    gc_after_trial=False,
                    show_progress_bar=False,
                )
    except (KeyboardInterrupt, TrialInterrupted) as stop:
        book.record_interrupted(getattr(stop, "number", None))
        return True
    finally:
        bar.close()
    return False


def _resume(ctx: LoopContext, book: TrialBook) -> bool:
    """Train the trials a stopped process left RUNNING again, under their own numbers (the
    sampler is not asked: their configurations are stored); False if the budget is then met."""
    study = ctx.study
    for number in ctx.resume:
        book.bar.write(
            f"trial {number} was stopped mid-trial; training it again from its start",
            file=sys.stderr,
        )
        trial = ResumedTrial(study, trial_id(study, number))  # its pruner blind to the first climb
        value, state = None, None  # None: Optuna decides (a NaN value fails the trial)
        try:
            with warnings.catch_warnings():  # its rungs reported before the stop stay as they were
                warnings.filterwarnings("ignore", "The reported value is ignored", UserWarning)
                value = ctx.objective(trial)
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except TrialFailed:
            state = TrialState.FAIL
        frozen = study.tell(trial, value, state=state)
        book.account(study, frozen)
        if book.should_stop(frozen):
            return False
    return True
