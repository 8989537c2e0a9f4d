"""Where a run lives: its folder under results/, its records folder and its study name.

Every name that ties a run to files or to a study is built here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

REPLAY_SUFFIX = ".replay"  # replayed runs live apart from real ones: results/<experiment>.replay/


def results_folder(experiment, replayed: bool = False) -> str:
    """The experiment's folder name under results/ (``replayed`` runs get their own folder:
    ask the backend, ``Backend.replayed``).

    ``experiment`` is an Experiment or its name.
    """
    name = getattr(experiment, "name", experiment)
    return f"{name}{REPLAY_SUFFIX}" if replayed else name


def study_name(experiment, strategy: str, seed: int, replayed: bool = False) -> str:
    """The study of one (experiment, strategy, seed) run: ``<folder>.<strategy>.seed-<n>``.

    Fixed and unique per run: Hyperband assigns brackets from a hash of "{study_name}_{number}".
    """
    return f"{results_folder(experiment, replayed)}.{strategy}.seed-{seed}"


def run_dir(results_dir: str | Path, folder: str, strategy: str, seed: int) -> Path:
    """The records folder of one run: ``<results>/<folder>/<strategy>/seed-<n>``."""
    return Path(results_dir) / folder / strategy / f"seed-{seed}"
