"""Projections for the night: how many trials each strategy would run in 12, 15 or 18 hours at
the scale of the experiment the night runs (with a range), how far the cost model extrapolates
to get there, and which recorded configurations fit a cost ceiling. No MAE is projected: none
was measured at the night's scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.analyze import Analysis
from harness.defaults import NIGHT_HOURS
from harness.errors import UserError
from harness.experiment import Experiment
from harness.plan.cost import CostModel, configs_of
from harness.plan.night_space import py_value
from harness.records import param_column
from model.config import ModelConfig, count_parameters
from strategies.space import Ladder

# Minutes per trial at the night's scale (the column name the ceiling reads).
MINUTES_COLUMN = "target_minutes"
# A costed rung's seconds at the night's scale: the estimate and its interval's (or range's) ends.
COST_COLUMNS = ("night_seconds", "night_low", "night_high")
EXTRAPOLATION_LIMIT = 10.0  # past this factor over the largest measured rung, a warning


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
    """The night's training per climb over the recorded one (``Ladder.budget``: fraction x
    epochs summed over the rungs), so other fractions or epochs per rung both count."""
    return night.ladder.budget / Ladder.from_record(recorded_ladder).budget


def sample_scale(recorded_experiment: dict, night: Experiment) -> float:
    """Training samples per rung at the night's scale over the recorded ones: data x epochs."""
    return windows_scale(recorded_experiment["data"], night) * ladder_scale(
        recorded_experiment["ladder"], night
    )


def extrapolation(model: CostModel, night_max_samples: float) -> dict:
    """How far the night's largest rung (samples) lies past the largest measured one, and a
    warning sentence ("" when within ``EXTRAPOLATION_LIMIT``)."""
    factor = night_max_samples / model.max_samples
    warning = ""
    if factor > EXTRAPOLATION_LIMIT:
        warning = (
            f"Extrapolation: the night's largest rung ({night_max_samples:,.0f} samples) is "
            f"{times(factor)} the largest measured ({model.max_samples:,.0f}), past the "
            f"x{EXTRAPOLATION_LIMIT:g} within which a fitted slope can be trusted: its minutes, "
            "trial counts and their interval (which assumes the slope holds that far) are a "
            "guess; size the night with `plan --probe` on its machine."
        )
    return {
        "factor": factor,
        "limit": EXTRAPOLATION_LIMIT,
        "measured_max_samples": model.max_samples,
        "night_max_samples": night_max_samples,
        "warning": warning,
    }


def times(factor: float) -> str:
    """A scale factor as text: x1,847 or x9.5."""
    return f"x{factor:,.0f}" if factor >= 100 else f"x{factor:.3g}"


def model_rung_costs(
    a: Analysis, model: CostModel, night: Experiment, *, device_factor: float
) -> pd.DataFrame:
    """Every recorded rung with its predicted seconds at the night's scale (training scaled by
    samples through the cost model, evaluation by windows) and the ``LEVEL`` interval's ends
    (``night_seconds``, ``night_low``, ``night_high``)."""
    r = a.results
    rungs = r.rungs.copy()
    samples, cfg = rungs["samples"] * sample_scale(r.experiment, night), configs_of(rungs, r.meta)
    train = model.predict(samples, cfg) * device_factor
    half = np.exp(model.half_width(samples, cfg))
    evals = rungs["eval_seconds"].to_numpy() * windows_scale(r.experiment["data"], night)
    evals = evals * device_factor
    rungs["night_seconds"] = train + evals
    rungs["night_low"] = train / half + evals
    rungs["night_high"] = train * half + evals
    return rungs


def project(a: Analysis, rungs: pd.DataFrame) -> pd.DataFrame:
    """Per strategy, from recorded rungs costed at the night's scale (``model_rung_costs`` or
    the probe's): minutes per trial with its low and high ends (each trial climbs the rungs its
    recorded twin climbed), the complete share, and for each of ``NIGHT_HOURS`` the trials with
    their range and the trials reaching full fidelity. No MAE: none was measured there."""
    r = a.results
    per_trial = rungs.groupby(["strategy", "seed", "trial"])[list(COST_COLUMNS)].sum()
    cost = per_trial.groupby(["strategy", "seed"]).mean().groupby("strategy").median() / 60
    complete = r.trials.assign(c=r.trials["state"] == "COMPLETE").groupby("strategy")["c"].mean()
    rows = []
    for strategy in [s for s in r.strategies if s in cost.index]:  # no usable rung: no cost
        minutes, low, high = (float(cost.loc[strategy, c]) for c in COST_COLUMNS)
        row = {
            "strategy": strategy,
            "minutes per trial": minutes,
            "minutes low": low,
            "minutes high": high,
            "complete share": complete[strategy],
        }
        for hours in NIGHT_HOURS:
            n = trials_in(hours, minutes)
            row[f"trials {hours}h"] = n
            row[f"range {hours}h"] = f"{trials_in(hours, high)}-{trials_in(hours, low)}"
            row[f"full fidelity {hours}h"] = int(round(n * complete[strategy]))
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["strategy"])


def trials_in(hours: float, minutes: float) -> int:
    """Whole trials of ``minutes`` each that fit in ``hours``."""
    return int(hours * 60 // minutes) if minutes > 0 else 0


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
                    **{n: py_value(row[param_column(n)]) for n in names},
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
