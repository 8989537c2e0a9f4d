"""The reference trainer, written the way public tuning tutorials write it: TensorDataset +
DataLoader(shuffle=True), `.to(device)` per batch, `.item()` per batch. Same model, same loss,
same optimizer as the project's trainer; it exists only to be measured against."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from model.network import ForecastNet, ModelConfig
from model.windows import ForecastData


def reference_epoch(
    data: ForecastData, indices, config: ModelConfig, device: str = "cpu", seed: int = 0
) -> float:
    torch.manual_seed(seed)
    split = data.splits["train"]
    dataset = TensorDataset(
        torch.from_numpy(split.seq[indices]),
        torch.from_numpy(split.static[indices]),
        torch.from_numpy(split.station[indices]),
        torch.from_numpy(split.target[indices]),
    )
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True)
    model = ForecastNet(config, data.n_stations).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.L1Loss()
    total = 0.0
    for seq, static, station, target in loader:
        seq, static, station, target = (
            seq.to(device),
            static.to(device),
            station.to(device),
            target.to(device),
        )
        optimizer.zero_grad()
        loss = loss_fn(model(seq.T, static, station), target)  # the model is time-major: (T, B)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total
