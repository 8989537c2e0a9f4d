"""What every strategy receives and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna

from strategies.space import Ladder, SearchSpace


@dataclass(frozen=True)
class StrategyInputs:
    """The small frozen input of every factory. Samplers are seeded with ``seed``; the
    registry reseeds them from (seed, trial number, parameter) before every draw
    (strategies.seeding), so a resumed study or an extra worker never restarts a stream."""

    space: SearchSpace
    ladder: Ladder
    seed: int


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: its name, the words the report quotes, and ``make``, which returns
    the (sampler, pruner) pair for a StrategyInputs."""

    name: str
    summary: str  # one line: how it works
    rationale: str  # when it shines, and its known caveats (quoted by the write-up)
    make: Callable[[StrategyInputs], tuple[optuna.samplers.BaseSampler, optuna.pruners.BasePruner]]
    prunes: bool
    # Configurations enqueued once when the study is created; when given, a study runs exactly
    # these (each once, whatever the number of workers) and nothing else.
    queue: Callable[[StrategyInputs], list[dict]] | None = None
    # 2: the study minimizes (validation MAE, training seconds) together; pruners do not apply.
    objectives: int = 1
    # Set on `record`'s learning-curve strategies only (a strategies.registry.RecordSetting).
    record: object | None = None
    # False: the study does not evaluate the experiment's defaults (v4) first (a cold start,
    # named <strategy>.cold so it never shares a study or a folder with the warm one).
    warm_start: bool = True
    # True: every trial starts from v4's trained weights where the shapes match (named
    # <strategy>.v4w, apart from the twin that starts from fresh weights).
    v4_weights: bool = False
    # The parameters this twin searches, the rest at v4's values (named
    # <strategy>.search-<p1>+<p2>): a smaller space against the full one, same sampler.
    searched: tuple[str, ...] | None = None
