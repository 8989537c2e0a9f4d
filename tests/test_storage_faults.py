"""Journal storage under faults: torn records (a kill mid-write, a full disk), glued records of
older versions, write errors, and one journal per study. Real Optuna JournalStorage, real files."""

import fcntl
import json
import os
import subprocess
import sys
import threading

import optuna
import pytest

from harness import journal
from harness.errors import UserError
from harness.journal import JournalWriteError, repair_journal
from harness.storage import (
    journal_url,
    legacy_journal_url,
    open_storage,
    resolve_storage_url,
    storage_errors,
    study_storage_url,
)

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _study(path, name="s", n_trials=3):
    study = optuna.create_study(
        study_name=name, storage=open_storage(journal_url(path)), load_if_exists=True
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=n_trials)
    return study


def _lines_are_records(path):
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return all("op_code" in json.loads(line) for line in data.splitlines())


def _reopen(path, name="s"):
    return optuna.load_study(study_name=name, storage=open_storage(journal_url(path)))


TORN = {
    "half a record, no newline": lambda rec: rec[: len(rec) // 2],
    "garbage line with a newline": lambda rec: b"\x00\x00garbage\n",
    "one byte": lambda rec: b"{",
    "a record without its newline": lambda rec: rec.rstrip(b"\n"),
    "valid JSON that is not a record": lambda rec: b"[1, 2, 3]\n",
}


@pytest.mark.parametrize("tear", list(TORN), ids=list(TORN))
def test_a_torn_tail_is_set_aside_and_every_complete_record_kept(tmp_path, capsys, tear):
    path = tmp_path / "optuna.journal"
    before = [t.params for t in _study(path).trials]
    intact = path.read_bytes()
    last_record = intact.splitlines(keepends=True)[-1]
    path.write_bytes(intact + TORN[tear](last_record))
    study = _reopen(path)
    err = capsys.readouterr().err
    assert f"storage {path}: a torn last record (" in err and "complete records kept" in err
    assert [t.params for t in study.trials] == before  # every complete trial survives
    backups = list(tmp_path.glob("optuna.journal.torn-*.bak"))
    assert len(backups) == 1 and backups[0].read_bytes() == intact + TORN[tear](last_record)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)  # and the study goes on
    assert len(_reopen(path).trials) == 5 and _lines_are_records(path)


def test_a_record_glued_onto_a_torn_one_by_an_older_version_is_salvaged(tmp_path, capsys):
    # Optuna's own backend glues the next record onto a torn fragment: the poisoning of issue 12.
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = tmp_path / "optuna.journal"
    _study(path, n_trials=2)
    rec = path.read_bytes().splitlines(keepends=True)[-1]
    with path.open("ab") as fh:
        fh.write(rec[:20])
    plain = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    plain.set_user_attr("glued", 1)  # written after the fragment, on the same line
    with pytest.raises(json.JSONDecodeError):  # what every later reader of that file got
        plain.set_user_attr("after", 2)
    study = _reopen(path)
    assert "1 torn record (20 bytes) was set aside" in capsys.readouterr().err
    assert study.user_attrs == {"glued": 1, "after": 2} and len(study.trials) == 2
    assert _lines_are_records(path)


def test_a_process_that_dies_mid_write_cannot_poison_a_live_one(tmp_path, capsys):
    path = tmp_path / "optuna.journal"
    study = _study(path, n_trials=1)  # this process keeps its storage open
    with path.open("ab") as fh:
        fh.write(b'{"op_code":5,"worker_id":"dead-wor')  # another process, killed mid-write
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert "a torn last record (34 bytes)" in capsys.readouterr().err
    assert _lines_are_records(path) and len(_reopen(path).trials) == 3


def _lock_is_free(journal_path) -> bool:
    fd = os.open(f"{journal_path}.flock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases it if taken


def test_a_writer_killed_holding_the_journal_lock_never_delays_the_next(tmp_path):
    """Optuna's symlink lock, left by a process killed while holding it, made the next open
    wait its 30-second grace period; the kernel's lock dies with its holder."""
    path = tmp_path / "optuna.journal"
    _study(path, n_trials=1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from harness.journal import KernelJournalLock; "
            "KernelJournalLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout.readline().strip() == b"held"
    assert not _lock_is_free(path)  # while it lives, its hold keeps every writer out
    holder.kill()
    holder.wait()
    assert _lock_is_free(path)
    opened = threading.Thread(target=lambda: _study(path, n_trials=1), daemon=True)
    opened.start()
    opened.join(timeout=10)  # far below the old 30 s, far above any real wait here
    assert not opened.is_alive() and len(_reopen(path).trials) == 2


def test_a_child_forked_while_the_lock_is_held_does_not_keep_it(tmp_path):
    path = tmp_path / "optuna.journal"
    lock = journal.KernelJournalLock(str(path))
    lock.acquire()
    read, write = os.pipe()
    started_read, started_write = os.pipe()
    child = os.fork()
    if child == 0:  # the child outlives the parent's hold, then exits without cleaning up
        os.write(started_write, b"x")  # past the fork's hooks
        os.read(read, 1)
        os._exit(0)
    try:
        os.read(started_read, 1)
        lock.release()
        assert _lock_is_free(path)  # the child's inherited copy was closed at the fork
    finally:
        os.write(write, b"x")
        os.waitpid(child, 0)


def test_a_long_wait_for_the_journal_lock_says_whose_lock_it_waits_for(
    tmp_path, monkeypatch, capsys
):
    path = tmp_path / "optuna.journal"
    monkeypatch.setattr(journal, "LOCK_WAIT_WARNING_SECONDS", 0.2)
    holder = journal.KernelJournalLock(str(path))
    holder.acquire()
    waiter = journal.KernelJournalLock(str(path))
    waiting = threading.Thread(target=waiter.acquire, daemon=True)
    waiting.start()
    waiting.join(timeout=1.0)
    assert waiting.is_alive()  # still kept out while the lock is held
    holder.release()
    waiting.join(timeout=10)
    assert not waiting.is_alive()
    waiter.release()
    assert f"waiting for another process's lock on the journal ({path}.flock)" in (
        capsys.readouterr().err
    )


def test_disk_full_mid_write_is_one_error_and_leaves_nothing_torn(tmp_path, monkeypatch):
    """Simulated fault: a real full disk needs a mount this test cannot make. The write stores
    half the record and then fails as write(2) does on a full disk (errno 28)."""
    path = tmp_path / "optuna.journal"
    study = _study(path, n_trials=2)
    size = path.stat().st_size
    real_write = journal.os.write

    def half_then_enospc(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal.os, "write", half_then_enospc)
    with pytest.raises(JournalWriteError, match="No space left on device") as info:
        study.set_user_attr("k", "v")
    assert isinstance(info.value, UserError) and "\n" not in str(info.value)
    assert path.stat().st_size == size and _lines_are_records(path)  # the half record is undone
    monkeypatch.undo()
    study.set_user_attr("k", "v")  # space freed: the same storage writes again
    assert _reopen(path).user_attrs == {"k": "v"}


REAL_FILE_SIZE_LIMIT = """
import resource, signal, sys
import optuna
from harness.storage import open_storage
optuna.logging.set_verbosity(optuna.logging.ERROR)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write(2) then fails with EFBIG
study = optuna.load_study(study_name="s", storage=open_storage("journal:///" + sys.argv[1]))
size = len(open(sys.argv[1], "rb").read())
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, size + 40))
try:
    study.set_user_attr("big", "x" * 1000)
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_a_real_write_error_from_the_kernel_leaves_the_journal_intact(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse the write part-way (EFBIG): a real fault, like ENOSPC.
    path = tmp_path / "optuna.journal"
    _study(path, n_trials=2)
    size = path.stat().st_size
    out = subprocess.run(
        [sys.executable, "-c", REAL_FILE_SIZE_LIMIT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.startswith("JournalWriteError") and "File too large" in out
    assert path.stat().st_size == size and _lines_are_records(path)


def test_an_unreplayable_record_is_one_user_error(tmp_path):
    path = tmp_path / "optuna.journal"
    _study(path, n_trials=1)
    with path.open("ab") as fh:
        fh.write(b'{"op_code":99,"worker_id":"w"}\n')  # a newer Optuna's operation, say
    with pytest.raises(UserError, match="cannot be replayed"):
        open_storage(journal_url(path))


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_a_journal_path_that_cannot_be_a_file_is_one_user_error(tmp_path, where):
    blocker = tmp_path / "blocker"
    if where == "a folder":
        blocker.mkdir()
        path = blocker
    else:
        blocker.write_text("x")
        path = blocker / "optuna.journal"
    with pytest.raises(UserError, match=f"storage .*{blocker.name}"):
        open_storage(journal_url(path))


def test_each_study_has_its_own_journal_so_one_torn_file_spares_the_others(tmp_path, capsys):
    urls = [study_storage_url(tmp_path, "smoke", s, 0) for s in ("random", "tpe")]
    assert urls[0].endswith("smoke/random/seed-0/optuna.journal") and urls[0] != urls[1]
    for url, name in zip(urls, ("a", "b")):
        optuna.create_study(study_name=name, storage=open_storage(url)).optimize(
            lambda t: t.suggest_float("x", 0, 1), n_trials=2
        )
    torn = tmp_path / "smoke/random/seed-0/optuna.journal"
    torn.write_bytes(torn.read_bytes() + b'{"op_co')
    assert len(optuna.load_study(study_name="b", storage=open_storage(urls[1])).trials) == 2
    assert capsys.readouterr().err == ""  # the other study never saw the torn file


def test_a_study_in_the_shared_journal_of_earlier_versions_continues_there(tmp_path):
    legacy = legacy_journal_url(tmp_path, "smoke")
    optuna.create_study(study_name="smoke.random.seed-0", storage=open_storage(legacy))
    url, note = resolve_storage_url(tmp_path, "smoke", "random", 0, "smoke.random.seed-0")
    assert url == legacy and "shared journal of earlier versions" in note
    url, note = resolve_storage_url(tmp_path, "smoke", "tpe", 0, "smoke.tpe.seed-0")
    assert url == study_storage_url(tmp_path, "smoke", "tpe", 0) and note is None


def test_repair_of_an_intact_or_empty_journal_changes_nothing(tmp_path):
    path = tmp_path / "optuna.journal"
    path.write_bytes(b"")
    assert repair_journal(path) is None
    _study(path, n_trials=2)
    before = path.read_bytes()
    assert repair_journal(path) is None and path.read_bytes() == before
    assert not list(tmp_path.glob("*.bak"))


def test_a_write_failing_as_optuna_finishes_a_trial_surfaces_as_the_storage_error(
    tmp_path, monkeypatch
):
    """Simulated ENOSPC on the trial's final write. Optuna itself then raises
    AssertionError("Should not reach.") (issue 12); storage_errors() re-raises the write error."""
    path = tmp_path / "optuna.journal"
    study = _study(path, n_trials=1)
    real_write = journal.os.write

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        monkeypatch.setattr(journal.os, "write", _enospc)  # the disk fills during training
        return x

    def _enospc(fd, data):
        raise OSError(28, "No space left on device")

    with pytest.raises(AssertionError, match="Should not reach"):
        study.optimize(objective, n_trials=1)  # Optuna alone
    monkeypatch.setattr(journal.os, "write", real_write)
    with pytest.raises(JournalWriteError, match="No space left on device"):
        with storage_errors():
            study.optimize(objective, n_trials=1)
    monkeypatch.setattr(journal.os, "write", real_write)
    assert _lines_are_records(path)
    states = [t.state.name for t in _reopen(path).trials]
    assert states == ["COMPLETE", "RUNNING", "RUNNING"]  # the run's recovery fails and re-queues


def test_storage_errors_lets_other_errors_through():
    with pytest.raises(ValueError, match="not a storage error"):
        with storage_errors():
            raise ValueError("not a storage error")
    with pytest.raises(KeyboardInterrupt):
        with storage_errors():
            raise KeyboardInterrupt


def test_a_damaged_creation_record_with_nothing_after_it_is_named_lost(tmp_path, capsys):
    path = tmp_path / "optuna.journal"
    study = _study(path, n_trials=2)
    study.enqueue_trial({"x": 0.5})  # queued, never run: only its create op names it
    study.set_user_attr("after", 1)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[-2] = lines[-2].replace(b'"op_code":4', b'"op_code":#', 1)  # the op code itself
    path.write_bytes(b"".join(lines))
    study = _reopen(path)
    err = capsys.readouterr().err
    assert "trial 2 LOST" in err and "2 complete records" not in err
    assert [t.state.name for t in study.trials][:2] == ["COMPLETE", "COMPLETE"]
    assert study.user_attrs == {"after": 1} and len(study.trials) == 3
