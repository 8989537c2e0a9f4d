"""The night's experiment file: the experiment the night runs, with the chosen strategy, the
night's budget, the reduced space and the fixed values, written as TOML."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from harness.experiment import parse_experiment
from harness.sidefiles import write_text_atomic


def write_overnight(
    path: Path,
    *,
    night_path: Path,
    strategy: str,
    n_trials: int,
    hours: float,
    space: dict,
    fixed: dict,
    reason: str,
) -> None:
    """Writes ``path``: the experiment file at ``night_path`` with ``strategy``, a budget of
    ``n_trials`` trials or ``hours``, ``space`` (``reduced_space``'s entries) as its search
    space and ``fixed`` merged into its model; ``reason`` goes into the header comment.
    The written file is parsed back: a ``UserError`` if it would not load."""
    doc = tomllib.loads(night_path.read_text())
    lines = [
        f"# Written by 'python -m harness plan': {reason}.",
        f"# Run it with: python -m harness run --experiment {path}",
        f'description = "Overnight plan from {doc.get("name", night_path.stem)}: {strategy}, '
        f'{len(space)} parameters, {n_trials} trials or {hours:g} hours."',
        "",
    ]
    doc.pop("description", None)
    doc.pop("space", None)
    doc.setdefault("run", {})["strategy"] = strategy
    doc["budget"] = {"n_trials": n_trials, "timeout_minutes": float(hours * 60)}
    doc["model"] = {**doc.get("model", {}), **fixed}
    for table, values in doc.items():
        if isinstance(values, dict):
            lines += [f"[{table}]", *_assignments(values), ""]
        else:
            lines.insert(3, f"{table} = {toml_value(values)}")
    for name, entry in space.items():
        lines += [f"[space.{name}]", *_assignments(entry), ""]
    write_text_atomic(path, "\n".join(lines))
    parse_experiment(tomllib.loads(path.read_text()), str(path))


def _assignments(values: dict) -> list[str]:
    return [f"{k} = {toml_value(v)}" for k, v in values.items()]


def toml_value(v) -> str:
    """A Python value (bool, number, string, or a list of them) as a TOML value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))
