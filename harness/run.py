"""Running one strategy on one experiment and seed: resumable, recorded, with progress."""

from __future__ import annotations

import math
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from tqdm import tqdm

from harness.datasets import load_data
from harness.errors import UserError
from harness.experiment import Experiment
from harness.objective import Objective, TrialFailed
from harness.records import RunRecorder, run_dir
from harness.storage import default_storage_url, open_storage
from harness.summary import summarize
from model.fidelity import FidelitySampler
from model.runtime import resolve_device
from model.train import warm_up
from strategies import StrategyInputs, get_strategy

MAX_CONSECUTIVE_FAILURES = 5
INTERRUPTED_BY_USER = "interrupted: stopped by the user (Ctrl-C); its configuration is queued for the next run"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def study_name(experiment: Experiment, strategy: str, seed: int) -> str:
    # Fixed and unique per run: Hyperband assigns brackets from a hash of "{study_name}_{number}".
    return f"{experiment.name}.{strategy}.seed-{seed}"


def run_strategy(experiment: Experiment, opts: RunOptions) -> dict:
    """Run (or resume) one strategy; return the summary of everything the run has recorded."""
    try:
        if not (opts.strategy or experiment.strategy):
            raise ValueError("no strategy: give --strategy, or set strategy in the experiment's [run] table")
        strategy = get_strategy(opts.strategy or experiment.strategy)
        device = resolve_device(opts.device or experiment.device)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    n_trials = opts.n_trials if opts.n_trials is not None else experiment.budget.n_trials
    timeout = opts.timeout_minutes if opts.timeout_minutes is not None else experiment.budget.timeout_minutes
    if (n_trials is not None and n_trials <= 0) or (timeout is not None and timeout <= 0):
        raise UserError(f"budget: n_trials and timeout must be > 0, got {n_trials} and {timeout}")
    url = opts.storage or experiment.storage or default_storage_url(Path(opts.results_dir), experiment.name)
    storage = open_storage(url)
    name = study_name(experiment, strategy.name, opts.seed)

    # Optuna logs every failed trial with a traceback; the harness prints one line per failure instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_data(experiment.data)
    fidelity = FidelitySampler(data, seed=experiment.data.seed)
    setup_start = time.perf_counter()
    warm_up(data, device)  # one-time costs, kept out of the first trial's harness time
    setup_seconds = time.perf_counter() - setup_start
    recorder = RunRecorder(run_dir(opts.results_dir, experiment.name, strategy.name, opts.seed), experiment.space.names)

    existing = _existing_trials(storage, name)
    inputs = StrategyInputs(experiment.space, experiment.ladder, opts.seed, resumed_trials=len(existing))
    sampler, pruner = strategy.make(inputs)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="minimize", load_if_exists=True)
    _recover_interrupted(study, recorder, strategy.name, opts.seed)
    meta = _metadata(experiment, strategy, opts, url, name, device, n_trials, timeout)
    recorder.write_metadata({**meta, "process_setup_seconds": setup_seconds})

    finished = _count_budget(study)
    target = n_trials if n_trials is not None else math.inf
    spent_minutes = _spent_minutes(recorder)
    remaining_minutes = None if timeout is None else timeout - spent_minutes
    exhausted = _grid_exhausted(study, experiment) if isinstance(sampler, optuna.samplers.GridSampler) else False
    interrupted = False
    if finished < target and (remaining_minutes is None or remaining_minutes > 0) and not exhausted:
        interrupted = _optimize(study, experiment, data, fidelity, recorder, strategy.name, opts, device, target, finished,
                                remaining_minutes)
    rungs, trials = recorder.read()
    samples = {k + 1: len(fidelity.indices(f)) * e for k, (f, e) in enumerate(zip(experiment.ladder.fractions, experiment.ladder.epochs))}
    summary = summarize(rungs, trials, samples, len(experiment.ladder))
    summary.update(study=name, storage=url, records=str(recorder.directory), device=str(device), interrupted=interrupted)
    return summary


def _optimize(study, experiment, data, fidelity, recorder, strategy, opts, device, target, finished, remaining_minutes):
    bar = tqdm(total=None if math.isinf(target) else target, initial=finished, desc=f"{strategy} seed {opts.seed}",
               unit="trial", disable=not opts.progress, dynamic_ncols=True)
    state = {"best": _best_value(study), "fails": 0, "last": time.perf_counter(), "done": finished}

    def on_rung(number: int, rung: int, mae: float) -> None:
        bar.set_postfix_str(f"trial {number} rung {rung}/{len(experiment.ladder)} MAE {mae:.3f} | best {state['best']:.3f}")

    objective = Objective(experiment, data, fidelity, recorder, strategy=strategy, seed=opts.seed, device=str(device),
                          precision=experiment.precision, on_rung=on_rung)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        now = time.perf_counter()
        times = objective.times.pop(trial.number, None)
        wall = now - state["last"]
        state["last"] = now
        train, ev = (times.train, times.eval) if times else (0.0, 0.0)
        recorder.add_trial({
            "strategy": strategy, "seed": opts.seed, "trial": trial.number, "state": trial.state.name,
            "fail_reason": trial.user_attrs.get("fail_reason", ""), "rungs_done": times.rungs if times else 0,
            "last_step": times.last_step if times else 0,
            "val_mae": trial.value if trial.state != optuna.trial.TrialState.FAIL else "",
            "train_seconds": train, "eval_seconds": ev, "wall_seconds": wall, "harness_seconds": max(0.0, wall - train - ev),
        }, trial.params)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            state["best"] = min(state["best"], trial.value)
        state["fails"] = state["fails"] + 1 if trial.state == optuna.trial.TrialState.FAIL else 0
        if trial.state == optuna.trial.TrialState.FAIL:
            bar.write(f"trial {trial.number} failed: {trial.user_attrs.get('fail_reason', 'unknown reason')}")
        if trial.state != optuna.trial.TrialState.FAIL:
            state["done"] += 1
            bar.update(1)
        if state["fails"] >= MAX_CONSECUTIVE_FAILURES:
            bar.write(f"stopping: {state['fails']} trials failed in a row (last: {trial.user_attrs.get('fail_reason')})")
            study.stop()
        elif state["done"] >= target:
            study.stop()

    try:
        study.optimize(objective, n_trials=None, timeout=None if remaining_minutes is None else remaining_minutes * 60,
                       callbacks=[after_trial], catch=(TrialFailed,), gc_after_trial=False, show_progress_bar=False)
    except KeyboardInterrupt:
        # Optuna has failed the trial in flight; record why and queue its configuration again.
        for number, times in objective.times.items():
            recorder.add_trial({"strategy": strategy, "seed": opts.seed, "trial": number, "state": "FAIL",
                                "fail_reason": INTERRUPTED_BY_USER, "rungs_done": times.rungs, "last_step": times.last_step,
                                "train_seconds": times.train, "eval_seconds": times.eval,
                                "wall_seconds": time.perf_counter() - state["last"], "harness_seconds": 0.0}, times.params)
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


def _recover_interrupted(study: optuna.Study, recorder: RunRecorder, strategy: str, seed: int) -> None:
    """A trial left RUNNING by a killed process is failed with its reason and re-queued."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "interrupted: its process stopped mid-trial")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        recorder.add_trial({"strategy": strategy, "seed": seed, "trial": t.number, "state": "FAIL",
                            "fail_reason": "interrupted: its process stopped mid-trial", "train_seconds": 0.0,
                            "eval_seconds": 0.0, "wall_seconds": 0.0, "harness_seconds": 0.0}, t.params)
        if t.params:
            study.enqueue_trial(t.params, skip_if_exists=False)


def _count_budget(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _grid_exhausted(study: optuna.Study, experiment: Experiment) -> bool:
    return _count_budget(study) >= experiment.space.grid_size()


def _best_value(study: optuna.Study) -> float:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return min((t.value for t in done), default=math.inf)


def _spent_minutes(recorder: RunRecorder) -> float:
    trials = pd.read_csv(recorder.trials.path)
    return float(trials["wall_seconds"].sum()) / 60 if len(trials) else 0.0


def _metadata(experiment, strategy, opts, url, name, device, n_trials, timeout) -> dict:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "strategy": strategy.name, "strategy_summary": strategy.summary, "strategy_rationale": strategy.rationale,
        "seed": opts.seed, "study_name": name, "storage": url,
        "budget": {"n_trials": n_trials, "timeout_minutes": timeout},
        "experiment": experiment.to_dict(), "base_config": asdict(experiment.base_config()), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "optuna": optuna.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__},
        "project_commit": commit, "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
