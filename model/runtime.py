"""Process-level settings for fast training: device choice, CPU threads, the allocator."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_configured = False


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU. An unavailable CUDA is a ValueError."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    return torch.device(name)


def configure_process(threads: int | None = None) -> None:
    """Once per process: CPU threads and glibc's allocator.

    The LSTM's multi-MB work buffers otherwise go back to the kernel after every step,
    and page faults then cost up to a third of CPU training time (shared/PERF_NOTES.md).
    """
    global _configured
    if _configured:
        return
    _configured = True
    # OMP_NUM_THREADS, when set, wins: several processes sharing the cores must not oversubscribe
    # them (spinning OpenMP threads then slow every process many times over).
    env = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(
        threads or (int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0)))
    )
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once parallel work started; harmless
        pass
    libc_name = ctypes.util.find_library("c")
    if libc_name and hasattr(ctypes.CDLL(libc_name), "mallopt"):
        libc = ctypes.CDLL(libc_name)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
        libc.mallopt(_M_TOP_PAD, 64 * 2**20)


def release_device_memory() -> None:
    """After a failed trial: return cached GPU memory so the next trial starts clean."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
