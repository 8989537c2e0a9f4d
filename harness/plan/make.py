"""``make_plan``: the cost model, the projections and the reduced space put together into the
night's plan (``plan.json``) and its runnable experiment file (``overnight.toml``)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.analysis.analyze import Analysis
from harness.errors import UserError
from harness.experiment import load_experiment, resolve_experiment_path
from harness.plan.cost import CostModel, fit_cost_model
from harness.plan.overnight import write_overnight
from harness.plan.projection import NIGHT_HOURS, apply_ceiling, project, trial_minutes_and_size
from harness.plan.space import add_grid_values, reduced_space
from strategies import get_strategy

OVERNIGHT_FILE = "overnight.toml"
PLAN_FILE = "plan.json"


def make_plan(
    a: Analysis,
    out_dir: Path,
    *,
    scale_to: str,
    hours: float,
    device_factor: float,
    max_trial_minutes: float | None = None,
    max_params: int | None = None,
) -> dict:
    """Plans ``hours`` of ``a``'s chosen strategy on the experiment ``scale_to`` (its data size,
    ladder and space) on a machine ``device_factor`` times as slow as the recorded one, from the
    trials under the optional ceiling (``max_trial_minutes`` per trial, ``max_params``). Writes
    ``overnight.toml`` and ``plan.json`` in ``out_dir``; returns the plan as written."""
    _check_hours(hours)
    night_path = resolve_experiment_path(scale_to)
    night = load_experiment(str(night_path))
    model = fit_cost_model(a)
    table, scales = project(a, model, night, device_factor=device_factor)
    chosen = table.set_index("strategy").loc[a.choice]
    cost = chosen["minutes per trial"] * 60
    allowed, ceiling = None, None
    if max_trial_minutes is not None or max_params is not None:
        done = trial_minutes_and_size(a, model, night, device_factor=device_factor)
        allowed, ceiling = apply_ceiling(done, max_trial_minutes, max_params)
        cost = min(cost, ceiling["mean_minutes_under_ceiling"] * 60)  # cheaper under the ceiling
    space, fixed = reduced_space(a, night, allowed)
    n_trials, grid_note = _trials_in_night(a.choice, space, max(1, int(hours * 3600 // cost)))
    path = out_dir / OVERNIGHT_FILE
    write_overnight(
        path,
        night_path=night_path,
        strategy=a.choice,
        n_trials=n_trials,
        hours=hours,
        space=space,
        fixed=fixed,
        reason=a.choice_reason,
    )
    summary = (
        _cost_model_text(model, scales, night.name)
        + f" Recommended: {a.choice} with {n_trials} trials or {hours:g} hours "
        f"({cost / 60:.1f} min per trial on average, {chosen['complete share']:.0%} of trials "
        f"reaching full fidelity), searching {', '.join(space)}; written to {path}.{grid_note}"
        + _ceiling_text(ceiling)
    )
    plan = {
        "summary": summary,
        "strategy": a.choice,
        "n_trials": n_trials,
        "hours": hours,
        "experiment_file": str(path),
        "cost_model": {**model.as_record(), **scales},
        "space": space,
        "fixed": fixed,
        "ceiling": ceiling,
        "projections": json.loads(table.round(3).to_json(orient="records")),
    }
    (out_dir / PLAN_FILE).write_text(json.dumps(plan, indent=1))
    return plan


def _check_hours(hours: float) -> None:
    if not NIGHT_HOURS[0] <= hours <= NIGHT_HOURS[-1]:
        raise UserError(f"--hours must be within {NIGHT_HOURS[0]}-{NIGHT_HOURS[-1]}, got {hours}")


def _trials_in_night(strategy: str, space: dict, n_trials: int) -> tuple[int, str]:
    """A grid runs its points and stops: its budget is at most the grid's size (the grid is
    added to ``space``). Returns the trial budget and a sentence on the grid ("" otherwise)."""
    if get_strategy(strategy).queue is None:
        return n_trials, ""
    grid_size = add_grid_values(space)
    fits = (
        " (all of them)."
        if n_trials >= grid_size
        else ", so it will not finish: consider fewer parameters."
    )
    note = f" The grid has {grid_size} points; {min(n_trials, grid_size)} fit in the night{fits}"
    return min(n_trials, grid_size), note


def _cost_model_text(model: CostModel, scales: dict, night_name: str) -> str:
    return (
        "Cost model: log training seconds on log samples, hidden sizes, layers and batch size, "
        f"fitted to {model.n_rows} recorded rungs (R² {model.r2:.2f} on the log scale); scaled "
        f"x{scales['cost_scale']:.1f} to {night_name}'s data and ladder, device factor "
        f"{scales['device_factor']:.3g}."
    )


def _ceiling_text(ceiling: dict | None) -> str:
    """What the cost ceiling keeps and what it costs in best MAE, as a sentence ("" without)."""
    if not ceiling:
        return ""
    max_minutes, max_params = ceiling["max_trial_minutes"], ceiling["max_params"]
    limits = " and ".join(
        x
        for x in (
            f"at most {max_minutes:g} min per trial" if max_minutes else "",
            f"at most {max_params:,} parameters" if max_params else "",
        )
        if x
    )
    return (
        f" Cost ceiling ({limits}): {ceiling['allowed']} of {ceiling['complete']} complete trials "
        f"meet it; the best of them reaches MAE {ceiling['best_mae_under_ceiling']:.4f} against "
        f"{ceiling['best_mae']:.4f} without the ceiling, so the ceiling costs "
        f"{ceiling['mae_cost']:.4f} bikes ({ceiling['mae_cost_share']:+.1%})."
    )
