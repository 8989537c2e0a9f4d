"""The real command on the smoke experiment with the real LSTM: records, resume, recovery."""

import json

import optuna
import pandas as pd
import pytest

from harness.experiment import load_experiment
from harness.layout import study_name
from harness.optimize import MAX_CONSECUTIVE_FAILURES
from harness.run import RunOptions, run_strategy
from harness.storage import open_storage, study_storage_url
from strategies import STRATEGIES
from tests.e2e import cli, command_line

pytestmark = pytest.mark.slow  # each test trains the real LSTM, or runs the real command

RUN = "smoke/tpe_hyperband/seed-0"


def _records(results, run=RUN):
    base = results / run
    return (
        json.loads((base / "metadata.json").read_text()),
        pd.read_csv(base / "rungs.csv"),
        pd.read_csv(base / "trials.csv"),
    )


def test_run_records_everything_then_resumes(tmp_path, capsys):
    run = dict(strategy="tpe_hyperband", results=tmp_path)
    assert cli("run", **run) == 0
    out = capsys.readouterr().out
    assert "6 finished" in out and "best params" in out and "unpruned" in out
    meta, rungs, trials = _records(tmp_path)
    assert (
        meta["strategy"] == "tpe_hyperband"
        and meta["seed"] == 0
        and meta["study_name"] == "smoke.tpe_hyperband.seed-0"
    )
    assert {"torch", "optuna"} <= set(meta["versions"]) and meta["experiment"]["ladder"][
        "steps"
    ] == [1, 3, 9]
    assert sorted(trials["trial"]) == list(range(6))  # one row per trial
    for _, t in trials.iterrows():
        mine = rungs[rungs["trial"] == t["trial"]]
        assert len(mine) == t["rungs_done"]  # every rung trained is recorded
        assert list(mine["step"]) == [1, 3, 9][: len(mine)]
        assert (t["state"] == "COMPLETE") == (len(mine) == 3)
        assert mine["pruned"].iloc[-1] == (t["state"] == "PRUNED")
        assert t["val_mae"] == pytest.approx(mine["val_mae"].iloc[-1])
    assert (rungs["train_seconds"] > 0).all() and (trials["harness_seconds"] >= 0).all()
    assert {"param_learning_rate", "param_hidden_1", "param_dropout", "param_optimizer"} <= set(
        rungs.columns
    )

    assert cli("run", **run, trials=8) == 0  # the same command again resumes
    _, rungs2, trials2 = _records(tmp_path)
    assert sorted(trials2["trial"]) == list(range(8))  # two more trials, nothing redone
    pd.testing.assert_frame_equal(rungs2.iloc[: len(rungs)], rungs)  # earlier records untouched
    study = optuna.load_study(
        study_name="smoke.tpe_hyperband.seed-0",
        storage=open_storage(study_storage_url(tmp_path, "smoke", "tpe_hyperband", 0)),
    )
    assert len(study.trials) == 8  # records agree with the storage

    assert cli("run", **run, trials=8) == 0  # budget reached: nothing more runs
    assert len(_records(tmp_path)[2]) == 8


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_runs_on_the_real_lstm(tmp_path, name):
    summary = run_strategy(
        load_experiment("smoke"),
        RunOptions(name, seed=1, results_dir=str(tmp_path), n_trials=3, progress=False),
    )
    assert summary["complete"] + summary["pruned"] == 3 and summary["failed"] == 0
    assert summary["best_val_mae"] is not None and 0 < summary["best_val_mae"] < 20


def test_grid_stops_when_exhausted_and_does_not_rerun(tmp_path):
    exp = load_experiment("smoke")
    opts = RunOptions("grid", results_dir=str(tmp_path), n_trials=50, progress=False)
    assert run_strategy(exp, opts)["trials"] == exp.space.grid_size() == 4
    assert (
        run_strategy(exp, opts)["trials"] == 4
    )  # a second call on a finished grid runs no duplicate


def test_trial_left_running_by_a_killed_process_is_trained_again_under_its_number(tmp_path):
    exp = load_experiment("smoke")
    storage = open_storage(study_storage_url(tmp_path, "smoke", "random", 0))
    study = optuna.create_study(study_name=study_name(exp, "random", 0), storage=storage)
    orphan = study.ask()  # a worker asked for a trial, then died before telling
    params = exp.space.suggest(orphan)
    summary = run_strategy(
        exp, RunOptions("random", results_dir=str(tmp_path), n_trials=2, progress=False)
    )
    trials = pd.read_csv(tmp_path / "smoke/random/seed-0/trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]  # no FAIL row, no third trial
    retried = optuna.load_study(study_name=study.study_name, storage=storage).trials[0]
    assert retried.state.name == "COMPLETE" and retried.params == params  # its own number
    assert summary["complete"] == 2


def test_failures_are_recorded_and_a_streak_stops_the_study(tmp_path, monkeypatch):
    # Fault injection (no GPU here): training raises what CUDA raises when memory runs out.
    import model.train

    def out_of_memory(self, indices, epochs, callback=None):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(model.train.Trainer, "train", out_of_memory)
    summary = run_strategy(
        load_experiment("smoke"),
        RunOptions("random", results_dir=str(tmp_path), n_trials=20, progress=False),
    )
    assert summary["failed"] == MAX_CONSECUTIVE_FAILURES and summary["complete"] == 0
    trials = pd.read_csv(tmp_path / "smoke/random/seed-0/trials.csv")
    assert trials["fail_reason"].str.contains("RuntimeError: CUDA out of memory").all()


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    import signal
    import subprocess
    import time

    cmd = command_line("run", strategy="random", trials=500, results=tmp_path)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trials_csv = tmp_path / "smoke/random/seed-0/trials.csv"
    deadline = time.time() + 120
    while time.time() < deadline and (
        not trials_csv.exists() or len(trials_csv.read_text().splitlines()) < 4
    ):
        time.sleep(0.2)  # wait until a few trials are done, then interrupt one in flight
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err and "run the same command again" in err
    assert "finished:" in out  # the summary is still printed

    storage = open_storage(study_storage_url(tmp_path, "smoke", "random", 0))
    study = optuna.load_study(study_name="smoke.random.seed-0", storage=storage)
    trials = pd.read_csv(trials_csv)
    done = {t.number for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"}
    assert done == set(
        trials.loc[trials["state"] != "FAIL", "trial"]
    )  # records agree with the storage
    # The trial in flight is left to be trained again under its own number, nothing failed.
    stopped = [t.number for t in study.trials if t.state.name == "RUNNING"]
    assert len(stopped) <= 1 and not [t for t in study.trials if t.state.name == "FAIL"]
    assert all(f"trial {n} stopped mid-trial" in err for n in stopped)

    resumed = subprocess.run(
        command_line("run", strategy="random", trials=len(done) + 2, results=tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0
    study = optuna.load_study(study_name="smoke.random.seed-0", storage=storage)
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == len(done) + 2
    assert all(study.trials[n].state.name == "COMPLETE" for n in stopped)
    assert all(f"trial {n} was stopped mid-trial" in resumed.stderr for n in stopped)


def test_a_run_in_which_no_trial_finished_exits_non_zero_with_the_reasons(tmp_path, capsys):
    """Every trial fails (a simulated device fault: no GPU here to fail for real): the run stops
    after 5 failures in a row, exits 1 and counts the reasons on one line."""
    import model.train

    original = model.train.Trainer.train

    def broken(self, indices, epochs, callback=None):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    model.train.Trainer.train = broken  # simulated device fault (no GPU here)
    try:
        code = cli("run", strategy="random", trials=3, results=tmp_path)
    finally:
        model.train.Trainer.train = original
    err = capsys.readouterr().err
    assert code == 1
    assert "error: no trial finished (5 x RuntimeError: CUDA error: an illegal memory" in err
