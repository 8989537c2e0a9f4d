"""Append-only tidy records of a run: one CSV row per trial and rung, one per finished trial.

Rows are written and flushed as soon as they exist, so a crash loses at most the rung
being trained. Analysis reads these files (and never the model).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
from pathlib import Path

import pandas as pd

from harness.errors import UserError

RUNG_COLUMNS = (
    "strategy",
    "seed",
    "trial",
    "rung",
    "step",
    "fraction",
    "epochs",
    "samples",
    "train_loss",
    "val_mae",
    "val_mae_h1",
    "val_mae_h2",
    "val_mae_h3",
    "val_r2",
    "train_seconds",
    "eval_seconds",
    "device",
    "pruned",
    "replayed",
    "train_flops",
)
TRIAL_COLUMNS = (
    "strategy",
    "seed",
    "trial",
    "state",
    "fail_reason",
    "rungs_done",
    "last_step",
    "val_mae",
    "train_seconds",
    "eval_seconds",
    "wall_seconds",
    "harness_seconds",
    "parameters",
    "train_flops",
)


class _CsvLog:
    """A CSV file several processes append to: each row is written whole under an exclusive lock,
    and a last line torn by a killed process is cut off when the file is next opened."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        with path.open("a+", newline="") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            text = fh.read()
            if not text:
                csv.writer(fh).writerow(columns)
            elif next(csv.reader([text.partition("\n")[0]]), []) != list(columns):
                raise UserError(
                    f"{path}: its columns differ from what this version of the harness writes "
                    "(records of an older version or another experiment); move the folder "
                    "away or use another --results folder"
                )
            elif not text.endswith("\n"):
                fh.truncate(text.rfind("\n") + 1)

    def append(self, row: dict) -> None:
        line = io.StringIO()
        csv.DictWriter(line, self.columns, extrasaction="raise").writerow(
            {c: row.get(c, "") for c in self.columns}
        )
        with self.path.open("a", newline="") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line.getvalue())


class RunRecorder:
    """The records of one (experiment, strategy, seed) run under ``directory``."""

    def __init__(self, directory: Path, param_names: tuple[str, ...]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        params = [f"param_{p}" for p in param_names]
        self.rungs = _CsvLog(self.directory / "rungs.csv", list(RUNG_COLUMNS) + params)
        self.trials = _CsvLog(self.directory / "trials.csv", list(TRIAL_COLUMNS) + params)

    def write_metadata(self, meta: dict) -> None:
        path = self.directory / "metadata.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1, default=str))
        tmp.replace(path)

    def add_rung(self, row: dict, params: dict) -> None:
        self.rungs.append({**row, **{f"param_{k}": v for k, v in params.items()}})

    def add_trial(self, row: dict, params: dict) -> None:
        self.trials.append({**row, **{f"param_{k}": v for k, v in params.items()}})

    def read(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return pd.read_csv(self.rungs.path), pd.read_csv(self.trials.path)
