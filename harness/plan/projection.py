"""Projections for the night: what each strategy would do in 12, 15 or 18 hours at the scale
of the experiment the night runs, and which recorded configurations fit a cost ceiling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.analysis.analyze import Analysis
from harness.errors import UserError
from harness.experiment import Experiment
from harness.plan.cost import CostModel, configs_of
from harness.plan.space import py_value
from model.config import ModelConfig, count_parameters

NIGHT_HOURS = (12, 15, 18)
# Minutes per trial at the night's scale (the column name the ceiling reads).
MINUTES_COLUMN = "target_minutes"


def windows_scale(recorded_data: dict, night: Experiment) -> float:
    """Training windows at the night's scale relative to the recorded one (same share kept per
    station-hour); 1 where either side reads a data file."""
    if recorded_data["source"] or night.data.source:
        return 1.0
    recorded = _windows(recorded_data["stations"], recorded_data["days"])
    return _windows(night.data.stations, night.data.days) / recorded


def _windows(stations: int, days: int) -> int:
    """Windows of a synthetic network: every station-hour but a window's first 26."""
    return stations * (days * 24 - 26)


def ladder_scale(recorded_ladder: dict, night: Experiment) -> float:
    """Same fractions assumed; epochs per rung may differ (the night's total over the
    recorded total)."""
    return sum(night.ladder.epochs) / sum(recorded_ladder["epochs"])


def sample_scale(recorded_experiment: dict, night: Experiment) -> float:
    """Training samples per rung at the night's scale over the recorded ones: data x epochs."""
    return windows_scale(recorded_experiment["data"], night) * ladder_scale(
        recorded_experiment["ladder"], night
    )


def project(
    a: Analysis, model: CostModel, night: Experiment, *, device_factor: float
) -> tuple[pd.DataFrame, dict]:
    """Per strategy: minutes per trial, complete share, and for each of ``NIGHT_HOURS`` the
    trials, trials reaching full fidelity and expected best MAE; plus the scales applied."""
    r = a.results
    scale = sample_scale(r.experiment, night)
    rungs = r.rungs.copy()
    rungs["night_seconds"] = (
        model.predict(rungs["samples"] * scale, configs_of(rungs, r.meta)) * device_factor
        + rungs["eval_seconds"] * windows_scale(r.experiment["data"], night) * device_factor
    )
    per_trial = rungs.groupby(["strategy", "seed", "trial"])["night_seconds"].sum().reset_index()
    cost = (
        per_trial.groupby(["strategy", "seed"])["night_seconds"].mean().groupby("strategy").median()
    )
    complete = r.trials.assign(c=r.trials["state"] == "COMPLETE").groupby("strategy")["c"].mean()
    rows = []
    for strategy in r.strategies:
        row = {
            "strategy": strategy,
            "minutes per trial": cost[strategy] / 60,
            "complete share": complete[strategy],
        }
        for hours in NIGHT_HOURS:
            n = int(hours * 3600 // cost[strategy])
            row[f"trials {hours}h"] = n
            row[f"full fidelity {hours}h"] = int(round(n * complete[strategy]))
            row[f"expected best MAE {hours}h"] = best_after(a.curve, strategy, n)
        rows.append(row)
    return pd.DataFrame(rows), {"cost_scale": scale, "device_factor": device_factor}


def best_after(curve: pd.DataFrame, strategy: str, n: int) -> str:
    """Median over seeds of the best MAE after ``n`` trials, from the recorded curves (no
    extrapolation: past the recorded trials, an upper bound that says so)."""
    runs = curve[curve["strategy"] == strategy]
    observed = int(runs.groupby("seed")["trial_index"].max().min())
    at = min(n, observed)
    value = runs[runs["trial_index"] == at]["best"].median() if at >= 1 else float("nan")
    text = "n/a" if not math.isfinite(value) else f"{value:.4f}"
    return text if n <= observed else f"<= {text} (recorded up to {observed} trials)"


def trial_minutes_and_size(
    a: Analysis, model: CostModel, night: Experiment, *, device_factor: float
) -> pd.DataFrame:
    """Complete trials of ``a`` with their predicted full-ladder training minutes at the night's
    scale (``MINUTES_COLUMN``) and their parameter count for the night's stations."""
    r = a.results
    done = r.trials[r.trials["state"] == "COMPLETE"].copy()
    cfg = configs_of(done, r.meta)
    scale = sample_scale(r.experiment, night)
    samples = r.rungs.groupby("rung")["samples"].max().to_numpy(float)
    seconds = (
        sum(model.predict(np.full(len(done), s * scale), cfg) for s in samples) * device_factor
    )
    done[MINUTES_COLUMN] = seconds / 60
    names = [p.name for p in r.space()]
    done["parameters"] = [
        count_parameters(
            ModelConfig(
                **{
                    **r.meta[(s, int(sd))]["base_config"],
                    **{n: py_value(row[f"param_{n}"]) for n in names},
                }
            ),
            night.data.stations,
        )
        for (_, row), s, sd in zip(done.iterrows(), done["strategy"], done["seed"])
    ]
    return done


def apply_ceiling(
    done: pd.DataFrame, max_minutes: float | None, max_params: int | None
) -> tuple[pd.DataFrame, dict]:
    """The trials of ``done`` (``trial_minutes_and_size``) under the ceiling, and what the
    ceiling costs in best MAE; a ``UserError`` where no trial meets it."""
    keep = np.ones(len(done), bool)
    if max_minutes is not None:
        keep &= done[MINUTES_COLUMN].to_numpy() <= max_minutes
    if max_params is not None:
        keep &= done["parameters"].to_numpy() <= max_params
    allowed = done[keep]
    if allowed.empty:
        raise UserError(
            "plan: no recorded configuration meets the ceiling (the cheapest needs "
            f"{done[MINUTES_COLUMN].min():.1f} min per trial, the smallest "
            f"{done['parameters'].min():,} parameters)"
        )
    best, capped = done["val_mae"].min(), allowed["val_mae"].min()
    return allowed, {
        "max_trial_minutes": max_minutes,
        "max_params": max_params,
        "allowed": int(len(allowed)),
        "complete": int(len(done)),
        "best_mae": float(best),
        "best_mae_under_ceiling": float(capped),
        "mae_cost": float(capped - best),
        "mae_cost_share": float(capped / best - 1),
        "mean_minutes_under_ceiling": float(allowed[MINUTES_COLUMN].mean()),
    }
