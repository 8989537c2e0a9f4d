"""A trial that a stopped process left mid-climb, trained again from its start under its own
number, as its pruner must see it: as if the first climb had never happened.

Optuna can delete neither a trial's reports nor its system attributes, so what the first climb
left stays in storage: its reports, and the pruner's own bookkeeping (Successive Halving, and
Hyperband through it, marks each rung a trial was judged at and judges a rung once). Seen as it
is, the pruner skips the rung whose verdict the first climb took and lost with its process, so
the trial climbs a rung further than it would have uninterrupted and spends more of the compute
budget; or it judges an early rung by a later report (the median pruner reads the last one).
Here each decision is taken on a view of the storage that hides, for this trial alone, its
reports after the step just reported and every system attribute it had when this climb began,
each until this climb writes it again. That hides more than the pruner's marks (an enqueued
trial's fixed parameters, and on a third climb the second's marks too), which is harmless: the
pruners read only their own marks, and this climb writes back each one the uninterrupted climb
wrote. With deterministic training every report, and so every verdict, is the uninterrupted
run's; the storage then ends as the uninterrupted run's does."""

from __future__ import annotations

import copy

import optuna
from optuna.trial import FrozenTrial


class ResumedTrial(optuna.trial.Trial):
    """``optuna.trial.Trial`` for a RUNNING trial trained again from its start."""

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
        super().__init__(study, trial_id)
        self._hidden = set(study._storage.get_trial(trial_id).system_attrs)  # earlier climbs'
        self._step: int | None = None

    def report(self, value: float, step: int) -> None:
        super().report(value, step)  # a step reported before is ignored (the same value)
        self._step = step

    def should_prune(self) -> bool:
        if len(self.study.directions) > 1:
            return super().should_prune()  # Optuna's own error
        storage = _ThisClimbView(self.study._storage, self._trial_id, self._hidden, self._step)
        view = optuna.Study(
            study_name=self.study.study_name,
            storage=storage,
            sampler=self.study.sampler,
            pruner=self.study.pruner,
        )
        return self.study.pruner.prune(view, storage.get_trial(self._trial_id))


class _ThisClimbView:
    """The run's storage, with the trial ``trial_id`` as far as this climb has taken it: reports
    up to ``step``, and none of the system attributes in ``hidden`` until this climb writes them
    again. Everything else goes to the storage as it is (pruners call nothing else)."""

    def __init__(self, storage, trial_id: int, hidden: set[str], step: int | None) -> None:
        self._storage, self._trial_id, self._hidden, self._step = storage, trial_id, hidden, step

    def __getattr__(self, name: str):
        return getattr(self._storage, name)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        trial = self._storage.get_trial(trial_id)
        return self._as_climbed(trial) if trial_id == self._trial_id else trial

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states=None) -> list:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [self._as_climbed(t) if t._trial_id == self._trial_id else t for t in trials]

    def set_trial_system_attr(self, trial_id: int, key: str, value) -> None:
        self._storage.set_trial_system_attr(trial_id, key, value)
        if trial_id == self._trial_id:
            self._hidden.discard(key)  # the trial's set, shared by its views: this climb's own now

    def _as_climbed(self, trial: FrozenTrial) -> FrozenTrial:
        step = -1 if self._step is None else self._step
        climbed = copy.copy(trial)  # the storage's own object is left as it is
        climbed.system_attrs = {
            k: v for k, v in trial.system_attrs.items() if k not in self._hidden
        }
        climbed.intermediate_values = {
            s: v for s, v in trial.intermediate_values.items() if s <= step
        }
        return climbed
