"""One coordinator per study: a second one refuses with the holder's process id; a lock left
by a killed process is taken over; workers can still join the study. Real second processes."""

import os
import signal
import subprocess
import sys

import optuna
import pytest

from harness.errors import UserError
from harness.storage import journal_url, open_storage
from harness.study_lock import LOCK_NAME, study_lock

HOLD = """
import sys, time
from harness.study_lock import study_lock
with study_lock(sys.argv[1], "smoke.random.seed-0"):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A second process that holds the lock of the study in tmp_path until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_coordinator_is_refused_naming_the_holder(tmp_path, holder):
    with pytest.raises(UserError) as info:
        with study_lock(tmp_path, "smoke.random.seed-0"):
            pass
    message = str(info.value)
    assert message == (
        f"study smoke.random.seed-0 is already being run by process {holder.pid} "
        f"(lock {tmp_path / LOCK_NAME}); wait for it or stop it"
    )


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(holder.pid)  # a stale pid is left
    with study_lock(tmp_path, "smoke.random.seed-0") as path:
        assert path.read_text().strip() == str(os.getpid())


def test_a_released_lock_can_be_taken_by_the_next_process(tmp_path):
    with study_lock(tmp_path, "s"):
        pass
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"  # nothing left held
    finally:
        proc.kill()
        proc.wait()


def test_workers_can_still_join_a_locked_study(tmp_path, holder):
    # The lock is taken by coordinators only: the storage stays open to everyone.
    url = journal_url(tmp_path / "optuna.journal")
    optuna.create_study(study_name="smoke.random.seed-0", storage=open_storage(url))
    study = optuna.load_study(study_name="smoke.random.seed-0", storage=open_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(study.trials) == 1


def test_studies_in_other_folders_do_not_block_each_other(tmp_path, holder):
    with study_lock(tmp_path / "other", "smoke.tpe.seed-0") as path:
        assert path.parent == tmp_path / "other"


def test_a_lock_that_cannot_be_created_is_one_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create the study's lock"):
        with study_lock(tmp_path / "file" / "seed-0", "s"):
            pass


def test_a_second_replay_of_a_run_is_refused_and_leaves_its_folder_alone(tmp_path, capsys):
    # Before, replays took no lock: the second one wiped the unfinished folder of the first.
    from harness.replay.prepare import _clear_unfinished
    from tests.e2e import cli

    folder = tmp_path / "smoke.replay/random/seed-0"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        (folder / "rungs.csv").write_text("being written\n")
        replay = dict(backend="replay", strategy="random", results=tmp_path)
        assert cli("run", **replay) == 2
        err = capsys.readouterr().err
        assert f"is already being run by process {holder.pid}" in err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert (folder / "rungs.csv").read_text() == "being written\n"
        _clear_unfinished(folder)  # what the holder does to its own unfinished folder
        assert [p.name for p in folder.iterdir()] == [LOCK_NAME]  # its lock stays held
        with pytest.raises(UserError, match=str(holder.pid)):
            with study_lock(folder, "smoke.random.seed-0"):
                pass
    finally:
        holder.kill()
        holder.wait()
