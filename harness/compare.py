"""``compare``: every chosen strategy x seed under the same budget, in one process (data built
once), then the optional noise-floor retrains and the false-prune audit."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from harness.analysis.loading import load_results
from harness.datasets import load_data
from harness.errors import UserError
from harness.experiment import Experiment
from harness.retrain import audit_pruned, measure_noise
from harness.run import RunOptions, results_folder, run_strategy
from harness.tables import has_rows
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


def compare(experiment: Experiment, opts: CompareOptions) -> dict:
    unknown = [s for s in opts.strategies if s not in STRATEGIES]
    if unknown:
        raise UserError(f"unknown strategy {unknown[0]!r}; known: {', '.join(STRATEGIES)}")
    seeds = opts.seeds or experiment.seeds
    jobs = [
        (s, seed) for seed in seeds for s in opts.strategies
    ]  # seeds outer: early stops still cover every strategy
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
    _measure_side_files(experiment, opts, base)
    return {"runs": len(summaries), "results": str(base)}


def _measure_side_files(experiment: Experiment, opts: CompareOptions, base: Path) -> None:
    """The noise floor and the audit, each measured once: a file with rows is kept; an empty one
    (written by an earlier version) counts as absent."""
    noise = opts.noise_seeds and not has_rows(base / "noise.csv")
    audit = opts.audit and not has_rows(base / "audit.csv")
    if not (noise or audit):
        return
    results = load_results(opts.results_dir, experiment.name)
    device = str(resolve_device(opts.device or experiment.device))
    data = load_data(experiment.data)
    fidelity = FidelitySampler(data, seed=experiment.data.seed)
    if noise:
        frame = measure_noise(
            experiment,
            data,
            fidelity,
            results.trials,
            opts.noise_configs,
            opts.noise_seeds,
            device,
            opts.progress,
        )
        write_side_file(frame, base / "noise.csv", "noise floor", "no complete trial to retrain")
    if audit:
        frame = audit_pruned(
            experiment, data, fidelity, results.trials, opts.audit, device, progress=opts.progress
        )
        write_side_file(frame, base / "audit.csv", "audit", "no pruned trial to finish")


def write_side_file(frame: pd.DataFrame, path: Path, what: str, why_empty: str) -> bool:
    """Write ``frame`` to ``path`` atomically; an empty frame is not written (readers would take
    an empty file for a measurement): one line on stderr says why. True if written."""
    if frame.empty:
        path.unlink(missing_ok=True)
        print(f"{what}: nothing measured ({why_empty}); {path.name} not written", file=sys.stderr)
        return False
    tmp = path.with_name(path.name + ".tmp")
    try:
        frame.to_csv(tmp, index=False)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return True
