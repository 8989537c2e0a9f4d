"""Torch checkpoints written whole or not at all, and read back without trusting them."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from harness.sidefiles import replace_atomic


def save_checkpoint(path: Path, checkpoint: dict, what: str = " the weights") -> None:
    """``checkpoint`` saved by an atomic replace: a full disk is one UserError naming the file
    and the previous file, if any, is kept."""

    def save(tmp: Path) -> None:
        try:
            torch.save(checkpoint, tmp)
        except RuntimeError as exc:  # torch wraps a failed write (a full disk) in RuntimeError
            raise OSError(str(exc).splitlines()[0][:120]) from exc

    replace_atomic(path, save, what)


def read_checkpoint(path: Path) -> dict | None:
    """The checkpoint at ``path`` (tensors only, never arbitrary objects), or None when it is
    missing or unreadable."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        if path.exists():
            print(f"note: {path} is unreadable ({type(exc).__name__}); it is made again")
        return None
    return loaded if isinstance(loaded, dict) else None
