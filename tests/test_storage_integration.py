"""The storage mechanisms wired into `run`: one journal per study (older shared journals still
resume), one coordinator per study, a changed experiment refused, a full disk one error line,
and resume never inventing timings. The real command on the smoke experiment."""

import shutil
import signal
import subprocess
import time

import optuna
import pandas as pd
import pytest

from harness import journal
from harness.experiment import EXPERIMENTS_DIR
from harness.storage import legacy_journal_url, open_storage, study_storage_url
from tests.e2e import cli, command_line

pytestmark = pytest.mark.slow  # every test runs the real command on smoke

TIMINGS = ["train_seconds", "eval_seconds", "wall_seconds", "harness_seconds"]


def _run(results, *extra, strategy="random", experiment="smoke"):
    return cli("run", *extra, strategy=strategy, experiment=experiment, results=results)


def _trials(results, run="smoke/random/seed-0"):
    return pd.read_csv(results / run / "trials.csv")


def _study(url, name="smoke.random.seed-0"):
    return optuna.load_study(study_name=name, storage=open_storage(url))


def test_each_study_keeps_its_journal_beside_its_records(tmp_path, capsys):
    compare = dict(strategies="random,tpe_hyperband", seeds=1, trials=2, results=tmp_path)
    assert cli("compare", **compare) == 0
    assert not (tmp_path / "smoke" / "optuna.journal").exists()
    for strategy in ("random", "tpe_hyperband"):
        assert (tmp_path / "smoke" / strategy / "seed-0" / "optuna.journal").is_file()
    torn = tmp_path / "smoke/random/seed-0/optuna.journal"
    torn.write_bytes(torn.read_bytes() + b'{"op_code":4,"work')
    capsys.readouterr()
    assert _run(tmp_path, "--trials", "3", strategy="tpe_hyperband") == 0
    assert "set aside" not in capsys.readouterr().err  # the other study never read that file


def test_a_study_in_the_shared_journal_of_an_earlier_version_resumes_there(tmp_path, capsys):
    assert _run(tmp_path, "--trials", "2") == 0
    own = study_storage_url(tmp_path, "smoke", "random", 0)
    legacy = tmp_path / "smoke" / "optuna.journal"
    shutil.move(own[len("journal://") :], legacy)  # where every study was kept before
    assert _run(tmp_path, "--trials", "4") == 0
    assert "continues in the experiment's shared journal" in capsys.readouterr().err
    study = _study(legacy_journal_url(tmp_path, "smoke"))
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4
    assert not (tmp_path / "smoke/random/seed-0/optuna.journal").exists()


def test_a_second_coordinator_of_a_running_study_is_refused(tmp_path, capsys):
    cmd = command_line("run", strategy="random", trials=500, results=tmp_path)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        trials = tmp_path / "smoke/random/seed-0/trials.csv"
        deadline = time.time() + 120
        while time.time() < deadline and not (trials.exists() and trials.stat().st_size > 200):
            time.sleep(0.2)
        assert _run(tmp_path, "--trials", "500") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"error: study smoke.random.seed-0 is already being run by process {first.pid}"
        )
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert first.returncode == 130  # the first one was never disturbed
    states = [
        t.state.name for t in _study(study_storage_url(tmp_path, "smoke", "random", 0)).trials
    ]
    # at most the trial in flight, left for the next run to train again; nothing failed
    assert states.count("RUNNING") <= 1 and "FAIL" not in states


def test_a_changed_experiment_file_is_refused_and_nothing_is_overwritten(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    shutil.copy(EXPERIMENTS_DIR / "smoke.toml", path)
    results = tmp_path / "results"
    assert _run(results, "--trials", "2", experiment=str(path)) == 0
    meta_before = (results / "exp/random/seed-0/metadata.json").read_text()
    path.write_text(path.read_text().replace("epochs = [1, 1, 1]", "epochs = [2, 2, 2]"))
    capsys.readouterr()
    assert _run(results, "--trials", "3", experiment=str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: experiment exp changed since study exp.random.seed-0 was created: "
        "ladder.epochs [1,1,1] -> [2,2,2]; start a new study with a new experiment name or "
        "--results folder"
    ]
    assert (results / "exp/random/seed-0/metadata.json").read_text() == meta_before
    assert len(_trials(results, "exp/random/seed-0")) == 2


@pytest.mark.parametrize("loss", ["row lost", "row torn"])
def test_resume_never_invents_timings(tmp_path, loss):
    assert _run(tmp_path, "--trials", "3") == 0
    csv = tmp_path / "smoke/random/seed-0/trials.csv"
    data = csv.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    csv.write_bytes(data[:last] if loss == "row lost" else data[: last + 30])
    assert _run(tmp_path, "--trials", "3") == 0  # budget met: the storage's trial is reconciled
    trials = _trials(tmp_path).set_index("trial")
    assert sorted(trials.index) == [0, 1, 2]
    assert trials.loc[2, TIMINGS].isna().all()  # unknown, not 0.0
    assert (trials.loc[[0, 1], TIMINGS].notna()).all().all()


def test_a_full_disk_mid_run_is_one_error_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    """Simulated ENOSPC (a real full disk needs a mount this test cannot make): after 30
    journal writes every write stores half its record and fails as write(2) does."""
    real_write, calls = journal.os.write, [0]

    def fills_up(fd, data):
        calls[0] += 1
        if calls[0] <= 30:
            return real_write(fd, data)
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "write", fills_up)
    assert _run(tmp_path, "--trials", "4") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write a record (No space left on device)" in err[0]
    monkeypatch.setattr(journal.os, "write", real_write)  # space freed
    done_before = {
        t.number
        for t in _study(study_storage_url(tmp_path, "smoke", "random", 0)).trials
        if t.state.name == "COMPLETE"
    }
    assert _run(tmp_path, "--trials", "4") == 0
    study = _study(study_storage_url(tmp_path, "smoke", "random", 0))
    complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    assert done_before <= complete and len(complete) == 4  # nothing lost, the budget met
