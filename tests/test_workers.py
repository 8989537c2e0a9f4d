"""Several workers on one study (journal file, and a real PostgreSQL), crashes, and resume."""

import os
import signal
import subprocess
import time

import optuna
import pandas as pd
import pytest

from harness.experiment import load_experiment
from harness.storage import open_storage, study_storage_url
from tests.e2e import TINY_EXPERIMENT, command_line

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
pytestmark = pytest.mark.slow  # every test runs the real command, training the real LSTM


def _harness(argv, env=ENV, timeout=300):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc


def _study(url, name):
    return optuna.load_study(study_name=name, storage=open_storage(url))


def _assert_records_agree(study, trials_csv):
    trials = pd.read_csv(trials_csv)
    done = {t.number for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")}
    recorded = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    assert sorted(recorded["trial"]) == sorted(done)  # every finished trial recorded exactly once
    assert not [t for t in study.trials if t.state.name == "RUNNING"]  # none left hanging
    return done


def test_two_workers_on_the_journal_file_record_every_trial_once(tmp_path):
    _harness(command_line("run", strategy="random", trials=10, workers=2, results=tmp_path))
    study = _study(study_storage_url(tmp_path, "smoke", "random", 0), "smoke.random.seed-0")
    done = _assert_records_agree(study, tmp_path / "smoke/random/seed-0/trials.csv")
    assert (
        10 <= len(done) <= 11
    )  # the budget, plus at most the one trial in flight in the other worker
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params)  # the two workers drew different configurations


def test_grid_with_three_workers_covers_each_point_exactly_once(tmp_path):
    _harness(command_line("run", strategy="grid", workers=3, results=tmp_path))
    study = _study(study_storage_url(tmp_path, "smoke", "grid", 0), "smoke.grid.seed-0")
    evaluated = [
        tuple(sorted(t.params.items()))
        for t in study.trials
        if t.state.name in ("COMPLETE", "PRUNED")
    ]
    assert len(evaluated) == len(set(evaluated)) == load_experiment("smoke").space.grid_size()


def test_postgres_two_machines_share_one_study(tmp_path, postgres_url):
    """A coordinator with 2 local workers, plus a worker started separately (as from another
    machine)."""
    coordinator = subprocess.Popen(
        command_line(
            "run",
            strategy="tpe_hyperband",
            trials=14,
            workers=2,
            storage=postgres_url,
            results=tmp_path / "a",
        ),
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    name = "smoke.tpe_hyperband.seed-0"
    deadline = time.time() + 120
    while (
        time.time() < deadline
    ):  # the coordinator creates the study; the other machine then joins it
        try:
            if "trial_budget" in _study(postgres_url, name).user_attrs:
                break
        except KeyError:
            pass
        time.sleep(0.3)
    worker = dict(experiment=None, storage=postgres_url, study=name, results=tmp_path / "b")
    _harness(command_line("worker", **worker))
    out, err = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0 and "Traceback" not in err, out + err
    study = _study(postgres_url, name)
    done = {t.number for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")}
    assert 14 <= len(done) <= 16 and not [
        t for t in study.trials if t.state.name in ("RUNNING", "FAIL")
    ]
    # The coordinator's records list every trial (its own workers', and the other machine's after
    # reconciling).
    recorded = pd.read_csv(tmp_path / "a/smoke/tpe_hyperband/seed-0/trials.csv")
    assert (
        set(recorded["trial"]) == {t.number for t in study.trials} and recorded["trial"].is_unique
    )


def test_postgres_grid_with_two_workers_each_point_once(tmp_path, postgres_url):
    grid = dict(strategy="grid", seed=3, workers=2, storage=postgres_url, results=tmp_path)
    _harness(command_line("run", **grid))
    study = _study(postgres_url, "smoke.grid.seed-3")
    evaluated = [
        tuple(sorted(t.params.items()))
        for t in study.trials
        if t.state.name in ("COMPLETE", "PRUNED")
    ]
    assert len(evaluated) == len(set(evaluated)) == load_experiment("smoke").space.grid_size()


def _wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


# The tiny experiment (one searched parameter: every draw costs the same) on more data with 14
# epochs in its last rung: about 4.5 s on one core here, which the test kills 1 s into (a CPU
# three times faster still leaves the kill mid-rung).
HEARTBEAT_EXPERIMENT = (
    TINY_EXPERIMENT.replace("stations = 4", "stations = 12")
    .replace("days = 12", "days = 14")
    .replace("epochs = [1, 1]", "epochs = [1, 14]")
    .replace("n_trials = 2", "n_trials = 1")
    + '[run]\ndevice = "cpu"\n'
)


def test_postgres_heartbeat_fails_and_retries_a_killed_workers_trial(tmp_path, postgres_url):
    env = {**ENV, "HARNESS_HEARTBEAT_SECONDS": "1", "HARNESS_HEARTBEAT_GRACE_SECONDS": "2"}
    experiment = tmp_path / "heartbeat.toml"
    experiment.write_text(HEARTBEAT_EXPERIMENT)
    name = "heartbeat.random.seed-7"
    args = command_line(
        "run",
        experiment=experiment,
        strategy="random",
        seed=7,
        trials=1,  # the killed trial itself: its retry alone meets the budget
        storage=postgres_url,
        results=tmp_path,
    )
    victim = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    rungs_csv = tmp_path / "heartbeat/random/seed-7/rungs.csv"
    assert _wait_for(lambda: rungs_csv.exists() and len(pd.read_csv(rungs_csv)) >= 1)
    time.sleep(1.0)  # into the long last rung, with a heartbeat or two recorded
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    running = [t for t in _study(postgres_url, name).trials if t.state.name == "RUNNING"]
    assert running, "the trial ended before the kill: HEARTBEAT_EXPERIMENT's last rung is too short"
    killed = running[0]
    time.sleep(3)  # past the grace period (from the last heartbeat, at or before the kill)
    _harness(args, env=env, timeout=600)
    study = _study(postgres_url, name)
    assert study.trials[killed.number].state.name == "FAIL"  # the stale trial was failed...
    retried = [t for t in study.trials if t.number > killed.number and t.params == killed.params]
    assert (
        retried and retried[0].state.name == "COMPLETE"
    )  # ...and retried with the same parameters
    assert (
        sum(t.state.name == "COMPLETE" for t in study.trials) == 1
    )  # the study reached its budget
    trials = pd.read_csv(tmp_path / "heartbeat/random/seed-7/trials.csv")
    assert killed.number in set(
        trials.loc[trials["state"] == "FAIL", "trial"]
    )  # and the records know


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_several_points_then_resume_loses_nothing(tmp_path, seed):
    budget = 12
    args = command_line("run", strategy="tpe_median", seed=seed, trials=budget, results=tmp_path)
    trials_csv = tmp_path / f"smoke/tpe_median/seed-{seed}/trials.csv"
    rungs_csv = tmp_path / f"smoke/tpe_median/seed-{seed}/rungs.csv"
    url = study_storage_url(tmp_path, "smoke", "tpe_median", seed)
    survived = set()
    for kill, wait_rows in enumerate((1, 3, 2)):  # kill early, later, and again soon after a resume
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start_rows = len(pd.read_csv(rungs_csv)) if rungs_csv.exists() else 0
        need = start_rows + wait_rows + kill
        assert _wait_for(
            lambda need=need: rungs_csv.exists() and len(pd.read_csv(rungs_csv)) >= need
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        study = _study(url, f"smoke.tpe_median.seed-{seed}")
        done = {t.number for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")}
        assert survived <= done  # no completed trial lost across kills
        survived = done
    _harness(args)
    study = _study(url, f"smoke.tpe_median.seed-{seed}")
    done = _assert_records_agree(study, trials_csv)
    assert len(done) == budget and survived <= done  # the study reached its budget, nothing lost
    rungs = pd.read_csv(rungs_csv)
    for t in study.trials:
        if t.state.name == "COMPLETE":
            assert set(rungs.loc[rungs["trial"] == t.number, "rung"]) == {1, 2, 3}
