"""What every strategy receives and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import optuna

from strategies.space import Ladder, SearchSpace


@dataclass(frozen=True)
class StrategyInputs:
    """The small frozen input of every factory.

    ``resumed_trials`` is how many trials the study already holds: samplers whose random
    stream would otherwise restart from the beginning (random, TPE's start-up) are
    reseeded on resume so they do not repeat the configurations already tried.
    """

    space: SearchSpace
    ladder: Ladder
    seed: int
    resumed_trials: int = 0

    @property
    def stream_seed(self) -> int:
        return self.seed if self.resumed_trials == 0 else (self.seed * 1_000_003 + self.resumed_trials) % 2**31


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str  # one line: how it works
    rationale: str  # when it shines, and its known caveats (quoted by the write-up)
    make: Callable[[StrategyInputs], tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]]
    prunes: bool
