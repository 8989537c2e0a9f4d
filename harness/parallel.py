"""Independent jobs on every core this process may use.

The processes fork after the state the jobs share is built (a fitted surrogate, an
experiment), so they inherit it instead of receiving a pickled copy per job; only each job
and its result cross between processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

_SHARED: tuple[Callable, object] | None = None  # (func, shared), inherited by the fork


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def forked_map(func: Callable, shared, jobs: Sequence, chunksize: int = 1) -> Iterator:
    """``func(shared, job)`` for every job, results in the jobs' order, on up to
    ``usable_cores()`` forked processes. If the caller stops early (Ctrl-C, SIGTERM, an
    error), jobs not yet started never start."""
    global _SHARED
    _SHARED = (func, shared)
    workers = max(1, min(usable_cores(), len(jobs)))
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        yield from pool.map(_call, jobs, chunksize=chunksize)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def _call(job):
    func, shared = _SHARED
    return func(shared, job)
