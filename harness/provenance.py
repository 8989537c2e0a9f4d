"""Provenance: what a run's metadata.json says about how it was made."""

from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_commit() -> str:
    """The git commit of this checkout, or 'unknown'."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device) -> str:
    """A readable name of the machine's device: the GPU's name or the CPU's."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def run_metadata(
    experiment, strategy, *, seed: int, url: str, study: str, device, backend, budget: dict
) -> dict:
    """The resolved description of one run: strategy, seed, study, budget, experiment, base
    configuration, device, library versions, commit and time."""
    import torch

    return {
        "strategy": strategy.name,
        "strategy_summary": strategy.summary,
        "strategy_rationale": strategy.rationale,
        # What the verdict's tie rule may use besides scores (names never decide).
        "strategy_traits": {
            "prunes": strategy.prunes,
            "objectives": strategy.objectives,
            "fixed_queue": strategy.queue is not None,
            "warm_start": strategy.warm_start and strategy.queue is None,
        },
        "seed": seed,
        "study_name": study,
        "storage": url,
        "budget": budget,
        "experiment": experiment.to_dict(),
        "base_config": asdict(experiment.base_config()),
        "device": backend.device_label(device),
        "device_name": backend.device_name(device),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "project_commit": project_commit(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
