"""An experiment's identity: what defines the trials of a study, stored with the study.

A study resumed under a changed experiment file would mix trials trained under two
definitions in one study and one table. The fingerprint holds what changes what a trial
measures: the data, the ladder, the search space, the fixed model values and the precision.
A data file is identified by its name (not its folder, nor its content). It leaves out
what may change between sessions of one study: the budget (raising
``n_trials`` or the timeout is how a study is continued), the seeds to run, the device, the
storage, the default strategy, the name, path and description.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from harness.errors import UserError

FINGERPRINT_ATTR = "experiment_fingerprint"  # the study's user attribute
MAX_LISTED = 5


def fingerprint_of(experiment: dict) -> dict:
    """The fingerprint of an experiment given as ``Experiment.to_dict()`` (or as recorded in a
    run's metadata.json): a JSON-ready dict."""
    space = experiment.get("space", {}).get("params", [])
    data = dict(experiment.get("data", {}))
    if data.get("source"):  # by name: a project folder moved elsewhere is the same data
        data["source"] = Path(str(data["source"])).name
    return _plain(
        {
            "data": data,
            "ladder": {k: experiment.get("ladder", {}).get(k) for k in ("fractions", "epochs")},
            "space": {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in space},
            "model": dict(experiment.get("model", {})),
            "precision": experiment.get("precision", "auto"),
        }
    )


def fingerprint(experiment) -> dict:
    """The fingerprint of a harness.experiment.Experiment."""
    return fingerprint_of(experiment.to_dict())


def fingerprint_hash(fp: dict) -> str:
    """A short stable hash of a fingerprint (16 hex digits)."""
    text = json.dumps(_canonical(fp), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(stored: dict, current: dict) -> list[str]:
    """One ``field old -> new`` entry per differing field (a parameter added to or removed from
    the space is one entry). A field absent on one side and None on the other (an optional field
    added by a later version) is no difference."""
    old_space, new_space = stored.get("space", {}), current.get("space", {})
    out = [
        f"space.{name} {'removed' if name in old_space else 'added'}"
        for name in sorted(set(old_space) ^ set(new_space))
    ]
    shared = set(old_space) & set(new_space)
    old = _flatten({**stored, "space": {k: v for k, v in old_space.items() if k in shared}})
    new = _flatten({**current, "space": {k: v for k, v in new_space.items() if k in shared}})
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            out.append(f"{key} {_show(a, key in old)} -> {_show(b, key in new)}")
    return out


def check_fingerprint(
    stored: dict, current: dict, study: str, experiment: str | None = None
) -> None:
    """Raise UserError, one line naming what differs, if ``current`` is not ``stored``."""
    diffs = differences(stored, current)
    if not diffs:
        return
    name = experiment or study.rsplit(".", 2)[0]
    raise UserError(
        f"experiment {name} changed since study {study} was created: {listed_changes(diffs)}; "
        "start a new study with a new experiment name or --results folder"
    )


def listed_changes(diffs: list[str]) -> str:
    """``differences``' entries for a message: the first MAX_LISTED, then how many more."""
    listed = ", ".join(diffs[:MAX_LISTED])
    if len(diffs) > MAX_LISTED:
        listed += f" and {len(diffs) - MAX_LISTED} more"
    return listed


def ensure_fingerprint(study, experiment, metadata: str | Path | None = None) -> dict:
    """Refuse a study created under another definition of ``experiment``; store the fingerprint
    on a study that has none. Returns the current fingerprint.

    ``metadata``: the run's metadata.json, the witness for studies created before fingerprints
    were stored. Call before the run's metadata.json is rewritten."""
    current = fingerprint(experiment)
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None and metadata is not None:
        stored = recorded_fingerprint(metadata)
    if stored is not None:
        check_fingerprint(stored, current, study.study_name, experiment.name)
    if FINGERPRINT_ATTR not in study.user_attrs:
        study.set_user_attr(FINGERPRINT_ATTR, current)
    return current


def recorded_fingerprint(metadata: str | Path) -> dict | None:
    """The fingerprint of the experiment a run's metadata.json records; None if unreadable."""
    try:
        meta = json.loads(Path(metadata).read_text())
        return meta.get("fingerprint") or fingerprint_of(meta["experiment"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: what the value looks like after a JSON round trip."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _canonical(value: Any) -> Any:
    """32.0 and 32 hash alike (TOML gives either for the same bound)."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _show(value: Any, present: bool) -> str:
    if not present:
        return "(absent)"
    return json.dumps(value, separators=(",", ":"), default=str)
