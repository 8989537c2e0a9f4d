"""The search space and the fidelity ladder, as strategies see them (no model knowledge)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

PARAM_TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    """One hyperparameter. ``grid`` lists the values the reduced grid tries (None: fixed at ``default``)."""

    name: str
    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None
    grid: tuple | None = None

    def distribution(self) -> BaseDistribution:
        if self.type == "categorical":
            return CategoricalDistribution(self.choices)
        if self.type == "int":
            return IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` in [0, 1) of this parameter's range (log-aware, on its steps)."""
        u = min(max(float(u), 0.0), 1 - 1e-12)
        if self.type == "categorical":
            return self.choices[int(u * len(self.choices))]
        if self.type == "int" or self.step:
            step = self.step or 1
            n = int(round((self.high - self.low) / step)) + 1
            value = self.low + int(u * n) * step
            return int(value) if self.type == "int" else float(value)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(max(value, self.low), self.high))  # exp(log(x)) can land a hair outside

    def to_unit(self, value: Any) -> float:
        """Where ``value`` lies in [0, 1] of the range (numeric parameters)."""
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (float(value) - self.low) / (self.high - self.low)

    def contains(self, value: Any) -> bool:
        if self.type == "categorical":
            return value in self.choices
        return self.distribution()._contains(self.distribution().to_internal_repr(value))


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        if not self.params:
            raise ValueError("the search space is empty")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution() for p in self.params}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask the trial for every parameter, in a fixed order."""
        out = {}
        for p in self.params:
            if p.type == "categorical":
                out[p.name] = trial.suggest_categorical(p.name, p.choices)
            elif p.type == "int":
                out[p.name] = trial.suggest_int(
                    p.name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1)
                )
            else:
                out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
        return out

    def reduced_grid(self) -> dict[str, list]:
        """The grid over the parameters that name ``grid`` values; every other one fixed at its default."""
        return {p.name: list(p.grid) if p.grid else [p.default] for p in self.params}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.reduced_grid().values())


@dataclass(frozen=True)
class Ladder:
    """Rungs of (data fraction, epochs). Training continues from one rung to the next.

    A rung's budget is fraction x epochs; ``steps`` expresses it in units of the first rung,
    so that the step a trial reports at rung k is the budget Hyperband and successive
    halving expect there (1, 3, 9 for fractions 1/9, 1/3, 1 at equal epochs).
    """

    fractions: tuple[float, ...]
    epochs: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.fractions or len(self.fractions) != len(self.epochs):
            raise ValueError("fractions and epochs must be non-empty lists of the same length")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"every fraction must be in (0, 1], got {list(self.fractions)}")
        if any(e < 1 for e in self.epochs):
            raise ValueError(f"every rung needs at least 1 epoch, got {list(self.epochs)}")
        steps = self.steps
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(
                f"the ladder must increase: rung budgets (fraction x epochs) {steps} in units of the first"
            )

    @property
    def steps(self) -> tuple[int, ...]:
        base = self.fractions[0] * self.epochs[0]
        return tuple(max(1, round(f * e / base)) for f, e in zip(self.fractions, self.epochs))

    @property
    def max_step(self) -> int:
        return self.steps[-1]

    @property
    def reduction_factor(self) -> int:
        """The ratio between consecutive rung budgets (geometric ladders; 3 for 1/9, 1/3, 1)."""
        if len(self.steps) == 1:
            return 3
        ratio = (self.steps[-1] / self.steps[0]) ** (1 / (len(self.steps) - 1))
        return max(2, round(ratio))

    def __len__(self) -> int:
        return len(self.fractions)
