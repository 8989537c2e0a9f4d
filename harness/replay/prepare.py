"""Preparing a replay run: the surrogate (fitted once per process), its evidence, the simulated
fidelities."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.layout import results_folder
from harness.records import read_rungs
from harness.replay.surrogate import Surrogate
from harness.replay.trainer import ReplayFidelity, replay_factory
from harness.sidefiles import read_json_guarded, write_json_atomic
from harness.study_lock import LOCK_NAME
from harness.tables import UnusableTable, finite, has_rows, read_table
from strategies.registry import RECORD_PREFIX, V4_WEIGHTS_SUFFIX

_CACHE: dict[tuple[str, str], Surrogate] = {}


def learning_curves(results_dir: str | Path, experiment: str) -> pd.DataFrame:
    """Every rung trained for ``experiment`` under ``results_dir`` (record, compare and run
    folders alike, pruned trials' partial curves included), pooled with a ``source`` column
    naming each run folder, plus compare's re-evaluated incumbents as top-rung rows; none
    recorded is a UserError saying how to record them."""
    base = Path(results_dir) / experiment
    parts = []
    for path in sorted(base.glob("*/seed-*/rungs.csv")):
        if path.parent.parent.name.endswith(V4_WEIGHTS_SUFFIX):
            continue  # curves that started from trained weights are not a configuration's
        frame = read_rungs(path).frame
        if len(frame):
            parts.append(frame.assign(source=f"{path.parent.parent.name}/{path.parent.name}"))
    if not any(str(p["source"].iloc[0]).startswith(RECORD_PREFIX) for p in parts):
        raise UserError(
            f"{base}: no recorded learning curves; "
            f"run 'python -m harness record --experiment {experiment}' first"
        )
    curves = pd.concat(parts, ignore_index=True)  # read_rungs kept only numeric rows
    return pd.concat([curves, _reevaluated_rows(base, curves)], ignore_index=True)


def _reevaluated_rows(base: Path, curves: pd.DataFrame) -> pd.DataFrame:
    """reeval.csv's retrains as top-rung observations (one curve per configuration and fresh
    training seed; no timing, so they never price a cost)."""
    path = base / "reeval.csv"
    if not has_rows(path):
        return pd.DataFrame()
    try:  # rows with the wrong number of fields (the first one included) are dropped
        table = read_table(path, ("train_seed", "val_mae"), lambda f: finite(f["val_mae"])).frame
    except UnusableTable:
        return pd.DataFrame()
    if not len(table):
        return pd.DataFrame()
    top = int(curves["rung"].max())
    out = table.assign(
        source="reeval",
        strategy="reeval",
        seed=-1,
        trial=table["train_seed"],
        rung=top,
        val_mae=pd.to_numeric(table["val_mae"]),
        samples=curves.loc[curves["rung"] == top, "samples"].max(),
        train_seconds=np.nan,
        eval_seconds=np.nan,
    )
    return out[[c for c in curves.columns if c in out.columns]]


def load_surrogate(experiment, results_dir: str | Path) -> Surrogate:
    """The surrogate fitted to every curve trained for ``experiment`` (cached per results
    folder), its evidence and the runs it saw written to surrogate.json; a fit that cannot be
    made is a UserError."""
    key = (str(Path(results_dir).resolve()), experiment.name)
    if key not in _CACHE:
        out = Path(results_dir) / results_folder(experiment, replayed=True)
        curves = _curves_of_this_replay(learning_curves(results_dir, experiment.name), out)
        try:
            surrogate = Surrogate.fit(list(experiment.space.params), curves)
        except ValueError as exc:
            raise UserError(f"replay: {exc}") from None
        surrogate.evidence["fitted_on"] = sorted(curves["source"].unique().tolist())
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "surrogate.json", surrogate.evidence)
        _CACHE[key] = surrogate
    return _CACHE[key]


def _curves_of_this_replay(curves: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The curves the replay folder's finished runs were replayed on: once runs exist, the
    surrogate is refitted on the run folders named in its surrogate.json only (real runs made
    since, such as a two-stage confirmation, stay unseen, so agreement with them stays a
    held-out check); a note says how to refit on everything."""
    evidence = read_json_guarded(out / "surrogate.json") if out.is_dir() else None
    replayed = any(out.glob("*/seed-*/metadata.json")) if out.is_dir() else False
    seen = set((evidence or {}).get("fitted_on", []))
    if not (replayed and seen):
        return curves
    keep = curves["source"].isin(seen)
    if (~keep).any():
        new = sorted(set(curves.loc[~keep, "source"]))
        print(
            f"replay: {len(new)} run folder(s) recorded since {out.name}'s runs were replayed "
            f"are left out of its surrogate (held out); delete {out} to refit on them",
            file=sys.stderr,
        )
    return curves[keep]


def prepare_replay(experiment, results_dir, directory: Path):
    """(fidelity stand-in, trainer factory or None, finished?) for one replayed run."""
    surrogate = load_surrogate(experiment, results_dir)
    fidelity = ReplayFidelity(experiment.ladder, surrogate.samples)
    meta = directory / "metadata.json"
    if (read_json_guarded(meta) or {}).get("finished"):
        return fidelity, None, True
    _clear_unfinished(directory)
    return fidelity, replay_factory(surrogate, experiment.space.names), False


def _clear_unfinished(directory: Path) -> None:
    """An unfinished replay is cheaper to redo than to resume (its study was in memory): empty
    its folder, all but the study's lock, which this run holds (a new lock file would let a
    second replay of the run in)."""
    if not directory.exists():
        return
    for entry in directory.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
