"""Run records under faults: a full disk never leaves a torn row, a torn row or header is cut
on reopen, records of another layout are refused, and unknown timings stay unknown (empty
cells, never 0.0 s) through the summary and the analysis."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import records, sidefiles
from harness.analysis.loading import SIDE_FILES
from harness.analysis.measures import anytime
from harness.errors import UserError
from harness.records import RunRecorder, read_trials, unfinished_row
from harness.summary import format_summary, summarize
from harness.tables import read_table

PARAMS = ("lr", "units")


def _row(trial, state="COMPLETE", mae=5.0, wall=2.0):
    return {
        "strategy": "random",
        "seed": 0,
        "trial": trial,
        "state": state,
        "val_mae": mae,
        "train_seconds": 1.0,
        "eval_seconds": 0.5,
        "wall_seconds": wall,
        "harness_seconds": 0.5,
    }


def _recorder(tmp_path, n=3):
    rec = RunRecorder(tmp_path / "run", PARAMS)
    for i in range(n):
        rec.add_trial(_row(i, mae=5.0 - i), {"lr": 0.01, "units": 8})
    return rec


def test_an_unfinished_trial_has_unknown_timings_not_zero(tmp_path):
    rec = _recorder(tmp_path, n=2)
    rec.add_trial(unfinished_row("random", 0, 2, "interrupted: its process stopped"), {})
    text = rec.trials.path.read_text().splitlines()[-1]
    assert text.startswith("random,0,2,FAIL,interrupted: its process stopped,")
    assert ",,,," in text and "0.0" not in text  # four empty timing cells
    trials = read_trials(rec.trials.path).frame
    assert trials[list(records.TIMING_COLUMNS)].iloc[-1].isna().all()


def test_the_summary_leaves_unknown_timings_out_and_says_so(tmp_path):
    rec = _recorder(tmp_path, n=2)
    rec.add_trial(unfinished_row("random", 0, 2, "worker died", state="PRUNED", val_mae=6.0), {})
    rungs, trials = rec.read()
    summary = summarize(rungs, trials, {}, 3)
    assert summary["wall_seconds"] == pytest.approx(4.0)  # two known trials of 2 s each
    assert summary["work_seconds"] == pytest.approx(3.0) and summary["unknown_timings"] == 1
    assert math.isfinite(summary["harness_share"])
    assert "unknown time  1 trials finished by a process that stopped" in format_summary(summary)


def test_the_anytime_curve_stays_ordered_with_unknown_timings(tmp_path):
    rec = _recorder(tmp_path, n=2)
    rec.add_trial(unfinished_row("random", 0, 2, "x", state="COMPLETE", val_mae=1.0), {})
    rec.add_trial(_row(3, mae=4.0), {"lr": 0.01, "units": 8})
    curve = anytime(rec.read()[1])
    assert curve["elapsed"].tolist() == [2.0, 4.0, 4.0, 6.0]  # the unknown adds nothing known
    assert curve["best"].tolist() == [5.0, 4.0, 1.0, 1.0]


def test_a_full_disk_mid_row_is_one_error_and_leaves_no_torn_row(tmp_path, monkeypatch):
    """Simulated fault: a real full disk needs a mount this test cannot make. The write stores
    half the row and then fails as write(2) does on a full disk (errno 28)."""
    rec = _recorder(tmp_path)
    before = rec.trials.path.read_bytes()
    real_write = records.os.write

    def half_then_enospc(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records.os, "write", half_then_enospc)
    with pytest.raises(UserError, match="cannot write a row \\(No space left on device\\)"):
        rec.add_trial(_row(3), {"lr": 0.01, "units": 8})
    assert rec.trials.path.read_bytes() == before  # the half row is undone
    monkeypatch.undo()
    rec.add_trial(_row(3), {"lr": 0.01, "units": 8})
    assert read_trials(rec.trials.path).frame["trial"].tolist() == [0, 1, 2, 3]


REAL_LIMIT = """
import resource, signal, sys
from pathlib import Path
from harness.records import RunRecorder
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
rec = RunRecorder(Path(sys.argv[1]), ("lr", "units"))
size = rec.trials.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 30, size + 30))
try:
    rec.add_trial({"strategy": "random", "seed": 0, "trial": 9, "state": "FAIL",
                   "fail_reason": "x" * 500}, {})
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_a_real_write_error_from_the_kernel_leaves_the_records_intact(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse the write part-way (EFBIG): a real fault, like ENOSPC.
    rec = _recorder(tmp_path)
    before = rec.trials.path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", REAL_LIMIT, str(rec.directory)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.startswith("UserError records") and "File too large" in out
    assert rec.trials.path.read_bytes() == before


@pytest.mark.parametrize("cut", [7, 200], ids=["torn row", "torn header"])
def test_a_torn_last_line_is_cut_when_the_records_are_reopened(tmp_path, cut):
    rec = _recorder(tmp_path)
    data = rec.trials.path.read_bytes()
    keep = len(data) - cut if cut < 100 else 40  # inside the last row, or inside the header
    rec.trials.path.write_bytes(data[:keep])
    again = RunRecorder(rec.directory, PARAMS)
    text = again.trials.path.read_text()
    assert text.endswith("\n") and text.splitlines()[0].startswith("strategy,seed,trial,state")
    assert len(read_trials(again.trials.path).frame) == (2 if cut < 100 else 0)


def test_records_of_another_layout_are_refused(tmp_path):
    _recorder(tmp_path)
    with pytest.raises(UserError, match="its columns are not this run's"):
        RunRecorder(tmp_path / "run", ("lr", "units", "dropout"))  # the space gained a parameter


def test_metadata_that_cannot_be_written_is_one_error_and_keeps_the_old(tmp_path, monkeypatch):
    rec = _recorder(tmp_path)
    rec.write_metadata({"strategy": "random"})

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sidefiles.os, "fsync", disk_full)
    with pytest.raises(UserError, match="metadata.json: cannot write .* the previous file"):
        rec.write_metadata({"strategy": "tpe"})
    monkeypatch.undo()
    assert '"random"' in (rec.directory / "metadata.json").read_text()
    assert sorted(p.name for p in rec.directory.iterdir() if "metadata" in p.name) == [
        "metadata.json"
    ]  # no temporary file left


def test_a_records_folder_that_cannot_be_created_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create the folder"):
        RunRecorder(tmp_path / "file" / "run", PARAMS)


def test_read_is_tolerant_of_garbage(tmp_path):
    rec = _recorder(tmp_path)
    with rec.trials.path.open("ab") as fh:
        fh.write(b"\x00\xffgarbage\nrandom,0,7,COMPLETE,,,,nan\n")
    table = read_trials(rec.trials.path)
    assert table.dropped == 2 and len(table.frame) == 3
    assert isinstance(table.frame, pd.DataFrame) and table.frame["trial"].dtype == int


@pytest.mark.parametrize(
    "body, kept",
    [
        ("would_have_won,x\nTrue,1\nFalse,2\n", 2),  # as written
        ("would_have_won,x\ntrue,1\nFalse,2\n", 1),  # pandas reads "true" as True too
        ("would_have_won,x\nTRUE,1\n,2\nFalse,3\n", 1),  # booleans among empty cells
    ],
)
def test_a_clean_file_parsed_once_keeps_exactly_what_the_text_check_keeps(tmp_path, body, kept):
    """read_table parses a clean file once with its types, but a required column read as
    booleans goes the careful way, so "true" is refused as the text check refuses it."""
    path = tmp_path / "audit.csv"
    path.write_text(body)
    required, usable = SIDE_FILES["audit"]
    table = read_table(path, required, usable)
    assert len(table.frame) == kept and table.dropped == body.count("\n") - 1 - kept
    assert table.frame["would_have_won"].dtype == bool


def test_records_begun_before_finished_at_keep_their_columns_on_resume(tmp_path):
    """A run recorded before the finished_at column existed resumes into its own header (the
    new cell left out) instead of being refused or shifted."""
    rec = _recorder(tmp_path, n=1)
    path = rec.trials.path
    old = [c for c in path.read_text().splitlines()[0].split(",") if c != "finished_at"]
    lines = path.read_text().splitlines()
    at = lines[0].split(",").index("finished_at")
    cut = [",".join(c for i, c in enumerate(line.split(",")) if i != at) for line in lines]
    path.write_text("\n".join(cut) + "\n")
    resumed = RunRecorder(tmp_path / "run", PARAMS)
    resumed.add_trial({**_row(1, mae=3.0), "finished_at": 1e9}, {"lr": 0.01, "units": 8})
    assert path.read_text().splitlines()[0].split(",") == old
    trials = read_trials(path).frame
    assert list(trials["val_mae"]) == [5.0, 3.0] and "finished_at" not in trials


def test_rungs_written_with_the_old_epochs_column_are_read_and_resumed_under_the_new_name(
    tmp_path,
):
    """rungs.csv's running total was called "epochs" before "epochs_done": such records resume
    into their own header, and read back under the new name, old rows and new alike."""
    rung = dict(
        strategy="s", seed=0, rung=1, val_mae=4.0, samples=10, train_seconds=1.0, eval_seconds=0.1
    )
    rec = RunRecorder(tmp_path / "run", PARAMS)
    rec.add_rung({**rung, "trial": 0, "epochs_done": 2}, {"lr": 0.01, "units": 8})
    path = rec.rungs.path
    lines = path.read_text().splitlines()
    assert "epochs_done" in lines[0].split(",")
    path.write_text("\n".join([lines[0].replace("epochs_done", "epochs"), *lines[1:]]) + "\n")
    resumed = RunRecorder(tmp_path / "run", PARAMS)
    resumed.add_rung({**rung, "trial": 1, "epochs_done": 3}, {"lr": 0.02, "units": 8})
    assert path.read_text().splitlines()[0] == lines[0].replace("epochs_done", "epochs")
    frame = records.read_rungs(path).frame
    assert list(frame["epochs_done"]) == [2, 3] and "epochs" not in frame


def test_anytime_counts_overlapping_workers_once_and_a_resume_gap_not_at_all():
    rows = [
        {**_row(0, wall=10.0), "finished_at": 1010.0},  # worker A: 1000-1010
        {**_row(1, mae=4.0, wall=10.0), "finished_at": 1015.0},  # worker B: 1005-1015
        {**_row(2, mae=3.0, wall=5.0), "finished_at": 2005.0},  # resumed later: 2000-2005
    ]
    curve = anytime(pd.DataFrame(rows))
    assert list(curve["elapsed"]) == [10.0, 15.0, 20.0]  # not 10, 20, 25
    without = anytime(pd.DataFrame(rows).drop(columns="finished_at"))
    assert list(without["elapsed"]) == [10.0, 20.0, 25.0]  # older records: the plain sum


def test_a_trial_without_a_finish_time_does_not_switch_the_run_to_another_clock():
    # Trial 1's process died: the trial is recorded failed later, with no wall time and no
    # finish time. The others still count on the real span (overlap once), not the plain sum.
    rows = [
        {**_row(0, wall=10.0), "finished_at": 1010.0},
        _row(1, state="FAIL", mae=float("nan"), wall=float("nan")),
        {**_row(2, mae=3.0, wall=10.0), "finished_at": 1015.0},
    ]
    curve = anytime(pd.DataFrame(rows))
    assert list(curve["elapsed"]) == [10.0, 10.0, 15.0]  # the plain sum would end at 20


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_side_json_that_cannot_be_written_is_one_error_and_keeps_the_old(tmp_path, monkeypatch):
    path = tmp_path / "plan.json"
    sidefiles.write_json_atomic(path, {"strategy": "random"})
    monkeypatch.setattr(sidefiles.os, "fsync", _disk_full)
    with pytest.raises(UserError) as info:
        sidefiles.write_json_atomic(path, {"strategy": "tpe"})
    assert str(info.value).startswith(f"{path}: cannot write (No space left on device)")
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"strategy": "random"}
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temporary file left


def test_a_side_json_under_a_file_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="final.json: cannot write"):
        sidefiles.write_json_atomic(tmp_path / "file" / "final.json", {"a": 1})


def test_numpy_values_are_written_as_numbers(tmp_path):
    import numpy as np

    sidefiles.write_json_atomic(tmp_path / "f.json", {"p": np.float64(0.5), "n": np.int64(3)})
    assert json.loads((tmp_path / "f.json").read_text()) == {"p": 0.5, "n": 3}


GUARDED = {
    "truncated": (b'{"strategy": "ran', "unreadable or truncated"),
    "empty": (b"", "unreadable or truncated"),
    "not UTF-8": (b"\xff\xfe\x00{}", "unreadable or truncated"),
    "a list where an object is expected": (b"[1, 2]", "holds a list, not an object"),
    "a number": (b"3", "holds int, not an object"),
}


@pytest.mark.parametrize("case", list(GUARDED), ids=list(GUARDED))
def test_a_damaged_side_json_is_skipped_and_named_in_one_line(tmp_path, capsys, case):
    content, why = GUARDED[case]
    path = tmp_path / "final.json"
    path.write_bytes(content)
    assert sidefiles.read_json_guarded(path) is None
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {path}: skipped: {why}") and err.count("\n") == 1


def test_a_missing_side_json_is_none_silently_and_a_folder_is_named(tmp_path, capsys):
    assert sidefiles.read_json_guarded(tmp_path / "plan.json") is None
    assert capsys.readouterr().err == ""
    (tmp_path / "plan.json").mkdir()
    assert sidefiles.read_json_guarded(tmp_path / "plan.json") is None
    assert "plan.json: skipped: unreadable or truncated (Is a directory)" in capsys.readouterr().err
    (tmp_path / "list.json").write_text("[1]")
    assert sidefiles.read_json_guarded(tmp_path / "list.json", expect=list) == [1]


def test_a_plot_that_cannot_be_written_is_one_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    import matplotlib.figure

    from harness.analysis import plots

    def half_written(self, name, **kwargs):  # the disk fills up part-way through the file
        Path(name).write_bytes(b"\x89PNG")
        _disk_full()

    fig = plots.plt.figure()
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_written)
    with pytest.raises(UserError) as info:
        plots._save(fig, tmp_path / "plots", "anytime")
    assert str(info.value).startswith(
        f"{tmp_path / 'plots' / 'anytime.png'}: cannot write the plot"
    )
    assert list((tmp_path / "plots").iterdir()) == []


def test_final_weights_that_cannot_be_written_are_one_error_and_leave_no_temporary(
    tmp_path, monkeypatch
):
    from types import SimpleNamespace

    import torch

    from harness import final
    from model.network import ModelConfig

    def full_disk(obj, name):  # torch wraps the failed write in a RuntimeError
        Path(name).write_bytes(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    trainer = SimpleNamespace(cpu_state_dict=dict)
    data = SimpleNamespace(n_stations=2, bikes_mean=1.0, bikes_std=1.0)
    path = tmp_path / "final" / "model-seed-0.pt"
    with pytest.raises(UserError) as info:
        final._save_weights(trainer, ModelConfig(), data, {}, path)
    assert str(info.value).startswith(f"{path}: cannot write the weights ([enforce fail")
    assert list((tmp_path / "final").iterdir()) == []
