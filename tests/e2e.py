"""The end-to-end tests' one way to write a `python -m harness` command line, run it in this
process or as a child, and copy shared results before changing them.

    args("compare", strategies="random,tpe_hyperband", seeds=2, results=root)
    == ["compare", "--experiment", "smoke", "--strategies", "random,tpe_hyperband",
        "--seeds", "2", "--results", str(root), "--no-progress"]

Keywords are options (``noise_seeds=2`` is ``--noise-seeds 2``, ``True`` a bare flag, ``None``
or ``False`` left out); positional extras are passed as they are, after the options."""

import hashlib
import shutil
import sys
from pathlib import Path

from harness.cli import main

PY = [sys.executable, "-m", "harness"]
# the subcommands that draw a progress bar (and so take --no-progress)
WITH_PROGRESS = {"run", "compare", "record", "final", "worker"}
SHARED_STRATEGIES = "random,tpe_hyperband"  # the shared smoke comparison (conftest.smoke_compare)

# a two-rung experiment file small enough to be refused or run in seconds
TINY_EXPERIMENT = """
[data]
stations = 4
days = 12
[ladder]
fractions = ["1/3", 1]
epochs = [1, 1]
[budget]
n_trials = 2
[space.learning_rate]
type = "float"
low = 1e-4
high = 1e-2
log = true
default = 1e-3
"""


def args(command, *extra, experiment="smoke", results=None, **options) -> list[str]:
    """The argument list of ``python -m harness command``: the experiment first (None: no
    --experiment), then the options, the extras, --results and --no-progress where it applies."""
    out = [command] if experiment is None else [command, "--experiment", str(experiment)]
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    out += [str(x) for x in extra]
    if results is not None:
        out += ["--results", str(results)]
    if command in WITH_PROGRESS:
        out.append("--no-progress")
    return out


def cli(command, *extra, **options) -> int:
    """``python -m harness command ...`` run in this process: its exit code."""
    return main(args(command, *extra, **options))


def command_line(command, *extra, **options) -> list[str]:
    """``python -m harness command ...`` as a child process's argv."""
    return [*PY, *args(command, *extra, **options)]


def copy_results(source: Path, target: Path, runs=None) -> Path:
    """A copy of a shared results folder (or of the run folders named in ``runs``, such as
    "smoke/random/seed-0") that a test may change: shared results are never written to."""
    if runs is None:
        shutil.copytree(source, target, dirs_exist_ok=True)
    for run in runs or ():
        shutil.copytree(Path(source) / run, Path(target) / run)
    return Path(target)


def copy_record(recorded: Path, target: Path, experiment: str = "smoke") -> Path:
    """A copy of the shared record's folders (``record-*``, not the runs beside them)."""
    for record in (Path(recorded) / experiment).glob("record-*"):
        shutil.copytree(record, Path(target) / experiment / record.name)
    return Path(target)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a digest of its bytes: equal before and after a
    session means no test wrote there."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }
