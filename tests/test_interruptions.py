"""Stopping a comparison or a multi-worker run by a signal, then running the same command again,
ends where the uninterrupted command ends: the same trials, configurations and states per run
(under the default compute budget), and no worker process outliving its coordinator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from harness.storage import open_storage, study_storage_url
from tests.e2e import command_line

COMPARE = dict(strategies="random,tpe_asha", seeds=1, reeval_seeds=0)
RUNS = ("random", "tpe_asha")


def _rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def _stop_when(proc: subprocess.Popen, path: Path, rows: int, signum: int) -> None:
    """Send ``signum`` once ``path`` holds ``rows`` data rows (a trial is then mid-climb)."""
    deadline = time.time() + 120
    while _rows(path) < rows:
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.time() < deadline, f"{path} never reached {rows} rows"
        time.sleep(0.01)
    proc.send_signal(signum)
    proc.wait(timeout=60)


def _trials(results: Path, strategy: str) -> list[tuple]:
    """(number, state, configuration, value) of every trial the run's storage holds."""
    url = study_storage_url(results, "smoke", strategy, 0)
    study = optuna.load_study(study_name=f"smoke.{strategy}.seed-0", storage=open_storage(url))
    return [(t.number, t.state.name, t.params, t.value) for t in study.trials]


def _reasons(results: Path, strategy: str) -> str:
    rows = pd.read_csv(results / f"smoke/{strategy}/seed-0/trials.csv")
    return rows[["trial", "state", "fail_reason"]].to_string()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(
        command_line("compare", **COMPARE, results=results),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return results


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_an_interrupted_compare_resumed_is_the_uninterrupted_one(uninterrupted, tmp_path, signum):
    cmd = command_line("compare", **COMPARE, results=tmp_path)
    # stopped twice: mid-way through random search, then while ASHA prunes
    for strategy, rows in (("random", 4), ("tpe_asha", 9)):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _stop_when(proc, tmp_path / f"smoke/{strategy}/seed-0/rungs.csv", rows, signum)
        if signum == signal.SIGTERM:  # stopped as Ctrl-C stops it: one line, exit 130
            assert proc.returncode == 130 and "Traceback" not in proc.stderr.read()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for strategy in RUNS:
        resumed, reference = _trials(tmp_path, strategy), _trials(uninterrupted, strategy)
        assert [t[:3] for t in resumed] == [t[:3] for t in reference]  # numbers, states, configs
        assert [t[3] for t in resumed] == pytest.approx([t[3] for t in reference], rel=1e-5)
        rows = pd.read_csv(tmp_path / f"smoke/{strategy}/seed-0/trials.csv")
        assert sorted(rows["trial"]) == [t[0] for t in reference]  # one row per trial
        rungs = pd.read_csv(tmp_path / f"smoke/{strategy}/seed-0/rungs.csv")
        assert not rungs.duplicated(["trial", "rung"]).any()  # a resumed trial's rungs once


def _workers_of(results: Path) -> list[int]:
    """Pids of the `harness worker` processes training under ``results``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in argv and str(results).encode() in argv:
            pids.append(int(proc.name))
    return pids


def _gone(results: Path, within: float = 30.0) -> bool:
    deadline = time.time() + within
    while _workers_of(results) and time.time() < deadline:
        time.sleep(0.1)
    return not _workers_of(results)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads workers from /proc (Linux)")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_workers_stop_with_their_coordinator_and_the_budget_is_met(tmp_path, signum):
    # Before: after kill -TERM the worker trained on under pid 1, the restarted coordinator took
    # the lock, the orphan crashed and the study ended with one COMPLETE trial over its budget.
    cmd = command_line(
        "run", strategy="random", trials=12, workers=2, budget_unit="trials", results=tmp_path
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not _workers_of(tmp_path) or _rows(tmp_path / "smoke/random/seed-0/trials.csv") < 3:
        assert proc.poll() is None and time.time() < deadline, "no worker trained"
        time.sleep(0.02)
    proc.send_signal(signum)
    proc.wait(timeout=60)
    assert _gone(tmp_path), "a worker outlived its coordinator"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    states = [t[1] for t in _trials(tmp_path, "random")]
    why = _reasons(tmp_path, "random") + done.stderr
    # the budget: 12, or 13 where both processes finished a trial at the same moment
    assert 12 <= states.count("COMPLETE") <= 13, why
    assert "RUNNING" not in states and "FAIL" not in states, why
    assert _gone(tmp_path)


def test_a_trial_stopped_before_its_parameters_on_a_database_is_the_users_stop(tmp_path):
    # On database storages a stopped trial is failed and queued again (heartbeats retry stale
    # trials there). One stopped before it had parameters was recorded as "worker died mid-trial
    # (stale heartbeat)". The bookkeeping alone is under test, so the objective is a stand-in
    # holding what the book reads (no trial trains).
    from types import SimpleNamespace

    from tqdm import tqdm

    from harness.optimize import Limits, LoopContext, TrialBook
    from harness.records import RunRecorder
    from harness.study import INTERRUPTED_BY_USER

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db")
    stopped = study.ask()  # created, no parameters yet
    objective = SimpleNamespace(
        times={}, strategy=SimpleNamespace(name="random"), seed=0, full_params=lambda p: p
    )
    recorder = RunRecorder(tmp_path, ("x",))
    ctx = LoopContext(study, objective, recorder, Limits(10), False, False, requeue=True)
    TrialBook(ctx, tqdm(disable=True)).record_interrupted(stopped.number)
    (trial,) = study.trials
    assert trial.state.name == "FAIL" and trial.user_attrs["fail_reason"] == INTERRUPTED_BY_USER
    rows = pd.read_csv(tmp_path / "trials.csv")
    assert list(rows["fail_reason"]) == [INTERRUPTED_BY_USER]


def test_a_live_processs_trial_is_not_taken_over(tmp_path):
    # A worker of the stopped run still training (or a `harness worker` started by hand): the
    # restarted coordinator must not train its trial a second time under the same number.
    import socket

    from harness.records import RunRecorder
    from harness.study import OWNER_ATTR, stuck_trials

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db")
    trial = study.ask()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        trial.set_user_attr(OWNER_ATTR, f"{socket.gethostname()}:{alive.pid}")
        recorder = RunRecorder(tmp_path / "run", ("x",))
        assert stuck_trials(study, recorder, "random", 0) == []
    finally:
        alive.kill()
        alive.wait()
    assert stuck_trials(study, recorder, "random", 0) == [trial.number]  # its owner is gone


def test_a_stop_inside_a_held_block_waits_for_its_end():
    # A journal write under its lock must finish: Optuna's symlink lock, stopped inside its
    # acquire or release, removes a lock it does not hold or unlinks twice (a failed trial).
    from harness import signals

    reached_end = False
    with pytest.raises(KeyboardInterrupt), signals.stops_like_ctrl_c():
        with signals.held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler has run by now, and raised nothing
            reached_end = True
    assert reached_end
    assert signal.getsignal(signal.SIGTERM) is not signals._stop  # handlers restored


def test_a_stop_between_trials_waits_for_the_next_trial_to_start():
    # The optimize loop is held and only the objective released: a stop that arrives during
    # Optuna's bookkeeping is raised where a trial starts, never inside Optuna's `tell`.
    from harness import signals

    with signals.stops_like_ctrl_c(), signals.held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # between trials: nothing raised
        with pytest.raises(KeyboardInterrupt), signals.released():
            pass  # a trial starting: the waiting stop is raised here
