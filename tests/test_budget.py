"""Equal budgets in a fair currency: training FLOPs, v4 evaluated first, shuffled run order."""

import json

import pandas as pd
import pytest

from harness.compare import run_order
from harness.experiment import load_experiment
from model.config import ModelConfig
from model.flops import forward_flops_per_sample, training_flops
from tests.e2e import cli


def test_v4_flops_match_the_figure_the_readme_quotes():
    # About 5.5 MFLOP forward and 16.6 MFLOP to train, per sample (README, "Equal budgets").
    assert abs(forward_flops_per_sample(ModelConfig()) / 1e6 - 5.5) < 0.1
    assert abs(training_flops(ModelConfig(), 1) / 1e6 - 16.6) < 0.3


@pytest.mark.slow
def test_a_compute_budget_stops_at_the_first_trial_that_spends_it(tmp_path):
    run = dict(strategy="tpe_hyperband", trials=4, budget_unit="compute", results=tmp_path)
    assert cli("run", **run) == 0
    run = tmp_path / "smoke/tpe_hyperband/seed-0"
    budget = json.loads((run / "metadata.json").read_text())["budget"]
    trials = pd.read_csv(run / "trials.csv").sort_values("trial")
    spent = trials["train_flops"].cumsum()
    assert budget["unit"] == "compute" and budget["flops"] > 0
    assert spent.iloc[-1] >= budget["flops"] > spent.iloc[-2]
    rungs = pd.read_csv(run / "rungs.csv")
    assert abs(rungs["train_flops"].sum() - trials["train_flops"].sum()) < 1e-6 * budget["flops"]


@pytest.mark.slow
def test_every_run_evaluates_v4_first(tmp_path):
    assert cli("run", strategy="random", trials=2, results=tmp_path) == 0
    first = pd.read_csv(tmp_path / "smoke/random/seed-0/trials.csv").sort_values("trial").iloc[0]
    defaults = load_experiment("smoke").space.defaults()
    assert {k: first[f"param_{k}"] for k in defaults} == defaults


def test_run_order_is_shuffled_per_seed_and_independent_of_the_order_given():
    names = ("tpe_median", "random", "tpe", "cmaes", "qmc", "grid")
    jobs = run_order(names, (0, 1, 2))
    assert jobs == run_order(tuple(reversed(names)), (0, 1, 2))
    blocks = [[s for s, seed in jobs if seed == k] for k in (0, 1, 2)]
    assert all(sorted(b) == sorted(names) for b in blocks)
    assert len({tuple(b) for b in blocks}) > 1  # not the same order every seed
