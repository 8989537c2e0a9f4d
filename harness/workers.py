"""Several processes on one study: what the coordinator stores for its workers, starting local
workers, and a worker joining a study (from this machine or another)."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import optuna

from harness.errors import UserError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
COORDINATOR_ENV = "HARNESS_COORDINATOR_PID"  # set for local workers: who they die with


def share_with_workers(study: optuna.Study, experiment, strategy, seed: int, limits) -> None:
    """Store in the study what a worker needs to train the same run: the experiment file's text,
    the strategy (and its record setting), the seed and the run's limits."""
    path = Path(experiment.path)
    record = strategy.record
    attrs = {
        "experiment_toml": path.read_text(encoding="utf-8") if path.is_file() else "",
        "experiment_path": str(path),
        "experiment_name": experiment.name,
        "strategy": strategy.name,
        "record": None if record is None else [record.configs, record.repeats],
        "seed": seed,
        "trial_budget": None if math.isinf(limits.trials) else limits.trials,
        "deadline": limits.deadline,
        "flops_budget": limits.flops,
    }
    for key, value in attrs.items():
        study.set_user_attr(key, value)


def start_workers(
    url: str, name: str, *, count: int, results_dir: str, threads: int, devices: list[str | None]
) -> list[subprocess.Popen]:
    """Start ``count`` local `harness worker` processes on study ``name``; worker k trains on
    ``devices[k]`` (None: its own default) with ``threads`` CPU threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), COORDINATOR_ENV: str(os.getpid())}
    children = []
    for k in range(count):
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
            results_dir,
            "--no-progress",
        ]
        if devices[k]:
            cmd += ["--device", devices[k]]
        # Their summaries would repeat the coordinator's; their errors still reach stderr.
        children.append(
            subprocess.Popen(
                cmd,
                env=env,
                cwd=os.getcwd(),
                stdout=subprocess.DEVNULL,
                # their own process group: Ctrl-C reaches the coordinator alone, which stops them
                process_group=0,
            )
        )
    return children


def stop_with_coordinator() -> None:
    """In a local worker (started by ``start_workers``): be sent SIGTERM when the coordinator
    dies, however it dies (kill -9 included), so no worker outlives it and trains on beside
    the next one. Linux's parent-death signal, armed by the worker itself (not between fork
    and exec, which is unsafe in a threaded parent); elsewhere nothing, and the coordinator's
    own SIGTERM or Ctrl-C still stops its workers."""
    parent = os.environ.get(COORDINATOR_ENV)
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the coordinator died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def load_shared(storage_url: str, name: str):
    """What a worker needs from the study the coordinator created: (storage, experiment,
    strategy, seed). A study the harness did not create is a UserError."""
    from harness.experiment import parse_experiment
    from harness.storage import open_storage
    from strategies import get_strategy
    from strategies.registry import RecordSetting, record_strategy

    storage = open_storage(storage_url)
    try:
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    except KeyError:
        raise UserError(
            f"study {name!r} not found in {storage_url} (start it with 'run' or 'compare' first)"
        ) from None
    if "experiment_toml" not in attrs:
        raise UserError(f"study {name!r} was not created by this harness (no experiment stored)")
    experiment = parse_experiment(
        tomllib.loads(attrs["experiment_toml"]),
        attrs["experiment_path"],
        default_name=attrs["experiment_name"],
    )
    record = attrs.get("record")
    strategy = (
        record_strategy(RecordSetting(*record)) if record else get_strategy(attrs["strategy"])
    )
    return experiment, strategy, attrs["seed"]


def shared_limits(study: optuna.Study, local):
    """A worker's limits: the coordinator's trial budget, deadline and compute budget, as
    stored in the study (``local`` where the study holds none)."""
    attrs = study.user_attrs
    trials = attrs.get("trial_budget", attrs.get("target"))  # "target" before 2026-12
    return replace(
        local,
        trials=local.trials if trials is None else trials,
        deadline=attrs.get("deadline"),
        flops=attrs.get("flops_budget", local.flops),
    )
