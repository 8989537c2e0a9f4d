"""Running one strategy on one experiment and seed: resumable, recorded, with progress, and
shared by several worker processes when asked.

Roles: the *coordinator* (`run`, `compare`) creates the study once, stores what a worker needs
in the study's user attributes, recovers trials a killed process left RUNNING (journal
storage; RDB storages use heartbeats instead), and starts the extra workers. A *worker*
(`python -m harness worker`, on this machine or another) joins the study and trains.

The pieces live beside this file: `backends` (what trains), `study` (opening, recovery,
reconciliation), `optimize` (the loop), `workers`, `provenance`, `layout` (names and paths).
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import optuna

from harness import study as studies
from harness.backends import Backend, Workload, get_backend
from harness.climb import base_trial_flops
from harness.defaults import RESULTS_DIR
from harness.errors import UserError
from harness.experiment import Experiment
from harness.fingerprint import ensure_fingerprint
from harness.layout import run_dir, study_name
from harness.objective import Objective
from harness.optimize import Limits, LoopContext, optimize
from harness.parallel import usable_cores
from harness.provenance import run_metadata
from harness.records import RunRecorder, read_rungs, read_trials
from harness.storage import is_rdb, resolve_storage_url
from harness.study_lock import study_lock
from harness.summary import summarize
from harness.v4_weights import v4_state
from harness.workers import load_shared, share_with_workers, shared_limits, start_workers
from model.runtime import (
    check_precision,
    configure_process,
    device_sharing,
    precision_facts,
    resolve_device,
    resolve_precision,
    worker_device,
)
from strategies import Strategy, StrategyInputs, cold_start, get_strategy
from strategies.registry import from_v4_weights


@dataclass(frozen=True)
class RunOptions:
    """How to run one strategy: which (a registered name, a Strategy, or None for the
    experiment's [run] strategy), its seed, where the records and study go, the budget
    overrides, the device, and this process's role."""

    strategy: str | Strategy | None
    seed: int = 0
    results_dir: str = RESULTS_DIR
    storage: str | None = None
    n_trials: int | None = None
    timeout_minutes: float | None = None
    device: str | None = None
    progress: bool = True
    workers: int = 1
    role: str = "coordinator"  # or "worker"
    warm_start: bool = True  # evaluate the experiment's defaults (v4) first
    v4_weights: bool = False  # start every trial from v4's trained weights (<strategy>.v4w)
    backend: str = "real"  # or "replay": the surrogate fitted to `record`'s curves
    # "trials": n_trials counts trials. "compute": n_trials counts the training FLOPs of that
    # many full-ladder trials of the experiment's base configuration (v4), so a strategy that
    # prunes buys more trials with what it saves (the currency of a fair comparison).
    budget_unit: str = "trials"


BUDGET_UNITS = ("trials", "compute")


@dataclass(frozen=True)
class _Budget:
    n_trials: int | None
    timeout_minutes: float | None
    unit: str = "trials"

    @property
    def trials(self) -> float:
        """The trial budget (inf: none, or counted in compute instead)."""
        return math.inf if self.n_trials is None or self.unit == "compute" else self.n_trials

    def flops(self, experiment, workload: Workload) -> float | None:
        """The compute budget in training FLOPs (None when trials are counted)."""
        if self.unit != "compute" or self.n_trials is None:
            return None
        return self.n_trials * base_trial_flops(experiment, workload.fidelity)


@dataclass(frozen=True)
class _ResolvedRun:
    """One run, resolved once from the experiment and the options."""

    experiment: Experiment
    opts: RunOptions
    strategy: Strategy
    backend: Backend
    device: object  # torch.device
    budget: _Budget
    name: str  # the study
    directory: Path  # the records
    threads: int

    @property
    def coordinator(self) -> bool:
        return self.opts.role == "coordinator"


def resolve_strategy(
    chosen: str | Strategy, experiment: Experiment, warm_start: bool, v4_weights: bool
) -> Strategy:
    """The strategy a run of ``chosen`` trains, with its twin's name under the options (cold
    start, v4's weights); a mistake is a ValueError. `compare` asks it of every name first."""
    strategy = chosen if isinstance(chosen, Strategy) else get_strategy(chosen)
    if not warm_start:
        strategy = cold_start(strategy)  # its own name: never mixed into a warm study
    if v4_weights and not strategy.v4_weights:
        strategy = from_v4_weights(strategy)  # its own name too
    check_searched(strategy, experiment)
    return strategy


def check_searched(strategy: Strategy, experiment: Experiment) -> None:
    """A .search- twin names parameters of the experiment's space, warm and from fresh weights."""
    if strategy.searched is None:
        return
    unknown = sorted(set(strategy.searched) - set(experiment.space.names))
    if unknown:
        raise ValueError(
            f"{strategy.name}: {', '.join(unknown)} not in {experiment.name}'s space "
            f"({', '.join(experiment.space.names)})"
        )
    if not strategy.warm_start or strategy.v4_weights:
        raise ValueError(f"{strategy.name}: a .search- twin runs warm and from fresh weights only")


def _resolve(experiment: Experiment, opts: RunOptions) -> _ResolvedRun:
    """Everything a run needs to know before it starts; every user mistake is a UserError."""
    try:
        chosen = opts.strategy or experiment.strategy
        if not chosen:
            raise ValueError(
                "no strategy: give --strategy, or set strategy in the experiment's [run] table"
            )
        strategy = resolve_strategy(chosen, experiment, opts.warm_start, opts.v4_weights)
        device = resolve_device(worker_device(opts.device or experiment.device, 0))
        backend = get_backend(opts.backend)
        if not backend.simulated_clock:  # one clear error now, not a failure in every trial
            check_precision(device, experiment.precision)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if opts.budget_unit not in BUDGET_UNITS:
        raise UserError(f"budget unit must be one of {BUDGET_UNITS}, got {opts.budget_unit!r}")
    budget = _Budget(
        opts.n_trials if opts.n_trials is not None else experiment.budget.n_trials,
        opts.timeout_minutes
        if opts.timeout_minutes is not None
        else experiment.budget.timeout_minutes,
        opts.budget_unit,
    )
    n, minutes = budget.n_trials, budget.timeout_minutes
    if (n is not None and n <= 0) or (minutes is not None and not minutes > 0):
        raise UserError(f"budget: n_trials and timeout must be > 0, got {n} and {minutes}")
    if opts.workers < 1:
        raise UserError(f"--workers must be >= 1, got {opts.workers}")
    if backend.max_workers is not None and opts.workers > backend.max_workers:
        raise UserError(f"--workers: the {backend.name} backend runs in one process")
    if strategy.v4_weights and backend.replayed:
        raise UserError(
            f"{strategy.name}: a replayed trial has no weights to start from v4's; "
            "compare the .v4w twins on real runs"
        )
    name = study_name(experiment, strategy.name, opts.seed, replayed=backend.replayed)
    directory = run_dir(opts.results_dir, backend.folder(experiment), strategy.name, opts.seed)
    threads = max(1, usable_cores() // opts.workers)
    return _ResolvedRun(
        experiment, opts, strategy, backend, device, budget, name, directory, threads
    )


def run_strategy(experiment: Experiment, opts: RunOptions) -> dict:
    """Run (or resume) one strategy; return the summary of everything the run has recorded.

    A coordinator holds the study's lock throughout: a second `run` of the same study is
    refused in one line instead of failing the first one's trials. A replay holds it too: a
    second replay of the run would wipe the folder the first one is writing."""
    run = _resolve(experiment, opts)
    locked = run.coordinator
    with study_lock(run.directory, run.name) if locked else nullcontext():
        return _run(run)


def _run(run: _ResolvedRun) -> dict:
    experiment, opts = run.experiment, run.opts
    url, storage = run.backend.open_storage(_storage_url(run))
    if run.device.type == "cpu" and not run.backend.simulated_clock:
        configure_process(run.threads)
    # Optuna logs every failed trial with a traceback; the harness prints one line per failure.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    setup_start = time.perf_counter()
    workload = run.backend.prepare(
        experiment, results_dir=opts.results_dir, directory=run.directory, device=run.device
    )
    if workload.finished:
        return summary_of(run, workload, url, interrupted=False)
    setup_seconds = time.perf_counter() - setup_start
    study, inputs, existing = _create_study(run, storage)
    # Before anything is written: a study made under another experiment definition is refused.
    fingerprint = (
        ensure_fingerprint(study, experiment, run.directory / "metadata.json")
        if run.coordinator
        else None
    )
    if run.strategy.v4_weights:  # after the definition check; not charged to the run
        state = v4_state(experiment, workload.data, run.device, run.directory.parent.parent)
        workload = replace(workload, make_trainer=partial(workload.make_trainer, init_state=state))
    recorder = RunRecorder(run.directory, experiment.space.names)
    flops = run.budget.flops(experiment, workload)
    limits, resume = _limits(run, study, inputs, existing, url, recorder, flops)
    meta = {**_metadata(run, url, setup_seconds, limits), "fingerprint": fingerprint}
    recorder.write_metadata(meta)
    interrupted = False
    if limits.open(study) or resume:
        objective = Objective(
            experiment,
            workload,
            recorder,
            strategy=run.strategy,
            seed=opts.seed,
            device=str(run.device),
        )
        loop = LoopContext(
            study,
            objective,
            recorder,
            limits=limits,
            shared=opts.workers > 1 or not run.coordinator,
            progress=opts.progress,
            resume=tuple(resume),
            requeue=is_rdb(url),
        )
        interrupted = _train(run, loop, url)
    if run.coordinator:
        studies.reconcile(study, recorder, run.strategy.name, opts.seed)
    if run.backend.simulated_clock and not interrupted:
        recorder.write_metadata({**meta, "finished": True})
    return summary_of(run, workload, url, interrupted)


def _storage_url(run: _ResolvedRun) -> str:
    """The storage asked for, else the study's own journal beside its records (or the shared
    journal of earlier versions that already holds the study, said in one line)."""
    url = run.opts.storage or run.experiment.storage
    if url is None and not run.backend.simulated_clock:
        folder = run.backend.folder(run.experiment)
        url, note = resolve_storage_url(
            run.opts.results_dir, folder, run.strategy.name, run.opts.seed, run.name
        )
        if note:
            print(note, file=sys.stderr)
    return url or ""


def _metadata(run: _ResolvedRun, url: str, setup_seconds: float, limits: Limits) -> dict:
    described = run_metadata(
        run.experiment,
        run.strategy,
        seed=run.opts.seed,
        url=url,
        study=run.name,
        device=run.device,
        backend=run.backend,
        budget={**asdict(run.budget), "flops": limits.flops},
    )
    requested = run.opts.device or run.experiment.device
    return {
        **described,
        "precision": resolve_precision(run.device, run.experiment.precision),
        "precision_facts": precision_facts(run.device),
        "device_sharing": device_sharing(requested, run.opts.workers),
        "process_setup_seconds": setup_seconds,
        "workers": run.opts.workers,
        "threads": run.threads,
        "backend": run.backend.name,
    }


def _create_study(run: _ResolvedRun, storage):
    """Create or load the study with the strategy's sampler and pruner; returns the study, the
    strategy's inputs and the trials it held before."""
    opts, strategy = run.opts, run.strategy
    existing = studies.existing_trials(storage, run.name)
    space = run.experiment.space
    inputs = StrategyInputs(
        space.only(strategy.searched) if strategy.searched else space,
        run.experiment.ladder,
        opts.seed,
    )
    sampler, pruner = strategy.make(inputs)
    study = optuna.create_study(
        study_name=run.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=["minimize"] * strategy.objectives,
        load_if_exists=True,
    )
    return study, inputs, existing


def _limits(
    run: _ResolvedRun, study, inputs, existing, url: str, recorder: RunRecorder, flops: float | None
) -> tuple[Limits, list[int]]:
    """As coordinator: queue (v4 first, or the strategy's fixed points), find the trials a
    stopped process left (to train again), set the deadline and share it all; as worker: read
    the shared limits. Returns the limits and the trials to train again."""
    opts, strategy = run.opts, run.strategy
    trials = run.budget.trials
    queue = strategy.queue(inputs) if strategy.queue is not None else None
    if queue is not None:
        trials = min(trials, len(queue))
    elif strategy.warm_start:
        queue = [run.experiment.space.defaults()]  # v4 first: the warm start and the MAE target
    if not run.coordinator:
        return shared_limits(study, Limits(trials, None, flops, _simulated_budget(run))), []
    if not existing:
        for params in queue or ():
            study.enqueue_trial(params, skip_if_exists=False)
    resume = []
    if not is_rdb(url):  # RDB storages fail and retry such trials through heartbeats
        resume = studies.stuck_trials(study, recorder, strategy.name, opts.seed)
    deadline = None
    # Under a simulated clock the budget is checked against reported seconds instead.
    if run.budget.timeout_minutes is not None and not run.backend.simulated_clock:
        remaining = run.budget.timeout_minutes - _spent_minutes(recorder) / opts.workers
        deadline = time.time() + remaining * 60
    limits = Limits(trials, deadline, flops, _simulated_budget(run))
    share_with_workers(study, run.experiment, strategy, opts.seed, limits)
    return limits, resume


def _simulated_budget(run: _ResolvedRun) -> float | None:
    minutes = run.budget.timeout_minutes
    return minutes * 60 if run.backend.simulated_clock and minutes else None


def _train(run: _ResolvedRun, loop: LoopContext, url: str) -> bool:
    """This process's optimize loop, with the local workers alongside; True if interrupted."""
    opts = run.opts
    children = []
    if run.coordinator and opts.workers > 1:
        children = start_workers(
            url,
            run.name,
            count=opts.workers - 1,
            results_dir=opts.results_dir,
            threads=run.threads,
            # round-robin over the visible GPUs: worker k on cuda:(k mod GPUs), not all on cuda:0
            devices=[
                worker_device(opts.device or run.experiment.device, k)
                for k in range(1, opts.workers)
            ],
        )
    interrupted = False
    try:
        interrupted = optimize(loop)
    except BaseException:  # stopped outside a trial, or a failed write: workers stop too
        interrupted = True
        raise
    finally:
        for child in children:
            if interrupted:
                child.terminate()
            child.wait()
    return interrupted


def summary_of(run: _ResolvedRun, workload: Workload, url: str, interrupted: bool) -> dict:
    """The run's summary from its records (see harness.summary), with where it lives."""
    rungs = read_rungs(run.directory / "rungs.csv").frame
    trials = read_trials(run.directory / "trials.csv").frame
    ladder = run.experiment.ladder
    summary = summarize(rungs, trials, ladder.samples(workload.fidelity), len(ladder))
    summary.update(
        study=run.name,
        storage=url,
        records=str(run.directory),
        device=run.backend.device_label(run.device),
        interrupted=interrupted,
        strategy=run.strategy.name,
    )
    return summary


def join_study(
    storage_url: str,
    name: str,
    results_dir: str = RESULTS_DIR,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """A worker: load what the coordinator stored in the study and train until the budget is
    met; returns the run's summary."""
    experiment, strategy, seed = load_shared(storage_url, name)
    opts = RunOptions(
        strategy,
        seed=seed,
        results_dir=results_dir,
        storage=storage_url,
        device=device,
        progress=progress,
        role="worker",
    )
    return run_strategy(experiment, opts)


def _spent_minutes(recorder: RunRecorder) -> float:
    trials = read_trials(recorder.trials.path).frame
    return float(trials["wall_seconds"].sum(skipna=True)) / 60 if len(trials) else 0.0
