"""Starting a model from another's trained weights where the shapes allow.

A configuration of the search rarely has v4's exact shape: every tensor whose name and shape
match is copied, the rest keep their fresh (seeded) initialization. So a trial of v4's shape
starts from v4 whole, and one with another hidden size inherits the layers that still fit
(the station embedding, a layer of the same width) and learns the others from scratch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Inherited:
    """What a model took from the weights it was started from, by tensor name."""

    loaded: tuple[str, ...]
    fresh: tuple[str, ...]

    @property
    def share(self) -> float:
        """The share of the model's tensors that were inherited."""
        total = len(self.loaded) + len(self.fresh)
        return len(self.loaded) / total if total else 0.0


def inherit(model: nn.Module, state: dict[str, torch.Tensor]) -> Inherited:
    """Copy into ``model`` every tensor of ``state`` whose name and shape match its own."""
    loaded, fresh = [], []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            source = state.get(name)
            if source is not None and source.shape == tensor.shape:
                tensor.copy_(source.to(tensor.device, tensor.dtype))
                loaded.append(name)
            else:
                fresh.append(name)
    return Inherited(tuple(loaded), tuple(fresh))
