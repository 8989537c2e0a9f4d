"""The harness's side files (plan.json, final.json, metadata.json, REPORT.md, ...): written by an
atomic replace so a kill or a full disk never leaves a torn file, and read with a guard so a
torn, unreadable or wrongly shaped one is skipped and named in one line, never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import UserError

_SHAPES = {dict: "an object", list: "a list"}


def folder_problem(text: str) -> str | None:
    """Why ``text`` cannot be a folder this process writes in (None when it can): it, or the
    nearest of its parents that exists, must be a folder that accepts a new file."""
    if not text:
        return "is empty"
    path = Path(text)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "" if existing == path else f", so {path} cannot be a folder"
        return f"{existing} is a file, not a folder{what}"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"cannot write in {existing}: {exc.strerror or exc}"
    return None


def replace_atomic(path: str | Path, write: Callable[[Path], None], what: str = "") -> None:
    """Make ``path`` (and its folder) by ``write(tmp)`` on a temporary file beside it, then
    renamed over ``path``: readers see the old file or the new one, never half of one. When
    writing fails with an OSError (a full disk, a folder in the way) the temporary file is
    removed, the old file is kept and one UserError names ``path`` (``what``: the kind of
    file, for the message)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the cause is what the message reports
            tmp.unlink(missing_ok=True)
        why = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:120]
        raise UserError(
            f"{path}: cannot write{what} ({why}); the previous file, if any, is kept; "
            "free space (or fix the cause) and run the same command again"
        ) from None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path``, flushed to disk, by ``replace_atomic``."""

    def synced(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    replace_atomic(path, synced)


def write_json_atomic(path: str | Path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (``write_text_atomic``); values JSON
    does not know (numpy numbers, paths) are written as text."""
    write_text_atomic(path, json.dumps(obj, indent=1, default=_plain))


def read_json_guarded(path: str | Path, expect: type = dict):
    """The JSON value in ``path`` when it is an ``expect`` (dict or list); None when the file is
    missing. A file that is unreadable, truncated, not UTF-8 or of another shape is None too,
    with one line on stderr naming the file and why."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:80] or "empty"
        return _skipped(path, f"unreadable or truncated ({why})")
    if not isinstance(value, expect):
        found = _SHAPES.get(type(value), type(value).__name__)
        return _skipped(path, f"holds {found}, not {_SHAPES.get(expect, expect.__name__)}")
    return value


def _skipped(path: Path, why: str) -> None:
    print(f"warning: {path}: skipped: {why}", file=sys.stderr)
    return None


def _plain(value):
    """numpy scalars as Python numbers, anything else as its text."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
