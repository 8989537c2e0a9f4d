"""One coordinator per study: an advisory lock beside the study's records.

Two coordinators on one journal study fail each other's running trials ("Cannot tell a FAIL
trial"); the second one must refuse to start instead. The lock is ``fcntl.flock`` on
``<run folder>/study.lock``: the kernel releases it when its process dies, however it dies, so a
lock left by a killed process is simply taken over. The holder writes its process id into the
file, for the message. Workers that join a running study do not take it.

It guards the studies of one results folder on one machine; a study in a shared database run
from several machines relies on the database and the heartbeats instead.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import UserError

LOCK_NAME = "study.lock"


def _holder(fd: int) -> str:
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return "another process"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:  # it died, and a process it started still holds the lock
        return f"a child of process {pid} (which has exited)"
    except PermissionError:
        pass  # alive, another user's
    return f"process {pid}"


@contextmanager
def study_lock(directory: str | Path, study_name: str) -> Iterator[Path]:
    """Hold the lock of ``study_name``, whose records are in ``directory``, until the block ends.

    Yields the lock file's path. Raises UserError naming the holder's process id when another
    live process holds it. On a filesystem without locks, says so on stderr and runs unlocked.
    """
    path = Path(directory) / LOCK_NAME
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the study's lock ({exc.strerror or exc})") from None
    try:
        locked = _acquire(fd, path, study_name)
        if locked:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: Path, study_name: str) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        raise UserError(
            f"study {study_name} is already being run by {_holder(fd)} (lock {path}); "
            "wait for it or stop it"
        ) from None
    except OSError as exc:  # e.g. ENOLCK on a network filesystem
        print(
            f"warning: {path}: cannot lock ({exc.strerror or exc}); "
            f"do not start a second coordinator of study {study_name}",
            file=sys.stderr,
        )
        return False
