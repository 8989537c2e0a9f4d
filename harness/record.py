"""``record``: the learning curves the replay surrogate is fitted to, from a space-filling design
whose size grows with the search space."""

from __future__ import annotations

import math

from harness.defaults import RECORD_REPEATS, RESULTS_DIR
from harness.run import RunOptions, run_strategy
from strategies.registry import RecordSetting, record_strategy

CONFIGS_PER_PARAMETER = 8  # Sobol points per searched parameter (rounded up to a power of 2)
MIN_CONFIGS = 32


def design_size(n_params: int) -> int:
    """Scrambled-Sobol configurations for a space of ``n_params`` parameters: 8 per parameter,
    at least 32, rounded up to a power of two (Sobol's balance holds at powers of two)."""
    wanted = max(MIN_CONFIGS, CONFIGS_PER_PARAMETER * n_params)
    return 2 ** math.ceil(math.log2(wanted))


def record(
    experiment,
    *,
    configs: int | None = None,
    repeats: int = RECORD_REPEATS,
    results_dir: str = RESULTS_DIR,
    storage: str | None = None,
    device: str | None = None,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """Train ``configs`` Sobol configurations (default: ``design_size`` of the space) plus v4,
    ``repeats`` times each, through every rung, unpruned; resumable. Returns run's summary."""
    configs = configs or design_size(len(experiment.space.params))
    return run_strategy(
        experiment,
        RunOptions(
            record_strategy(RecordSetting(configs, repeats)),
            results_dir=results_dir,
            storage=storage,
            n_trials=(configs + 1) * repeats,
            timeout_minutes=float("inf"),
            device=device,
            progress=progress,
            workers=workers,
        ),
    )
