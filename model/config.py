"""The model's configuration: every field a searchable hyperparameter. No torch here, so
experiment files can be validated without loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

OPTIMIZERS = ("adam", "adamw")


@dataclass(frozen=True)
class ModelConfig:
    """Network shape and training settings; every field is a searchable hyperparameter.

    The defaults are v4: LSTM 128 -> LSTM 64 -> concat static -> Dense 32 -> Dropout 0.2 -> 3.
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
        for name in ("hidden_1", "hidden_2", "num_layers", "dense", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.embedding_dim < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("embedding_dim, weight_decay and grad_clip must be >= 0")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def with_params(self, params: dict) -> ModelConfig:
        """A copy with the given fields replaced (unknown names are a ValueError)."""
        unknown = set(params) - set(self.field_names())
        if unknown:
            raise ValueError(
                f"unknown model parameter(s) {sorted(unknown)}; known: {list(self.field_names())}"
            )
        return ModelConfig(**{**asdict(self), **params})


def count_parameters(
    config: ModelConfig, n_stations: int, n_static: int = 12, n_outputs: int = 3
) -> int:
    """Trainable parameters of the network ``config`` describes, without building it (no torch)."""

    def lstm(inputs: int, hidden: int) -> int:  # PyTorch keeps two bias vectors per gate
        return 4 * hidden * (inputs + hidden) + 8 * hidden

    total = lstm(1, config.hidden_1)
    inputs = config.hidden_1
    for _ in range(config.num_layers - 1):
        total += lstm(inputs, config.hidden_2)
        inputs = config.hidden_2
    total += n_stations * config.embedding_dim
    head_in = inputs + n_static + config.embedding_dim
    return total + head_in * config.dense + config.dense + config.dense * n_outputs + n_outputs
