"""A trial that a stopped process left mid-climb, trained again from its start under its own
number, as its pruner must see it: as if the first climb had never happened.

Optuna can delete neither a trial's reports nor its system attributes, so what the first climb
left stays in storage: its reports, and the pruner's own bookkeeping (Successive Halving, and
Hyperband through it, marks each rung a trial was judged at and judges a rung once). Seen as it
is, the pruner skips the rung whose verdict the first climb took and lost with its process, so
the trial climbs a rung further than it would have uninterrupted and spends more of the compute
budget; or it judges an early rung by a later report. Here each decision is taken on a view of
the storage that hides, for this trial alone, its reports after the step just reported and the
system attributes the first climb set, each until this climb sets it again. The training, and so
every report, is the first climb's again, and the decisions are the uninterrupted run's."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial


class ResumedTrial(optuna.trial.Trial):
    """``optuna.trial.Trial`` for a RUNNING trial trained again from its start."""

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
        super().__init__(study, trial_id)
        self._left = set(study._storage.get_trial(trial_id).system_attrs)  # by the first climb
        self._step: int | None = None

    def report(self, value: float, step: int) -> None:
        super().report(value, step)  # a step the first climb reported is ignored: same value
        self._step = step

    def should_prune(self) -> bool:
        if len(self.study.directions) > 1:
            return super().should_prune()  # Optuna's own error
        storage = _SecondClimbView(self.study._storage, self._trial_id, self._left, self._step)
        view = optuna.Study(
            study_name=self.study.study_name,
            storage=storage,
            sampler=self.study.sampler,
            pruner=self.study.pruner,
        )
        return self.study.pruner.prune(view, storage.get_trial(self._trial_id))


class _SecondClimbView:
    """The run's storage, with the trial ``trial_id`` as far as its second climb has taken it:
    reports up to ``step``, and none of the system attributes in ``left`` (the first climb's)
    until this climb writes them again. Everything else goes to the storage as it is."""

    def __init__(self, storage, trial_id: int, left: set[str], step: int | None) -> None:
        self._storage, self._trial_id, self._left, self._step = storage, trial_id, left, step

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
            self._left.discard(key)  # this climb's own from now on

    def _as_climbed(self, trial: FrozenTrial) -> FrozenTrial:
        step = -1 if self._step is None else self._step
        return FrozenTrial(
            number=trial.number,
            state=trial.state,
            value=None,
            values=trial.values,
            datetime_start=trial.datetime_start,
            datetime_complete=trial.datetime_complete,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=trial.user_attrs,
            system_attrs={k: v for k, v in trial.system_attrs.items() if k not in self._left},
            intermediate_values={s: v for s, v in trial.intermediate_values.items() if s <= step},
            trial_id=trial._trial_id,
        )
