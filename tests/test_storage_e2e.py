"""The real command on the smoke experiment after storage faults: a torn or poisoned journal
resumes with every trial; compare never writes an empty side file and refuses bad counts."""

import optuna
import pandas as pd
import pytest

from harness.storage import journal_url, open_storage
from tests.e2e import cli

ONE_RANDOM_RUN = dict(strategies="random", seeds=1, trials=2)


def _run(results, **options) -> int:
    return cli("run", strategy="random", results=results, **options)


def _journal(results):
    (path,) = results.glob("**/optuna.journal")  # wherever the run keeps its study
    return path


def _complete(results):
    storage = open_storage(journal_url(_journal(results)))
    study = optuna.load_study(study_name="smoke.random.seed-0", storage=storage)
    return [t.number for t in study.trials if t.state.name == "COMPLETE"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["torn tail", "glued by an older version"])
def test_a_damaged_journal_resumes_with_every_trial(tmp_path, capsys, damage):
    assert _run(tmp_path, trials=2) == 0
    path = _journal(tmp_path)
    last = path.read_bytes().splitlines(keepends=True)[-1]
    tear = last[: len(last) // 2]
    if damage == "glued by an older version":
        tear += last  # Optuna's own backend appended a whole record onto the fragment
    path.write_bytes(path.read_bytes() + tear)
    capsys.readouterr()
    assert _run(tmp_path, trials=4) == 0
    err = capsys.readouterr().err
    assert f"storage {path}: " in err and " set aside in " in err and "Traceback" not in err
    assert _complete(tmp_path) == [0, 1, 2, 3]  # nothing lost, two more trained
    trials = pd.read_csv(tmp_path / "smoke/random/seed-0/trials.csv")
    assert sorted(trials["trial"]) == [0, 1, 2, 3]


@pytest.mark.slow
def test_an_audit_with_nothing_pruned_writes_no_empty_file(tmp_path, capsys):
    assert cli("compare", **ONE_RANDOM_RUN, audit=2, results=tmp_path) == 0  # random never prunes
    err = capsys.readouterr().err
    assert "audit: nothing measured (no pruned trial to finish); audit.csv not written" in err
    assert not (tmp_path / "smoke" / "audit.csv").exists()
    assert cli("report", results=tmp_path) == 0


@pytest.mark.slow
def test_an_empty_noise_file_of_an_earlier_version_is_measured_again(tmp_path):
    assert cli("compare", **ONE_RANDOM_RUN, results=tmp_path) == 0
    noise = tmp_path / "smoke" / "noise.csv"
    noise.write_text("")  # what --noise-configs 0 wrote before
    assert cli("compare", **ONE_RANDOM_RUN, noise_seeds=2, noise_configs=1, results=tmp_path) == 0
    assert len(pd.read_csv(noise)) == 2  # one configuration, two training seeds


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--noise-seeds", "-1"], "--noise-seeds must be 0 (off) or >= 2"),
        (["--noise-seeds", "1"], "--noise-seeds must be 0 (off) or >= 2"),
        (["--noise-seeds", "2", "--noise-configs", "0"], "--noise-configs must be >= 1"),
        (["--audit", "-1"], "--audit must be >= 0"),
    ],
    ids=["noise seeds -1", "noise seeds 1", "noise configs 0", "audit -1"],
)
def test_bad_side_measurement_counts_are_refused_before_training(tmp_path, capsys, flags, message):
    assert cli("compare", *flags, results=tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "smoke").exists()  # nothing trained


def _damage_completion(path, trial_id):
    """One character of the trial's COMPLETE op (SET_TRIAL_STATE_VALUES) replaced."""
    lines = path.read_bytes().splitlines(keepends=True)
    marker = f'"trial_id":{trial_id},"state":1,'.encode()
    (done,) = [i for i, x in enumerate(lines) if x.startswith(b'{"op_code":6,') and marker in x]
    lines[done] = lines[done].replace(b'"values":[', b'"values"#[', 1)
    path.write_bytes(b"".join(lines))


def _trial_rows(results):
    trials = pd.read_csv(results / "smoke/random/seed-0/trials.csv")
    return {(r.trial, r.state, r.val_mae, r.param_learning_rate) for r in trials.itertuples()}


@pytest.mark.slow
def test_a_damaged_creation_record_mid_journal_shifts_no_trial(tmp_path, capsys):
    # One character of trial 1's CREATE_TRIAL op replaced: before, every later op replayed
    # against the next trial id (trial 1 FAIL without params, two rows for one trial).
    assert _run(tmp_path, trials=2) == 0
    path = _journal(tmp_path)
    before = _trial_rows(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    creates = [i for i, line in enumerate(lines) if line.startswith(b'{"op_code":4,')]
    lines[creates[1]] = lines[creates[1]].replace(b'"study_id":', b'"study_id"#', 1)
    path.write_bytes(b"".join(lines))
    capsys.readouterr()
    assert _run(tmp_path, trials=3) == 0
    assert _complete(tmp_path) == [0, 1, 2]
    after = _trial_rows(tmp_path)
    assert before <= after and len(after) == 3  # the same rows, and one per trial
    err = capsys.readouterr().err
    assert "the creation of trial 1 rebuilt from its later records" in err and "LOST" not in err


@pytest.mark.slow
def test_a_damaged_finishing_record_is_finished_again_from_trials_csv(tmp_path, capsys):
    # One character of trial 0's COMPLETE op replaced: before, the trial came back RUNNING,
    # was failed as "interrupted" and its configuration queued again, though trained and charged.
    assert _run(tmp_path, trials=2) == 0
    path = _journal(tmp_path)
    before = _trial_rows(tmp_path)
    _damage_completion(path, trial_id=0)
    assert _run(tmp_path, trials=2) == 0
    assert "set aside" in capsys.readouterr().err
    study = optuna.load_study(
        study_name="smoke.random.seed-0", storage=open_storage(journal_url(path))
    )
    assert [(t.number, t.state.name) for t in study.trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert {(0, "COMPLETE", study.trials[0].value)} <= {r[:3] for r in before}
    assert _trial_rows(tmp_path) == before  # no "interrupted" row, nothing retrained


def test_a_damaged_finishing_record_without_its_row_is_trained_again_and_charged_once(
    tmp_path, capsys
):
    # The process died between the storage's COMPLETE record and the trials.csv row, and the
    # record was then damaged: before, the trial was failed as "interrupted" and its compute
    # stayed charged. Now it is trained again under its own number, charged once.
    assert _run(tmp_path, trials=2) == 0
    path = _journal(tmp_path)
    storage = open_storage(journal_url(path))
    first = optuna.load_study(study_name="smoke.random.seed-0", storage=storage).trials[1]
    _damage_completion(path, trial_id=1)
    trials_csv = tmp_path / "smoke/random/seed-0/trials.csv"
    rows = trials_csv.read_text().splitlines(keepends=True)
    trials_csv.write_text("".join(r for r in rows if not r.startswith("random,0,1,")))
    capsys.readouterr()
    assert _run(tmp_path, trials=2) == 0
    assert "trial 1 was stopped mid-trial; training it again" in capsys.readouterr().err
    study = optuna.load_study(
        study_name="smoke.random.seed-0", storage=open_storage(journal_url(path))
    )
    again = study.trials[1]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert again.params == first.params and again.value == pytest.approx(first.value, rel=1e-5)
    assert again.user_attrs["train_flops"] == first.user_attrs["train_flops"]  # charged once
    rungs = pd.read_csv(tmp_path / "smoke/random/seed-0/rungs.csv")
    assert (rungs["trial"] == 1).sum() == 3  # its three rungs, recorded once
    assert sorted(pd.read_csv(trials_csv)["trial"]) == [0, 1]
