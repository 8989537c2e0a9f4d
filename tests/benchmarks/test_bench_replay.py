"""Simulated trials per second under replay, and the surrogate's share of that time (it must not be
the bottleneck: the sampler's own time should dominate). Curves recorded from the real LSTM."""

import time

import pytest

from harness.experiment import load_experiment
from harness.replay import trainer as replay_trainer
from harness.run import RunOptions, run_strategy
from tests.e2e import copy_record

N_TRIALS = 200
pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def record(recorded, tmp_path_factory):
    """A copy of the shared record that the replayed runs are written beside (the shared folder
    is never written to); one for both strategies, so the surrogate is fitted once, in the
    first measured round, as before."""
    return copy_record(recorded, tmp_path_factory.mktemp("bench_replay"))


@pytest.mark.parametrize("strategy", ["tpe_hyperband", "random"])
def test_simulated_trials_per_second(benchmark, record, strategy, monkeypatch):
    in_surrogate = {"s": 0.0}
    original = replay_trainer.ReplayTrainer.__init__

    def timed(self, *args, **kwargs):  # the surrogate's work happens when a trainer is built
        start = time.perf_counter()
        original(self, *args, **kwargs)
        in_surrogate["s"] += time.perf_counter() - start

    monkeypatch.setattr(replay_trainer.ReplayTrainer, "__init__", timed)
    exp = load_experiment("smoke")
    counter = iter(
        range(1_000, 10_000)
    )  # seeds no other test has replayed (finished runs are reused)

    def one_run():
        start = time.perf_counter()
        run_strategy(
            exp,
            RunOptions(
                strategy,
                seed=next(counter),
                results_dir=str(record),
                n_trials=N_TRIALS,
                timeout_minutes=1e6,
                progress=False,
                backend="replay",
            ),
        )
        return time.perf_counter() - start

    in_surrogate["s"] = 0.0
    benchmark.pedantic(one_run, rounds=2, iterations=1)
    per_second = N_TRIALS / benchmark.stats.stats.median
    share = in_surrogate["s"] / (benchmark.stats.stats.mean * 2)
    benchmark.extra_info.update(trials_per_second=per_second, surrogate_share=share)
    print(f"\n{strategy}: {per_second:,.0f} simulated trials/s, surrogate {share:.0%} of the time")
    # a run that really ran (a reused, finished run would return at once)
    assert per_second < 20_000
    assert share < 0.5  # the sampler, pruner and records dominate, not the surrogate
