"""Optuna's journal file, made safe against torn writes.

Optuna's `JournalFileBackend` appends one JSON line per operation. A process killed mid-write or
a full disk leaves a last line without its newline; the next append is glued onto it, and from
then on every reader fails with `JSONDecodeError`. `SafeJournalFileBackend` prevents both:

- on open, and before every append, a torn tail is set aside (a copy of the whole file goes to
  ``<name>.torn-<timestamp>.bak``) and cut off, so every complete record is kept;
- a record damaged in the middle of the file is set aside too, but a damaged create op is
  replaced by a placeholder create op (trial ids are the order of create ops: dropping one would
  make every later op land on the next trial); the replay then names each such trial as
  rebuilt (its later ops gave back its configuration) or LOST;
- a write that fails (ENOSPC, EDQUOT, EFBIG, EIO...) is undone by truncating the file back to
  its size before the write, and reported as one `JournalWriteError` line: nothing torn stays.

Repairs and appends run under `KernelJournalLock`, so a record another process is writing at
that moment is never mistaken for a torn one. It replaces Optuna's symlink lock, which a
process killed while holding it leaves behind: the next process then waited Optuna's 30-second
grace period before taking it over.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._storage import JournalOperation, JournalStorageReplayResult
from optuna.trial import TrialState

from harness import signals
from harness.errors import UserError

OP_CODE = b'{"op_code"'  # how every record Optuna writes begins
CREATE_STUDY = JournalOperation.CREATE_STUDY.value
CREATE_TRIAL = JournalOperation.CREATE_TRIAL.value
RUNNING, WAITING = TrialState.RUNNING.value, TrialState.WAITING.value
REPAIR_WORKER = "harness-journal-repair"  # the worker id of the create ops a repair rebuilds


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
    rebuilt: tuple[int, ...] = ()  # trials whose damaged create op was rebuilt from later ops
    lost: tuple[int, ...] = ()  # trials whose damaged create op left no configuration

    def message(self) -> str:
        """One line for stderr: what was set aside, where, what was kept, rebuilt and lost."""
        lines = self.set_aside_lines
        what = (
            f"a torn last record ({self.set_aside_bytes} bytes) was"
            if self.tail_only and lines == 1
            else f"{lines} torn record{'s' if lines > 1 else ''} ({self.set_aside_bytes} bytes) "
            f"{'were' if lines > 1 else 'was'}"
        )
        glued = f", {self.salvaged} of them found glued after a torn one" if self.salvaged else ""
        rebuilt = (
            f"; the creation of trial{_numbers(self.rebuilt)} rebuilt from its later records"
            if self.rebuilt
            else ""
        )
        lost = (
            f"; trial{_numbers(self.lost)} LOST (its creation record was damaged and no later "
            "record names its configuration)"
            if self.lost
            else ""
        )
        return (
            f"storage {self.path}: {what} set aside in {self.backup}; "
            f"{self.kept} complete records kept{glued}{rebuilt}{lost}"
        )


def _numbers(numbers: tuple[int, ...]) -> str:
    return ("s " if len(numbers) > 1 else " ") + ", ".join(str(n) for n in numbers)


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record on ``line``, or None if it is not a whole one."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("op_code"), int)
    return record if ok else None


@dataclass
class _Scan:
    """Records kept in order (a damaged line in the middle is a None slot for now)."""

    items: list[bytes | None] = field(default_factory=list)
    records: list[dict[str, Any] | None] = field(default_factory=list)
    damaged: dict[int, bytes] = field(default_factory=dict)  # slot -> the damaged line
    aside_bytes: int = 0
    aside_lines: int = 0
    salvaged: int = 0

    def keep(self, line: bytes, record: dict[str, Any]) -> None:
        self.items.append(line + b"\n")
        self.records.append(record)


def _split_records(data: bytes) -> _Scan:
    """Complete records, bytes and lines set aside, records salvaged, damaged middle lines.

    A line that is not a record may be a torn fragment with a whole record glued after it (an
    append by an older version after a torn write): the record is kept, the fragment set aside.
    """
    lines = data.split(b"\n")
    scan = _Scan()
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break  # the file ended with a newline
        record = None if last else _parse(line)
        if record is not None:
            scan.keep(line, record)
            continue
        start = line.rfind(OP_CODE)
        glued = _parse(line[start:]) if not last and start > 0 else None
        if glued is not None:
            scan.keep(line[start:], glued)
            scan.salvaged += 1
            scan.aside_bytes += start
        else:
            scan.aside_bytes += len(line) + (0 if last else 1)
            if not last:  # a damaged record with others after it: its op may be needed
                scan.damaged[len(scan.items)] = line
                scan.items.append(None)
                scan.records.append(None)
        scan.aside_lines += 1
    return scan


def _field(line: bytes, name: str, pattern: bytes) -> bytes | None:
    match = re.search(b'"' + name.encode() + b'":' + pattern, line)
    return match.group(1) if match else None


def _op_code(line: bytes) -> int | None:
    """The op code of a damaged line: as written, or CREATE_TRIAL where only a create op has
    its fields (a start time and no trial id); None if it cannot be told."""
    code = _field(line, "op_code", rb"(\d+)[,}]")
    if code is not None:
        return int(code)
    if b'"datetime_start"' in line and b'"trial_id"' not in line:
        return CREATE_TRIAL
    return None


def _placeholder(line: bytes, study_id: int) -> dict[str, Any]:
    """A CREATE_TRIAL op standing for the damaged ``line``: what of it can still be read (its
    study, start and state), so that every later op keeps its trial id."""
    op: dict[str, Any] = {"op_code": CREATE_TRIAL, "worker_id": REPAIR_WORKER}
    sid = _field(line, "study_id", rb"(\d+)[,}]")
    op["study_id"] = int(sid) if sid is not None else study_id
    start = _field(line, "datetime_start", rb'"([0-9T:.+-]+)"')
    try:
        op["datetime_start"] = datetime.fromisoformat(start.decode()).isoformat() if start else None
    except ValueError:
        op["datetime_start"] = None
    state = _field(line, "state", rb"(\d)[,}]")
    if state is not None and int(state) in (RUNNING, WAITING):
        op["state"] = int(state)
    return op


def _rebuild_creates(scan: _Scan) -> list[int]:
    """Put a placeholder create op in each damaged slot that held one: its op code still reads
    4, or a later op names a trial id no earlier create made. Returns the slots rebuilt."""
    created, studies, study_id, pending, rebuilt = 0, 0, 0, [], []

    def rebuild(slot: int) -> None:
        nonlocal created
        op = _placeholder(scan.damaged[slot], study_id)
        scan.records[slot] = op
        scan.items[slot] = (json.dumps(op, separators=(",", ":")) + "\n").encode()
        rebuilt.append(slot)
        created += 1

    for slot, record in enumerate(scan.records):
        if record is None:
            code = _op_code(scan.damaged[slot])
            if code == CREATE_TRIAL:
                rebuild(slot)
            elif code is None:
                pending.append(slot)
            continue
        if record["op_code"] == CREATE_STUDY:
            study_id, studies = studies, studies + 1
        elif record["op_code"] == CREATE_TRIAL:
            created += 1
        trial_id = record.get("trial_id")
        while isinstance(trial_id, int) and trial_id >= created and pending:
            rebuild(pending.pop(0))
    rebuilt.sort()
    return rebuilt


def _backup_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.torn-{stamp}.bak")
    n = 1
    while backup.exists():
        backup, n = path.with_name(f"{path.name}.torn-{stamp}-{n}.bak"), n + 1
    return backup


def _fates(scan: _Scan, rebuilt: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Replays the repaired records: the numbers of the rebuilt trials that got their
    configuration back from later ops, and of those that did not (lost)."""
    replay = JournalStorageReplayResult(REPAIR_WORKER + "-check")
    records = [r for r in scan.records if r is not None]
    try:
        replay.apply_logs(records)
    except Exception:  # noqa: BLE001 - Optuna reports unreplayable records when it opens them
        return (), tuple(rebuilt)
    ids, trial_id = {}, 0
    for slot, record in enumerate(scan.records):
        if record is not None and record["op_code"] == CREATE_TRIAL:
            ids[slot], trial_id = trial_id, trial_id + 1
    trials = [replay._trials.get(ids[slot]) for slot in rebuilt]
    kept = tuple(t.number for t in trials if t is not None and t.params)
    lost = tuple(t.number if t is not None else ids[s] for t, s in zip(trials, rebuilt))
    return kept, tuple(n for n in lost if n not in kept)


def repair_journal(path: str | Path) -> Repair | None:
    """Set aside whatever in the journal at ``path`` is not a complete record; None if nothing is.

    The caller holds the journal's lock. Only a torn tail is the usual case: the file is cut
    after its last complete record. Damage in the middle rewrites the file atomically; a
    damaged create op there is replaced by a placeholder so that no later op changes trial."""
    path = Path(path)
    data = path.read_bytes()
    scan = _split_records(data)
    if not scan.aside_lines:
        return None
    rebuilt = _rebuild_creates(scan)
    good = b"".join(item for item in scan.items if item is not None)
    tail_only = data.startswith(good)
    backup = _backup_path(path)
    try:
        shutil.copy2(path, backup)
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
    kept = sum(1 for r in scan.records if r is not None) - len(rebuilt)
    recovered, lost = _fates(scan, rebuilt) if rebuilt else ((), ())
    return Repair(
        path,
        backup,
        kept,
        scan.aside_bytes,
        scan.aside_lines,
        scan.salvaged,
        tail_only,
        recovered,
        lost,
    )


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a short write is followed by the error's cause)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


LOCK_WAIT_WARNING_SECONDS = 10.0
_HELD_FDS: set[int] = set()  # journal locks this process holds; a forked child closes its copies


def _close_inherited_locks() -> None:
    for fd in _HELD_FDS:
        os.close(fd)  # the parent's hold stays; the child's copy must not prolong it
    _HELD_FDS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


class KernelJournalLock:
    """The journal's write lock: ``flock`` on ``<journal>.flock``, which the kernel releases when
    its holder dies, however it dies, so a killed writer never delays the next one. Each acquire
    opens the file anew (read-only: a lock file another user created still locks), and a child
    forked while it is held closes its copy. A wait of over 10 s says so on stderr. Optuna asks
    a journal lock for acquire() and release() only."""

    def __init__(self, journal_path: str) -> None:
        self._path = journal_path + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Blocks until this process holds the lock; an OSError is one UserError."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(
                f"{self._path}: cannot open the journal's lock ({exc.strerror})"
            ) from None
        try:
            self._wait_for(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD_FDS.add(fd)
        return True

    def _wait_for(self, fd: int) -> None:
        start, pause, warned = time.monotonic(), 0.001, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError as exc:
                raise UserError(f"{self._path}: cannot lock the journal ({exc.strerror})") from None
            if not warned and time.monotonic() - start > LOCK_WAIT_WARNING_SECONDS:
                print(
                    f"waiting for another process's lock on the journal ({self._path})...",
                    file=sys.stderr,
                )
                warned = True
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def release(self) -> None:
        """Closing the file releases the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            raise RuntimeError("the journal lock is not held")
        _HELD_FDS.discard(fd)
        os.close(fd)


class SafeJournalFileBackend(JournalFileBackend):
    """`JournalFileBackend` that repairs a torn journal on open and never leaves a torn record.

    Args:
        file_path: the journal file (created if missing).

    ``repair_message`` is the one-line report of a repair made on open, or None.
    """

    def __init__(self, file_path: str) -> None:
        self._harness_lock = KernelJournalLock(file_path)
        super().__init__(file_path, lock_obj=self._harness_lock)
        with self._locked():
            repair = repair_journal(file_path)
        self.repair_message = repair.message() if repair else None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Ctrl-C and SIGTERM wait until the lock is released: a write stopped halfway would
        # leave the torn record this class exists to prevent, and a stop between the lock's
        # acquire and its release would leave it held by this process. (Optuna's bookkeeping
        # is held by the optimize loop anyway; a long wait says whose lock it waits for.)
        with signals.held():
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
