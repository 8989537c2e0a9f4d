"""Retraining recorded configurations through the whole ladder: the noise floor and the audit.

A trial's training seed is a function of the run seed and the trial number, so retraining a
pruned trial with its own seed reproduces its recorded rungs exactly (on the same CPU) and
then carries it to full fidelity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from harness.climb import build_trainer, climb, final_mae, fresh_seed, trial_seed
from harness.experiment import Experiment


def retrain(
    experiment: Experiment, data, fidelity, params: dict, *, seed: int, device: str
) -> float:
    """Validation MAE of ``params`` after the whole ladder with training seed ``seed``, no
    pruning (NaN if training diverges)."""
    config = experiment.base_config().with_params(params)
    trainer = build_trainer(experiment, data, config, seed=seed, device=device)
    return final_mae(climb(trainer, experiment.ladder, fidelity))


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The ``param_*`` columns of a records table."""
    return [c for c in frame.columns if c.startswith("param_")]


def params_of(row: pd.Series, space_names) -> dict:
    """A records row's parameters as plain Python values, by name."""
    out = {}
    for name in space_names:
        value = row[f"param_{name}"]
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def measure_noise(
    experiment,
    data,
    fidelity,
    trials: pd.DataFrame,
    n_configs: int,
    n_seeds: int,
    device: str,
    progress: bool = True,
) -> pd.DataFrame:
    """Retrain the ``n_configs`` best distinct complete configurations with ``n_seeds`` fresh
    training seeds; one row per retrain."""
    done = trials[trials["state"] == "COMPLETE"].sort_values("val_mae")
    configs = done.drop_duplicates(param_columns(done)).head(n_configs)
    rows = []
    jobs = [
        (rank, row, s)
        for rank, (_, row) in enumerate(configs.iterrows(), start=1)
        for s in range(n_seeds)
    ]
    for rank, row, s in tqdm(jobs, desc="noise floor", unit="retrain", disable=not progress):
        params = params_of(row, experiment.space.names)
        rows.append(
            {
                "config_rank": rank,
                "strategy": row["strategy"],
                "seed": row["seed"],
                "trial": row["trial"],
                "train_seed": fresh_seed(s),
                "val_mae": retrain(
                    experiment, data, fidelity, params, seed=fresh_seed(s), device=device
                ),
                **{f"param_{k}": v for k, v in params.items()},
            }
        )
    return pd.DataFrame(rows)


def audit_pruned(
    experiment,
    data,
    fidelity,
    trials: pd.DataFrame,
    k: int,
    device: str,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Finish ``k`` pruned trials at full fidelity with their own training seeds; one row each,
    saying whether it would have beaten its run's best survivor."""
    pruned = trials[trials["state"] == "PRUNED"]
    if pruned.empty or k <= 0:
        return pd.DataFrame()
    sample = pruned.sample(n=min(k, len(pruned)), random_state=seed)
    best = trials[trials["state"] == "COMPLETE"].groupby(["strategy", "seed"])["val_mae"].min()
    rows = []
    for _, row in tqdm(list(sample.iterrows()), desc="audit", unit="trial", disable=not progress):
        params = params_of(row, experiment.space.names)
        seed = trial_seed(int(row["seed"]), int(row["trial"]))
        full = retrain(experiment, data, fidelity, params, seed=seed, device=device)
        survivor = best.get((row["strategy"], row["seed"]), np.nan)
        rows.append(
            {
                "strategy": row["strategy"],
                "seed": row["seed"],
                "trial": row["trial"],
                "pruned_after_rung": row["rungs_done"],
                "mae_when_pruned": row["val_mae"],
                "full_mae": full,
                "best_survivor_mae": survivor,
                "would_have_won": bool(full < survivor),
            }
        )
    return pd.DataFrame(rows)


def reevaluate_incumbents(
    experiment,
    data,
    fidelity,
    trials: pd.DataFrame,
    *,
    n_seeds: int,
    device: str,
    done: pd.DataFrame | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Retrain each run's incumbent (its best COMPLETE trial) through the whole ladder with
    ``n_seeds`` fresh training seeds: the MAE a user would get, free of the winner's curse.

    Runs already in ``done`` are kept as they are; a configuration shared by several runs is
    trained once per seed. Returns one row per (run, fresh seed).
    """
    complete = trials[trials["state"] == "COMPLETE"]
    incumbents = complete.loc[complete.groupby(["strategy", "seed"])["val_mae"].idxmin()]
    if done is not None and not done.empty:
        seen = set(zip(done["strategy"], done["seed"]))
        incumbents = incumbents[
            [k not in seen for k in zip(incumbents["strategy"], incumbents["seed"])]
        ]
    cache: dict[tuple, float] = {}
    rows = []
    jobs = [(row, k) for _, row in incumbents.iterrows() for k in range(n_seeds)]
    for row, k in tqdm(jobs, desc="re-evaluate incumbents", unit="retrain", disable=not progress):
        params = params_of(row, experiment.space.names)
        key = (tuple(sorted(params.items())), k)
        if key not in cache:
            cache[key] = retrain(
                experiment, data, fidelity, params, seed=fresh_seed(k), device=device
            )
        rows.append(
            {
                "strategy": row["strategy"],
                "seed": row["seed"],
                "trial": row["trial"],
                "recorded_mae": row["val_mae"],
                "train_seed": fresh_seed(k),
                "val_mae": cache[key],
                **{f"param_{n}": v for n, v in params.items()},
            }
        )
    new = pd.DataFrame(rows)
    return new if done is None or done.empty else pd.concat([done, new], ignore_index=True)
