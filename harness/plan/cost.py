"""The cost model: log training seconds as a linear function of a rung's sample count and the
configuration's size, fitted to the recorded rungs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.analyze import Analysis
from harness.errors import UserError

COST_FEATURES = ("hidden_1", "hidden_2", "num_layers", "batch_size")
MIN_ROWS = 8


@dataclass
class CostModel:
    """log(train seconds) = w . [1, log samples, log hidden_1, log hidden_2 if layers > 1,
    layers, log batch]; ``r2`` on the log scale over the ``n_rows`` rungs it was fitted to."""

    weights: np.ndarray
    r2: float
    n_rows: int

    @staticmethod
    def features(samples, cfg: pd.DataFrame) -> np.ndarray:
        """The design matrix: one row per sample count and configuration (``COST_FEATURES``)."""
        layers = cfg["num_layers"].to_numpy(float)
        return np.column_stack(
            [
                np.ones(len(cfg)),
                np.log(np.asarray(samples, float)),
                np.log(cfg["hidden_1"].to_numpy(float)),
                np.log(cfg["hidden_2"].to_numpy(float)) * (layers > 1),
                layers,
                np.log(cfg["batch_size"].to_numpy(float)),
            ]
        )

    def predict(self, samples, cfg: pd.DataFrame) -> np.ndarray:
        """Predicted training seconds for each sample count and configuration row."""
        return np.exp(self.features(samples, cfg) @ self.weights)

    def as_record(self) -> dict:
        """The fitted model as plain JSON values: weights, r2 and rows."""
        return {"weights": self.weights.tolist(), "r2": self.r2, "rows": self.n_rows}


def configs_of(rows: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """Each row's value of the cost-driving parameters: searched (param_*) or the run's fixed
    base (from ``meta``, keyed by (strategy, seed)); one column per ``COST_FEATURES``."""
    out = {}
    for name in COST_FEATURES:
        col = f"param_{name}"
        if col in rows:
            out[name] = rows[col].to_numpy(float)
            continue
        try:
            out[name] = np.array(
                [
                    meta[(s, int(sd))]["base_config"][name]
                    for s, sd in zip(rows["strategy"], rows["seed"])
                ],
                float,
            )
        except KeyError:
            raise UserError(
                "plan: these records predate base_config in metadata.json; "
                "run the same compare again to refresh them"
            ) from None
    return pd.DataFrame(out, index=rows.index)


def fit_cost_model(a: Analysis) -> CostModel:
    """Least squares on every recorded rung of ``a`` that trained (at least ``MIN_ROWS``)."""
    rungs = a.results.rungs[a.results.rungs["train_seconds"] > 0]
    if len(rungs) < MIN_ROWS:
        raise UserError(f"plan: fewer than {MIN_ROWS} recorded rungs; run compare first")
    x = CostModel.features(rungs["samples"], configs_of(rungs, a.results.meta))
    y = np.log(rungs["train_seconds"].to_numpy())
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    r2 = 1 - np.sum((y - x @ w) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12)
    return CostModel(w, float(r2), len(rungs))
