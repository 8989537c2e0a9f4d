"""MAE against cost: the Pareto front of every recorded trial, against full-fidelity training
time (extrapolated from rung costs for pruned trials, and marked so) and parameter count."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.loading import Results
from harness.summary import full_train_seconds, rung_samples


def trial_costs(results: Results) -> pd.DataFrame:
    """One row per recorded trial of ``results``: its MAE at its last rung, full-fidelity
    training seconds (extrapolated where it stopped early) and its recorded parameter count."""
    rungs = results.rungs
    size = (
        results.trials.set_index(["strategy", "seed", "trial"])["parameters"]
        if "parameters" in results.trials
        else {}
    )
    samples = rung_samples(rungs)
    n_rungs = results.n_rungs
    rows = []
    for (strategy, seed, trial), g in rungs.groupby(["strategy", "seed", "trial"]):
        done = int(g["rung"].max())
        rows.append(
            {
                "strategy": strategy,
                "seed": seed,
                "trial": trial,
                "val_mae": g["val_mae"].iloc[-1],
                "reached_full": done == n_rungs,
                "full_train_seconds": full_train_seconds(g, samples, n_rungs),
                "extrapolated": done < n_rungs,
                "parameters": size.get((strategy, seed, trial), np.nan),
            }
        )
    columns = ["strategy", "seed", "trial", "val_mae", "reached_full", "full_train_seconds"]
    frame = pd.DataFrame(rows, columns=columns + ["extrapolated", "parameters"])
    return frame.astype({"reached_full": bool})  # a boolean mask even with no rows


def pareto_front(frame: pd.DataFrame, cost: str, value: str = "val_mae") -> pd.DataFrame:
    """Rows of ``frame`` not dominated in (``cost``, ``value``), both minimized, sorted by cost."""
    ordered = frame.sort_values([cost, value])
    best = np.inf
    keep = []
    for idx, v in zip(ordered.index, ordered[value]):
        if v < best:
            keep.append(idx)
            best = v
    return ordered.loc[keep]
