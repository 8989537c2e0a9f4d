"""The model's configuration: every field a searchable hyperparameter. No torch here, so
experiment files can be validated without loading it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from numbers import Integral, Real

OPTIMIZERS = ("adam", "adamw")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # model.train's names, kept here free of torch

# Whole-number fields: the inclusive range each may take. The upper ends are sanity caps far
# above any model this harness trains (a typo of 10x too many zeros fails here, not in a trial).
INT_RANGES = {
    "hidden_1": (1, 4096),
    "hidden_2": (1, 4096),
    "num_layers": (1, 16),
    "dense": (1, 4096),
    "embedding_dim": (0, 1024),
    "batch_size": (1, 1_048_576),
}
# Real-valued fields: (low, high, low included, high included).
FLOAT_RANGES = {
    "dropout": (0.0, 1.0, True, False),
    "learning_rate": (0.0, 10.0, False, True),
    "weight_decay": (0.0, 10.0, True, True),
    "grad_clip": (0.0, math.inf, True, False),
}


@dataclass(frozen=True)
class ModelConfig:
    """Network shape and training settings; every field is a searchable hyperparameter.

    The defaults are v4: LSTM 128 -> LSTM 64 -> concat static -> Dense 32 -> Dropout 0.2 -> 3.
    Every value is checked on construction (type and range, see INT_RANGES and FLOAT_RANGES);
    a bad one is a ValueError naming the field.
    """

    hidden_1: int = 128  # units of the first LSTM layer
    hidden_2: int = 64  # units of every further LSTM layer
    num_layers: int = 2  # LSTM layers in all (1 = hidden_1 only)
    dense: int = 32
    dropout: float = 0.2
    embedding_dim: int = 0  # station embedding size; 0 = station_id only as a scaled number (v4)
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    optimizer: str = "adam"
    grad_clip: float = 0.0  # max gradient norm; 0 = no clipping

    def __post_init__(self) -> None:
        for name, (low, high) in INT_RANGES.items():
            # Whole floats (16.0) come back from CSV records with a missing row; keep them ints.
            object.__setattr__(self, name, _whole(name, getattr(self, name), low, high))
        for name, bounds in FLOAT_RANGES.items():
            object.__setattr__(self, name, _real(name, getattr(self, name), *bounds))
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")

    @classmethod
    def field_kind(cls, name: str) -> str:
        """'int', 'float' or 'str': the kind of value field ``name`` takes."""
        if name in INT_RANGES:
            return "int"
        return "float" if name in FLOAT_RANGES else "str"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of every field, in declaration order."""
        return tuple(f.name for f in fields(cls))

    def with_params(self, params: dict) -> ModelConfig:
        """A copy with the given fields replaced (unknown names are a ValueError)."""
        unknown = set(params) - set(self.field_names())
        if unknown:
            raise ValueError(
                f"unknown model parameter(s) {sorted(unknown)}; known: {list(self.field_names())}"
            )
        return ModelConfig(**{**asdict(self), **params})


def lstm_weights(inputs, hidden):
    """Trainable weights of one LSTM layer (numbers or arrays): four gates, and two bias
    vectors per gate, as PyTorch keeps them."""
    return 4 * hidden * (inputs + hidden) + 8 * hidden


def count_parameters(
    config: ModelConfig, n_stations: int, n_static: int = 12, n_outputs: int = 3
) -> int:
    """Trainable parameters of the network ``config`` describes, without building it (no torch)."""

    total = lstm_weights(1, config.hidden_1)
    inputs = config.hidden_1
    for _ in range(config.num_layers - 1):
        total += lstm_weights(inputs, config.hidden_2)
        inputs = config.hidden_2
    total += n_stations * config.embedding_dim
    head_in = inputs + n_static + config.embedding_dim
    return total + head_in * config.dense + config.dense + config.dense * n_outputs + n_outputs


def _whole(name: str, value, low: int, high: int) -> int:
    """``value`` as an int when it is a whole number in [low, high]; else a ValueError."""
    whole = (
        isinstance(value, Integral)
        or (isinstance(value, Real) and math.isfinite(value) and float(value).is_integer())
    ) and not isinstance(value, bool)
    if not whole or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    return int(value)


def _real(name: str, value, low: float, high: float, low_in: bool, high_in: bool) -> float:
    """``value`` when it is a finite number in the range; else a ValueError naming the range."""
    number = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    inside = number and (low <= value if low_in else low < value)
    inside = inside and (value <= high if high_in else value < high)
    if not inside:
        span = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
        raise ValueError(f"{name} must be a finite number in {span}, got {value!r}")
    return float(value)
