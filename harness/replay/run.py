"""Preparing a replay run: the surrogate (fitted once per process), its evidence, the simulated
fidelities."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.layout import results_folder
from harness.replay.surrogate import Surrogate
from harness.replay.trainer import ReplayFidelity, replay_factory
from strategies.registry import RECORD_PREFIX

_CACHE: dict[tuple[str, str], Surrogate] = {}


def record_curves(results_dir: str | Path, experiment: str) -> pd.DataFrame:
    """Every rungs.csv row recorded by ``record`` for ``experiment`` under ``results_dir``,
    pooled; none is a UserError saying how to record them."""
    runs = sorted((Path(results_dir) / experiment).glob(f"{RECORD_PREFIX}*/seed-*/rungs.csv"))
    if not runs:
        raise UserError(
            f"{Path(results_dir) / experiment}: no recorded learning curves; "
            f"run 'python -m harness record --experiment {experiment}' first"
        )
    return pd.concat([pd.read_csv(p) for p in runs], ignore_index=True)


def load_surrogate(experiment, results_dir: str | Path) -> Surrogate:
    """The surrogate fitted to ``experiment``'s recorded curves (cached per results folder),
    its evidence written to surrogate.json; a fit that cannot be made is a UserError."""
    key = (str(Path(results_dir).resolve()), experiment.name)
    if key not in _CACHE:
        try:
            surrogate = Surrogate.fit(
                list(experiment.space.params), record_curves(results_dir, experiment.name)
            )
        except ValueError as exc:
            raise UserError(f"replay: {exc}") from None
        out = Path(results_dir) / results_folder(experiment, "replay")
        out.mkdir(parents=True, exist_ok=True)
        (out / "surrogate.json").write_text(json.dumps(surrogate.evidence, indent=1))
        _CACHE[key] = surrogate
    return _CACHE[key]


def prepare_replay(experiment, results_dir, directory: Path):
    """(fidelity stand-in, trainer factory or None, finished?) for one replayed run."""
    surrogate = load_surrogate(experiment, results_dir)
    fidelity = ReplayFidelity(
        experiment.ladder.fractions, experiment.ladder.epochs, surrogate.samples
    )
    meta = directory / "metadata.json"
    if meta.is_file() and json.loads(meta.read_text()).get("finished"):
        return fidelity, None, True
    if directory.exists():  # an unfinished replay is cheaper to redo than to resume (in memory)
        shutil.rmtree(directory)
    return fidelity, replay_factory(surrogate, experiment.space.names), False
