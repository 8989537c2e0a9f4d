"""Trial backends: what trains a configuration and what its clock is.

As syne-tune hands its Tuner a trial backend, a run is handed one of these objects, chosen
once by name. `real` trains the LSTM on the experiment's data; `replay` answers from a
surrogate fitted to recorded learning curves, instantly, with a simulated clock. The run
loop never asks which one it has: it asks the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from harness.errors import UserError
from harness.layout import results_folder
from harness.provenance import device_name
from harness.storage import open_storage


@dataclass(frozen=True)
class Workload:
    """What a backend prepares for one run.

    ``data`` is None under replay (only window counts matter there); ``make_trainer`` has
    Trainer's signature; ``finished`` says the run needs no more trials (a finished replay).
    """

    data: object
    fidelity: object
    make_trainer: Callable
    replayed: bool
    finished: bool = False


class Backend(ABC):
    """One way of running trials. Subclasses set the class attributes and ``prepare``."""

    name: str
    replayed: bool  # answers from a surrogate instead of training the model
    simulated_clock: bool  # wall-clock budgets are checked against reported seconds
    max_workers: int | None = None  # None: any number of worker processes

    def folder(self, experiment) -> str:
        """The experiment's folder under results/ for this backend."""
        return results_folder(experiment, self.replayed)

    @abstractmethod
    def open_storage(self, url: str) -> tuple[str, BaseStorage]:
        """The study storage at ``url``: (URL as shown to the user, storage)."""

    @abstractmethod
    def prepare(self, experiment, *, results_dir: str, directory: Path, device) -> Workload:
        """Data, fidelities and a trainer factory for one run whose records go in ``directory``."""

    def device_label(self, device) -> str:
        """How the run's device is named in its records."""
        return str(device)

    def device_name(self, device) -> str:
        """A readable name of what runs the trials: the GPU's name or the CPU's."""
        return device_name(device)


class RealBackend(Backend):
    """The LSTM trained on the experiment's data, on this machine's device."""

    name = "real"
    replayed = False
    simulated_clock = False

    def open_storage(self, url: str) -> tuple[str, BaseStorage]:
        """The Optuna storage at ``url``, shown as given."""
        return url, open_storage(url)

    def prepare(self, experiment, *, results_dir: str, directory: Path, device) -> Workload:
        """Loads the data, builds the fidelity sampler and warms the device up; trainers are
        model.train.Trainer."""
        from harness.datasets import load_data
        from model.train import Trainer, warm_up

        data = load_data(experiment.data)
        fidelity = experiment.fidelity_sampler(data)
        warm_up(data, device, experiment.precision)  # one-time costs, out of trial 0's time
        return Workload(data, fidelity, Trainer, replayed=self.replayed)


class ReplayBackend(Backend):
    """The surrogate fitted to ``record``'s learning curves; in-memory study, simulated clock.

    A finished replay run is its own proof (its records); an unfinished one is cheaper to
    redo than to resume, so its folder is cleared.
    """

    name = "replay"
    replayed = True
    simulated_clock = True
    max_workers = 1

    def open_storage(self, url: str) -> tuple[str, BaseStorage]:
        """A fresh in-memory storage, whatever ``url`` says (shown as "in-memory (replay)")."""
        return "in-memory (replay)", optuna.storages.InMemoryStorage()

    def prepare(self, experiment, *, results_dir: str, directory: Path, device) -> Workload:
        """The surrogate's fidelity stand-in and trainer factory; no data is loaded."""
        from harness.replay.prepare import prepare_replay

        fidelity, factory, finished = prepare_replay(experiment, results_dir, directory)
        return Workload(None, fidelity, factory, replayed=self.replayed, finished=finished)

    def device_label(self, device) -> str:
        """Always "replay": no device trains."""
        return "replay"

    def device_name(self, device) -> str:
        """The surrogate: no device trains."""
        return "surrogate (replay)"


BACKENDS: dict[str, Backend] = {b.name: b for b in (RealBackend(), ReplayBackend())}


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``; an unknown name is a UserError listing the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}") from None


def recorded_replayed(name: str | None) -> bool:
    """Whether runs whose metadata names backend ``name`` were replayed (a name no backend has,
    or none, as in records older than the replay, was not)."""
    backend = BACKENDS.get(name)
    return backend is not None and backend.replayed
