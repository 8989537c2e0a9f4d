"""Running one strategy on one experiment and seed: resumable, recorded, with progress, and
shared by several worker processes when asked.

Roles: the *coordinator* (`run`, `compare`) creates the study once, stores what a worker needs
in the study's user attributes, recovers trials a killed process left RUNNING (journal
storage; RDB storages use heartbeats instead), and starts the extra workers. A *worker*
(`python -m harness worker`, on this machine or another) joins the study and trains.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from tqdm import tqdm

from harness.datasets import load_data
from harness.errors import UserError
from harness.experiment import Experiment, parse_experiment
from harness.objective import Objective, TrialFailed
from harness.records import RunRecorder, run_dir
from harness.storage import default_storage_url, is_rdb, open_storage
from harness.summary import summarize
from model.fidelity import FidelitySampler
from model.runtime import configure_process, resolve_device
from model.train import Trainer, warm_up
from strategies import StrategyInputs, get_strategy

MAX_CONSECUTIVE_FAILURES = 5
INTERRUPTED_BY_USER = (
    "interrupted: stopped by the user (Ctrl-C); its configuration is queued for the next run"
)
INTERRUPTED_BY_KILL = "interrupted: its process stopped mid-trial"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class RunOptions:
    strategy: str | None  # None: the experiment's [run] strategy
    seed: int = 0
    results_dir: str = "results"
    storage: str | None = None
    n_trials: int | None = None
    timeout_minutes: float | None = None
    device: str | None = None
    progress: bool = True
    workers: int = 1
    role: str = "coordinator"  # or "worker"
    backend: str = "real"  # or "replay": the surrogate of results/<experiment>/record-*/ with a simulated clock


def results_folder(experiment: Experiment, backend: str = "real") -> str:
    """The experiment's folder under results/ (replayed runs apart from real ones)."""
    return f"{experiment.name}.replay" if backend == "replay" else experiment.name


def study_name(experiment: Experiment, strategy: str, seed: int, backend: str = "real") -> str:
    # Fixed and unique per run: Hyperband assigns brackets from a hash of "{study_name}_{number}".
    return f"{results_folder(experiment, backend)}.{strategy}.seed-{seed}"


def run_strategy(experiment: Experiment, opts: RunOptions) -> dict:
    """Run (or resume) one strategy; return the summary of everything the run has recorded."""
    try:
        if not (opts.strategy or experiment.strategy):
            raise ValueError(
                "no strategy: give --strategy, or set strategy in the experiment's [run] table"
            )
        strategy = get_strategy(opts.strategy or experiment.strategy)
        device = resolve_device(opts.device or experiment.device)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    n_trials = opts.n_trials if opts.n_trials is not None else experiment.budget.n_trials
    timeout = (
        opts.timeout_minutes
        if opts.timeout_minutes is not None
        else experiment.budget.timeout_minutes
    )
    if (n_trials is not None and n_trials <= 0) or (timeout is not None and timeout <= 0):
        raise UserError(f"budget: n_trials and timeout must be > 0, got {n_trials} and {timeout}")
    if opts.workers < 1:
        raise UserError(f"--workers must be >= 1, got {opts.workers}")
    if opts.backend not in ("real", "replay"):
        raise UserError(f"--backend must be 'real' or 'replay', got {opts.backend!r}")
    replay = opts.backend == "replay"
    folder = results_folder(experiment, opts.backend)
    if replay:  # fast and reproducible: kept in memory, a finished run's records are its proof
        url, storage = "in-memory (replay)", optuna.storages.InMemoryStorage()
        if opts.workers > 1:
            raise UserError("--workers applies to real training; replay runs are single-process")
    else:
        url = (
            opts.storage
            or experiment.storage
            or default_storage_url(Path(opts.results_dir), folder)
        )
        storage = open_storage(url)
    name = study_name(experiment, strategy.name, opts.seed, opts.backend)
    threads = max(1, len(os.sched_getaffinity(0)) // opts.workers)
    if device.type == "cpu" and not replay:
        configure_process(threads)

    # Optuna logs every failed trial with a traceback; the harness prints one line per failure instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    directory = run_dir(opts.results_dir, folder, strategy.name, opts.seed)
    setup_start = time.perf_counter()
    if replay:
        from harness.replay.run import prepare_replay

        data, fidelity, factory, finished = prepare_replay(experiment, opts.results_dir, directory)
        if finished:
            return _summary_of(
                directory, experiment, fidelity, name, url, "replay", interrupted=False
            )
    else:
        data = load_data(experiment.data)
        fidelity = FidelitySampler(data, seed=experiment.data.seed)
        warm_up(data, device)  # one-time costs, kept out of the first trial's harness time
        factory = Trainer
    setup_seconds = time.perf_counter() - setup_start
    recorder = RunRecorder(directory, experiment.space.names)

    existing = _existing_trials(storage, name)
    inputs = StrategyInputs(
        experiment.space,
        experiment.ladder,
        opts.seed,
        resumed_trials=len(existing),
        worker=0 if opts.role == "coordinator" else os.getpid(),
    )
    sampler, pruner = strategy.make(inputs)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        directions=["minimize"] * strategy.objectives,
        load_if_exists=True,
    )
    target = n_trials if n_trials is not None else math.inf
    if strategy.queue is not None:
        queue = strategy.queue(inputs)
        target = min(target, len(queue))
        if opts.role == "coordinator" and not existing:
            for params in queue:
                study.enqueue_trial(params, skip_if_exists=False)
    if opts.role == "coordinator":
        if not is_rdb(url):  # RDB storages fail and retry such trials through heartbeats
            _recover_interrupted(study, recorder, strategy.name, opts.seed)
        # Under replay the clock is simulated: the budget is checked against recorded seconds instead.
        remaining = (
            None if timeout is None or replay else timeout - _spent_minutes(recorder) / opts.workers
        )
        deadline = None if remaining is None else time.time() + remaining * 60
        _share_with_workers(study, experiment, strategy.name, opts.seed, target, deadline)
    else:
        target, deadline = study.user_attrs.get("target", target), study.user_attrs.get("deadline")
    meta = {
        **_metadata(
            experiment, strategy, opts, url, name, "replay" if replay else device, n_trials, timeout
        ),
        "process_setup_seconds": setup_seconds,
        "workers": opts.workers,
        "threads": threads,
        "backend": opts.backend,
    }
    recorder.write_metadata(meta)

    interrupted = False
    sim_budget = timeout * 60 if replay and timeout is not None else None
    if _count_done(study) < target and (deadline is None or deadline > time.time()):
        children = (
            _start_workers(url, name, opts, threads)
            if opts.role == "coordinator" and opts.workers > 1
            else []
        )
        try:
            interrupted = _optimize(
                study,
                experiment,
                data,
                fidelity,
                recorder,
                strategy,
                opts,
                device,
                target,
                deadline,
                factory,
                sim_budget,
            )
        finally:
            for child in children:
                if interrupted:
                    child.terminate()
                child.wait()
    if opts.role == "coordinator":
        _reconcile(study, recorder, strategy.name, opts.seed)
    if replay and not interrupted:
        recorder.write_metadata({**meta, "finished": True})
    return _summary_of(
        directory, experiment, fidelity, name, url, "replay" if replay else str(device), interrupted
    )


def _summary_of(directory, experiment, fidelity, name, url, device, interrupted) -> dict:
    rungs, trials = pd.read_csv(directory / "rungs.csv"), pd.read_csv(directory / "trials.csv")
    samples = {
        k + 1: len(fidelity.indices(f)) * e
        for k, (f, e) in enumerate(zip(experiment.ladder.fractions, experiment.ladder.epochs))
    }
    summary = summarize(rungs, trials, samples, len(experiment.ladder))
    summary.update(
        study=name, storage=url, records=str(directory), device=device, interrupted=interrupted
    )
    return summary


def join_study(
    storage_url: str,
    name: str,
    results_dir: str = "results",
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """A worker: load what the coordinator stored in the study and train until the budget is met."""
    storage = open_storage(storage_url)
    try:
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    except KeyError:
        raise UserError(
            f"study {name!r} not found in {storage_url} (start it with 'run' or 'compare' first)"
        ) from None
    if "experiment_toml" not in attrs:
        raise UserError(
            f"study {name!r} was not created by this harness (no experiment stored with it)"
        )
    import tomllib

    experiment = parse_experiment(
        tomllib.loads(attrs["experiment_toml"]),
        attrs["experiment_path"],
        default_name=attrs["experiment_name"],
    )
    return run_strategy(
        experiment,
        RunOptions(
            attrs["strategy"],
            seed=attrs["seed"],
            results_dir=results_dir,
            storage=storage_url,
            device=device,
            progress=progress,
            role="worker",
        ),
    )


def _share_with_workers(study, experiment, strategy, seed, target, deadline) -> None:
    path = Path(experiment.path)
    toml = path.read_text(encoding="utf-8") if path.is_file() else ""
    for key, value in (
        ("experiment_toml", toml),
        ("experiment_path", str(path)),
        ("experiment_name", experiment.name),
        ("strategy", strategy),
        ("seed", seed),
        ("target", None if math.isinf(target) else target),
        ("deadline", deadline),
    ):
        study.set_user_attr(key, value)


def _start_workers(url: str, name: str, opts: RunOptions, threads: int) -> list[subprocess.Popen]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "worker",
        "--storage",
        url,
        "--study",
        name,
        "--results",
        opts.results_dir,
        "--no-progress",
    ] + (["--device", opts.device] if opts.device else [])
    # Their summaries would repeat the coordinator's; their errors still reach stderr.
    return [
        subprocess.Popen(cmd, env=env, cwd=os.getcwd(), stdout=subprocess.DEVNULL)
        for _ in range(opts.workers - 1)
    ]


def _optimize(
    study,
    experiment,
    data,
    fidelity,
    recorder,
    strategy,
    opts,
    device,
    target,
    deadline,
    factory,
    sim_budget,
) -> bool:
    """Train until the study-wide budget is met; True if the user interrupted. Under replay,
    ``sim_budget`` is the wall-clock budget in simulated seconds."""
    done = _count_done(study)
    bar = tqdm(
        total=None if math.isinf(target) else target,
        initial=done,
        desc=f"{strategy.name} seed {opts.seed}",
        unit="trial",
        disable=not opts.progress,
        dynamic_ncols=True,
    )
    state = {
        "best": _best_value(study),
        "fails": 0,
        "last": time.perf_counter(),
        "done": done,
        "elapsed": 0.0,
    }

    def on_rung(number: int, rung: int, mae: float) -> None:
        bar.set_postfix_str(
            f"trial {number} rung {rung}/{len(experiment.ladder)} MAE {mae:.3f} | best {state['best']:.3f}"
        )

    objective = Objective(
        experiment,
        data,
        fidelity,
        recorder,
        strategy=strategy.name,
        seed=opts.seed,
        device=str(device),
        precision=experiment.precision,
        on_rung=on_rung,
        queued_only=strategy.queue is not None,
        objectives=strategy.objectives,
        trainer_factory=factory,
    )

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        now = time.perf_counter()
        times = objective.times.pop(trial.number, None)
        real_wall, state["last"] = now - state["last"], now
        train, ev, real_work = (
            (times.train, times.eval, times.real_work) if times else (0.0, 0.0, 0.0)
        )
        wall = (
            real_wall - real_work + train + ev
        )  # identical to real_wall unless the work is simulated
        state["elapsed"] += wall
        recorder.add_trial(
            {
                "strategy": strategy.name,
                "seed": opts.seed,
                "trial": trial.number,
                "state": trial.state.name,
                "fail_reason": trial.user_attrs.get("fail_reason", ""),
                "rungs_done": times.rungs if times else 0,
                "last_step": times.last_step if times else 0,
                "val_mae": _mae_of(trial) if trial.state != TrialState.FAIL else "",
                "train_seconds": train,
                "eval_seconds": ev,
                "wall_seconds": wall,
                "harness_seconds": max(0.0, wall - train - ev),
                "parameters": times.parameters if times else "",
            },
            trial.params,
        )
        if trial.state == TrialState.COMPLETE:
            state["best"] = min(state["best"], _mae_of(trial))
        failed = trial.state == TrialState.FAIL
        state["fails"] = state["fails"] + 1 if failed else 0
        if failed:
            bar.write(
                f"trial {trial.number} failed: {trial.user_attrs.get('fail_reason', 'unknown reason')}"
            )
        if opts.workers > 1 or opts.role == "worker":
            state["done"] = _count_done(study)  # study-wide, all workers
        elif not failed:
            state["done"] += 1
        bar.n = state["done"]
        bar.refresh()
        if state["fails"] >= MAX_CONSECUTIVE_FAILURES:
            bar.write(
                f"stopping: {state['fails']} trials failed in a row (last: {trial.user_attrs.get('fail_reason')})"
            )
            study.stop()
        elif state["done"] >= target or (strategy.queue is not None and not _waiting(study)):
            study.stop()
        elif sim_budget is not None and state["elapsed"] >= sim_budget:
            study.stop()

    try:
        study.optimize(
            objective,
            n_trials=None,
            timeout=None if deadline is None else max(0.0, deadline - time.time()),
            callbacks=[after_trial],
            catch=(TrialFailed,),
            gc_after_trial=False,
            show_progress_bar=False,
        )
    except KeyboardInterrupt:
        # Optuna has failed the trial in flight; record why and queue its configuration again.
        for number, times in objective.times.items():
            recorder.add_trial(
                _unfinished_row(
                    strategy.name,
                    opts.seed,
                    number,
                    INTERRUPTED_BY_USER,
                    rungs_done=times.rungs,
                    last_step=times.last_step,
                    train_seconds=times.train,
                    eval_seconds=times.eval,
                    wall_seconds=time.perf_counter() - state["last"],
                ),
                times.params,
            )
            study.enqueue_trial(times.params, skip_if_exists=False)
        return True
    finally:
        bar.close()
    return False


def _existing_trials(storage, name: str) -> list:
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def _recover_interrupted(
    study: optuna.Study, recorder: RunRecorder, strategy: str, seed: int
) -> None:
    """A trial left RUNNING by a killed process is failed with its reason and re-queued."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", INTERRUPTED_BY_KILL)
        study.tell(t.number, state=TrialState.FAIL)
        recorder.add_trial(_unfinished_row(strategy, seed, t.number, INTERRUPTED_BY_KILL), t.params)
        if t.params:
            study.enqueue_trial(t.params, skip_if_exists=False)


def _reconcile(study: optuna.Study, recorder: RunRecorder, strategy: str, seed: int) -> None:
    """Give every finished trial of the storage a row in trials.csv (a worker that died, or one on
    another machine, leaves trials the local records have not seen)."""
    recorded = set(pd.read_csv(recorder.trials.path, usecols=["trial"])["trial"])
    for t in study.get_trials(deepcopy=False):
        if t.state.is_finished() and t.number not in recorded:
            reason = t.user_attrs.get(
                "fail_reason",
                "worker died mid-trial (stale heartbeat)" if t.state == TrialState.FAIL else "",
            )
            recorder.add_trial(
                _unfinished_row(
                    strategy,
                    seed,
                    t.number,
                    reason,
                    state=t.state.name,
                    last_step=t.last_step or 0,
                    val_mae=_mae_of(t) if t.state != TrialState.FAIL else "",
                ),
                t.params,
            )


def _unfinished_row(strategy: str, seed: int, trial: int, reason: str, **fields) -> dict:
    """A trial-table row for a trial this process did not see finish: failed, no time measured,
    unless ``fields`` say otherwise."""
    return {
        "strategy": strategy,
        "seed": seed,
        "trial": trial,
        "state": "FAIL",
        "fail_reason": reason,
        "train_seconds": 0.0,
        "eval_seconds": 0.0,
        "wall_seconds": 0.0,
        "harness_seconds": 0.0,
        **fields,
    }


def _count_done(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE_STATES))


def _waiting(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _best_value(study: optuna.Study) -> float:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min((_mae_of(t) for t in done), default=math.inf)


def _mae_of(trial: optuna.trial.FrozenTrial) -> float:
    """Validation MAE: the value, or the first of a multi-objective trial's values."""
    return trial.values[0] if trial.values else float("nan")


def _spent_minutes(recorder: RunRecorder) -> float:
    trials = pd.read_csv(recorder.trials.path)
    return float(trials["wall_seconds"].sum()) / 60 if len(trials) else 0.0


def _metadata(experiment, strategy, opts, url, name, device, n_trials, timeout) -> dict:
    import torch

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "strategy": strategy.name,
        "strategy_summary": strategy.summary,
        "strategy_rationale": strategy.rationale,
        "seed": opts.seed,
        "study_name": name,
        "storage": url,
        "budget": {"n_trials": n_trials, "timeout_minutes": timeout},
        "experiment": experiment.to_dict(),
        "base_config": asdict(experiment.base_config()),
        "device": str(device),
        "device_name": (
            "surrogate (replay)"
            if isinstance(device, str)
            else torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "project_commit": commit,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
