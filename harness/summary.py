"""What a run achieved, computed from its records alone (no torch, no model).

An empty timing cell is an unknown time (a trial finished by a process that stopped): sums
leave it out, and the summary counts such trials instead of treating them as 0 s."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.records import param_columns, param_name


def rung_samples(rungs: pd.DataFrame) -> dict[int, float]:
    """Training samples a trial processes at each rung, as recorded (the same for every trial)."""
    return rungs.groupby("rung")["samples"].max().to_dict() if len(rungs) else {}


def trial_costs_table(
    rungs: pd.DataFrame,
    samples_by_rung: dict[int, float],
    n_rungs: int,
    keys: tuple[str, ...] = ("trial",),
) -> pd.DataFrame:
    """Per trial (``keys``, one row each): its last rung reached, MAE there, training and
    evaluation seconds spent, and ``full_train``, the training seconds it would have taken at
    every rung of the ladder: the rungs it did not reach are extrapolated from its own measured
    cost per training sample (its model size and batch size drive that cost) and
    ``samples_by_rung`` (NaN where a rung's sample count is unknown)."""
    table = rungs.groupby(list(keys), sort=True).agg(
        reached=("rung", "max"),
        last_mae=("val_mae", "last"),
        train=("train_seconds", "sum"),
        samples=("samples", "sum"),
        evals=("eval_seconds", "sum"),
        eval_mean=("eval_seconds", "mean"),
    )
    left = {  # training samples of the rungs after each last rung (NaN if one is unknown)
        r: sum(samples_by_rung.get(k, np.nan) for k in range(r + 1, n_rungs + 1))
        for r in range(1, n_rungs + 1)
    }
    per_sample = table["train"] / table["samples"].clip(lower=1)
    remaining = table["reached"].map(lambda r: left.get(int(r), 0.0)).astype(float)
    return table.assign(full_train=table["train"] + per_sample * remaining)


def unpruned_per_trial(table: pd.DataFrame, pruned: np.ndarray, n_rungs: int) -> pd.Series:
    """Seconds each trial of ``trial_costs_table``'s ``table`` would have taken had none been
    pruned: a pruned trial (``pruned``, a mask over its rows) adds its extrapolated training
    time and its mean evaluation time for each rung it missed."""
    missing = (n_rungs - table["reached"]).clip(lower=0)
    extrapolated = table["full_train"] + table["evals"] + missing * table["eval_mean"]
    return pd.Series(
        np.where(pruned, extrapolated, table["train"] + table["evals"]), index=table.index
    )


def unpruned_seconds(
    rungs: pd.DataFrame, trials: pd.DataFrame, samples_by_rung: dict[int, float], n_rungs: int
) -> float:
    """Time one run's trials would have taken had none been pruned (``unpruned_per_trial``);
    NaN when one trial's is unknown (a rung's sample count never recorded), never a sum that
    leaves it out."""
    t = trial_costs_table(rungs, samples_by_rung, n_rungs)
    pruned = t.index.isin(trials.loc[trials["state"] == "PRUNED", "trial"])
    return float(unpruned_per_trial(t, pruned, n_rungs).sum(skipna=False))


def summarize(
    rungs: pd.DataFrame, trials: pd.DataFrame, samples_by_rung: dict[int, float], n_rungs: int
) -> dict:
    """One run's counts, best trial and times (work, wall, harness, unpruned), as a dict."""
    counts = trials["state"].value_counts()
    complete = trials[trials["state"] == "COMPLETE"]
    spent = float(
        trials["train_seconds"].sum(skipna=True) + trials["eval_seconds"].sum(skipna=True)
    )
    wall = float(trials["wall_seconds"].sum(skipna=True))
    harness = float(trials["harness_seconds"].sum(skipna=True))
    unpruned = unpruned_seconds(rungs, trials, samples_by_rung, n_rungs) if len(rungs) else 0.0
    best = complete.loc[complete["val_mae"].idxmin()] if len(complete) else None
    params = {param_name(c): best[c] for c in param_columns(trials)} if best is not None else {}
    return {
        "trials": int(len(trials)),
        "complete": int(counts.get("COMPLETE", 0)),
        "pruned": int(counts.get("PRUNED", 0)),
        "failed": int(counts.get("FAIL", 0)),
        "fail_reasons": _reasons(trials),
        "best_trial": int(best["trial"]) if best is not None else None,
        "best_val_mae": float(best["val_mae"]) if best is not None else None,
        "best_params": {
            k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()
        },
        "work_seconds": spent,
        "wall_seconds": wall,
        "harness_seconds": harness,
        "harness_share": harness / wall if wall else 0.0,
        "unknown_timings": int(trials["wall_seconds"].isna().sum()),
        "unpruned_seconds": unpruned,
        "saved_share": float(1 - spent / unpruned) if unpruned else 0.0,
    }


def _reasons(trials: pd.DataFrame) -> dict[str, int]:
    """How many trials failed for each reason, most frequent first."""
    failed = trials[trials["state"] == "FAIL"]
    if "fail_reason" not in failed or failed.empty:
        return {}
    counts = failed["fail_reason"].fillna("unknown reason").value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def format_summary(s: dict) -> str:
    """The summary dict of ``summarize`` as a few aligned lines for the terminal."""
    lines = [
        f"trials        {s['trials']} finished: {s['complete']} complete, "
        f"{s['pruned']} pruned, {s['failed']} failed"
    ]
    if s["best_val_mae"] is not None:
        lines.append(
            f"best          trial {s['best_trial']}: validation MAE {s['best_val_mae']:.4f} bikes"
        )
        lines.append(
            "best params   " + ", ".join(f"{k}={_fmt(v)}" for k, v in s["best_params"].items())
        )
    lines.append(
        f"time          {s['work_seconds']:.1f} s training+evaluation; unpruned the same trials "
        f"would take {s['unpruned_seconds']:.1f} s (saved {s['saved_share']:.0%})"
    )
    lines.append(
        f"harness       {s['harness_seconds']:.2f} s of {s['wall_seconds']:.1f} s wall-clock "
        f"({s['harness_share']:.1%}: sampler, pruner, storage, records)"
    )
    if s.get("unknown_timings"):
        lines.append(
            f"unknown time  {s['unknown_timings']} trials finished by a process that stopped: "
            "their seconds are not counted"
        )
    return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
