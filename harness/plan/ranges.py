"""What the plan's ranges rest on: where the best recorded trials lie against the night's
range (a good region outside it is said, with the widening that would contain it, instead of a
silent fall-back to the night's whole range), and how stable each range is when one seed's runs
are left out."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from harness.analysis import measures
from harness.analysis.analyze import Analysis
from harness.experiment import Experiment
from harness.plan.night_space import kept_choices, narrowed_range
from strategies.space import Param


def range_checks(
    a: Analysis, night: Experiment, space: dict, allowed: pd.DataFrame | None = None
) -> dict:
    """For each parameter the plan searches (``space``: ``reduced_space``'s entries, from the
    trials ``allowed``, default all): its planned range or choices, where the best trials lie
    against the night's range (and the widening that would contain them), and its
    leave-one-seed-out stability. Returns {"ranges": name -> record, "notes": sentences,
    "text": the notes as one paragraph}."""
    pool = a.results.trials if allowed is None else allowed
    params = [p for p in night.space.params if p.name in space]
    good = measures.good_ranges(a.results, trials=pool).set_index("param")
    left_out = _leave_one_seed_out(a, pool, params)
    scale = _scale(a, night)
    ranges, notes = {}, []
    for p in params:
        entry = space[p.name]
        if p.type == "categorical":
            record = {"planned": list(entry["choices"])}
        else:
            record = {"planned": [entry["low"], entry["high"]]}
            record.update(_against_night(p, good.loc[p.name, "low"], good.loc[p.name, "high"]))
            if record["outside"]:
                notes.append(_outside_text(p, record))
        record["leave_one_seed_out"] = _stability(p, record["planned"], left_out[p.name])
        ranges[p.name] = {**record, **scale}
    notes.append(_stability_text(ranges))
    return {"ranges": ranges, "notes": notes, "text": " ".join(notes)}


def _scale(a: Analysis, night: Experiment) -> dict:
    """Whether the ranges rest on trials at the night's scale (the compared data is the
    night's) or are carried over from another, in words."""
    ours, theirs = a.results.experiment["data"], asdict(night.data)
    ladder = a.results.experiment["ladder"]
    same_data = all(ours.get(k) == theirs[k] for k in ("stations", "days")) and _file(
        ours.get("source")
    ) == _file(theirs["source"])
    same_ladder = [ladder["fractions"], ladder["epochs"]] == [
        list(night.ladder.fractions),
        list(night.ladder.epochs),
    ]
    if same_data and same_ladder:
        return {"measured_at_night_scale": True, "scale": "at the night's scale"}
    return {
        "measured_at_night_scale": False,
        "scale": (
            f"carried over from {a.results.experiment['name']} ({ours['stations']} stations x "
            f"{ours['days']} days, [ladder] epochs {ladder['epochs']}) to {night.name} "
            f"({theirs['stations']} x {theirs['days']}, {list(night.ladder.epochs)}): check it "
            "there"
        ),
    }


def _file(source) -> str | None:
    """A data source by its file name, as the fingerprint compares it."""
    return None if not source else Path(source).name


def _against_night(p: Param, low: float, high: float) -> dict:
    """Whether the good region [low, high] lies within the night's range of ``p``; where it
    does not, the night's range widened to contain it (on ``p``'s step grid)."""
    tol = 1e-9 * max(abs(p.low), abs(p.high), 1.0)
    outside = bool(low < p.low - tol or high > p.high + tol)
    widened = None
    if outside:
        lo, hi = min(p.low, low), max(p.high, high)
        if p.step:
            lo = p.low - p.step * math.ceil((p.low - lo) / p.step - 1e-9)
            hi = p.high + p.step * math.ceil((hi - p.high) / p.step - 1e-9)
        widened = [_plain(lo, p), _plain(hi, p)]
    return {
        "good": [float(low), float(high)],
        "night_range": [p.low, p.high],
        "outside": outside,
        "proposed_widening": widened,
    }


def _plain(value: float, p: Param):
    """``value`` as ``p``'s type (a whole number for an int parameter)."""
    return int(round(value)) if p.type == "int" else float(value)


def _outside_text(p: Param, record: dict) -> str:
    """The sentence for a good region not within the night's range: what the plan searches
    instead and the widening that would contain the best trials."""
    (lo, hi), (n_lo, n_hi) = record["good"], record["night_range"]
    planned, widened = record["planned"], record["proposed_widening"]
    wholly = hi < n_lo or lo > n_hi
    searched = (
        f"all of the night's range ({n_lo:g}..{n_hi:g}): no part of the good region is in it"
        if wholly
        else f"{planned[0]:.4g}..{planned[1]:.4g}, cut at the night's bounds"
    )
    return (
        f"{p.name}: the best recorded trials lie at {lo:.4g}..{hi:.4g}, "
        f"{'outside' if wholly else 'partly outside'} the night's range {n_lo:g}..{n_hi:g}; "
        f"the plan searches {searched}. Widen the night's range to {widened[0]:.4g}.."
        f"{widened[1]:.4g} in its experiment file to search where they lie."
    )


def _leave_one_seed_out(a: Analysis, pool: pd.DataFrame, params: list[Param]) -> dict:
    """For each parameter, per seed of ``pool`` left out (seeds whose removal leaves no
    complete trial are skipped): the range the plan would narrow to and the good region
    without that seed's runs, (low, high, good_low, good_high), or the kept choices."""
    out: dict[str, list] = {p.name: [] for p in params}
    seeds = sorted(pool["seed"].unique())
    for seed in seeds if len(seeds) > 1 else []:
        rest = pool[pool["seed"] != seed]
        if not (rest["state"] == "COMPLETE").any():
            continue
        good = measures.good_ranges(a.results, trials=rest).set_index("param")
        for p in params:
            row = good.loc[p.name]
            if p.type == "categorical":
                out[p.name].append(kept_choices(p, row["good"], None)["choices"])
            else:
                entry = narrowed_range(p, row["low"], row["high"], row["low"])
                out[p.name].append((entry["low"], entry["high"], row["low"], row["high"]))
    return out


def _stability(p: Param, planned: list, left_out: list) -> dict:
    """How far the leave-one-seed-out ranges move: for a numeric parameter, the spread of
    their bounds and in how many the best trials still lie inside the planned range; for a
    categorical one, in how many the same choices are kept."""
    n = len(left_out)
    if p.type == "categorical":
        return {"seeds": n, "same_choices": sum(bool(set(c) == set(planned)) for c in left_out)}
    lows, highs = [_plain(r[0], p) for r in left_out], [_plain(r[1], p) for r in left_out]
    inside = sum(bool(planned[0] <= r[2] and r[3] <= planned[1]) for r in left_out)
    return {
        "seeds": n,
        "low": [min(lows), max(lows)] if n else None,
        "high": [min(highs), max(highs)] if n else None,
        "good_inside_planned": inside,
    }


def _stability_text(ranges: dict) -> str:
    """One sentence on every searched parameter's leave-one-seed-out stability."""
    n = max((r["leave_one_seed_out"]["seeds"] for r in ranges.values()), default=0)
    if not n:
        return "Leave-one-seed-out stability of the ranges: not measured (one seed)."
    parts = []
    for name, record in ranges.items():
        s, planned = record["leave_one_seed_out"], record["planned"]
        if "same_choices" in s:
            parts.append(
                f"{name} ({', '.join(map(str, planned))}) keeps the same choices in "
                f"{s['same_choices']} of {s['seeds']}"
            )
        else:
            parts.append(
                f"{name} (planned {planned[0]:.4g}..{planned[1]:.4g}) lower bound "
                f"{s['low'][0]:.4g}..{s['low'][1]:.4g}, upper {s['high'][0]:.4g}.."
                f"{s['high'][1]:.4g}, the best trials without the seed inside the planned range "
                f"in {s['good_inside_planned']} of {s['seeds']}"
            )
    return (
        f"Leave-one-seed-out stability of the ranges (each recomputed without one seed's runs, "
        f"{n} seeds): {'; '.join(parts)}."
    )
