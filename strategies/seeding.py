"""Every strategy's sampler draws trial n's random numbers from (run seed, n) alone.

An Optuna sampler keeps one random stream per process. A study resumed in a new process (after
a kill, on another worker) would draw from a restarted stream: it would repeat the first
configurations, and a resumed run would not be the run it replaces. Seeding each trial's
streams from its number makes trial n's draw depend only on the seed, n and the trials already
finished, whichever process makes it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.samplers._lazy_random_state import LazyRandomState  # private; pinned Optuna 5.x
from optuna.trial import FrozenTrial, TrialState


class PerTrialSeeded(BaseSampler):
    """``inner`` with its random streams (and those of its fallback samplers) reseeded from
    (``seed``, trial number) before each trial; everything else is ``inner``'s own."""

    def __init__(self, inner: BaseSampler, seed: int) -> None:
        self.inner, self.seed = inner, seed

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        reseed(self.inner, self.seed, trial.number)
        self.inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        # Optuna asks for this when threads share one sampler (study.optimize(n_jobs > 1)),
        # which the harness never does: per-trial reseeding of a shared object would race.
        pass


def reseed(sampler: BaseSampler, seed: int, number: int) -> int:
    """Seed every random stream of ``sampler`` and of the samplers it holds (TPE's start-up
    sampler, CMA-ES's and QMC's independent sampler) for trial ``number``; returns how many.
    A stream's seed depends on (seed, number) and on the class and attribute that own it, so
    TPE's start-up draws are the random strategy's draws (the two stay exact twins while TPE
    starts up) and a sampler's own streams differ from each other."""
    count = 0
    for name, value in vars(sampler).items():
        if isinstance(value, LazyRandomState):
            owner = zlib.crc32(f"{type(sampler).__name__}.{name}".encode())
            value.rng.seed(np.random.SeedSequence((seed, number, owner)).generate_state(1)[0])
            count += 1
        elif isinstance(value, BaseSampler):
            count += reseed(value, seed, number)
    return count
