"""Ctrl-C and SIGTERM: how a command stops, and the few places that must finish first.

The command's handler (``stops_like_ctrl_c``) turns the first SIGINT or SIGTERM into a
KeyboardInterrupt and ignores later ones while the command records what was in flight. Inside
``held()`` the stop waits: it is raised when the block ends, or as soon as a ``released()``
block inside it starts. The optimize loop is held and only the objective released, so a stop
lands inside a trial, never in Optuna's bookkeeping between trials. Blocking the signal itself
would not do: in a process with threads, the kernel hands a blocked signal to another thread
and Python still runs its handler in the main thread at the next instruction.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

CAUGHT = (signal.SIGINT, signal.SIGTERM)
_state = {"held": 0, "pending": False}


def _stop(signum, frame) -> None:
    if _state["held"]:
        _state["pending"] = True
        return
    for s in CAUGHT:
        signal.signal(s, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextmanager
def held() -> Iterator[None]:
    """A block a stop must not cut (a journal write under its lock); a stop that arrives
    inside it is raised when it ends."""
    _state["held"] += 1
    try:
        yield
    finally:
        _state["held"] -= 1
        if not _state["held"] and _state["pending"]:
            _state["pending"] = False
            _stop(signal.SIGTERM, None)


@contextmanager
def released() -> Iterator[None]:
    """Inside a held block, a part a stop may cut (training a trial): a stop that waited is
    raised on entry, and one that arrives inside is raised at once."""
    outer, _state["held"] = _state["held"], 0
    try:
        if _state["pending"]:
            _state["pending"] = False
            _stop(signal.SIGTERM, None)
        yield
    finally:
        _state["held"] = outer


@contextmanager
def stops_like_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, a job scheduler, a coordinator stopping its workers) ends the command as
    Ctrl-C does: finished trials kept, the trial in flight left to be trained again, local
    workers stopped, exit 130. Without this, Python would die at once and leave its workers.
    The first signal stops the command; later ones (a second Ctrl-C, the coordinator's SIGTERM
    on top of it) are ignored while it records what was in flight and exits."""
    try:
        previous = {s: signal.signal(s, _stop) for s in CAUGHT}
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state["pending"] = False
