"""Horizon trust: does the ladder's top rung rank configurations like training to convergence?

``compare --converge K`` trains K configurations (each strategy's incumbent first, then a
seeded random sample of other complete trials) on all the training data with early stopping,
and records their converged validation MAE beside their top-rung MAE.
"""

from __future__ import annotations

import pandas as pd
from tqdm import tqdm

from harness.climb import fresh_seed, train_to_convergence
from harness.records import as_param_columns, param_columns
from harness.retrain import params_of


def converge_sample(trials: pd.DataFrame, k: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``k`` distinct complete configurations: strategies' bests first (by recorded MAE;
    when ``k`` is smaller than the number of strategies, which strategies is a seeded draw,
    never their name order), then a seeded random sample of the others."""
    complete = trials[trials["state"] == "COMPLETE"].drop_duplicates(param_columns(trials))
    best = complete.loc[complete.groupby("strategy")["val_mae"].idxmin()]
    best = best.sort_values(["strategy", "seed", "trial"]).sample(frac=1.0, random_state=seed)
    chosen = best.head(k).assign(role="incumbent")
    rest = complete.drop(index=chosen.index)
    extra = (
        rest.sample(n=min(k - len(chosen), len(rest)), random_state=seed)
        if k > len(chosen)
        else rest.iloc[0:0]
    )
    return pd.concat([chosen, extra.assign(role="sample")])


def converge(
    experiment,
    data,
    trials: pd.DataFrame,
    *,
    k: int,
    device: str,
    max_epochs: int = 30,
    patience: int = 3,
    progress: bool = True,
) -> pd.DataFrame:
    """Train the sampled configurations to early-stopped convergence; one row each with the
    top-rung MAE recorded by the ladder and the converged (best-epoch) validation MAE."""
    sample = converge_sample(trials, k)
    rows = []
    for _, row in tqdm(
        list(sample.iterrows()), desc="converge", unit="config", disable=not progress
    ):
        params = params_of(row, experiment.space.names)
        config = experiment.base_config().with_params(params)
        _, _, evals = train_to_convergence(
            experiment,
            data,
            config,
            seed=fresh_seed(0),
            device=device,
            max_epochs=max_epochs,
            patience=patience,
        )
        converged = min((e.metrics["mae"] for e in evals), default=float("nan"))
        rows.append(
            {
                "strategy": row["strategy"],
                "seed": row["seed"],
                "trial": row["trial"],
                "role": row["role"],
                "top_rung_mae": row["val_mae"],
                "converged_mae": converged,
                "epochs": len(evals),
                **as_param_columns(params),
            }
        )
    return pd.DataFrame(rows)
