"""``compare``: every chosen strategy x seed under the same budget, in one process (data built
once), then the optional noise-floor retrains and the false-prune audit."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from harness import parallel
from harness.analysis.loading import load_results
from harness.backends import get_backend
from harness.converge import converge
from harness.datasets import load_data
from harness.defaults import NOISE_CONFIGS, REEVAL_SEEDS, RESULTS_DIR
from harness.errors import UserError
from harness.experiment import Experiment
from harness.retrain import audit_pruned, measure_noise, reevaluate_incumbents, retrain
from harness.run import RunOptions, resolve_strategy, run_strategy
from harness.tables import has_rows
from model.runtime import resolve_device
from strategies import STRATEGIES
from strategies.registry import strategy_problem


@dataclass(frozen=True)
class CompareOptions:
    """How to run a comparison: which strategies and seeds, the shared budget and storage, and
    the retrains beside the runs (noise floor, audit, re-evaluation, convergence)."""

    strategies: tuple[str, ...] = tuple(STRATEGIES)
    seeds: tuple[int, ...] | None = None  # default: the experiment's
    results_dir: str = RESULTS_DIR
    storage: str | None = None
    n_trials: int | None = None
    timeout_minutes: float | None = None
    device: str | None = None
    noise_configs: int = NOISE_CONFIGS
    noise_seeds: int = 0
    audit: int = 0
    progress: bool = True
    workers: int = 1
    backend: str = "real"
    budget_unit: str = "compute"  # equal training FLOPs per run: pruning buys more trials
    reeval_seeds: int = REEVAL_SEEDS  # fresh training seeds for each run's incumbent (0: none)
    converge: int = 0  # configurations trained to convergence for horizon trust
    warm_start: bool = True  # every run evaluates the experiment's defaults (v4) first
    v4_weights: bool = False  # every trial starts from v4's trained weights (<strategy>.v4w)


def run_order(strategies: tuple[str, ...], seeds: tuple[int, ...]) -> list[tuple[str, int]]:
    """(strategy, seed) jobs: seeds outer, so an early stop still covers every strategy; within
    each seed the strategies in a seeded shuffled order, so a machine's drift (a neighbour
    starting, a CPU heating) cannot line up with one strategy run after run."""
    jobs = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(sorted(strategies))
        jobs += [(str(s), seed) for s in order]
    return jobs


def compare(experiment: Experiment, opts: CompareOptions) -> dict:
    """Run every (strategy, seed) of the comparison (resuming finished ones), then the retrains
    asked for; returns how many runs and where the results are."""
    for name in opts.strategies:
        if problem := strategy_problem(name):
            raise UserError(problem)
        try:  # one clear error now, not when the name's first job comes up
            resolve_strategy(name, experiment, opts.warm_start, opts.v4_weights)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    jobs = run_order(opts.strategies, opts.seeds or experiment.seeds)
    backend = get_backend(opts.backend)
    bar = tqdm(
        total=len(jobs), desc=f"compare {experiment.name}", unit="run", disable=not opts.progress
    )
    if backend.replayed and opts.workers == 1 and parallel.usable_cores() > 1 and len(jobs) > 1:
        _replay_in_parallel(experiment, opts, jobs, bar)
    else:
        for strategy, seed in jobs:
            bar.set_postfix_str(f"{strategy} seed {seed}")
            if run_strategy(experiment, _run_options(opts, strategy, seed))["interrupted"]:
                raise KeyboardInterrupt
            bar.update()
    bar.close()
    base = Path(opts.results_dir) / backend.folder(experiment)
    if not backend.replayed:  # the retrains train the real model
        retrain_side_files(experiment, opts, base)
    elif opts.reeval_seeds:  # replayed runs are scored as real ones: re-evaluated incumbents
        from harness.replay.prepare import load_surrogate  # scipy and sklearn: a second to import

        surrogate = load_surrogate(experiment, opts.results_dir)
        results = load_results(opts.results_dir, base.name)
        write_reevaluations(base, results, surrogate.reevaluate, experiment.space.names, opts)
    return {"runs": len(jobs), "results": str(base)}


def _replay_job(shared: tuple, job: tuple[str, int]) -> bool:
    experiment, opts = shared
    return run_strategy(experiment, _run_options(opts, *job))["interrupted"]


def _replay_in_parallel(experiment: Experiment, opts: CompareOptions, jobs, bar) -> None:
    """Replayed runs on every core: a replay trains nothing, so its runs are independent
    processes of samplers and bookkeeping (each its own study, folder and seeded streams: the
    records are those of one process running them in order). The surrogate is fitted once,
    here, before the processes fork."""
    from harness.replay.prepare import load_surrogate

    load_surrogate(experiment, opts.results_dir)
    for interrupted in parallel.forked_map(_replay_job, (experiment, opts), jobs):
        if interrupted:  # runs not started never start
            raise KeyboardInterrupt
        bar.update()


def _run_options(opts: CompareOptions, strategy: str, seed: int) -> RunOptions:
    return RunOptions(
        strategy,
        seed=seed,
        results_dir=opts.results_dir,
        storage=opts.storage,
        n_trials=opts.n_trials,
        timeout_minutes=opts.timeout_minutes,
        device=opts.device,
        progress=False,
        workers=opts.workers,
        backend=opts.backend,
        budget_unit=opts.budget_unit,
        warm_start=opts.warm_start,
        v4_weights=opts.v4_weights,
    )


def retrain_side_files(experiment: Experiment, opts: CompareOptions, base: Path) -> None:
    """The comparison's retrains, each written once and never empty: re-evaluated incumbents
    (reeval.csv, completed for new runs), the noise floor (noise.csv), the false-prune audit
    (audit.csv) and horizon trust (converge.csv)."""
    wanted = opts.reeval_seeds or opts.noise_seeds or opts.audit or opts.converge
    if not wanted:
        return
    results = load_results(opts.results_dir, experiment.name)  # side files read tolerantly
    trials = results.trials
    device = str(resolve_device(opts.device or experiment.device))
    data = load_data(experiment.data)
    fidelity = experiment.fidelity_sampler(data)
    common = {"device": device, "progress": opts.progress}
    if opts.reeval_seeds:

        def score(params: dict, seed: int) -> float:
            return retrain(experiment, data, fidelity, params, seed=seed, device=device)

        write_reevaluations(base, results, score, experiment.space.names, opts)
    if opts.noise_seeds and not has_rows(base / "noise.csv"):
        table = measure_noise(
            experiment, data, fidelity, trials, opts.noise_configs, opts.noise_seeds, **common
        )
        _write(base / "noise.csv", table, "noise floor", "no complete trial to retrain")
    if opts.audit and not has_rows(base / "audit.csv"):
        table = audit_pruned(experiment, data, fidelity, trials, opts.audit, **common)
        _write(base / "audit.csv", table, "audit", "no pruned trial to finish")
    if opts.converge and not has_rows(base / "converge.csv"):
        table = converge(experiment, data, trials, k=opts.converge, **common)
        _write(base / "converge.csv", table, "convergence", "no complete trial to converge")


def write_reevaluations(base: Path, results, score, names, opts) -> None:
    """reeval.csv: each run's incumbent retrained with ``opts.reeval_seeds`` fresh seeds by
    ``score``; ``results.reeval`` (reeval.csv's usable rows, a garbage line dropped and counted)
    is reused where it still re-evaluates a current incumbent (see ``reevaluate_incumbents``).
    The .search- twins, kept apart from the pooled trials, are re-evaluated too: their paired
    confirmation is judged on re-evaluated incumbents as the comparison is."""
    trials = results.trials
    if results.search_trials is not None:
        trials = pd.concat([trials, results.search_trials], ignore_index=True)
    table = reevaluate_incumbents(
        trials,
        score,
        names,
        n_seeds=opts.reeval_seeds,
        done=results.reeval,
        progress=opts.progress,
    )
    _write(base / "reeval.csv", table, "re-evaluation", "no complete trial to retrain")


def _write(path: Path, table: pd.DataFrame, what: str, why: str) -> None:
    """Write a side table atomically; an empty one is not written (readers treat it as absent)
    and one line on stderr says why."""
    if table.empty:
        print(f"{what}: nothing measured ({why}); {path.name} not written", file=sys.stderr)
        return
    tmp = path.with_suffix(".tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
