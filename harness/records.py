"""Append-only tidy records of a run: one CSV row per trial and rung, one per finished trial.

Rows are written and flushed as soon as they exist, so a crash loses at most the rung
being trained. A write that fails (a full disk) is undone, never left torn. Analysis reads
these files (and never the model), tolerantly: read_trials and read_rungs drop and count the
lines they cannot use.

An empty timing cell means "not measured": a trial this process did not see finish (killed,
or trained on another machine) has unknown timings, never 0.0 s.
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.sidefiles import write_json_atomic, write_text_atomic
from harness.tables import Table, empty_or_number, finite, number, read_table, whole

RUNG_COLUMNS = (
    "strategy",
    "seed",
    "trial",
    "rung",
    "step",
    "fraction",
    "epochs_done",  # the trainer's running total for the trial, not [ladder] epochs at this rung
    "samples",
    "train_loss",
    "val_mae",
    "val_mae_h1",  # one per model.windows.HORIZONS (not imported: analysis reads these
    "val_mae_h2",  # records without loading the model package; a test ties the two)
    "val_mae_h3",
    "val_r2",
    "train_seconds",
    "eval_seconds",
    "device",
    "pruned",
    "replayed",
    "train_flops",
    "inherited_share",  # of the model's tensors taken from v4's weights (.v4w runs; else empty)
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
    "finished_at",  # Unix time the trial was recorded (real clocks only): the run's real span
)
# Columns added after runs were first recorded: a run resumed from older records keeps writing
# its own header's columns (these stay empty there) instead of being refused.
LATER_COLUMNS = ("finished_at", "inherited_share")
# Columns read and appended under their new name; records written before the rename keep
# their header. rungs.csv's "epochs" became "epochs_done" in 2026-12.
RENAMED_COLUMNS = {"epochs": "epochs_done"}


def _current_names(header: list[str]) -> list[str]:
    return [RENAMED_COLUMNS.get(c, c) for c in header]


TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL")
TIMING_COLUMNS = ("train_seconds", "eval_seconds", "wall_seconds", "harness_seconds")
UNKNOWN_SECONDS = float("nan")  # written as an empty cell; summed as nothing


def param_column(name: str) -> str:
    """The records column (rungs.csv, trials.csv and the tables built from them) that holds
    parameter ``name``."""
    return f"param_{name}"


_PARAM_PREFIX = param_column("")


def is_param_column(column) -> bool:
    """Whether ``column`` is a ``param_column``."""
    return isinstance(column, str) and column.startswith(_PARAM_PREFIX)


def param_name(column: str) -> str:
    """The parameter a ``param_column`` holds."""
    return column[len(_PARAM_PREFIX) :]


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The ``param_column``s of a records table, in its order."""
    return [c for c in frame.columns if is_param_column(c)]


def as_param_columns(params: dict) -> dict:
    """``params`` (name -> value) keyed by their ``param_column``s, for a records row."""
    return {param_column(name): value for name, value in params.items()}


def unfinished_row(strategy: str, seed: int, trial: int, reason: str, **fields) -> dict:
    """A trial-table row for a trial this process did not see finish: failed, its timings
    unknown (empty cells, not 0.0), unless ``fields`` say otherwise."""
    return {
        "strategy": strategy,
        "seed": seed,
        "trial": trial,
        "state": "FAIL",
        "fail_reason": reason,
        **{c: UNKNOWN_SECONDS for c in TIMING_COLUMNS},
        **fields,
    }


class _CsvLog:
    """A CSV file several processes append to: each row is written whole under an exclusive lock,
    and a last line torn by a killed process is cut off when the file is next opened."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        header = io.StringIO()
        csv.writer(header).writerow(columns)
        try:
            with path.open("a+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.seek(0)
                data = fh.read()
                keep = data.rfind(b"\n") + 1  # a torn last line (or a torn header) is cut off
                if keep < len(data):
                    fh.truncate(keep)
                if keep == 0:
                    fh.write(header.getvalue().encode())
        except OSError as exc:
            raise UserError(f"records {path}: cannot open ({exc.strerror or exc})") from None
        found = data[: data.find(b"\n") + 1].decode("utf-8", errors="replace") if keep else ""
        older = [c for c in columns if c not in LATER_COLUMNS]
        found_names = _current_names(next(csv.reader([found]), []))
        if found and found_names == older:
            self.columns = older  # records begun before LATER_COLUMNS existed
        elif found and found_names != columns:
            raise UserError(
                f"records {path}: its columns are not this run's ({found.strip()[:120]}); "
                "was the experiment changed? use a new experiment name or --results folder"
            )

    def append(self, row: dict) -> None:
        line = io.StringIO()
        csv.DictWriter(line, self.columns, extrasaction="raise").writerow(
            {c: _cell(row.get(c, "")) for c in self.columns}
        )
        data = line.getvalue().encode()
        try:
            fh = self.path.open("ab", buffering=0)
        except OSError as exc:
            raise UserError(f"records {self.path}: cannot open ({exc.strerror or exc})") from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            size = os.fstat(fh.fileno()).st_size
            try:
                _write_all(fh.fileno(), data)
            except OSError as exc:
                _undo(fh, size, self.path, exc)

    def drop(self, unwanted: Callable[[dict], bool]) -> int:
        """Rewrite the file without the rows ``unwanted`` accepts (each row as a dict of
        strings), atomically and under the lock; returns how many went."""
        try:
            with self.path.open("rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                lines = fh.read().decode("utf-8", errors="replace").splitlines(keepends=True)
                header = next(csv.reader(lines[:1]), [])
                kept = [
                    line
                    for line in lines[1:]
                    if not unwanted(dict(zip(header, next(csv.reader([line]), []))))
                ]
                if len(kept) < len(lines) - 1:
                    write_text_atomic(self.path, "".join(lines[:1] + kept))
        except OSError as exc:
            raise UserError(
                f"records {self.path}: cannot rewrite ({exc.strerror or exc})"
            ) from None
        return len(lines) - 1 - len(kept)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _cell(value):
    """NaN (an unknown number) as an empty cell."""
    return "" if isinstance(value, float) and math.isnan(value) else value


def _undo(fh, size: int, path: Path, exc: OSError) -> None:
    try:
        os.ftruncate(fh.fileno(), size)
        left = "nothing torn was left"
    except OSError:
        left = "the torn row will be cut when the run is resumed"
    raise UserError(
        f"records {path}: cannot write a row ({exc.strerror or exc}); {left}; "
        "free space (or fix the cause) and run the same command again"
    ) from None


class RunRecorder:
    """The records of one (experiment, strategy, seed) run under ``directory``."""

    def __init__(self, directory: Path, param_names: tuple[str, ...]) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"records {self.directory}: cannot create the folder ({exc.strerror or exc})"
            ) from None
        params = [param_column(p) for p in param_names]
        self.rungs = _CsvLog(self.directory / "rungs.csv", list(RUNG_COLUMNS) + params)
        self.trials = _CsvLog(self.directory / "trials.csv", list(TRIAL_COLUMNS) + params)

    def write_metadata(self, meta: dict) -> None:
        """Write ``meta`` to metadata.json atomically; a failure keeps the previous file and is a
        UserError."""
        write_json_atomic(self.directory / "metadata.json", meta)

    def add_rung(self, row: dict, params: dict) -> None:
        """Append one rungs.csv row: ``row`` plus the trial's ``params`` as ``param_column``s."""
        self.rungs.append({**row, **as_param_columns(params)})

    def add_trial(self, row: dict, params: dict) -> None:
        """Append one trials.csv row: ``row`` plus the trial's ``params`` as ``param_column``s."""
        self.trials.append({**row, **as_param_columns(params)})

    def forget_rungs(self, strategy: str, seed: int, trials: set[int]) -> int:
        """Drop the rungs.csv rows of ``trials`` (trained again from the start: a resumed trial
        records each rung once); returns how many rows went."""
        wanted = {(strategy, str(seed), str(t)) for t in trials}
        return self.rungs.drop(
            lambda row: (row.get("strategy"), row.get("seed"), row.get("trial")) in wanted
        )

    def read(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The usable rows of rungs.csv and trials.csv (unreadable lines dropped)."""
        return read_rungs(self.rungs.path).frame, read_trials(self.trials.path).frame


def _owned(frame: pd.DataFrame, strategy: str | None, seed: int | None) -> pd.Series:
    ok = whole(frame["seed"], minimum=-(2**63)) & frame["strategy"].notna()
    if strategy is not None:
        ok &= frame["strategy"] == strategy
    if seed is not None:
        ok &= number(frame["seed"]) == seed
    return ok & whole(frame["trial"])


def read_trials(path: str | Path, strategy: str | None = None, seed: int | None = None) -> Table:
    """trials.csv, keeping the rows of ``strategy`` and ``seed`` (when given) with a known state,
    a finite MAE where COMPLETE, and timings that are numbers or empty (unknown)."""

    def usable(f: pd.DataFrame) -> pd.Series:
        ok = _owned(f, strategy, seed) & f["state"].isin(TRIAL_STATES)
        ok &= (f["state"] != "COMPLETE") | finite(f["val_mae"])
        for c in TIMING_COLUMNS:
            ok &= empty_or_number(f[c])
        return ok

    return read_table(
        path, ("strategy", "seed", "trial", "state", "val_mae") + TIMING_COLUMNS, usable
    )


def read_rungs(path: str | Path, strategy: str | None = None, seed: int | None = None) -> Table:
    """rungs.csv, keeping the rows of ``strategy`` and ``seed`` (when given) whose rung, MAE,
    samples and timings are numbers."""
    numbers = ("val_mae", "samples", "train_seconds", "eval_seconds")

    def usable(f: pd.DataFrame) -> pd.Series:
        ok = _owned(f, strategy, seed) & whole(f["rung"], minimum=1)
        for c in numbers:
            ok &= finite(f[c])
        return ok

    table = read_table(path, ("strategy", "seed", "trial", "rung") + numbers, usable)
    return replace(table, frame=table.frame.rename(columns=RENAMED_COLUMNS))
