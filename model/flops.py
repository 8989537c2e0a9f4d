"""Deterministic training cost: floating-point operations per training sample (no torch).

Wall-clock depends on the machine and on whatever else runs on it; this count depends only
on the configuration, so a comparison can charge the same price for the same work.
"""

from __future__ import annotations

from model.config import ModelConfig
from model.windows import SEQ_LEN  # numpy and pandas only: no torch

TRAIN_OVER_FORWARD = 3  # backward costs about twice the forward pass


def forward_flops_per_sample(config: ModelConfig, n_static: int = 12, n_outputs: int = 3) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass: LSTM layers over every step, then the head."""

    def lstm_step(inputs: int, hidden: int) -> int:
        return 4 * hidden * (inputs + hidden)

    macs = lstm_step(1, config.hidden_1) * SEQ_LEN
    inputs = config.hidden_1
    for _ in range(config.num_layers - 1):
        macs += lstm_step(inputs, config.hidden_2) * SEQ_LEN
        inputs = config.hidden_2
    head_in = inputs + n_static + config.embedding_dim
    macs += head_in * config.dense + config.dense * n_outputs
    return 2 * macs


def training_flops(config: ModelConfig, samples: int) -> float:
    """FLOPs of training ``config`` on ``samples`` samples (forward and backward)."""
    return float(TRAIN_OVER_FORWARD * forward_flops_per_sample(config) * samples)
