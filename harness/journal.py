"""Optuna's journal file, made safe against torn writes.

Optuna's `JournalFileBackend` appends one JSON line per operation. A process killed mid-write or
a full disk leaves a last line without its newline; the next append is glued onto it, and from
then on every reader fails with `JSONDecodeError`. `SafeJournalFileBackend` prevents both:

- on open, and before every append, a torn tail is set aside (a copy of the whole file goes to
  ``<name>.torn-<timestamp>.bak``) and cut off, so every complete record is kept;
- a write that fails (ENOSPC, EDQUOT, EFBIG, EIO...) is undone by truncating the file back to
  its size before the write, and reported as one `JournalWriteError` line: nothing torn stays.

Repairs run under Optuna's own journal lock, so a record another process is writing at that
moment is never mistaken for a torn one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from harness.errors import UserError

OP_CODE = b'{"op_code"'  # how every record Optuna writes begins


class JournalWriteError(UserError):
    """A journal record could not be written; the file was left as it was before the write."""


@dataclass(frozen=True)
class Repair:
    """What `repair_journal` set aside: whole records kept, bytes and lines set aside."""

    path: Path
    backup: Path
    kept: int
    set_aside_bytes: int
    set_aside_lines: int
    salvaged: int  # complete records found glued after a torn fragment (kept)
    tail_only: bool  # the damage was all after the last complete record

    def message(self) -> str:
        """One line for stderr: what was set aside, where, and what was kept."""
        lines = self.set_aside_lines
        what = (
            f"a torn last record ({self.set_aside_bytes} bytes) was"
            if self.tail_only and lines == 1
            else f"{lines} torn record{'s' if lines > 1 else ''} ({self.set_aside_bytes} bytes) "
            f"{'were' if lines > 1 else 'was'}"
        )
        glued = f", {self.salvaged} of them found glued after a torn one" if self.salvaged else ""
        return (
            f"storage {self.path}: {what} set aside in {self.backup}; "
            f"{self.kept} complete records kept{glued}"
        )


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(record, dict) and isinstance(record.get("op_code"), int)


def _split_records(data: bytes) -> tuple[list[bytes], int, int, int]:
    """Complete records (each with its newline), bytes and lines set aside, records salvaged.

    A line that is not a record may be a torn fragment with a whole record glued after it (an
    append by an older version after a torn write): the record is kept, the fragment set aside.
    """
    lines = data.split(b"\n")
    kept, aside_bytes, aside_lines, salvaged = [], 0, 0, 0
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break  # the file ended with a newline
        if not last and _is_record(line):
            kept.append(line + b"\n")
            continue
        start = line.rfind(OP_CODE)
        if not last and start > 0 and _is_record(line[start:]):
            kept.append(line[start:] + b"\n")
            salvaged += 1
            aside_bytes += start
        else:
            aside_bytes += len(line) + (0 if last else 1)
        aside_lines += 1
    return kept, aside_bytes, aside_lines, salvaged


def _backup_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.torn-{stamp}.bak")
    n = 1
    while backup.exists():
        backup, n = path.with_name(f"{path.name}.torn-{stamp}-{n}.bak"), n + 1
    return backup


def repair_journal(path: str | Path) -> Repair | None:
    """Set aside whatever in the journal at ``path`` is not a complete record; None if nothing is.

    The caller holds the journal's lock. Only a torn tail is the usual case: the file is cut
    after its last complete record. Damage in the middle rewrites the file atomically."""
    path = Path(path)
    data = path.read_bytes()
    kept, aside_bytes, aside_lines, salvaged = _split_records(data)
    if not aside_lines:
        return None
    backup = _backup_path(path)
    try:
        shutil.copy2(path, backup)
        good = b"".join(kept)
        tail_only = data.startswith(good)
        if tail_only:
            os.truncate(path, len(good))
        else:
            tmp = path.with_name(path.name + ".repair.tmp")
            tmp.write_bytes(good)
            os.replace(tmp, path)
    except OSError as exc:
        raise UserError(
            f"storage {path}: has a torn record but it cannot be set aside "
            f"({exc.strerror or exc}); free space or fix permissions and run again"
        ) from None
    return Repair(path, backup, len(kept), aside_bytes, aside_lines, salvaged, tail_only)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a short write is followed by the error's cause)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SafeJournalFileBackend(JournalFileBackend):
    """`JournalFileBackend` that repairs a torn journal on open and never leaves a torn record.

    Args:
        file_path: the journal file (created if missing).

    ``repair_message`` is the one-line report of a repair made on open, or None.
    """

    def __init__(self, file_path: str) -> None:
        self._harness_lock = JournalFileSymlinkLock(file_path)
        super().__init__(file_path, lock_obj=self._harness_lock)
        with self._locked():
            repair = repair_journal(file_path)
        self.repair_message = repair.message() if repair else None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._harness_lock.acquire()
        try:
            yield
        finally:
            self._harness_lock.release()

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Append ``logs`` as whole lines under the lock, fsynced; a torn tail left by a dead
        writer is cut first, and a failed write is undone (JournalWriteError)."""
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode()
        with self._locked():
            fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND)
            try:
                self._cut_torn_tail(fd)
                size = os.fstat(fd).st_size
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                except OSError as exc:
                    self._undo(fd, size, exc)
            finally:
                os.close(fd)

    def _cut_torn_tail(self, fd: int) -> None:
        """A process that died mid-write since our last append left a line without its newline."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with open(self._file_path, "rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
        repair = repair_journal(self._file_path)
        if repair:
            print(repair.message(), file=sys.stderr)

    def _undo(self, fd: int, size: int, exc: OSError) -> None:
        try:
            os.ftruncate(fd, size)
            left = "the journal is as it was before this write"
        except OSError:
            left = "the torn record will be set aside when the journal is next opened"
        raise JournalWriteError(
            f"storage {self._file_path}: cannot write a record ({exc.strerror or exc}); {left}; "
            "free space (or fix the cause) and run the same command again"
        ) from None
