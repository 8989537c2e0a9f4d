"""The reference trainer, written the way public tuning tutorials write it: TensorDataset +
DataLoader(shuffle=True), `.to(device)` per batch, `.item()` per batch. Same model, same loss,
same optimizer as the project's trainer; it exists only to be measured against."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from model.network import ForecastNet, ModelConfig
from model.windows import ForecastData


class ReferenceTrainer:
    """The tutorial loop, set up once (dataset, loader, model, optimizer) so that a benchmark
    times only its epochs, as it times only the project trainer's ``train`` calls."""

    def __init__(
        self, data: ForecastData, indices, config: ModelConfig, device: str = "cpu", seed: int = 0
    ) -> None:
        torch.manual_seed(seed)
        split = data.splits["train"]
        dataset = TensorDataset(
            torch.from_numpy(split.seq[indices]),
            torch.from_numpy(split.static[indices]),
            torch.from_numpy(split.station[indices]),
            torch.from_numpy(split.target[indices]),
        )
        self.device = torch.device(device)
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True)
        self.model = ForecastNet(config, data.n_stations).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.loss_fn = nn.L1Loss()

    def epoch(self, max_batches: int | None = None) -> float:
        """One pass over the loader (or its first ``max_batches``); the summed batch losses."""
        total = 0.0
        for i, (seq, static, station, target) in enumerate(self.loader):
            if max_batches is not None and i >= max_batches:
                break
            seq, static, station, target = (
                t.to(self.device) for t in (seq, static, station, target)
            )
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(seq.T, static, station), target)  # time-major (T, B)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total
