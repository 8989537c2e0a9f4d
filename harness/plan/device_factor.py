"""The device factor: how much faster or slower this machine trains than the recorded one.

The only part of the plan that touches torch, imported inside the function so that the rest
of the plan (and analysis) never loads it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.analyze import Analysis
from harness.plan.cost import COST_FEATURES, CostModel, fit_cost_model
from model.config import ModelConfig

CALIBRATION_SAMPLES = 8192


def calibrate_device_factor(a: Analysis, model: CostModel | None = None) -> float:
    """Times one epoch of v4 (the default configuration) on this machine and returns its ratio
    to the cost model's prediction for the recorded device (fitted to ``a`` unless given)."""
    from harness.datasets import DataSpec, load_data
    from model.train import Trainer, warm_up

    model = model or fit_cost_model(a)
    data = load_data(DataSpec(stations=60, days=14, seed=0))
    idx = np.arange(min(CALIBRATION_SAMPLES, len(data.splits["train"])))
    v4 = ModelConfig()
    precision = a.results.experiment.get("precision", "auto")  # as the records were trained
    trainer = Trainer(data, v4, seed=0, precision=precision)
    warm_up(data, trainer.device, precision)
    measured = trainer.train(idx, 1).seconds
    features = pd.DataFrame({name: [getattr(v4, name)] for name in COST_FEATURES})
    return float(measured / model.predict([len(idx)], features)[0])
