"""Experiment files (TOML): loaded once, validated, every error naming the file and field."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from harness.defaults import DATA_DAYS, DATA_STATIONS, DEFAULT_EXPERIMENT
from harness.errors import UserError
from harness.layout import REPLAY_SUFFIX
from model.config import PRECISIONS, ModelConfig
from model.windows import MAX_STATION_HOURS
from strategies.space import PARAM_TYPES, Ladder, Param, SearchSpace

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
_TOP_KEYS = {"name", "description", "data", "ladder", "budget", "run", "model", "space"}
_SECTION_KEYS = {
    "data": {"stations", "days", "seed", "source"},
    "ladder": {"fractions", "epochs"},
    "budget": {"n_trials", "timeout_minutes"},
    "run": {"seeds", "device", "precision", "storage", "strategy"},
}
_PARAM_KEYS = {"type", "low", "high", "log", "step", "choices", "default", "grid"}
MAX_SEED = 2**32 - 1  # numpy's RandomState, behind Optuna's samplers, takes seeds below 2**32
MAX_STATIONS, MIN_DAYS, MAX_DAYS = 100_000, 10, 3653
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from: the synthetic generator, or a user's files (``source``)."""

    stations: int = DATA_STATIONS
    days: int = DATA_DAYS
    seed: int = 0
    source: str | None = None


@dataclass(frozen=True)
class Budget:
    """A run's budget: a trial count, a wall-clock limit in minutes, or both (None: unlimited)."""

    n_trials: int | None = None
    timeout_minutes: float | None = None


@dataclass(frozen=True)
class Experiment:
    """One experiment file, parsed and validated: data, search space, ladder, budget and run
    settings."""

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
        """The configuration every trial starts from: v4, the fixed values and the defaults."""
        return ModelConfig().with_params({**self.model, **self.space.defaults()})

    def fidelity_sampler(self, data):
        """What draws each rung's training subsample on ``data``: the one place the kind of
        fidelity is chosen (nested stratified subsamples of the training windows)."""
        from model.fidelity import FidelitySampler

        return FidelitySampler(data, seed=self.data.seed)

    def to_dict(self) -> dict:
        """A plain dict of every field (with the ladder's steps), as written to run metadata."""
        out = asdict(self)
        out["ladder"]["steps"] = list(self.ladder.steps)
        return out


def list_experiments() -> list[Path]:
    """The experiment files in experiments/, sorted by path."""
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
    """The experiment of a name in experiments/ or a path to a TOML file, validated."""
    path = resolve_experiment_path(name_or_path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_experiment(doc, str(path), default_name=path.stem)


def name_problem(name: object, folder: bool = False) -> str | None:
    """Why ``name`` cannot name an experiment's folder (None when it can): one safe path
    component of letters, digits, '-', '_' and '.', not starting with '.'. A ``folder`` under
    results/ may end in '.replay' (replayed runs); an experiment's own name may not."""
    if not isinstance(name, str):
        return f"must be a string, got {name!r}"
    if not name:
        return "is empty"
    if not _NAME.fullmatch(name):
        return (
            f"{name!r} is not a safe folder name: use 1-100 letters, digits, '-', '_' or '.', "
            "not starting with '.'"
        )
    if name.endswith(REPLAY_SUFFIX) and not folder:
        return f"{name!r} ends in '{REPLAY_SUFFIX}', which names replayed runs' folders"
    return None


def device_problem(device: object) -> str | None:
    """Why ``device`` is not a device name (None when it is)."""
    if isinstance(device, str) and _DEVICE.fullmatch(device):
        return None
    return f"must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}"


def seed_problem(seed: object) -> str | None:
    """Why ``seed`` cannot seed Optuna's samplers and numpy (None when it can)."""
    if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED:
        return None
    return f"must be a whole number in 0..{MAX_SEED} (0 <= seed < 2**32), got {seed!r}"


def data_problem(stations: object, days: object) -> tuple[str, str] | None:
    """(field, why) when the synthetic data's size is not one this harness can build."""
    for key, value, low, high in (
        ("stations", stations, 1, MAX_STATIONS),
        ("days", days, MIN_DAYS, MAX_DAYS),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return key, f"must be a whole number >= {low} and <= {high}, got {value!r}"
    if stations * days * 24 > MAX_STATION_HOURS:
        return "stations", (
            f"{stations} stations x {days} days is {stations * days * 24:,} station-hours, "
            f"more than the {MAX_STATION_HOURS:,} one machine's memory can hold as windows"
        )
    return None


def parse_experiment(doc: dict, where: str, default_name: str = "experiment") -> Experiment:
    """Validate a parsed TOML document; an error is a UserError naming ``where`` and the field."""

    def fail(field_name: str, problem: str) -> UserError:
        return UserError(f"{where}: {field_name}: {problem}")

    _no_unknown(doc, _TOP_KEYS, "", fail)
    for section, keys in _SECTION_KEYS.items():
        if not isinstance(doc.get(section, {}), dict):
            raise fail(section, "must be a table")
        _no_unknown(doc.get(section, {}), keys, f"{section}.", fail)
    for section in ("model", "space"):
        if not isinstance(doc.get(section, {}), dict):
            raise fail(section, "must be a table")
    model = _model(doc.get("model", {}), fail)
    run = _run(doc.get("run", {}), fail)
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise fail("description", f"must be a string, got {description!r}")
    return Experiment(
        name=_name(doc, default_name, fail),
        path=where,
        description=description,
        data=_data(doc.get("data", {}), where, fail),
        space=_space(doc.get("space"), model, fail),
        ladder=_ladder(doc.get("ladder"), fail),
        budget=_budget(doc.get("budget", {}), fail),
        model=model,
        **run,
    )


def _name(doc: dict, default_name: str, fail) -> str:
    name = doc.get("name", default_name)
    problem = name_problem(name)
    if problem and "name" not in doc:
        raise fail("name", f'{problem} (taken from the file name; set name = "..." in the file)')
    if problem:
        raise fail("name", problem)
    return name


def _data(doc: dict, where: str, fail) -> DataSpec:
    stations, days = doc.get("stations", DATA_STATIONS), doc.get("days", DATA_DAYS)
    problem = data_problem(stations, days)
    if problem:
        raise fail(f"data.{problem[0]}", problem[1])
    seed = doc.get("seed", 0)
    if seed_problem(seed):
        raise fail("data.seed", seed_problem(seed))
    source = _str(doc, "source", None, "data", fail)
    if source is not None and not source.strip():
        raise fail("data.source", "is empty: give a file or folder, or leave source out")
    if source and not Path(source).is_absolute():
        source = str((Path(where).parent / source).resolve())
    return DataSpec(stations, days, seed, source)


def _ladder(doc: Any, fail) -> Ladder:
    if not doc:
        raise fail("ladder", "missing: give fractions = [...] and epochs = [...]")
    if not isinstance(doc, dict):
        raise fail("ladder", "must be a table")
    fractions = [
        _fraction(v, f"ladder.fractions[{i}]", fail)
        for i, v in enumerate(_list(doc, "fractions", "ladder", fail))
    ]
    epochs = _list(doc, "epochs", "ladder", fail)
    if not all(isinstance(e, int) and not isinstance(e, bool) for e in epochs):
        raise fail("ladder.epochs", f"must be whole numbers, got {epochs}")
    try:
        return Ladder(tuple(fractions), tuple(epochs))
    except ValueError as exc:
        raise fail("ladder", str(exc)) from None


def _budget(doc: dict, fail) -> Budget:
    n_trials, timeout = doc.get("n_trials"), doc.get("timeout_minutes")
    if n_trials is None and timeout is None:
        raise fail("budget", "give n_trials, timeout_minutes, or both")
    if n_trials is not None and (
        not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials <= 0
    ):
        raise fail("budget.n_trials", f"must be a whole number > 0, got {n_trials!r}")
    if timeout is not None and not (_is_number(timeout) and timeout > 0):
        raise fail("budget.timeout_minutes", f"must be a finite number > 0, got {timeout!r}")
    return Budget(n_trials, float(timeout) if timeout is not None else None)


def _run(doc: dict, fail) -> dict:
    """The [run] table's fields, as Experiment's keyword arguments."""
    seeds = doc.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise fail("run.seeds", f"must be a non-empty list of whole numbers, got {seeds!r}")
    for i, seed in enumerate(seeds):
        if seed_problem(seed):
            raise fail(f"run.seeds[{i}]", seed_problem(seed))
        if seed in seeds[:i]:
            raise fail(f"run.seeds[{i}]", f"seed {seed} is listed twice")
    device = _str(doc, "device", "auto", "run", fail)
    if device_problem(device):
        raise fail("run.device", device_problem(device))
    precision = _str(doc, "precision", "auto", "run", fail)
    if precision not in PRECISIONS:
        raise fail("run.precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    strategy = _str(doc, "strategy", None, "run", fail)
    if strategy is not None:
        from strategies.registry import get_strategy

        try:  # a twin (<strategy>.cold, .v4w) is a strategy too: a plan may choose one
            get_strategy(strategy)
        except ValueError as exc:
            raise fail("run.strategy", str(exc)) from None
    return dict(
        seeds=tuple(seeds),
        device=device,
        precision=precision,
        storage=_str(doc, "storage", None, "run", fail) or None,
        strategy=strategy,
    )


def _model(doc: dict, fail) -> dict[str, Any]:
    """The [model] table: fixed values, each of its field's kind and within its range."""
    known = ModelConfig.field_names()
    for key, value in doc.items():
        if key not in known:
            raise fail(f"model.{key}", f"not a model parameter; known: {', '.join(known)}")
        problem = _value_problem(key, value)
        if problem:
            raise fail(f"model.{key}", problem)
    return dict(doc)


def _value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be model field ``name`` (its kind strictly, then its range)."""
    problem = _kind_problem(name, value)
    if problem:
        return problem
    try:
        ModelConfig().with_params({name: value})
    except ValueError as exc:
        return str(exc)
    return None


def _kind_problem(name: str, value: Any) -> str | None:
    """A TOML value of the wrong kind: 64.0 or true for a size, text for a rate."""
    kind = ModelConfig.field_kind(name)
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        hint = f" (write {int(value)}, not {value!r})" if _is_number(value) else ""
        return f"takes whole numbers, got {value!r}{hint}"
    if kind == "float" and not _is_number(value):
        return f"takes finite numbers, got {value!r}"
    return None


def _space(doc: Any, model: dict, fail) -> SearchSpace:
    if not isinstance(doc, dict) or not doc:
        raise fail("space", "the search space is empty: add at least one [space.<parameter>] table")
    known = set(ModelConfig.field_names())
    params = []
    for name, spec in doc.items():
        where = f"space.{name}"
        if name not in known:
            raise fail(where, f"not a model parameter; known: {', '.join(sorted(known))}")
        if name in model:
            raise fail(f"model.{name}", f"is also searched in [{where}]: keep one of the two")
        if not isinstance(spec, dict):
            raise fail(where, "must be a table with type, range or choices, and default")
        _no_unknown(spec, _PARAM_KEYS, f"{where}.", fail)
        params.append(_param(name, spec, where, fail))
    return SearchSpace(tuple(params))


def _param(name: str, spec: dict, where: str, fail) -> Param:
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise fail(f"{where}.type", f"must be one of {PARAM_TYPES}, got {kind!r}")
    if kind == "float" and ModelConfig.field_kind(name) == "int":
        raise fail(f"{where}.type", f'{name} takes whole numbers: use type = "int"')
    if "default" not in spec:
        raise fail(
            f"{where}.default", "missing (the value used when the parameter is not searched)"
        )
    lists = {}
    for key in ("grid", "choices"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, list) or not value):
            raise fail(f"{where}.{key}", f"must be a non-empty list of values, got {value!r}")
        lists[key] = tuple(value) if value is not None else None
    named = [("default", spec["default"]), *(("grid value", v) for v in lists["grid"] or ())]
    for what, value in named + [("choice", c) for c in lists["choices"] or ()]:
        if _kind_problem(name, value):
            raise fail(where, f"{what} {value!r}: {_kind_problem(name, value)}")
    try:
        param = Param(
            name,
            kind,
            spec["default"],
            low=spec.get("low"),
            high=spec.get("high"),
            log=spec.get("log", False),
            step=spec.get("step"),
            **lists,
        )
    except ValueError as exc:
        raise fail(where, str(exc)) from None
    _fits_the_model(param, where, fail)
    return param


def _fits_the_model(param: Param, where: str, fail) -> None:
    """Every value the parameter can take (both ends of its range, every choice and grid value,
    its default) must be one the model accepts: checked here, not in every trial."""
    values = [("default", param.default)]
    values += [("grid value", v) for v in param.grid or ()]
    values += [("choice", c) for c in param.choices or ()]
    if param.type != "categorical":
        values += [("low", param.low), ("high", param.high)]
    for what, value in values:
        if what in ("low", "high") and param.type == "int":
            value = int(value)
        problem = _value_problem(param.name, value)
        if problem:
            raise fail(where, f"{what} {value!r}: {problem}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _no_unknown(doc: dict, allowed: set, prefix: str, fail) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise fail(
            f"{prefix}{unknown[0]}", f"unknown field; allowed here: {', '.join(sorted(allowed))}"
        )


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
