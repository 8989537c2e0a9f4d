"""Reading every run of an experiment from results/ into pooled tables.

One bad run folder never stops the reading: a folder that cannot be used (killed before its
first trial, every trial failed, metadata.json missing or truncated, trials.csv unreadable, an
experiment definition unlike the other runs') is skipped and named in ``Results.warnings``,
printed once on stderr; unreadable lines of a usable run are dropped and counted. Only when no
run is usable is it an error.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.fingerprint import differences, fingerprint_hash, fingerprint_of
from harness.records import read_rungs, read_trials
from harness.tables import UnusableTable, finite, has_rows, read_table, whole
from strategies.registry import RECORD_PREFIX, SEARCH_SUFFIX, V4_WEIGHTS_SUFFIX
from strategies.space import Param

# The side files of compare, with what makes a row usable.
SIDE_FILES = {
    "noise": (("config_rank", "val_mae"), lambda f: whole(f["config_rank"], minimum=1)),
    "audit": (("would_have_won",), lambda f: f["would_have_won"].isin(["True", "False"])),
    "reeval": (("strategy", "seed", "val_mae"), lambda f: whole(f["seed"]) & f["strategy"].notna()),
    "converge": (("top_rung_mae", "converged_mae"), lambda f: finite(f["top_rung_mae"])),
}


@dataclass
class Results:
    """Every run of one comparison, pooled: the experiment, each run's metadata by (strategy, seed),
    the rungs and trials tables, and compare's side tables (noise, audit, reeval, converge)
    when they exist."""

    experiment: dict  # the resolved experiment, from the runs' metadata
    meta: dict[tuple[str, int], dict]
    rungs: pd.DataFrame  # every run's rungs.csv, pooled
    trials: pd.DataFrame  # every run's trials.csv, pooled (one row per finished trial)
    noise: pd.DataFrame | None
    audit: pd.DataFrame | None
    warnings: list[str] = field(default_factory=list)  # skipped folders, dropped lines
    reeval: pd.DataFrame | None = None  # incumbents retrained with fresh seeds
    converge: pd.DataFrame | None = None  # configurations trained to convergence
    # The <strategy>.v4w runs (trials started from v4's trained weights), kept apart: their
    # v4 trial starts converged and their curves are not a configuration's from scratch, so
    # they enter no target, pooled measure or verdict; only the v4-weights answer reads them.
    weights_meta: dict[tuple[str, int], dict] = field(default_factory=dict)
    weights_trials: pd.DataFrame | None = None
    weights_rungs: pd.DataFrame | None = None
    # The <strategy>.search-... runs (a smaller space, the rest at v4), kept apart too: their
    # trials pile onto v4's values, so they enter no pooled measure, the tests, the verdict or
    # the plan; only the real confirmation of the preferred space reads them.
    search_meta: dict[tuple[str, int], dict] = field(default_factory=dict)
    search_trials: pd.DataFrame | None = None

    @property
    def strategies(self) -> list[str]:
        """The strategies that recorded a trial, sorted."""
        return sorted(self.trials["strategy"].unique())

    @property
    def n_rungs(self) -> int:
        """How many rungs the experiment's ladder has."""
        return len(self.experiment["ladder"]["fractions"])

    def warm_runs(self) -> set[tuple[str, int]]:
        """The (strategy, seed) runs that evaluated v4 first (their trial 0). Metadata older
        than the warm_start trait counts as warm unless the run had a fixed queue (grid,
        record), which never started from v4."""
        warm = set()
        for key, m in self.meta.items():
            traits = m.get("strategy_traits", {})
            if traits.get("warm_start", not traits.get("fixed_queue", False)):
                warm.add(key)
        return warm

    def warm_rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of `frame` (with strategy and seed columns) that belong to warm runs."""
        warm = self.warm_runs()
        keys = zip(frame["strategy"], frame["seed"].astype(int))
        # A boolean array, never a plain list: an empty list would select no *columns*.
        return frame.loc[np.array([k in warm for k in keys], dtype=bool)]

    def warm_rungs(self) -> pd.DataFrame:
        """The rungs of warm-started runs only: the target's evidence."""
        return self.warm_rows(self.rungs)

    def space(self) -> list[Param]:
        """The search space's parameters, rebuilt from the recorded experiment."""
        out = []
        for p in self.experiment["space"]["params"]:
            p = dict(p)
            for key in ("choices", "grid"):
                if p.get(key) is not None:
                    p[key] = tuple(p[key])
            out.append(Param(**p))
        return out


class Unusable(Exception):
    """Why a run folder cannot be used (one line)."""


@dataclass
class _RunFolder:
    """One run's folder as read: its metadata, tables and what was dropped reading them."""

    path: Path
    meta: dict
    rungs: pd.DataFrame
    trials: pd.DataFrame
    notes: list[str]


def load_results(results_dir: str | Path, experiment: str, echo: bool = True) -> Results:
    """Every usable run of ``experiment`` under ``results_dir``, pooled; warnings printed on
    stderr once when ``echo``. Raises UserError (one line) when no run is usable."""
    base = Path(results_dir) / experiment
    folders = sorted(
        p
        for p in base.glob("*/seed-*")
        if p.is_dir() and not p.parent.name.startswith(RECORD_PREFIX)
    )  # learning-curve records are not a strategy
    if not folders:
        raise UserError(
            f"{base}: no recorded runs (run 'python -m harness compare' or 'run' first)"
        )
    runs, warnings = [], []
    for path in folders:
        try:
            run = _read_run(path)
        except Unusable as exc:
            warnings.append(f"{path}: skipped: {exc}")
            continue
        runs.append(run)
        warnings.extend(run.notes)
    runs = _same_definition(runs, warnings)
    weights = [r for r in runs if r.meta["strategy"].endswith(V4_WEIGHTS_SUFFIX)]
    searches = [r for r in runs if SEARCH_SUFFIX in r.meta["strategy"] and r not in weights]
    runs = [r for r in runs if r not in weights and r not in searches]
    if not runs and searches:
        raise UserError(
            f"{base}: only .search- twins (a smaller space); run their full-space strategies "
            "too, with the same budget and seeds"
        )
    if not runs and weights:
        raise UserError(
            f"{base}: only runs started from v4's weights (.v4w); run their fresh twins too "
            "(the same compare without --v4-weights)"
        )
    if not runs:
        raise UserError(f"{base}: no usable runs ({len(folders)} skipped; first: {warnings[0]})")
    side = {
        name: _side_file(base / f"{name}.csv", *spec, warnings) for name, spec in SIDE_FILES.items()
    }
    if echo:
        for line in warnings:
            print(f"warning: {line}", file=sys.stderr)
    return Results(
        experiment=runs[0].meta["experiment"],
        meta={(r.meta["strategy"], int(r.meta["seed"])): r.meta for r in runs},
        rungs=_pooled([r.rungs for r in runs]),
        trials=pd.concat([r.trials for r in runs], ignore_index=True),
        noise=side["noise"],
        audit=side["audit"],
        warnings=warnings,
        reeval=side["reeval"],
        converge=side["converge"],
        weights_meta={(r.meta["strategy"], int(r.meta["seed"])): r.meta for r in weights},
        weights_trials=pd.concat([r.trials for r in weights], ignore_index=True)
        if weights
        else None,
        weights_rungs=_pooled([r.rungs for r in weights]) if weights else None,
        search_meta={(r.meta["strategy"], int(r.meta["seed"])): r.meta for r in searches},
        search_trials=pd.concat([r.trials for r in searches], ignore_index=True)
        if searches
        else None,
    )


def _pooled(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One table from the runs' tables; empty ones (header-only files) are left out of the
    concat, whose float columns would otherwise turn every run's seed and trial into floats."""
    kept = [f for f in frames if not f.empty] or frames[:1]
    return pd.concat(kept, ignore_index=True)


def _read_run(path: Path) -> _RunFolder:
    meta = _metadata(path / "metadata.json")
    strategy, seed = meta["strategy"], int(meta["seed"])
    try:
        trials = read_trials(path / "trials.csv", strategy, seed)
        rungs = read_rungs(path / "rungs.csv", strategy, seed)
    except FileNotFoundError as exc:
        raise Unusable(f"no {Path(exc.filename).name}") from None
    except UnusableTable as exc:
        raise Unusable(str(exc)) from None
    except OSError as exc:
        raise Unusable(f"cannot read its tables ({exc.strerror or exc})") from None
    # A trial interrupted and retried keeps its first FAIL row; the storage is authoritative.
    t = trials.frame.drop_duplicates("trial", keep="last")
    if t.empty:
        raise Unusable("no finished trial recorded (stopped before its first trial finished?)")
    if (t["state"] == "FAIL").all():
        reasons = t["fail_reason"].dropna() if "fail_reason" in t else pd.Series(dtype=str)
        first = f"; first reason: {reasons.iloc[0]}" if len(reasons) else ""
        raise Unusable(f"every trial failed ({len(t)}){first}")
    notes = [n for n in (trials.note(path / "trials.csv"), rungs.note(path / "rungs.csv")) if n]
    if rungs.frame.empty:
        notes.append(f"{path / 'rungs.csv'}: no usable rung; curves and fidelity checks omit it")
    return _RunFolder(path, meta, rungs.frame, t, notes)


def _metadata(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Unusable("no metadata.json (stopped before its first trial?)") from None
    except (OSError, ValueError) as exc:
        raise Unusable(f"metadata.json is unreadable or truncated ({str(exc)[:80]})") from None
    try:
        int(meta["seed"])
        meta["experiment"]["ladder"]["fractions"]
        meta["experiment"]["space"]["params"]
        str(meta["strategy"])
    except (KeyError, TypeError, ValueError):
        raise Unusable("metadata.json lacks strategy, seed or the experiment") from None
    return meta


def _same_definition(runs: list[_RunFolder], warnings: list[str]) -> list[_RunFolder]:
    """Keep the runs recorded under the most common experiment definition (ties: the newest)."""
    if len(runs) < 2:
        return runs
    prints = [fingerprint_of(r.meta["experiment"]) for r in runs]
    keys = [fingerprint_hash(p) for p in prints]
    counts = Counter(keys)
    newest = {
        k: max(r.meta.get("written_at", "") for r, kk in zip(runs, keys) if kk == k) for k in counts
    }
    ref = max(counts, key=lambda k: (counts[k], newest[k]))
    ref_print = prints[keys.index(ref)]
    kept = []
    for run, key, fp in zip(runs, keys, prints):
        if key == ref:
            kept.append(run)
            continue
        diff = ", ".join(differences(fp, ref_print)[:3])
        warnings.append(
            f"{run.path}: skipped: recorded under another definition of the experiment ({diff})"
        )
    return kept


def _side_file(path: Path, required, usable, warnings: list[str]) -> pd.DataFrame | None:
    """A side file of compare (SIDE_FILES); absent when missing, empty or header-only, or
    unreadable; unusable lines dropped and counted in ``warnings``."""
    if not has_rows(path):
        return None
    try:
        table = read_table(path, required, usable)
    except (UnusableTable, OSError) as exc:
        warnings.append(f"{path}: ignored: {exc}")
        return None
    if table.note(path):
        warnings.append(table.note(path))
    return table.frame if len(table.frame) else None
