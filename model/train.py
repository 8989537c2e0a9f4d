"""Training that continues across fidelity rungs, evaluation, and early-stopped final fits.

Nothing here knows about Optuna: the caller passes a subsample and a number of epochs,
and may pass a callback that is called after every epoch (it may raise to stop).
"""

from __future__ import annotations

import copy
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from model.config import ModelConfig
from model.inherit import inherit
from model.metrics import forecast_metrics
from model.network import ForecastNet
from model.runtime import (
    check_precision,
    configure_precision,
    configure_process,
    release_device_memory,
    resolve_device,
    resolve_precision,
)
from model.windows import ForecastData

CPU_MICRO_BATCH = (
    128  # larger CPU batches are split and accumulated: same gradient, cache-resident buffers
)
EVAL_BATCH = 8192
WARM_UP_STEPS = 3  # real optimizer steps run by warm_up before the first timed trial
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# fp16's gradient scaler skips a step whose gradients overflowed and halves its scale. Healthy
# training skips a few steps while the scale settles and then about one in 2,000 (each growth
# attempt); a trial whose gradients are inf or NaN skips every step and never changes its
# weights, with a finite loss. So an epoch diverged when it skipped more than this:
SKIP_GRACE = 4
MAX_SKIPPED_SHARE = 0.1
SCALE_FLOOR = 1.0  # below 1 the unscaled gradients themselves overflow fp16


@dataclass
class EpochResult:
    """One epoch's figures, as ``Trainer.train`` measured them."""

    epoch: int  # epochs done by this trainer, counting earlier calls
    train_loss: float
    samples: int
    seconds: float
    steps: int = 0  # optimizer steps attempted
    skipped_steps: int = 0  # of which the fp16 gradient scaler skipped (inf/NaN gradients)


@dataclass
class TrainResult:
    """What one ``Trainer.train`` call did: its epochs and, if one diverged, which and why."""

    epochs: list[EpochResult] = field(default_factory=list)
    diverged_at_epoch: int | None = None  # the first epoch found diverged
    diverged_reason: str = ""  # why, in one line: loss, skipped steps, scale or weights

    @property
    def diverged(self) -> bool:
        """Whether an epoch diverged."""
        return self.diverged_at_epoch is not None

    @property
    def seconds(self) -> float:
        """Training seconds over every epoch."""
        return sum(e.seconds for e in self.epochs)

    @property
    def samples(self) -> int:
        """Training samples over every epoch."""
        return sum(e.samples for e in self.epochs)

    @property
    def train_loss(self) -> float:
        """The last epoch's training loss (NaN when none ran)."""
        return self.epochs[-1].train_loss if self.epochs else float("nan")


@dataclass
class EvalResult:
    """One evaluation: metrics by name (mae, r2, and per horizon mae_h1.., r2_h1..) and the
    seconds it took."""

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


# (id of the data, device) -> (a weak reference to that data, its split tensors)
_TENSOR_CACHE: dict[tuple[int, str], tuple[weakref.ref, dict[str, _SplitTensors]]] = {}


def device_tensors(data: ForecastData, device: torch.device) -> dict[str, _SplitTensors]:
    """Each split's tensors, moved to ``device`` once per process and reused by every trial.
    An id alone is no identity: data freed and new data built at its address would get the
    old data's tensors, so the cached entry must still point at ``data`` itself."""
    key = (id(data), str(device))
    cached = _TENSOR_CACHE.get(key)
    if cached is None or cached[0]() is not data:
        _TENSOR_CACHE.clear()  # one data set per process; free the previous one
        tensors = {name: _SplitTensors(split, device) for name, split in data.splits.items()}
        _TENSOR_CACHE[key] = (weakref.ref(data), tensors)
    return _TENSOR_CACHE[key][1]


def warm_up(data: ForecastData, device: torch.device | str, precision: str = "auto") -> None:
    """Pay once-per-process costs before the first timed trial, in the run's precision: the
    data's upload, the precision probe, torch's first fused-optimizer construction, and a few
    real v4 training steps and an evaluation batch (cuDNN/cuBLAS handles and kernel loading on
    CUDA; oneDNN primitives, the thread pool and the allocator on CPU). Once per process for
    the same data, device and precision: a comparison's later runs start warm."""
    key = (id(data), str(device), precision)
    if (warmed := _WARMED.get(key)) is not None and warmed() is data:
        device_tensors(data, torch.device(device))  # uploaded again if other data replaced it
        return
    trainer = Trainer(data, ModelConfig(), seed=0, device=device, precision=precision)
    n = min(WARM_UP_STEPS * trainer.config.batch_size, len(data.splits["train"]))
    trainer._epoch(torch.arange(n, device=trainer.device))  # the steps only: nothing to record
    trainer.predict("val", limit=EVAL_BATCH)
    trainer.release()
    _WARMED[key] = weakref.ref(data)  # a weak reference: an id reused by new data is not warm


_WARMED: dict[tuple[int, str, str], weakref.ref] = {}


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA is asynchronous), so that timings are true."""
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
        init_state: dict | None = None,
    ) -> None:
        """``init_state``: trained weights to start from where the shapes match
        (model.inherit); the rest keep their seeded initialization."""
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.precision = resolve_precision(self.device, precision)
        if self.precision != "fp32":
            check_precision(self.device, self.precision)  # probed once per process, then cached
        configure_precision(self.device, self.precision)
        if self.device.type == "cpu":
            configure_process()
        self.data = data
        self.config = config
        self.tensors = device_tensors(data, self.device)
        torch.manual_seed(seed)
        self.model = ForecastNet(config, data.n_stations).to(self.device)
        self.inherited = None if init_state is None else inherit(self.model, init_state)
        opt = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = opt(
            self.model.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            fused=self.device.type in ("cpu", "cuda"),
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self._first_param = next(self.model.parameters())  # lstm_1's: every step updates it
        self.generator = torch.Generator().manual_seed(seed)
        self.loss_fn = nn.L1Loss()  # the metric is MAE; L1 targets the conditional median
        self.epochs_done = 0

    def _autocast(self):
        dtype = _DTYPES.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def train(
        self,
        indices: np.ndarray,
        epochs: int,
        callback: Callable[[EpochResult], None] | None = None,
    ) -> TrainResult:
        """Train ``epochs`` epochs on the training windows ``indices``; stop at the first epoch
        that diverged (see ``_divergence``) and say why in ``diverged_reason``."""
        result = TrainResult()
        if len(indices) == 0 or epochs < 1:
            raise ValueError(
                "need at least one window and one epoch, "
                f"got {len(indices)} windows, {epochs} epochs"
            )
        idx = torch.as_tensor(indices, dtype=torch.int64).to(self.device)
        self.model.train()
        for _ in range(epochs):
            applied = self._applied_steps()
            synchronize(self.device)
            start = time.perf_counter()
            mean_loss, steps = self._epoch(idx)
            synchronize(self.device)
            seconds = time.perf_counter() - start
            self.epochs_done += 1
            skipped = steps - (self._applied_steps() - applied)
            epoch = EpochResult(self.epochs_done, mean_loss, len(indices), seconds, steps, skipped)
            result.epochs.append(epoch)
            reason = self._divergence(epoch)
            if reason:
                result.diverged_at_epoch, result.diverged_reason = self.epochs_done, reason
                break
            if callback is not None:
                callback(epoch)
        return result

    def _applied_steps(self) -> int:
        # Adam's step count: a step the scaler skipped is not counted (fused Adam takes it back).
        state = self.optimizer.state.get(self._first_param)
        return int(state["step"]) if state else 0

    def _divergence(self, epoch: EpochResult) -> str:
        """Why ``epoch`` diverged, in one line, or '' when it did not."""
        n = epoch.epoch
        # The L1 loss is never negative, so the epoch's sum is finite only if every batch's is.
        if not math.isfinite(epoch.train_loss):
            return f"non-finite training loss at epoch {n}"
        if epoch.skipped_steps > SKIP_GRACE + MAX_SKIPPED_SHARE * epoch.steps:
            return (
                f"{epoch.skipped_steps} of {epoch.steps} optimizer steps skipped by the fp16 "
                f"gradient scaler (inf/NaN gradients) at epoch {n}"
            )
        if self.scaler.is_enabled() and self.scaler.get_scale() < SCALE_FLOOR:
            return (
                f"fp16 gradient scale collapsed to {self.scaler.get_scale():.3g} (floor "
                f"{SCALE_FLOOR:g}; {epoch.skipped_steps} steps skipped) at epoch {n}"
            )
        finite = torch.stack([torch.isfinite(p).all() for p in self.model.parameters()])
        if not bool(finite.all()):
            return f"non-finite weights after epoch {n} (inf/NaN gradients with a finite loss)"
        return ""

    def _epoch(self, idx: torch.Tensor) -> tuple[float, int]:
        """One pass over ``idx``: (mean training loss, optimizer steps attempted)."""
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
        return float(total) / len(perm), math.ceil(len(perm) / bs)

    @torch.inference_mode()
    def predict(self, split: str = "val", limit: int | None = None) -> np.ndarray:
        """Forecasts in bikes, (N, 3), for the split's first ``limit`` windows (default all)."""
        t = self.tensors[split]
        n = t.station.shape[0] if limit is None else min(limit, t.station.shape[0])
        self.model.eval()
        out = []
        for start in range(0, n, EVAL_BATCH):
            sl = slice(start, min(start + EVAL_BATCH, n))
            with self._autocast():
                out.append(self.model(t.seq[:, sl], t.static[sl], t.station[sl]).float())
        self.model.train()
        return self.data.unscale(torch.cat(out).cpu().numpy())

    def evaluate(self, split: str = "val") -> EvalResult:
        """Metrics on ``split`` in bikes (a non-finite prediction gives MAE NaN) and the seconds
        taken."""
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
                history.diverged_reason = step.diverged_reason
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

    def cpu_state_dict(self) -> dict[str, torch.Tensor]:
        """The model's weights as CPU copies, for saving: a file written on a GPU machine loads
        on any machine, and later training does not change it."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def release(self) -> str | None:
        """Drop the model, optimizer and scaler and return cached device memory now, even while
        something (a pruned trial's exception) still holds this trainer. Returns
        ``release_device_memory``'s error line, or None. The trainer cannot train afterwards."""
        self.model = self.optimizer = self.scaler = self._first_param = None
        return release_device_memory()
