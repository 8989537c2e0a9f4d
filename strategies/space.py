"""The search space and the fidelity ladder, as strategies see them (no model knowledge)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
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
    """One hyperparameter.

    ``grid`` lists the values the reduced grid tries (None: fixed at ``default``).
    """

    name: str
    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None
    grid: tuple | None = None

    def __post_init__(self) -> None:
        """Every structural rule, checked once: a bad field is a ValueError naming it."""
        if self.type not in PARAM_TYPES:
            raise ValueError(f"type must be one of {PARAM_TYPES}, got {self.type!r}")
        if not isinstance(self.log, bool):
            raise ValueError(f"log must be true or false, got {self.log!r}")
        if self.type == "categorical":
            _check_choices(self)
        else:
            _check_range(self)
        if self.grid is not None:
            if not isinstance(self.grid, tuple) or not self.grid:
                raise ValueError(f"grid must be a non-empty list of values, got {self.grid!r}")
            _no_duplicates("grid", self.grid)
        for what, value in (
            ("default", self.default),
            *(("grid value", v) for v in self.grid or ()),
        ):
            if not self.contains(value):
                raise ValueError(f"{what} {value!r} lies outside {self.describe()}")

    def describe(self) -> str:
        """The range or choices, as a user would write them."""
        if self.type == "categorical":
            return f"the choices {list(self.choices)}"
        extra = (
            " on a log scale" if self.log else f" in steps of {self.step:g}" if self.step else ""
        )
        return f"the range [{self.low:g}, {self.high:g}]{extra}"

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution this parameter is sampled from."""
        if self.type == "categorical":
            return CategoricalDistribution(self.choices)
        if self.type == "int":
            return IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def from_unit(self, u: float) -> Any:
        """The value at position ``u`` in [0, 1) of the range (log-aware, on its steps)."""
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

    def choice_of(self, value: Any) -> Any:
        """The declared choice a recorded ``value`` stands for (CSV gives strings, numpy numbers
        or a float column's 128.0); None when it stands for none."""
        for choice in self.choices or ():
            if str(choice) == str(value):
                return choice
            if isinstance(choice, (int, float)) and not isinstance(choice, bool):
                try:
                    if float(choice) == float(value):
                        return choice
                except (TypeError, ValueError):
                    continue
        return None

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one Optuna could suggest (an int for an int parameter)."""
        if self.type == "categorical":
            return any(type(value) is type(c) and value == c for c in self.choices)
        number = Integral if self.type == "int" else Real
        if not isinstance(value, number) or isinstance(value, bool) or not math.isfinite(value):
            return False
        return self.distribution()._contains(self.distribution().to_internal_repr(value))


_CHOICE_TYPES = (str, int, float, bool, type(None))  # what Optuna's CategoricalDistribution stores


def _check_choices(p: Param) -> None:
    if p.low is not None or p.high is not None or p.step is not None or p.log:
        raise ValueError("low, high, step and log do not apply to a categorical parameter")
    if not isinstance(p.choices, tuple) or not p.choices:
        raise ValueError("a categorical parameter needs a non-empty list of choices")
    for c in p.choices:
        if not isinstance(c, _CHOICE_TYPES) or (isinstance(c, float) and not math.isfinite(c)):
            raise ValueError(f"choice {c!r} is not a string, a finite number, a boolean or none")
    _no_duplicates("choices", p.choices)


def _check_range(p: Param) -> None:
    if p.choices is not None:
        raise ValueError(f"choices apply to a categorical parameter, not to a {p.type} one")
    for key in ("low", "high"):
        value = getattr(p, key)
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value!r}")
        if p.type == "int" and not float(value).is_integer():
            raise ValueError(f"{key} of an int parameter must be a whole number, got {value!r}")
    if p.step is not None:
        step_ok = isinstance(p.step, Real) and not isinstance(p.step, bool)
        step_ok = step_ok and math.isfinite(p.step) and p.step > 0
        if not step_ok or (p.type == "int" and not float(p.step).is_integer()):
            kind = "a whole number > 0" if p.type == "int" else "a finite number > 0"
            raise ValueError(f"step must be {kind}, got {p.step!r}")
    if p.low >= p.high:
        raise ValueError(f"low ({p.low}) must be below high ({p.high})")
    if p.log and p.low <= 0:
        raise ValueError(f"low must be > 0 on a log scale, got {p.low}")
    if p.log and p.step:
        raise ValueError("cannot have both log = true and a step")
    if p.type == "int" and p.step and (p.high - p.low) % p.step:
        # Optuna would quietly lower high to the last step; say so instead.
        raise ValueError(f"high - low ({p.high - p.low:g}) must be a multiple of step ({p.step:g})")


def _no_duplicates(what: str, values: tuple) -> None:
    seen = []
    for v in values:
        if any(type(v) is type(s) and v == s for s in seen):
            raise ValueError(f"{what} lists {v!r} twice")
        seen.append(v)


@dataclass(frozen=True)
class SearchSpace:
    """The parameters searched, in a fixed order (never empty)."""

    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        if not self.params:
            raise ValueError("the search space is empty")

    @property
    def names(self) -> tuple[str, ...]:
        """The parameters' names, in order."""
        return tuple(p.name for p in self.params)

    def only(self, names) -> SearchSpace:
        """The parameters named in ``names``, in this space's order."""
        return SearchSpace(tuple(p for p in self.params if p.name in set(names)))

    def param(self, name: str) -> Param:
        """The parameter called ``name`` (KeyError when the space does not search it)."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        """Each parameter's default (v4), by name."""
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
        """The grid over the parameters that name ``grid`` values; the others at their default."""
        return {p.name: list(p.grid) if p.grid else [p.default] for p in self.params}

    def grid_size(self) -> int:
        """How many points the reduced grid has."""
        return math.prod(len(v) for v in self.reduced_grid().values())


@dataclass(frozen=True)
class LadderRung:
    """One rung of the ladder: what a trial trains there and the step it reports.

    ``fidelity`` below is whatever draws the training subsample of a fraction (its
    ``indices(fraction)``): model.fidelity.FidelitySampler, or the replay's stand-in. Everything
    that walks the rungs asks the rung, so a new kind of fidelity is a new sampler only.
    """

    number: int  # 1-based; the last is the top rung
    fraction: float  # of the training windows, in (0, 1]
    epochs: int  # trained at this rung, on its subsample (not the running total)
    step: int  # the budget in units of the first rung's: what the trial reports to the pruner

    def indices(self, fidelity):
        """The training windows of this rung's subsample."""
        return fidelity.indices(self.fraction)

    def samples(self, fidelity) -> int:
        """Training samples a trial processes at this rung: its subsample's windows x its epochs."""
        return len(self.indices(fidelity)) * self.epochs


@dataclass(frozen=True)
class Ladder:
    """Rungs of (data fraction, epochs). Training continues from one rung to the next.

    A rung's budget is fraction x epochs; ``steps`` expresses it in units of the first rung,
    so that the step a trial reports at rung k is the budget Hyperband and successive
    halving expect there (1, 3, 9 for fractions 1/9, 1/3, 1 at equal epochs). ``rungs`` is the
    one way to walk it.
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
                "the ladder must increase: rung budgets (fraction x epochs) "
                f"{steps} in units of the first"
            )

    @property
    def steps(self) -> tuple[int, ...]:
        """Each rung's budget in units of the first rung's (fraction x epochs), at least 1."""
        base = self.fractions[0] * self.epochs[0]
        return tuple(max(1, round(f * e / base)) for f, e in zip(self.fractions, self.epochs))

    @classmethod
    def from_record(cls, record: dict) -> Ladder:
        """The ladder of a recorded experiment (metadata.json's ``ladder``: fractions, epochs)."""
        return cls(tuple(record["fractions"]), tuple(record["epochs"]))

    @property
    def rungs(self) -> tuple[LadderRung, ...]:
        """The rungs in the order a trial climbs them."""
        return tuple(
            LadderRung(k, f, e, s)
            for k, (f, e, s) in enumerate(zip(self.fractions, self.epochs, self.steps), start=1)
        )

    @property
    def budget(self) -> float:
        """Training a whole climb does, in epochs of the full training set (sum of fraction x
        epochs)."""
        return sum(f * e for f, e in zip(self.fractions, self.epochs))

    def samples(self, fidelity) -> dict[int, int]:
        """Training samples a trial processes at each rung, by rung number."""
        return {rung.number: rung.samples(fidelity) for rung in self.rungs}

    def with_top_epochs(self, epochs: int) -> Ladder:
        """The same ladder with ``epochs`` at its top rung."""
        return Ladder(self.fractions, (*self.epochs[:-1], epochs))

    @property
    def max_step(self) -> int:
        """The last rung's step."""
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
