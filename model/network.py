"""The multi-input LSTM forecaster (the team's "v4" by default; its configuration is
model.config.ModelConfig)."""

from __future__ import annotations

import torch
from torch import nn

from model.config import ModelConfig
from model.windows import HORIZONS, STATIC_FEATURES


class ForecastNet(nn.Module):
    """The LSTM forecaster: LSTM layers over the past 24 hours, joined with the static features
    and an optional station embedding, then a dense head for T+1..3."""

    def __init__(self, config: ModelConfig, n_stations: int) -> None:
        super().__init__()
        self.config = config
        self.lstm_1 = nn.LSTM(1, config.hidden_1)
        self.lstm_rest = (
            nn.LSTM(config.hidden_1, config.hidden_2, num_layers=config.num_layers - 1)
            if config.num_layers > 1
            else None
        )
        last = config.hidden_2 if config.num_layers > 1 else config.hidden_1
        self.embedding = (
            nn.Embedding(n_stations, config.embedding_dim) if config.embedding_dim else None
        )
        head_in = last + len(STATIC_FEATURES) + config.embedding_dim
        self.head = nn.Sequential(
            nn.Linear(head_in, config.dense),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.dense, len(HORIZONS)),
        )

    def forward(
        self, seq: torch.Tensor, static: torch.Tensor, station: torch.Tensor
    ) -> torch.Tensor:
        """Scaled forecasts (B, 3) from ``seq`` (T, B), ``static`` (B, 12) and ``station`` (B,)."""
        # seq: (T, B) time-major scaled bikes; static: (B, 12); station: (B,)
        out, _ = self.lstm_1(seq.unsqueeze(-1))  # (T, B, H1)
        if self.lstm_rest is not None:
            out, _ = self.lstm_rest(out)  # (T, B, H2)
        parts = [out[-1], static]  # (B, H), (B, 12)
        if self.embedding is not None:
            parts.append(self.embedding(station))  # (B, E)
        return self.head(torch.cat(parts, dim=1))  # (B, 3)
