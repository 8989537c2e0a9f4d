"""``make_plan``: the night's cost (measured by a probe, or the cost model extrapolated), the
projections and the reduced space put together into the night's plan (``plan.json``) and its
runnable experiment file (``overnight.toml``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.analysis.analyze import Analysis
from harness.defaults import NIGHT_HOURS
from harness.errors import UserError
from harness.experiment import load_experiment, resolve_experiment_path
from harness.plan.cost import fit_cost_model
from harness.plan.costing import Costing, model_costing, probe_costing
from harness.plan.horizon import longer_top_rung
from harness.plan.night_space import add_grid_values, reduced_space
from harness.plan.overnight import write_overnight
from harness.plan.projection import (
    apply_ceiling,
    project,
    trial_minutes_and_size,
    trials_in,
)
from harness.plan.ranges import range_checks
from harness.sidefiles import write_json_atomic
from harness.team import team_trials_sentence
from strategies import get_strategy

OVERNIGHT_FILE = "overnight.toml"
PLAN_FILE = "plan.json"


def make_plan(
    a: Analysis,
    out_dir: Path,
    *,
    night_name: str,
    hours: float,
    device_factor: float = 1.0,
    max_trial_minutes: float | None = None,
    max_params: int | None = None,
    probe_samples: int | None = None,
    device: str | None = None,
) -> dict:
    """Plans ``hours`` of ``a``'s chosen strategy on the night's experiment ``night_name`` (a
    name or .toml path) from the trials under the optional ceiling; its cost from a probe of
    ``probe_samples`` per configuration on ``device`` (the night's where None) when given, else
    from the cost model extrapolated on a machine ``device_factor`` times as slow as the
    recorded one. Writes ``overnight.toml`` and ``plan.json`` in ``out_dir``; returns the plan."""
    _check_hours(hours)
    night_path = resolve_experiment_path(night_name)
    night = load_experiment(str(night_path))
    model = fit_cost_model(a)
    costing = _costing(a, model, night, probe_samples, device=device, factor=device_factor)
    table, row = _projections(a, costing)
    limits = (max_trial_minutes, max_params)
    allowed, ceiling, minutes = _ceiling(a, model, night, costing, row, limits)
    space, fixed = reduced_space(a, night, allowed)
    checks = range_checks(a, night, space, allowed)  # before the grid is added to ``space``
    counts, grid_note = _trials_in_night(a.choice, space, hours, minutes)
    path = out_dir / OVERNIGHT_FILE
    write_overnight(
        path,
        night_path=night_path,
        strategy=a.choice,
        n_trials=counts[0],
        hours=hours,
        space=space,
        fixed=fixed,
        reason=a.choice_reason,
    )
    text = f"searching {', '.join(space)}; written to {path}.{grid_note} {checks['text']}"
    horizon = longer_top_rung(a, night.ladder)
    plan = {
        "summary": _summary(a, costing, hours, counts, minutes, row, text, ceiling, horizon),
        "strategy": a.choice,
        "n_trials": counts[0],
        "n_trials_range": list(counts[1:]),
        "hours": hours,
        "minutes_per_trial": dict(zip(("estimate", "low", "high"), minutes)),
        **_cost_record(costing),
        "experiment_file": str(path),
        "space": space,
        "fixed": fixed,
        "ranges": checks["ranges"],
        "ceiling": ceiling,
        "longer_top_rung": horizon,
        "projections": json.loads(_rounded(table).to_json(orient="records")),
    }
    write_json_atomic(out_dir / PLAN_FILE, plan)
    return plan


def _costing(
    a: Analysis, model, night, probe_samples: int | None, *, device: str | None, factor: float
) -> Costing:
    """The night's cost: from a probe of ``probe_samples`` per configuration on ``device`` when
    given, else from the cost model extrapolated with the device ``factor``."""
    if probe_samples is not None:
        return probe_costing(a, model, night, samples=probe_samples, device=device)
    return model_costing(a, model, night, device_factor=factor)


def _projections(a: Analysis, costing: Costing) -> tuple[pd.DataFrame, pd.Series]:
    """Every strategy's projection for the night at ``costing``'s rung costs, and the
    recommendation's row (a UserError when it has no usable rung to cost)."""
    table = project(a, costing.rungs)
    if a.choice not in set(table["strategy"]):
        raise UserError(f"plan: {a.choice} (the recommendation) has no usable rung to cost")
    return table, table.set_index("strategy").loc[a.choice]


def _ceiling(a, model, night, costing: Costing, row, limits: tuple):
    """The chosen strategy's minutes per trial (estimate, low, high) from its projection
    ``row``, and where a ceiling is given (``limits``: max minutes, max parameters): the recorded
    complete trials under it (priced by the cost model on the night's machine through
    ``costing.factor``), its record, and the minutes scaled down to the mean of the trials it
    keeps (never up). Without one: (None, None, minutes)."""
    minutes = [float(row[c]) for c in ("minutes per trial", "minutes low", "minutes high")]
    max_minutes, max_params = limits
    if max_minutes is None and max_params is None:
        return None, None, minutes
    done = trial_minutes_and_size(a, model, night, device_factor=costing.factor)
    allowed, ceiling = apply_ceiling(done, max_minutes, max_params)
    cheaper = min(1.0, ceiling["mean_minutes_under_ceiling"] / minutes[0])
    return allowed, ceiling, [m * cheaper for m in minutes]


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its floats to 4 significant digits (a probe on smoke times milliseconds:
    fixed decimals would round them to zero)."""
    out = table.copy()
    for column in out.select_dtypes("float").columns:
        out[column] = [float(f"{v:.4g}") for v in out[column]]
    return out


def _cost_record(costing: Costing) -> dict:
    """plan.json's entries on the cost: its source, range, warnings, whether it was measured at
    the night's scale, and the cost model, extrapolation and probe records."""
    return {
        "range_is": costing.range_is,
        "cost_source": costing.source,
        "warnings": costing.warnings,
        "night_scale_measured": costing.scale_measured,
        **costing.record,
    }


def _check_hours(hours: float) -> None:
    if not NIGHT_HOURS[0] <= hours <= NIGHT_HOURS[-1]:
        raise UserError(f"--hours must be within {NIGHT_HOURS[0]}-{NIGHT_HOURS[-1]}, got {hours}")


def _trials_in_night(
    strategy: str, space: dict, hours: float, minutes: list[float]
) -> tuple[tuple[int, int, int], str]:
    """The trial budget (at least 1) and its low and high ends from ``minutes`` (estimate,
    low, high). A grid runs its points and stops: each count is at most the grid's size (the
    grid is added to ``space``). Returns the counts and a sentence on the grid ("" otherwise)."""
    estimate, low, high = minutes
    counts = (max(1, trials_in(hours, estimate)), trials_in(hours, high), trials_in(hours, low))
    if get_strategy(strategy).queue is None:
        return counts, ""
    grid_size = add_grid_values(space)
    n = min(counts[0], grid_size)
    fits = (
        " (all of them)."
        if counts[0] >= grid_size
        else ", so it will not finish: consider fewer parameters."
    )
    note = f" The grid has {grid_size} points; {n} fit in the night{fits}"
    return (n, min(counts[1], grid_size), min(counts[2], grid_size)), note


def _summary(a, costing: Costing, hours, counts, minutes, row, text, ceiling, horizon) -> str:
    """The plan in sentences: the cost and where it came from, the recommendation with its
    range, the space, the ceiling, that no MAE is projected to the night's scale, and the
    longer top rung proposed (``horizon``, when there is one)."""
    return (
        f"{costing.text} Cost source: {costing.source}. Recommended: {a.choice} with "
        f"{counts[0]} trials ({counts[1]}-{counts[2]}, {costing.range_is}) or {hours:g} hours "
        f"({minutes[0]:.3g} min per trial on average, {minutes[1]:.3g}-{minutes[2]:.3g}; "
        f"{row['complete share']:.0%} of trials reaching full fidelity in the records), "
        f"{team_trials_sentence(counts[0], hours)} "
        f"{text} Parameters searched: {a.search_source()}.{_ceiling_text(ceiling)} No MAE is "
        f"projected to the night's scale: every MAE here was measured at "
        f"{a.results.experiment['name']}'s." + (f" {horizon['text']}" if horizon else "")
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
        f"{ceiling['mae_cost']:.4f} bikes ({ceiling['mae_cost_share']:+.1%}) at the recorded "
        "scale."
    )
