"""Process-level settings for fast training: device choice and sharing, CPU threads, the
allocator, and which precisions this machine can run (probed once, then cached)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

import torch
from torch import nn

from model.config import PRECISIONS  # the one owner of the names (torch-free)

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_configured = False


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_PROBED: dict[tuple[str, str], tuple[bool, str]] = {}  # (device, precision) -> (ok, reason)

# torch's autocast sends cuDNN's RNN kernel through its own wrapper (AutocastRNN.cpp), which casts
# to fp16 whatever dtype was asked for. "bf16" on CUDA would therefore train both LSTMs in fp16
# with no loss scaling (the scaler is for fp16 only), so it is refused. Casting the LSTMs to bf16
# by hand would need fp32 master weights beside them (bf16 weights lose Adam's small updates), and
# enabling the scaler would make "bf16" a mislabelled fp16: neither is what the name promises.
_CUDA_BF16 = (
    "precision 'bf16' on CUDA: autocast runs cuDNN LSTMs in fp16 without loss scaling; "
    "use 'fp16' (scaled, the CUDA default) or 'fp32'"
)


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' picks CUDA when available, else CPU. An unavailable CUDA is a ValueError."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    device = torch.device(name)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} "
            "CUDA device(s)"
        )
    return device


def worker_device(requested: str | None, worker_index: int) -> str:
    """The device worker ``worker_index`` (0 = the coordinator) trains on: 'auto' and 'cuda' go
    round-robin over the visible GPUs (cuda:0, cuda:1, ...); 'cpu' and 'cuda:N' are kept."""
    if worker_index < 0:
        raise ValueError(f"worker index must be >= 0, got {worker_index}")
    name = str(resolve_device(requested))  # validates the name; 'auto' becomes 'cuda' or 'cpu'
    if requested not in (None, "auto", "cuda"):
        return name
    if not name.startswith("cuda"):
        return name
    return f"cuda:{worker_index % torch.cuda.device_count()}"


def device_sharing(requested: str | None, workers: int) -> dict[str, int]:
    """How many of ``workers`` processes train on each device, e.g. {'cuda:0': 2, 'cuda:1': 1}:
    metadata records it so that runs with different sharing are not compared as equals."""
    counts: dict[str, int] = {}
    for index in range(workers):
        device = worker_device(requested, index)
        counts[device] = counts.get(device, 0) + 1
    return counts


def configure_process(threads: int | None = None) -> None:
    """Once per process: CPU threads and glibc's allocator.

    The LSTM's multi-MB work buffers otherwise go back to the kernel after every step,
    and page faults then cost up to a third of CPU training time (measured on the 2-core
    project machine).
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


def _as_device(device: str | torch.device | None) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return resolve_device(device)
    return torch.device(device)  # no availability check: the refusals below need no GPU


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].split(". Run workload")[0] if text else type(exc).__name__


def _probe(device: torch.device, precision: str) -> tuple[bool, str]:
    """One forward and backward of a tiny LSTM under autocast: the kernels a trial needs."""
    try:
        lstm, head = nn.LSTM(1, 4).to(device), nn.Linear(4, 1).to(device)
        with torch.autocast(device.type, dtype=_DTYPES[precision]):
            out, _ = lstm(torch.randn(3, 2, 1, device=device))  # (T, B, H)
            loss = head(out[-1]).float().abs().mean()
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except RuntimeError as exc:  # oneDNN/cuDNN refusals, torch.AcceleratorError
        where = "this CPU" if device.type == "cpu" else str(device)
        return False, (
            f"precision {precision!r} is not supported on {where}: {_first_line(exc)}; use 'fp32'"
        )
    return True, ""


def resolve_precision(device: str | torch.device | None, precision: str) -> str:
    """'auto' becomes 'fp16' on CUDA when the GPU runs it, else 'fp32'; other names are kept.
    An unknown name is a ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    device = _as_device(device)
    if device.type == "cuda" and precision_supported(device, "fp16")[0]:
        return "fp16"
    return "fp32"


def precision_supported(device: str | torch.device | None, precision: str) -> tuple[bool, str]:
    """(True, '') when ``device`` can train in ``precision``, else (False, one-line reason).
    Probed by running the kernels once, cached per (device, precision) for the process."""
    if precision not in PRECISIONS:
        return False, f"precision must be one of {PRECISIONS}, got {precision!r}"
    device = _as_device(device)
    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return True, ""
    if device.type == "cuda" and precision == "bf16":
        return False, _CUDA_BF16
    if device.type == "cuda" and not torch.cuda.is_available():
        return False, f"precision {precision!r} on {device}: CUDA is not available on this machine"
    key = (str(device), precision)
    if key not in _PROBED:
        _PROBED[key] = _probe(device, precision)
    return _PROBED[key]


def check_precision(device: str | torch.device | None, precision: str) -> None:
    """Raise ValueError with one line when ``device`` cannot train in ``precision``."""
    ok, reason = precision_supported(device, precision)
    if not ok:
        raise ValueError(reason)


def configure_precision(device: torch.device, precision: str) -> None:
    """Process-wide maths settings for ``precision`` on ``device``.

    cuDNN's LSTM uses TF32 (a 10-bit mantissa) for fp32 by default on Ampere and later, so
    "fp32" on CUDA would not be the CPU's fp32; it is turned off (the legacy flags only: mixing
    them with torch's newer fp32_precision API makes reading either raise)."""
    if device.type == "cuda" and precision == "fp32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _tf32_flags() -> dict[str, bool | str]:
    try:
        return {
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    except RuntimeError:  # someone used torch's newer API: report that one
        return {
            "tf32_cudnn": torch.backends.cudnn.rnn.fp32_precision,
            "tf32_matmul": torch.backends.cuda.matmul.fp32_precision,
        }


def precision_facts(device: str | torch.device | None) -> dict:
    """What the maths on ``device`` actually is, for a run's metadata: TF32 flags, library
    versions, the GPU or the CPU's bf16-related flags, and the precisions probed so far."""
    device = _as_device(device)
    facts: dict = {"device": str(device), "torch": torch.__version__, **_tf32_flags()}
    facts["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if device.type == "cuda" and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
    else:
        facts["cpu_flags"] = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    facts["probed"] = {p: ok for (d, p), (ok, _) in _PROBED.items() if d == str(device)}
    return facts


def release_device_memory() -> str | None:
    """After a failed or pruned trial: collect garbage and return cached GPU memory.

    Never raises: a device error (a sticky CUDA error raises again on every call) comes back
    as one line for the trial's record; None when all went well."""
    try:
        gc.collect()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception as exc:  # noqa: BLE001  (the caller is already handling a failure)
        return f"releasing device memory failed: {type(exc).__name__}: {_first_line(exc)}"
    return None
