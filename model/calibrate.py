"""Calibration figures for the README: persistence and v4 trained to convergence, on test.

    python -m model.calibrate --stations 1498 --days 28 --max-epochs 30

Prints one JSON object: MAE and R² per horizon for persistence and for v4 (early-stopped
on validation), measured once on the test split.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from model.config import ModelConfig
from model.metrics import forecast_metrics, persistence_metrics
from model.synthetic import generate_panel
from model.train import Trainer
from model.windows import HORIZONS, build_windows


def main() -> None:
    """The command line: train v4 on synthetic data with early stopping (each epoch printed),
    then print the JSON calibration figures for persistence and v4 on test."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=1498)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    data = build_windows(generate_panel(args.stations, args.days, args.seed))
    trainer = Trainer(data, ModelConfig(), seed=args.seed, device=args.device)
    start = time.perf_counter()

    def log(ep, ev) -> None:
        print(
            f"epoch {ep.epoch}: loss {ep.train_loss:.4f} val MAE {ev.metrics['mae']:.4f} "
            f"({ep.samples / ep.seconds:,.0f} samples/s)",
            flush=True,
        )

    history, evals = trainer.fit(
        np.arange(len(data.splits["train"])), args.max_epochs, args.patience, callback=log
    )
    keep = ("mae", *(f"mae_h{h}" for h in HORIZONS), "r2", *(f"r2_h{h}" for h in HORIZONS))
    v4 = forecast_metrics(trainer.predict("test"), data.splits["test"].target_bikes)
    print(
        json.dumps(
            {
                "data": data.source,
                "windows": {k: len(v) for k, v in data.splits.items()},
                "epochs": len(evals),
                "best_val_mae": min(e.metrics["mae"] for e in evals),
                "train_minutes": round((time.perf_counter() - start) / 60, 1),
                "device": str(trainer.device),
                "persistence_test": {
                    k: round(persistence_metrics(data.splits["test"])[k], 3) for k in keep
                },
                "v4_test": {k: round(v4[k], 3) for k in keep},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
