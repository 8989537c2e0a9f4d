"""Training that continues across fidelity rungs, evaluation, and early-stopped final fits.

Nothing here knows about Optuna: the caller passes a subsample and a number of epochs,
and may pass a callback that is called after every epoch (it may raise to stop).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from model.metrics import forecast_metrics
from model.network import ForecastNet, ModelConfig
from model.runtime import configure_process, resolve_device
from model.windows import ForecastData

CPU_MICRO_BATCH = (
    128  # larger CPU batches are split and accumulated: same gradient, cache-resident buffers
)
EVAL_BATCH = 8192
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class EpochResult:
    epoch: int  # epochs done by this trainer, counting earlier calls
    train_loss: float
    samples: int
    seconds: float


@dataclass
class TrainResult:
    epochs: list[EpochResult] = field(default_factory=list)
    diverged_at_epoch: int | None = None  # the epoch whose loss was not finite

    @property
    def diverged(self) -> bool:
        return self.diverged_at_epoch is not None

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    @property
    def samples(self) -> int:
        return sum(e.samples for e in self.epochs)

    @property
    def train_loss(self) -> float:
        return self.epochs[-1].train_loss if self.epochs else float("nan")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    seconds: float


class _SplitTensors:
    def __init__(self, split, device: torch.device) -> None:
        self.seq = torch.from_numpy(np.ascontiguousarray(split.seq.T)).to(
            device
        )  # (24, N) time-major
        self.static = torch.from_numpy(split.static).to(device)  # (N, 12)
        self.station = torch.from_numpy(split.station).to(device)  # (N,)
        self.target = torch.from_numpy(split.target).to(device)  # (N, 3)
        self.target_bikes = split.target_bikes  # stays on the host for the metrics


_TENSOR_CACHE: dict[tuple[int, str], dict[str, _SplitTensors]] = {}


def device_tensors(data: ForecastData, device: torch.device) -> dict[str, _SplitTensors]:
    """Each split's tensors, moved to ``device`` once per process and reused by every trial."""
    key = (id(data), str(device))
    if key not in _TENSOR_CACHE:
        _TENSOR_CACHE.clear()  # one data set per process; free the previous one
        _TENSOR_CACHE[key] = {
            name: _SplitTensors(split, device) for name, split in data.splits.items()
        }
    return _TENSOR_CACHE[key]


def warm_up(data: ForecastData, device: torch.device) -> None:
    """Pay once-per-process costs before timing anything: the data's upload to ``device`` and
    torch's first fused-optimizer construction (about 1 s of imports on the first call)."""
    Trainer(data, ModelConfig(hidden_1=1, hidden_2=1, num_layers=1, dense=1), device=device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Trainer:
    """One model being trained; ``train`` continues where the last call stopped."""

    def __init__(
        self,
        data: ForecastData,
        config: ModelConfig,
        *,
        seed: int = 0,
        device: str | torch.device | None = "auto",
        precision: str = "auto",
    ) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if self.device.type == "cpu":
            configure_process()
        self.precision = (
            ("fp16" if self.device.type == "cuda" else "fp32") if precision == "auto" else precision
        )
        self.data = data
        self.config = config
        self.tensors = device_tensors(data, self.device)
        torch.manual_seed(seed)
        self.model = ForecastNet(config, data.n_stations).to(self.device)
        opt = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt(
            self.model.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.generator = torch.Generator().manual_seed(seed)
        self.loss_fn = nn.L1Loss()  # the metric is MAE; L1 targets the conditional median
        self.epochs_done = 0

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def train(
        self,
        indices: np.ndarray,
        epochs: int,
        callback: Callable[[EpochResult], None] | None = None,
    ) -> TrainResult:
        """Train ``epochs`` epochs on the training windows ``indices``; stop early if the loss diverges."""
        result = TrainResult()
        if len(indices) == 0 or epochs < 1:
            raise ValueError(
                f"need at least one window and one epoch, got {len(indices)} windows, {epochs} epochs"
            )
        idx = torch.as_tensor(indices, dtype=torch.int64).to(self.device)
        self.model.train()
        for _ in range(epochs):
            synchronize(self.device)
            start = time.perf_counter()
            mean_loss = self._epoch(idx)
            synchronize(self.device)
            self.epochs_done += 1
            epoch = EpochResult(
                self.epochs_done, mean_loss, len(indices), time.perf_counter() - start
            )
            result.epochs.append(epoch)
            if not math.isfinite(mean_loss):
                result.diverged_at_epoch = self.epochs_done
                break
            if callback is not None:
                callback(epoch)
        return result

    def _epoch(self, idx: torch.Tensor) -> float:
        t = self.tensors["train"]
        perm = idx[torch.randperm(len(idx), generator=self.generator).to(self.device)]
        bs = self.config.batch_size
        micro = CPU_MICRO_BATCH if self.device.type == "cpu" else bs
        total = torch.zeros((), device=self.device)
        for start in range(0, len(perm), bs):
            batch = perm[start : start + bs]
            self.optimizer.zero_grad(set_to_none=True)
            for chunk in batch.split(micro):
                with self._autocast():
                    pred = self.model(t.seq[:, chunk], t.static[chunk], t.station[chunk])
                    loss = self.loss_fn(pred.float(), t.target[chunk])
                self.scaler.scale(loss * (len(chunk) / len(batch))).backward()
                total += loss.detach() * len(chunk)
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return float(total) / len(perm)

    @torch.inference_mode()
    def predict(self, split: str = "val") -> np.ndarray:
        """Forecasts in bikes, (N, 3)."""
        t = self.tensors[split]
        self.model.eval()
        out = []
        for start in range(0, t.station.shape[0], EVAL_BATCH):
            sl = slice(start, start + EVAL_BATCH)
            with self._autocast():
                out.append(self.model(t.seq[:, sl], t.static[sl], t.station[sl]).float())
        self.model.train()
        return self.data.unscale(torch.cat(out).cpu().numpy())

    def evaluate(self, split: str = "val") -> EvalResult:
        synchronize(self.device)
        start = time.perf_counter()
        pred = self.predict(split)
        metrics = (
            forecast_metrics(pred, self.tensors[split].target_bikes)
            if np.isfinite(pred).all()
            else {"mae": float("nan")}
        )
        return EvalResult(metrics, time.perf_counter() - start)

    def fit(
        self,
        indices: np.ndarray,
        max_epochs: int = 50,
        patience: int = 5,
        callback: Callable[[EpochResult, EvalResult], None] | None = None,
    ) -> tuple[TrainResult, list[EvalResult]]:
        """Early-stopped training: keep the weights of the best validation epoch."""
        history, evals = TrainResult(), []
        best, best_state, stale = math.inf, None, 0
        for _ in range(max_epochs):
            step = self.train(indices, 1)
            history.epochs.extend(step.epochs)
            if step.diverged:
                history.diverged_at_epoch = step.diverged_at_epoch
                break
            ev = self.evaluate("val")
            evals.append(ev)
            if callback is not None:
                callback(step.epochs[-1], ev)
            if ev.metrics["mae"] < best - 1e-4:
                best, best_state, stale = (
                    ev.metrics["mae"],
                    copy.deepcopy(self.model.state_dict()),
                    0,
                )
            else:
                stale += 1
                if stale >= patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return history, evals
