"""The Optuna 5 behaviours that decide whether a comparison is fair (README, "Strategies"),
each checked against the real library and against how our strategies handle it."""

import optuna
import pytest

from strategies import STRATEGIES, Ladder, Param, SearchSpace, StrategyInputs, get_strategy
from strategies.registry import MEDIAN_STARTUP_TRIALS

SPACE = SearchSpace(
    (Param("x", "float", 0.5, 0.0, 1.0), Param("c", "categorical", "a", choices=("a", "b")))
)
LADDER = Ladder((1 / 9, 1 / 3, 1.0), (1, 1, 1))


def _ladder_objective(steps):
    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        for k, step in enumerate(steps):
            trial.report(x + 1.0 / (k + 1), step)
            if k < len(steps) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return x

    return objective


def _pruned_steps(study):
    return {
        max(t.intermediate_values)
        for t in study.trials
        if t.state == optuna.trial.TrialState.PRUNED
    }


def test_hyperband_auto_with_steps_from_zero_never_prunes_the_last_bracket():
    # Library behaviour we work around: 'auto' max_resource and steps 0..2 put the last
    # bracket's rung off the ladder.
    study = optuna.create_study(
        study_name="hb-auto",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource="auto", reduction_factor=3
        ),
    )
    study.optimize(_ladder_objective([0, 1, 2]), n_trials=60)
    pruner = study.pruner
    last_bracket = pruner._n_brackets - 1
    in_last = [t for t in study.trials if pruner._get_bracket_id(study, t) == last_bracket]
    assert in_last and not any(t.state == optuna.trial.TrialState.PRUNED for t in in_last)


def test_our_hyperband_prunes_on_the_ladder_steps():
    sampler, pruner = get_strategy("tpe_hyperband").make(StrategyInputs(SPACE, LADDER, 0))
    assert pruner._max_resource == LADDER.max_step == 9 and pruner._reduction_factor == 3
    study = optuna.create_study(study_name="hb-ours", sampler=sampler, pruner=pruner)
    study.optimize(_ladder_objective(LADDER.steps), n_trials=40)
    assert _pruned_steps(study) <= {1, 3}  # pruning happens only at reported rungs, both can prune
    assert study.trials and any(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)


def _hb_params(study_name, seed=0):
    sampler, pruner = get_strategy("tpe_hyperband").make(StrategyInputs(SPACE, LADDER, seed))
    study = optuna.create_study(study_name=study_name, sampler=sampler, pruner=pruner)
    study.optimize(_ladder_objective(LADDER.steps), n_trials=25)
    return [(t.params["x"], t.state) for t in study.trials]


def test_hyperband_reproducible_only_with_a_fixed_study_name():
    assert _hb_params("fixed") == _hb_params("fixed")  # our runner always passes a fixed name
    assert _hb_params("fixed") != _hb_params("other-name")  # brackets come from a hash of the name


def test_tpe_under_hyperband_models_all_trials_not_only_its_bracket():
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    tpe_reads, bracket_view = [], []
    sampler, pruner = get_strategy("tpe_hyperband").make(StrategyInputs(SPACE, LADDER, 0))
    original = sampler.sample_relative

    def spy(study, trial, space):
        # TPE reads study._get_trials; the bracket view only filters get_trials
        tpe_reads.append(
            len(study._get_trials(deepcopy=False, states=finished_states, use_cache=False))
        )
        bracket_view.append(len(study.get_trials(deepcopy=False, states=finished_states)))
        return original(study, trial, space)

    sampler.sample_relative = spy
    study = optuna.create_study(study_name="hb-tpe", sampler=sampler, pruner=pruner)
    study.optimize(_ladder_objective(LADDER.steps), n_trials=20)
    assert tpe_reads[-1] == 19  # the last sample modelled every earlier trial, whatever its bracket
    assert bracket_view[-1] < tpe_reads[-1]  # while the bracket-filtered view held fewer


def test_median_startup_counts_complete_trials_only():
    sampler, pruner = get_strategy("tpe_median").make(StrategyInputs(SPACE, LADDER, 0))
    study = optuna.create_study(study_name="median", sampler=sampler, pruner=pruner)
    study.optimize(_ladder_objective(LADDER.steps), n_trials=30)
    states = [t.state for t in study.trials]
    first_prune = states.index(optuna.trial.TrialState.PRUNED)
    assert states[:first_prune].count(optuna.trial.TrialState.COMPLETE) >= MEDIAN_STARTUP_TRIALS


def test_cmaes_handles_categoricals_with_its_random_fallback(recwarn):
    sampler, pruner = get_strategy("cmaes").make(StrategyInputs(SPACE, LADDER, 0))
    assert sampler.inner._consider_pruned_trials is False  # no pruner: nothing to consider
    study = optuna.create_study(study_name="cma", sampler=sampler, pruner=pruner)
    study.optimize(
        lambda t: t.suggest_float("x", 0, 1) + (t.suggest_categorical("c", ["a", "b"]) == "b"),
        n_trials=15,
    )
    assert {t.params["c"] for t in study.trials} == {
        "a",
        "b",
    }  # categorical sampled (at random), not stuck
    assert not [
        w for w in recwarn if "independent" in str(w.message).lower()
    ]  # fallback is deliberate, not warned


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_resume_does_not_repeat_configurations(name):
    storage = optuna.storages.InMemoryStorage()
    first = get_strategy(name).make(StrategyInputs(SPACE, LADDER, 0))
    study = optuna.create_study(study_name="r", storage=storage, sampler=first[0], pruner=first[1])
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    again = get_strategy(name).make(StrategyInputs(SPACE, LADDER, 0))  # a new process's sampler
    study = optuna.load_study(study_name="r", storage=storage, sampler=again[0], pruner=again[1])
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    xs = [t.params["x"] for t in study.trials]
    assert len(set(xs)) == 10  # the resumed sampler does not replay the first five


def _suggest(trial, written=2):
    """The trial's configuration; ``written`` < 2 stops after that many parameters are stored
    (a float second: two streams that differ cannot draw the same value by chance)."""
    x = trial.suggest_float("x", 0, 1)
    if written < 2:
        return x, None
    trial.suggest_float("y", 0, 1)
    return x, trial.suggest_categorical("c", ["a", "b"])


def _ask_and_tell(study, count, stop_at=None, written=2):
    """``count`` trials of a pruned ladder objective; with ``stop_at``, that trial is left
    RUNNING (its process killed once ``written`` parameters are stored) and the loop ends."""
    for _ in range(count):
        trial = study.ask()
        x, c = _suggest(trial, written if trial.number == stop_at else 2)
        if trial.number == stop_at:
            return trial.number
        state, value = _climb(trial, x + 0.3 * (c == "b"))
        study.tell(trial, value, state=state)
    return None


def _climb(trial, final):
    for rung, step in enumerate(LADDER.steps, start=1):
        value = final + 1.0 / rung
        trial.report(value, step)
        if rung < len(LADDER) and trial.should_prune():
            return optuna.trial.TrialState.PRUNED, None
    return optuna.trial.TrialState.COMPLETE, value


@pytest.mark.parametrize("written", [2, 1], ids=["killed-training", "killed-mid-suggestion"])
@pytest.mark.parametrize(
    "name", ["tpe_median", "tpe_hyperband", "tpe_asha", "random", "cmaes", "qmc"]
)
def test_a_study_resumed_by_a_new_process_samples_what_the_uninterrupted_one_did(name, written):
    # Every sampler draws trial n's parameters from (seed, n, parameter): a new process's
    # sampler, resuming the trial a killed process left RUNNING (while it trained, or between
    # two of its parameter writes) and going on, proposes what one process would have.
    def study(storage):
        sampler, pruner = get_strategy(name).make(StrategyInputs(SPACE, LADDER, 3))
        return optuna.create_study(
            study_name="s", storage=storage, sampler=sampler, pruner=pruner, load_if_exists=True
        )

    whole = study(optuna.storages.InMemoryStorage())
    _ask_and_tell(whole, 16)
    storage = optuna.storages.InMemoryStorage()
    killed = _ask_and_tell(study(storage), 16, stop_at=7, written=written)
    resumed = study(storage)  # another process: a new sampler and pruner
    trial = optuna.trial.Trial(resumed, resumed.trials[killed]._trial_id)  # as optimize._resume
    x, c = _suggest(trial)
    state, value = _climb(trial, x + 0.3 * (c == "b"))
    resumed.tell(trial, value, state=state)
    _ask_and_tell(resumed, 16 - killed - 1)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    assert [t.state for t in resumed.trials] == [t.state for t in whole.trials]


@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - {"grid"}))
def test_every_sampler_has_its_random_streams_reseeded(name):
    # An Optuna upgrade that moved a sampler off LazyRandomState would silently leave its
    # stream unseeded per trial (resumes would then differ from uninterrupted runs).
    from strategies.seeding import reseed

    sampler, _ = get_strategy(name).make(StrategyInputs(SPACE, LADDER, 0))
    assert reseed(sampler.inner, 0, 1) >= 1


def test_tpe_starts_up_on_the_random_strategys_draws():
    # The two stay exact twins while TPE starts up (the report names such twins as a group).
    def first_params(name):
        sampler, pruner = get_strategy(name).make(StrategyInputs(SPACE, LADDER, 4))
        study = optuna.create_study(sampler=sampler, pruner=pruner)
        study.optimize(
            lambda t: t.suggest_float("x", 0, 1) + (t.suggest_categorical("c", ["a", "b"]) == "b"),
            n_trials=8,
        )
        return [t.params for t in study.trials]

    assert first_params("tpe") == first_params("random")
