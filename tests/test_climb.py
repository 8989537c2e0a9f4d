"""The one rung loop: a retrained configuration reproduces its recorded rungs bit for bit, a
pruned trial frees its model at once, and the backends are objects chosen by name."""

import weakref

import optuna
import pandas as pd
import pytest

from harness.backends import BACKENDS, get_backend
from harness.climb import build_trainer, climb, trial_seed
from harness.datasets import load_data
from harness.errors import UserError
from harness.experiment import load_experiment
from harness.objective import Objective
from harness.records import RunRecorder
from model.train import Trainer
from strategies import get_strategy
from tests.e2e import cli


@pytest.mark.slow
def test_retrained_configuration_matches_its_recorded_rungs_exactly(tmp_path):
    assert cli("run", strategy="random", trials=2, device="cpu", results=tmp_path) == 0
    rungs = pd.read_csv(tmp_path / "smoke/random/seed-0/rungs.csv")
    experiment = load_experiment("smoke")
    data = load_data(experiment.data)
    fidelity = experiment.fidelity_sampler(data)
    for trial, recorded in rungs.groupby("trial"):
        params = {n: recorded[f"param_{n}"].iloc[0] for n in experiment.space.names}
        params = {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}
        config = experiment.base_config().with_params(params)
        trainer = build_trainer(
            experiment, data, config, seed=trial_seed(0, int(trial)), device="cpu"
        )
        again = [r.mae for r in climb(trainer, experiment.ladder, fidelity)]
        assert again == recorded.sort_values("rung")["val_mae"].tolist()  # bit for bit


def test_a_pruned_trial_frees_its_model_before_the_next_trial(tmp_path):
    """The prune decision is forced (a pruner that always prunes) to test what happens after."""
    experiment = load_experiment("smoke")
    data = load_data(experiment.data)
    workload = get_backend("real").prepare(
        experiment, results_dir=str(tmp_path), directory=tmp_path, device=None
    )
    models = []

    def factory(*args, **kwargs):
        trainer = Trainer(*args, **kwargs)
        models.append(weakref.ref(trainer.model))
        return trainer

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    workload = type(workload)(data, workload.fidelity, factory, replayed=False)
    recorder = RunRecorder(tmp_path / "run", experiment.space.names)
    objective = Objective(
        experiment, workload, recorder, strategy=get_strategy("tpe_median"), seed=0, device="cpu"
    )
    study = optuna.create_study(pruner=AlwaysPrune())
    study.optimize(objective, n_trials=1, gc_after_trial=False)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert models and models[0]() is None  # freed by reference counting, no gc.collect needed


def test_backends_are_a_registry_with_a_clear_error_for_unknown_names():
    assert set(BACKENDS) == {"real", "replay"}
    assert BACKENDS["replay"].simulated_clock and not BACKENDS["real"].simulated_clock
    with pytest.raises(UserError, match="--backend must be one of real, replay"):
        get_backend("simulated")
