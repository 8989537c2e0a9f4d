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
from harness.records import as_param_columns, param_column, param_columns


def retrain(
    experiment: Experiment, data, fidelity, params: dict, *, seed: int, device: str
) -> float:
    """Validation MAE of ``params`` after the whole ladder with training seed ``seed``, no
    pruning (NaN if training diverges)."""
    config = experiment.base_config().with_params(params)
    trainer = build_trainer(experiment, data, config, seed=seed, device=device)
    return final_mae(climb(trainer, experiment.ladder, fidelity))


def params_of(row: pd.Series, space_names) -> dict:
    """A records row's parameters as plain Python values, by name."""
    out = {}
    for name in space_names:
        value = row[param_column(name)]
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
                **as_param_columns(params),
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
    trials: pd.DataFrame,
    score,
    space_names,
    *,
    n_seeds: int,
    done: pd.DataFrame | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Retrain each run's incumbent (its best COMPLETE trial) with ``n_seeds`` fresh training
    seeds: the MAE a user would get, free of the winner's curse. ``score(params, train_seed)``
    trains (or replays) one retrain and returns its top-rung MAE.

    Rows of ``done`` are kept only while they re-evaluate the run's current incumbent (a run
    continued since has a new one) and only the seeds missing from them are trained, so more
    seeds asked add rows; a configuration shared by several runs is trained once per seed.
    Returns one row per (run, fresh seed).
    """
    complete = trials[trials["state"] == "COMPLETE"]
    incumbents = complete.loc[complete.groupby(["strategy", "seed"])["val_mae"].idxmin()]
    kept = _still_current(done, incumbents, n_seeds)
    have = set(zip(kept["strategy"], kept["seed"], kept["train_seed"])) if len(kept) else set()
    jobs = [
        (row, fresh_seed(k))
        for _, row in incumbents.iterrows()
        for k in range(n_seeds)
        if (row["strategy"], row["seed"], fresh_seed(k)) not in have
    ]
    cache: dict[tuple, float] = {}
    rows = []
    for row, seed in tqdm(
        jobs, desc="re-evaluate incumbents", unit="retrain", disable=not progress
    ):
        params = params_of(row, space_names)
        key = (tuple(sorted(params.items())), seed)
        if key not in cache:
            cache[key] = score(params, seed)
        rows.append(
            {
                "strategy": row["strategy"],
                "seed": row["seed"],
                "trial": row["trial"],
                "recorded_mae": row["val_mae"],
                "train_seed": seed,
                "val_mae": cache[key],
                **as_param_columns(params),
            }
        )
    return (
        pd.concat([kept, pd.DataFrame(rows)], ignore_index=True)
        if len(kept)
        else pd.DataFrame(rows)
    )


def _still_current(done: pd.DataFrame | None, incumbents: pd.DataFrame, n_seeds: int):
    """The rows of ``done`` that re-evaluate a run's current incumbent with one of the first
    ``n_seeds`` fresh seeds (stale rows of an old incumbent are dropped)."""
    needed = ["strategy", "seed", "trial", "train_seed"]
    if done is None or done.empty or any(c not in done for c in needed):
        return pd.DataFrame()
    done = done.dropna(subset=needed)
    current = {(s, int(seed)): int(t) for s, seed, t in zip(
        incumbents["strategy"], incumbents["seed"], incumbents["trial"])}  # fmt: skip
    seeds = {fresh_seed(k) for k in range(n_seeds)}
    ok = [
        current.get((s, int(seed))) == int(t) and int(ts) in seeds
        for s, seed, t, ts in zip(done["strategy"], done["seed"], done["trial"], done["train_seed"])
    ]
    return done.loc[np.array(ok, dtype=bool)]
