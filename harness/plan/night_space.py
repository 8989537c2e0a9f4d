"""Space reduction for the night: the most important parameters, narrowed to where the best
recorded trials lie; the others fixed at the best trial's values. A grid strategy gets grid
points on the narrowed ranges (a reduced grid is a transform of the space)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.analysis import measures
from harness.analysis.analyze import Analysis
from harness.experiment import Experiment
from harness.records import param_column
from strategies.space import Param

WIDEN_SHARE = 0.25  # each side of a narrowed range grows by this share of its width


def py_value(v):
    """A numpy scalar as the Python value (TOML and dataclasses want plain types)."""
    return v.item() if isinstance(v, np.generic) else v


def entry_param(name: str, entry: dict) -> Param:
    """A reduced-space entry (experiment-file fields) as a Param."""
    if entry["type"] == "categorical":
        return Param(name, "categorical", entry["default"], choices=tuple(entry["choices"]))
    return Param(
        name,
        entry["type"],
        entry["default"],
        low=entry["low"],
        high=entry["high"],
        log=entry.get("log", False),
        step=entry.get("step"),
    )


def add_grid_values(space: dict) -> int:
    """For a grid strategy: both ends and the middle of every narrowed range (or the kept
    choices) become the grid, stored in each entry of ``space``; returns the grid's size."""
    size = 1
    for name, entry in space.items():
        if entry["type"] == "categorical":
            values = list(entry["choices"])
        else:
            p = entry_param(name, entry)
            values = sorted({p.from_unit(u) for u in (0.0, 0.5, 1.0)})
        entry["grid"] = values
        size *= len(values)
    return size


def reduced_space(
    a: Analysis, night: Experiment, allowed: pd.DataFrame | None = None
) -> tuple[dict, dict]:
    """The night's space cut to the most important measured parameters, ranges narrowed to where
    the best trials lie (widened by a quarter on each side); the rest fixed at the best values.

    ``allowed``: only these trials count (those under a cost ceiling). Returns the space as
    experiment-file entries (name -> type, range or choices, default) and the fixed values."""
    measured = {p.name: p for p in a.results.space()}
    keep = [n for n in a.params_to_search() if n in {p.name for p in night.space.params}]
    pool = a.results.trials if allowed is None else allowed
    good = measures.good_ranges(a.results, trials=pool).set_index("param")
    best_row = pool[pool["state"] == "COMPLETE"].sort_values("val_mae").iloc[0]
    best = {n: py_value(best_row[param_column(n)]) for n in measured}
    space, fixed = {}, {}
    for p in night.space.params:
        if p.name not in keep:
            value = best.get(p.name, p.default)  # a CSV column with a gap reads 64 as 64.0
            fixed[p.name] = int(value) if p.type == "int" else value
        elif p.type == "categorical":
            space[p.name] = kept_choices(p, good.loc[p.name, "good"], best[p.name])
        else:
            low, high = good.loc[p.name, "low"], good.loc[p.name, "high"]
            space[p.name] = narrowed_range(p, low, high, best[p.name])
    return space, fixed


def kept_choices(p: Param, good: str, best) -> dict:
    """The choices the best trials used (all where none is recognized), default the best's."""
    top = [c for c in p.choices if str(c) in good.split(", ")] or list(p.choices)
    return {"type": p.type, "choices": top, "default": best if best in top else top[0]}


def narrowed_range(p: Param, low: float, high: float, best) -> dict:
    """The good range [low, high] widened, clipped to the searched one and snapped to the step;
    default the best trial's value clipped into it."""
    lo, hi = _widen(low, high, p)
    entry = {"type": p.type}
    if p.type == "int":
        step = int(p.step or 1)
        lo = int(p.low + step * math.floor((lo - p.low) / step))
        hi = min(int(p.low + step * math.ceil((hi - p.low) / step)), int(p.high))
        lo, hi = (lo, hi) if lo < hi else (int(p.low), int(p.high))
        entry.update({"low": lo, "high": hi, "step": step} if p.step else {"low": lo, "high": hi})
    elif p.step:  # snap to the step grid from the searched low, as Param requires
        lo = p.low + p.step * math.floor((lo - p.low) / p.step + 1e-9)
        hi = min(p.low + p.step * math.ceil((hi - p.low) / p.step - 1e-9), p.high)
        lo, hi = (lo, hi) if lo < hi else (p.low, p.high)
        entry.update(low=lo, high=hi, step=p.step)
    else:
        entry.update(low=lo, high=hi, log=p.log)
    entry["default"] = min(max(best, entry["low"]), entry["high"])
    if p.type == "int":
        entry["default"] = int(entry["default"])
    elif p.step:
        steps = round((entry["default"] - entry["low"]) / p.step)
        entry["default"] = min(entry["low"] + steps * p.step, entry["high"])
    return entry


def _widen(lo: float, hi: float, p: Param) -> tuple[float, float]:
    """[lo, hi] grown by ``WIDEN_SHARE`` each side (in log space for a log parameter), with a
    minimum pad, then clipped to the parameter's range (all of it where nothing is left)."""
    if p.log:
        llo, lhi = math.log(lo), math.log(hi)
        pad = max((lhi - llo) * WIDEN_SHARE, 0.1)
        lo, hi = math.exp(llo - pad), math.exp(lhi + pad)
    else:
        pad = max((hi - lo) * WIDEN_SHARE, (p.high - p.low) * 0.05)
        lo, hi = lo - pad, hi + pad
    lo, hi = max(lo, p.low), min(hi, p.high)
    return (float(lo), float(hi)) if lo < hi else (float(p.low), float(p.high))
