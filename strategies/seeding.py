"""Every strategy's sampler draws trial n's random numbers from (run seed, n) alone.

An Optuna sampler keeps one random stream per process. A study resumed in a new process (after
a kill, on another worker) would draw from a restarted stream: it would repeat the first
configurations, and a resumed run would not be the run it replaces. Seeding each draw's
streams from the trial's number and what is drawn (one parameter, or the joint sample) makes
trial n's value of a parameter depend only on the seed, n, the parameter and the trials already
finished, whichever process makes it. Keyed by parameter, not only by trial: a process killed
between two of a trial's parameter writes leaves the first ones stored, and the resumed trial
draws only the rest; a stream seeded once per trial would hand them the draws the stored ones
had taken.
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
    (``seed``, trial number, what is drawn) before each draw; everything else is ``inner``'s."""

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
        reseed(self.inner, self.seed, trial.number, RELATIVE)
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        reseed(self.inner, self.seed, trial.number, param_name)
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


RELATIVE = ""  # the draw key of a joint (relative) sample; a parameter's name keys its own


def reseed(sampler: BaseSampler, seed: int, number: int, draw: str = RELATIVE) -> int:
    """Seed every random stream of ``sampler`` and of the samplers it holds (TPE's start-up
    sampler, CMA-ES's and QMC's independent sampler) for trial ``number``'s ``draw``; returns
    how many. A stream's seed depends on (seed, number, draw) and on the class and attribute
    that own it, so TPE's start-up draws are the random strategy's draws (the two stay exact
    twins while TPE starts up) and a sampler's own streams differ from each other."""
    count = 0
    key = zlib.crc32(draw.encode())
    for name, value in vars(sampler).items():
        if isinstance(value, LazyRandomState):
            owner = zlib.crc32(f"{type(sampler).__name__}.{name}".encode())
            entropy = (seed, number, owner, key)
            value.rng.seed(np.random.SeedSequence(entropy).generate_state(1)[0])
            count += 1
        elif isinstance(value, BaseSampler):
            count += reseed(value, seed, number, draw)
    return count
