"""Harness overhead. (1) The cost per trial of sampler + pruner + storage + recording at 300
trials, on a cheap objective that reports every rung like the real one but trains nothing,
for the embedded journal file and in-memory storage. (2) Per-trial set-up of the real
objective (model and optimizer construction, subsample lookup): under 1% of a quick v4-sized
trial pruned after its first rung (a trial that climbs further costs more, so its share is
smaller)."""

import time

import numpy as np
import optuna
import pytest

from harness.datasets import load_data
from harness.experiment import load_experiment
from harness.records import RunRecorder
from harness.storage import open_storage
from model.fidelity import FidelitySampler
from model.train import Trainer
from strategies import StrategyInputs, get_strategy

pytestmark = pytest.mark.benchmark

N_TRIALS = 300


def _harness_only_run(tmp_path, storage_kind: str, strategy: str) -> float:
    exp = load_experiment("quick")
    sampler, pruner = get_strategy(strategy).make(StrategyInputs(exp.space, exp.ladder, 0))
    storage = (
        optuna.storages.InMemoryStorage()
        if storage_kind == "memory"
        else open_storage(
            f"journal:///{tmp_path}/{storage_kind}-{strategy}-{time.time_ns()}.journal"
        )
    )
    study = optuna.create_study(
        study_name="overhead", storage=storage, sampler=sampler, pruner=pruner
    )
    recorder = RunRecorder(tmp_path / f"rec-{time.time_ns()}", exp.space.names)
    rng = np.random.default_rng(0)

    def objective(trial):
        params = exp.space.suggest(trial)
        for rung, step in enumerate(exp.ladder.steps, start=1):
            mae = 3 + rng.random() / rung
            trial.report(mae, step)
            pruned = rung < len(exp.ladder) and trial.should_prune()
            recorder.add_rung(
                {
                    "trial": trial.number,
                    "rung": rung,
                    "step": step,
                    "val_mae": mae,
                    "pruned": pruned,
                },
                params,
            )
            if pruned:
                raise optuna.TrialPruned()
        return mae

    def record(study, trial):
        recorder.add_trial(
            {"trial": trial.number, "state": trial.state.name, "val_mae": trial.value}, trial.params
        )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    study.optimize(objective, n_trials=N_TRIALS, callbacks=[record])
    return (time.perf_counter() - start) / N_TRIALS


@pytest.mark.parametrize("strategy", ["tpe_hyperband", "random"])
@pytest.mark.parametrize("storage_kind", ["journal", "memory"])
def test_harness_cost_per_trial(benchmark, tmp_path, storage_kind, strategy):
    per_trial = benchmark.pedantic(
        _harness_only_run, args=(tmp_path, storage_kind, strategy), rounds=1, iterations=1
    )
    benchmark.extra_info["ms_per_trial"] = per_trial * 1000
    print(
        f"\n{strategy} on {storage_kind}: {per_trial * 1000:.1f} ms per trial "
        f"over {N_TRIALS} trials"
    )
    assert per_trial < 0.5  # a quick trial takes seconds; see the run summary's harness share


def test_per_trial_setup_under_one_percent_of_a_trial_pruned_at_its_first_rung(benchmark):
    exp = load_experiment("quick")
    data = load_data(exp.data)
    fidelity = FidelitySampler(data)
    config = exp.base_config()
    first_rung = fidelity.indices(exp.ladder.fractions[0]), exp.ladder.epochs[0]
    # once per process, as a run's warm-up does: the data moved to tensors, the first kernels
    Trainer(data, config, seed=0, device="cpu").train(*first_rung)

    def setup():
        trainer = Trainer(data, config, seed=1, device="cpu")
        for f in exp.ladder.fractions:
            fidelity.indices(f)
        return trainer

    benchmark.pedantic(setup, rounds=5, iterations=1, warmup_rounds=1)
    trainer = setup()
    start = time.perf_counter()
    trainer.train(*first_rung)
    trainer.evaluate()
    rung_seconds = time.perf_counter() - start
    share = benchmark.stats.stats.median / rung_seconds
    benchmark.extra_info.update(
        setup_seconds=benchmark.stats.stats.median, first_rung_seconds=rung_seconds, share=share
    )
    print(
        f"\nset-up {benchmark.stats.stats.median * 1000:.1f} ms vs a quick v4 trial pruned "
        f"after its first rung {rung_seconds:.2f} s: {share:.2%}"
    )
    assert share < 0.01
