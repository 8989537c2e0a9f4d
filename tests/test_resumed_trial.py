"""A trial trained again after its process stopped mid-climb gets the pruning decisions it got
uninterrupted, for every pruner the strategies use and every point a stop can land at.

The objective is a stand-in (fixed seeded curves, no training): what is under test is the
pruners' bookkeeping in the real storage, which the curves drive exactly as the LSTM's reports
do (a trial trained again reports the same values, as the kill tests check end to end)."""

import random

import optuna
import pytest
from optuna.trial import TrialState

from harness.experiment import load_experiment
from harness.resumed_trial import ResumedTrial
from harness.storage import open_storage
from strategies import StrategyInputs, get_strategy

STEPS = load_experiment("smoke").ladder.steps  # 1, 3, 9: the report steps of fractions 1/9, 1/3, 1
N_TRIALS = 20  # enough for every pruner to let two trials past the first rung


class Stopped(Exception):
    """The process died here."""


def _curve(number: int) -> list[float]:
    rng = random.Random(number)
    start = rng.uniform(3, 6)
    return [start - rng.uniform(0, 0.5) * k for k in range(len(STEPS))]


def _climb(trial, stop_at=None) -> tuple[str, int]:
    """The trial's climb: (state, last step). ``stop_at``: (rung index, "report" or "verdict"),
    the point where the process dies, after the report or after the pruner's verdict."""
    for rung, (step, value) in enumerate(zip(STEPS, _curve(trial.number))):
        trial.report(value, step)
        if stop_at == (rung, "report"):
            raise Stopped
        pruned = rung < len(STEPS) - 1 and trial.should_prune()
        if stop_at == (rung, "verdict"):
            raise Stopped
        if pruned:
            return "PRUNED", step
    return "COMPLETE", STEPS[-1]


def _run(pruner, path, stop=None, again=None) -> list[tuple[str, int]]:
    """Every trial's (state, last step) when trial ``stop[0]`` dies at ``stop[1]`` and is then
    trained again, as the next process does (None: uninterrupted); ``again``: where that second
    climb dies too, trained a third time."""
    storage = open_storage(f"journal:///{path}")
    study = optuna.create_study(study_name="s", storage=storage, pruner=pruner)
    outcome = []
    for number in range(N_TRIALS):
        trial = study.ask()
        try:
            state, step = _climb(trial, stop[1] if stop and stop[0] == number else None)
        except Stopped:
            trial = ResumedTrial(study, trial._trial_id)  # the next process, same storage
            try:
                state, step = _climb(trial, again)
            except Stopped:
                trial = ResumedTrial(study, trial._trial_id)  # and the one after it
                state, step = _climb(trial)
        study.tell(trial, _curve(number)[-1] if state == "COMPLETE" else None, TrialState[state])
        outcome.append((state, step))
    return outcome


def _pruner(strategy: str):
    """The strategy's pruner, built as a run on smoke builds it."""
    exp = load_experiment("smoke")
    return get_strategy(strategy).make(StrategyInputs(exp.space, exp.ladder, 0))[1]


@pytest.mark.filterwarnings("ignore:The reported value is ignored")  # the first climb's steps
@pytest.mark.parametrize("strategy", ["tpe_asha", "tpe_hyperband", "tpe_median"])
def test_a_trial_trained_again_gets_the_uninterrupted_verdicts(strategy, tmp_path):
    # Before: stopped right after its first rung's verdict (prune), a trial trained again was
    # pruned a rung later under ASHA and Hyperband: Successive Halving had marked the rung
    # judged, and judges a rung once. A resumed compare then ran out of compute trials early.
    # The median pruner judged the first rung of a trial trained again by its first climb's
    # last report (pruned at step 1 where it was pruned at step 3 uninterrupted).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reference = _run(_pruner(strategy), tmp_path / "reference.log")
    assert {s for s, _ in reference} == {"PRUNED", "COMPLETE"}  # the curves exercise both
    # a trial pruned at the first rung, and the first ones climbing past it (stops there happen)
    climbers = [n for n, (_, step) in enumerate(reference) if n >= 6 and step > STEPS[0]]
    pruned_first = [n for n, (s, step) in enumerate(reference) if n >= 6 and step == STEPS[0]]
    assert pruned_first and len(climbers) >= 2  # or the stops below would test nothing
    points = [(rung, phase) for rung in range(len(STEPS)) for phase in ("report", "verdict")]
    for number in pruned_first[:1] + climbers[:2]:
        last = STEPS.index(reference[number][1])  # stops past the trial's last rung never happen
        for at in points[: 2 * last + 2]:
            log = tmp_path / f"stopped-{number}-{at}.log"
            assert _run(_pruner(strategy), log, stop=(number, at)) == reference, (number, at)
        log = tmp_path / f"stopped-twice-{number}.log"  # the third process: every mark is left
        resumed = _run(
            _pruner(strategy), log, stop=(number, points[2 * last]), again=(0, "verdict")
        )
        assert resumed == reference, (number, "twice")
