"""``compare``: every chosen strategy x seed under the same budget, in one process (data built
once), then the optional noise-floor retrains and the false-prune audit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from harness.analysis.loading import load_results
from harness.datasets import load_data
from harness.errors import UserError
from harness.experiment import Experiment
from harness.layout import results_folder
from harness.retrain import audit_pruned, measure_noise
from harness.run import RunOptions, run_strategy
from model.fidelity import FidelitySampler
from model.runtime import resolve_device
from strategies import STRATEGIES


@dataclass(frozen=True)
class CompareOptions:
    strategies: tuple[str, ...] = tuple(STRATEGIES)
    seeds: tuple[int, ...] | None = None  # default: the experiment's
    results_dir: str = "results"
    storage: str | None = None
    n_trials: int | None = None
    timeout_minutes: float | None = None
    device: str | None = None
    noise_configs: int = 3
    noise_seeds: int = 0
    audit: int = 0
    progress: bool = True
    workers: int = 1
    backend: str = "real"
    budget_unit: str = "compute"  # equal training FLOPs per run: pruning buys more trials
    warm_start: bool = True  # every run evaluates the experiment's defaults (v4) first


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
    unknown = [s for s in opts.strategies if s not in STRATEGIES]
    if unknown:
        raise UserError(f"unknown strategy {unknown[0]!r}; known: {', '.join(STRATEGIES)}")
    seeds = opts.seeds or experiment.seeds
    jobs = run_order(opts.strategies, seeds)
    summaries = {}
    bar = tqdm(
        jobs, desc=f"compare {experiment.name}", unit="run", disable=not opts.progress, position=0
    )
    for strategy, seed in bar:
        bar.set_postfix_str(f"{strategy} seed {seed}")
        summaries[(strategy, seed)] = run_strategy(
            experiment,
            RunOptions(
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
            ),
        )
        if summaries[(strategy, seed)]["interrupted"]:
            raise KeyboardInterrupt
    bar.close()
    base = Path(opts.results_dir) / results_folder(experiment, opts.backend)
    if opts.backend == "replay":
        return {
            "runs": len(summaries),
            "results": str(base),
        }  # noise and audit retrain the real model
    results = load_results(opts.results_dir, experiment.name)
    device = str(resolve_device(opts.device or experiment.device))
    if opts.noise_seeds or opts.audit:
        data = load_data(experiment.data)
        fidelity = FidelitySampler(data, seed=experiment.data.seed)
        if opts.noise_seeds and not (base / "noise.csv").exists():
            measure_noise(
                experiment,
                data,
                fidelity,
                results.trials,
                opts.noise_configs,
                opts.noise_seeds,
                device,
                opts.progress,
            ).to_csv(base / "noise.csv", index=False)
        if opts.audit and not (base / "audit.csv").exists():
            audit = audit_pruned(
                experiment,
                data,
                fidelity,
                results.trials,
                opts.audit,
                device,
                progress=opts.progress,
            )
            audit.to_csv(base / "audit.csv", index=False)
    return {"runs": len(summaries), "results": str(base)}
