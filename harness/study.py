"""A run's study in its storage: opening or resuming it, recovering trials a killed process
left behind, and keeping the records in step with the storage."""

from __future__ import annotations

import math
import os
import socket

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.records import RunRecorder, read_trials, unfinished_row

FLOPS_ATTR = "train_flops"  # the trial user attribute holding the FLOPs it has spent
OWNER_ATTR = "process"  # the trial user attribute naming the process training it (host:pid)

INTERRUPTED_BY_USER = (
    "interrupted: stopped by the user (Ctrl-C); its configuration is queued for the next run"
)
WORKER_DIED = "worker died mid-trial (stale heartbeat)"
DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def existing_trials(storage, name: str) -> list[FrozenTrial]:
    """The trials already in study ``name`` (none if the study does not exist yet)."""
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def stuck_trials(study: optuna.Study, recorder: RunRecorder, strategy: str, seed: int) -> list[int]:
    """The numbers of the trials a stopped process left RUNNING (killed, Ctrl-C, SIGTERM, or a
    finishing record damaged in the storage), to be trained again from their start under the
    same numbers, so the resumed run is the uninterrupted one: same configurations, same
    training seeds, same pruning brackets. Their partial compute is refunded and their rungs
    forgotten (they are recorded again). A RUNNING trial that trials.csv records as finished
    (its finishing record was set aside) is finished with its recorded state and MAE instead:
    it was trained, and charged. Call it only where no other process trains the study."""
    stuck = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not still_training(t.user_attrs.get(OWNER_ATTR))
    ]
    finished = recorded_finishes(recorder, strategy, seed)
    again = []
    for t in stuck:
        if t.number in finished:  # its finishing record was lost from the storage, not its row
            state, value = finished[t.number]
            study.tell(t.number, value if state == TrialState.COMPLETE else None, state=state)
            continue
        study._storage.set_trial_user_attr(t._trial_id, FLOPS_ATTR, 0.0)
        again.append(t.number)
    if again:
        recorder.forget_rungs(strategy, seed, set(again))
    return again


def this_process() -> str:
    """This process as a trial's owner: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def still_training(owner: str | None) -> bool:
    """Whether the process named ``owner`` may still be training its trial: alive on this
    host (and not this process), or on another host (which this one cannot check)."""
    if not owner or owner == this_process():
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def recorded_finishes(
    recorder: RunRecorder, strategy: str, seed: int
) -> dict[int, tuple[TrialState, float]]:
    """Trial number -> (state, MAE) of every COMPLETE or PRUNED row of the run's trials.csv:
    the harness's own record of finished trials, written once the storage had finished them."""
    frame = read_trials(recorder.trials.path, strategy, seed).frame
    done = frame[frame["state"].isin([s.name for s in DONE_STATES])]
    return {
        int(row.trial): (TrialState[row.state], float(row.val_mae)) for row in done.itertuples()
    }


def reconcile(study: optuna.Study, recorder: RunRecorder, strategy: str, seed: int) -> None:
    """Give every finished trial of the storage a row in trials.csv (a worker that died, or one
    on another machine, leaves trials the local records have not seen)."""
    recorded = set(read_trials(recorder.trials.path).frame["trial"])
    for t in study.get_trials(deepcopy=False):
        if not t.state.is_finished() or t.number in recorded:
            continue
        failed = t.state == TrialState.FAIL
        reason = t.user_attrs.get("fail_reason", WORKER_DIED if failed else "")
        row = unfinished_row(
            strategy,
            seed,
            t.number,
            reason,
            state=t.state.name,
            last_step=t.last_step or 0,
            val_mae="" if failed else mae_of(t),
        )
        recorder.add_trial(row, t.params)


def trial_id(study: optuna.Study, number: int) -> int:
    """The storage's id of trial ``number`` of ``study``."""
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def count_done(study: optuna.Study) -> int:
    """COMPLETE and PRUNED trials: what the trial budget counts."""
    return len(study.get_trials(deepcopy=False, states=DONE_STATES))


def has_waiting(study: optuna.Study) -> bool:
    """Whether queued configurations remain."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def best_value(study: optuna.Study) -> float:
    """The best validation MAE of the study's COMPLETE trials (inf if none)."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min((mae_of(t) for t in done), default=math.inf)


def mae_of(trial: FrozenTrial) -> float:
    """Validation MAE: the value, or the first of a multi-objective trial's values."""
    return trial.values[0] if trial.values else float("nan")
