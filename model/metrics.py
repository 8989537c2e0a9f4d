"""Forecast metrics in bikes: MAE and R² per horizon and overall."""

from __future__ import annotations

import numpy as np

from model.windows import HORIZONS, Split


def forecast_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """``pred`` and ``true`` are (N, 3) bikes. Returns mae, r2 and mae_h1.., r2_h1.."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    err = np.abs(pred - true)
    out = {"mae": float(err.mean())}
    ss_res = ((pred - true) ** 2).sum(0)
    ss_tot = ((true - true.mean(0)) ** 2).sum(0)
    r2 = 1 - ss_res / np.where(ss_tot == 0, 1, ss_tot)
    out["r2"] = float(1 - ss_res.sum() / max(ss_tot.sum(), 1e-12))
    for i, h in enumerate(HORIZONS):
        out[f"mae_h{h}"] = float(err[:, i].mean())
        out[f"r2_h{h}"] = float(r2[i])
    return out


def persistence_metrics(split: Split) -> dict[str, float]:
    """Predict the last observed value at every horizon."""
    pred = np.repeat(split.last_bikes[:, None], len(HORIZONS), axis=1)
    return forecast_metrics(pred, split.target_bikes)
