"""Reading every run of an experiment from results/ into pooled tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from strategies.registry import RECORD_PREFIX
from strategies.space import Param


@dataclass
class Results:
    experiment: dict  # the resolved experiment, from the runs' metadata
    meta: dict[tuple[str, int], dict]
    rungs: pd.DataFrame  # every run's rungs.csv, pooled
    trials: pd.DataFrame  # every run's trials.csv, pooled (one row per finished trial)
    noise: pd.DataFrame | None
    audit: pd.DataFrame | None

    @property
    def strategies(self) -> list[str]:
        return sorted(self.trials["strategy"].unique())

    @property
    def n_rungs(self) -> int:
        return len(self.experiment["ladder"]["fractions"])

    def space(self) -> list[Param]:
        out = []
        for p in self.experiment["space"]["params"]:
            p = dict(p)
            for key in ("choices", "grid"):
                if p.get(key) is not None:
                    p[key] = tuple(p[key])
            out.append(Param(**p))
        return out


def load_results(results_dir: str | Path, experiment: str) -> Results:
    base = Path(results_dir) / experiment
    runs = sorted(
        p
        for p in base.glob("*/seed-*")
        if (p / "metadata.json").is_file()
        and (p / "trials.csv").is_file()
        and not p.parent.name.startswith(RECORD_PREFIX)
    )  # learning-curve records are not a strategy
    if not runs:
        raise UserError(
            f"{base}: no recorded runs (run 'python -m harness compare' or 'run' first)"
        )
    meta, rungs, trials = {}, [], []
    for path in runs:
        m = json.loads((path / "metadata.json").read_text())
        meta[(m["strategy"], int(m["seed"]))] = m
        r, t = pd.read_csv(path / "rungs.csv"), pd.read_csv(path / "trials.csv")
        # A trial interrupted and retried keeps its first FAIL row; the storage is authoritative on states.
        t = t.drop_duplicates("trial", keep="last")
        rungs.append(r)
        trials.append(t)
    optional = {
        name: pd.read_csv(base / f"{name}.csv") if (base / f"{name}.csv").is_file() else None
        for name in ("noise", "audit")
    }
    return Results(
        experiment=next(iter(meta.values()))["experiment"],
        meta=meta,
        rungs=pd.concat(rungs, ignore_index=True),
        trials=pd.concat(trials, ignore_index=True),
        noise=optional["noise"],
        audit=optional["audit"],
    )
