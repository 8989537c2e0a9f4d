"""A replayed comparison on every core records what one process running the runs in order
records: the same trials, states, MAEs and re-evaluations."""

import shutil

import pandas as pd
import pytest

from harness import parallel as cores
from harness.cli import main

KEYS = ["strategy", "seed", "trial", "state", "val_mae"]


def _records(root) -> tuple[pd.DataFrame, pd.DataFrame]:
    trials = pd.concat(
        pd.read_csv(f) for f in sorted(root.glob("smoke.replay/*/seed-*/trials.csv"))
    )
    reeval = pd.read_csv(root / "smoke.replay" / "reeval.csv")
    return (
        trials[KEYS].sort_values(KEYS[:3]).reset_index(drop=True),
        reeval[["strategy", "seed", "train_seed", "val_mae"]]
        .sort_values(["strategy", "seed", "train_seed"])
        .reset_index(drop=True),
    )


@pytest.mark.slow  # the shared record trains the real LSTM
def test_replayed_runs_in_parallel_equal_the_runs_in_order(recorded, tmp_path, monkeypatch):
    args = ["compare", "--experiment", "smoke", "--backend", "replay", "--seeds", "3"]
    args += ["--strategies", "tpe_median,tpe_asha,random", "--no-progress"]
    parallel, in_order = tmp_path / "parallel", tmp_path / "in_order"
    for root in (parallel, in_order):
        shutil.copytree(recorded / "smoke", root / "smoke")
    monkeypatch.setattr(cores, "usable_cores", lambda: 2)
    assert main([*args, "--results", str(parallel)]) == 0
    monkeypatch.setattr(cores, "usable_cores", lambda: 1)
    assert main([*args, "--results", str(in_order)]) == 0
    a, b = _records(parallel), _records(in_order)
    assert len(a[0]) > 9 and a[0].equals(b[0]) and a[1].equals(b[1])
