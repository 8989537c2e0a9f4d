"""Experiment files (TOML): loaded once, validated, every error naming the file and field."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from harness.errors import UserError
from model.config import ModelConfig
from strategies.space import PARAM_TYPES, Ladder, Param, SearchSpace

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
DEFAULT_EXPERIMENT = "quick"
_TOP_KEYS = {"name", "description", "data", "ladder", "budget", "run", "model", "space"}
_SECTION_KEYS = {
    "data": {"stations", "days", "seed", "source"},
    "ladder": {"fractions", "epochs"},
    "budget": {"n_trials", "timeout_minutes"},
    "run": {"seeds", "device", "precision", "storage", "strategy"},
}
_PARAM_KEYS = {"type", "low", "high", "log", "step", "choices", "default", "grid"}


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from: the synthetic generator, or a user's files (``source``)."""

    stations: int = 150
    days: int = 28
    seed: int = 0
    source: str | None = None


@dataclass(frozen=True)
class Budget:
    n_trials: int | None = None
    timeout_minutes: float | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    path: str
    description: str
    data: DataSpec
    space: SearchSpace
    ladder: Ladder
    budget: Budget
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    precision: str = "auto"
    storage: str | None = None
    strategy: str | None = None  # the default for 'run' (the overnight plan sets it)
    model: dict[str, Any] = field(default_factory=dict)  # fixed values for every trial

    def base_config(self) -> ModelConfig:
        """The configuration every trial starts from: v4, with the experiment's fixed values and defaults."""
        return ModelConfig().with_params({**self.model, **self.space.defaults()})

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ladder"]["steps"] = list(self.ladder.steps)
        return out


def list_experiments() -> list[Path]:
    return sorted(EXPERIMENTS_DIR.glob("*.toml"))


def resolve_experiment_path(name_or_path: str) -> Path:
    """A path to a TOML file, or the name of one in experiments/."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UserError(f"{path}: experiment file not found")
        return path
    candidate = EXPERIMENTS_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        known = ", ".join(p.stem for p in list_experiments())
        raise UserError(
            f"unknown experiment {name_or_path!r}; known: {known} (or give a path to a .toml file)"
        )
    return candidate


def load_experiment(name_or_path: str = DEFAULT_EXPERIMENT) -> Experiment:
    path = resolve_experiment_path(name_or_path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    return parse_experiment(doc, str(path), default_name=path.stem)


def parse_experiment(doc: dict, where: str, default_name: str = "experiment") -> Experiment:
    def fail(field_name: str, problem: str) -> UserError:
        return UserError(f"{where}: {field_name}: {problem}")

    _no_unknown(doc, _TOP_KEYS, "", fail)
    for section, keys in _SECTION_KEYS.items():
        if not isinstance(doc.get(section, {}), dict):
            raise fail(section, "must be a table")
        _no_unknown(doc.get(section, {}), keys, f"{section}.", fail)
    data_doc, run_doc, budget_doc = doc.get("data", {}), doc.get("run", {}), doc.get("budget", {})

    data = DataSpec(
        stations=_int(data_doc, "stations", 150, 1, "data", fail),
        days=_int(data_doc, "days", 28, 10, "data", fail),
        seed=_int(data_doc, "seed", 0, None, "data", fail),
        source=_str(data_doc, "source", None, "data", fail),
    )
    if data.source and not Path(data.source).is_absolute():
        data = DataSpec(
            data.stations, data.days, data.seed, str((Path(where).parent / data.source).resolve())
        )

    ladder_doc = doc.get("ladder")
    if not ladder_doc:
        raise fail("ladder", "missing: give fractions = [...] and epochs = [...]")
    fractions = [
        _fraction(v, f"ladder.fractions[{i}]", fail)
        for i, v in enumerate(_list(ladder_doc, "fractions", "ladder", fail))
    ]
    epochs = _list(ladder_doc, "epochs", "ladder", fail)
    if not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs):
        raise fail("ladder.epochs", f"must be whole numbers, got {epochs}")
    try:
        ladder = Ladder(tuple(fractions), tuple(epochs))
    except ValueError as exc:
        raise fail("ladder", str(exc)) from None

    n_trials = budget_doc.get("n_trials")
    timeout = budget_doc.get("timeout_minutes")
    if n_trials is None and timeout is None:
        raise fail("budget", "give n_trials, timeout_minutes, or both")
    if n_trials is not None and (
        not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials <= 0
    ):
        raise fail("budget.n_trials", f"must be a whole number > 0, got {n_trials!r}")
    if timeout is not None and (
        not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0
    ):
        raise fail("budget.timeout_minutes", f"must be a number > 0, got {timeout!r}")

    seeds = run_doc.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise fail("run.seeds", f"must be a non-empty list of whole numbers, got {seeds!r}")

    model = doc.get("model", {})
    if not isinstance(model, dict):
        raise fail("model", "must be a table of fixed model settings")
    space = _space(doc.get("space"), fail)
    try:
        ModelConfig().with_params({**model, **space.defaults()})
    except (ValueError, TypeError) as exc:
        raise fail("model" if model else "space", str(exc)) from None

    return Experiment(
        name=str(doc.get("name", default_name)),
        path=where,
        description=str(doc.get("description", "")),
        data=data,
        space=space,
        ladder=ladder,
        budget=Budget(n_trials, float(timeout) if timeout is not None else None),
        seeds=tuple(seeds),
        device=_str(run_doc, "device", "auto", "run", fail),
        precision=_str(run_doc, "precision", "auto", "run", fail),
        storage=_str(run_doc, "storage", None, "run", fail) or None,
        model=dict(model),
        strategy=_str(run_doc, "strategy", None, "run", fail),
    )


def _space(doc: Any, fail) -> SearchSpace:
    if not isinstance(doc, dict) or not doc:
        raise fail("space", "the search space is empty: add at least one [space.<parameter>] table")
    known = set(ModelConfig.field_names())
    params = []
    for name, spec in doc.items():
        where = f"space.{name}"
        if name not in known:
            raise fail(where, f"not a model parameter; known: {', '.join(sorted(known))}")
        if not isinstance(spec, dict):
            raise fail(where, "must be a table with type, range or choices, and default")
        _no_unknown(spec, _PARAM_KEYS, f"{where}.", fail)
        kind = spec.get("type")
        if kind not in PARAM_TYPES:
            raise fail(f"{where}.type", f"must be one of {PARAM_TYPES}, got {kind!r}")
        if "default" not in spec:
            raise fail(
                f"{where}.default", "missing (the value used when the parameter is not searched)"
            )
        param = _param(name, kind, spec, where, fail)
        for value in (param.default, *(param.grid or ())):
            if not param.contains(value):
                raise fail(
                    f"{where}",
                    f"value {value!r} (default or grid) lies outside the range or choices",
                )
        params.append(param)
    return SearchSpace(tuple(params))


def _param(name: str, kind: str, spec: dict, where: str, fail) -> Param:
    grid = spec.get("grid")
    if grid is not None and (not isinstance(grid, list) or not grid):
        raise fail(f"{where}.grid", "must be a non-empty list of values")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail(
                f"{where}.choices", "a categorical parameter needs a non-empty list of choices"
            )
        return Param(
            name, kind, spec["default"], choices=tuple(choices), grid=tuple(grid) if grid else None
        )
    low, high, log, step = (
        spec.get("low"),
        spec.get("high"),
        bool(spec.get("log", False)),
        spec.get("step"),
    )
    for key, value in (("low", low), ("high", high)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise fail(f"{where}.{key}", f"must be a number, got {value!r}")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise fail(where, "an int parameter needs whole-number low, high and step")
    if low >= high:
        raise fail(where, f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise fail(f"{where}.low", f"must be > 0 on a log scale, got {low}")
    if log and step:
        raise fail(where, "cannot have both log = true and a step")
    if step is not None and (not isinstance(step, (int, float)) or step <= 0):
        raise fail(f"{where}.step", f"must be > 0, got {step!r}")
    return Param(
        name,
        kind,
        spec["default"],
        low=low,
        high=high,
        log=log,
        step=step,
        grid=tuple(grid) if grid else None,
    )


def _no_unknown(doc: dict, allowed: set, prefix: str, fail) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise fail(
            f"{prefix}{unknown[0]}", f"unknown field; allowed here: {', '.join(sorted(allowed))}"
        )


def _int(doc: dict, key: str, default: int, minimum: int | None, section: str, fail) -> int:
    value = doc.get(key, default)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (minimum is not None and value < minimum)
    ):
        raise fail(
            f"{section}.{key}",
            f"must be a whole number{f' >= {minimum}' if minimum is not None else ''}, got {value!r}",
        )
    return value


def _str(doc: dict, key: str, default, section: str, fail):
    value = doc.get(key, default)
    if value is not None and not isinstance(value, str):
        raise fail(f"{section}.{key}", f"must be a string, got {value!r}")
    return value


def _list(doc: dict, key: str, section: str, fail) -> list:
    value = doc.get(key)
    if not isinstance(value, list) or not value:
        raise fail(f"{section}.{key}", f"must be a non-empty list, got {value!r}")
    return value


def _fraction(value: Any, where: str, fail) -> float:
    """A number, or a string like "1/9"."""
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(Fraction(value)) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise fail(where, f'must be a number or a fraction like "1/9", got {value!r}') from None
