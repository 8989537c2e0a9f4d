"""MAE against cost: the Pareto front of every recorded trial, against full-fidelity training
time (extrapolated from rung costs for pruned trials, and marked so) and parameter count."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.loading import Results
from harness.summary import rung_samples, trial_costs_table


def trial_costs(results: Results) -> pd.DataFrame:
    """One row per recorded trial of ``results``: its MAE at its last rung, full-fidelity
    training seconds (extrapolated where it stopped early) and its recorded parameter count."""
    keys = ("strategy", "seed", "trial")
    n_rungs = results.n_rungs
    t = trial_costs_table(results.rungs, rung_samples(results.rungs), n_rungs, keys)
    frame = pd.DataFrame(
        {
            "val_mae": t["last_mae"],
            "reached_full": t["reached"] == n_rungs,
            "full_train_seconds": t["full_train"],
            "extrapolated": t["reached"] < n_rungs,
        },
        index=t.index,
    ).reset_index()
    if "parameters" in results.trials:
        size = results.trials.drop_duplicates(list(keys), keep="last").set_index(list(keys))[
            "parameters"
        ]
        frame["parameters"] = size.reindex(pd.MultiIndex.from_frame(frame[list(keys)])).to_numpy()
    else:
        frame["parameters"] = np.nan
    return frame.astype({"reached_full": bool, "extrapolated": bool})


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
