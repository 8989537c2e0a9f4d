"""Readers never crash on one bad run folder: real smoke runs are recorded once, then copies are
damaged in every way a kill, a full disk or a careless hand can, and `report` (and `plan`,
`final`) must go on with the good runs, naming what they skipped; with nothing usable, one line
and exit 2."""

import json
import shutil

import pytest

from harness.analysis.analyze import analyze
from harness.analysis.plots import FIGURES, remove_figures
from harness.experiment import load_experiment
from harness.run import RunOptions, run_strategy
from tests.e2e import SHARED_STRATEGIES, cli, copy_results

BAD = "smoke/random/seed-0"
NAMES = ("plan.json", "final.json")  # the run folder each case damages; three good runs remain


pytestmark = pytest.mark.slow  # every case reads (a copy of) the shared real comparison


@pytest.fixture(scope="module")
def recorded(smoke_compare, tmp_path_factory):
    """Four real smoke runs (random and tpe_hyperband, seeds 0 and 1: the shared comparison),
    and one real run whose every trial failed (training raises, as CUDA does when memory runs
    out)."""
    root = tmp_path_factory.mktemp("readers")
    copy_results(smoke_compare, root / "clean")
    import model.train

    def out_of_memory(self, indices, epochs, callback=None):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.train.Trainer, "train", out_of_memory)
        opts = RunOptions("random", seed=7, results_dir=str(root / "failed"), progress=False)
        assert run_strategy(load_experiment("smoke"), opts)["complete"] == 0
    return root


@pytest.fixture
def results(recorded, tmp_path):
    shutil.copytree(recorded / "clean", tmp_path / "r")
    shutil.copytree(recorded / "failed", tmp_path / "failed")
    return tmp_path / "r"


def _report(results, capsys, command="report", **options):
    rc = cli(command, results=results, **options)
    out, err = capsys.readouterr()
    return rc, out, err


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def _header_only(path):
    path.write_bytes(_lines(path)[0])


def _set_meta(run, change):
    meta = json.loads((run / "metadata.json").read_text())
    change(meta)
    (run / "metadata.json").write_text(json.dumps(meta))


def _every_trial_failed(run):
    shutil.rmtree(run)
    failed = run.parents[3] / "failed" / "smoke" / "random" / "seed-7"
    shutil.copytree(failed, run)
    _set_meta(run, lambda m: m.update(seed=0))
    for name in ("trials.csv", "rungs.csv"):  # the rows of seed 7, now seed 0's
        text = (run / name).read_text().replace("random,7,", "random,0,")
        (run / name).write_text(text)


SKIPPED = {
    "an empty run folder": (lambda r: [p.unlink() for p in r.iterdir()], "no metadata.json"),
    "killed before its first trial": (
        lambda r: [_header_only(r / n) for n in ("trials.csv", "rungs.csv")],
        "no finished trial recorded",
    ),
    "every trial failed": (_every_trial_failed, "every trial failed (5); first reason: Runtime"),
    "metadata.json truncated": (
        lambda r: (r / "metadata.json").write_bytes((r / "metadata.json").read_bytes()[:150]),
        "metadata.json is unreadable or truncated",
    ),
    "metadata.json empty": (
        lambda r: (r / "metadata.json").write_bytes(b""),
        "metadata.json is unreadable or truncated",
    ),
    "metadata.json not UTF-8": (
        lambda r: (r / "metadata.json").write_bytes(b"\xff\xfe\x00garbage"),
        "metadata.json is unreadable or truncated",
    ),
    "metadata.json without the experiment": (
        lambda r: _set_meta(r, lambda m: m.pop("experiment")),
        "metadata.json lacks strategy, seed or the experiment",
    ),
    "metadata.json a list": (
        lambda r: (r / "metadata.json").write_text("[1, 2]"),
        "metadata.json lacks strategy, seed or the experiment",
    ),
    "trials.csv missing": (lambda r: (r / "trials.csv").unlink(), "no trials.csv"),
    "rungs.csv missing": (lambda r: (r / "rungs.csv").unlink(), "no rungs.csv"),
    "trials.csv header destroyed": (
        lambda r: (r / "trials.csv").write_bytes(
            b"\x00\x00\x00" + b"".join(_lines(r / "trials.csv")[1:])
        ),
        "trials.csv has no header with the expected columns (missing strategy, seed, trial, ...)",
    ),
    "trials.csv a folder": (
        lambda r: ((r / "trials.csv").unlink(), (r / "trials.csv").mkdir()),
        "cannot read its tables",
    ),
    "another definition of the experiment": (
        lambda r: _set_meta(r, lambda m: m["experiment"]["ladder"].update(epochs=[2, 2, 2])),
        "recorded under another definition of the experiment (ladder.epochs [2,2,2] -> [1,1,1])",
    ),
}


@pytest.mark.parametrize("case", list(SKIPPED), ids=list(SKIPPED))
def test_an_unusable_run_folder_is_skipped_and_named(results, capsys, case):
    damage, reason = SKIPPED[case]
    damage(results / BAD)
    # each case leaves the same three good runs (random, seed 1 alone): one draws their plots
    rc, out, err = _report(results, capsys, no_plots=case != "killed before its first trial")
    assert rc == 0 and "verdict:" in out  # the good runs are still compared
    warning = f"warning: {results / BAD}: skipped: {reason}"
    assert warning in err and err.count(str(results / BAD)) == 1  # named, once
    assert "Traceback" not in err


def _append(name, data):
    def damage(run):
        with (run / name).open("ab") as fh:
            fh.write(data)

    return damage


def _insert(name, line):
    def damage(run):
        lines = _lines(run / name)
        (run / name).write_bytes(b"".join(lines[:2] + [line] + lines[2:]))

    return damage


def _edit_row(name, old, new):
    def damage(run):
        lines = _lines(run / name)
        lines[1] = lines[1].replace(old, new, 1)
        (run / name).write_bytes(b"".join(lines))

    return damage


def _glue_first_rows(path):
    lines = _lines(path)
    path.write_bytes(b"".join([lines[0], lines[1].rstrip(b"\r\n") + lines[2], *lines[3:]]))


def _torn(name):
    return lambda r: (r / name).write_bytes((r / name).read_bytes()[:-25])


DROPPED = {
    "trials.csv torn last line": (_torn("trials.csv"), "trials.csv: 1 unreadable line skipped"),
    "rungs.csv torn last line": (_torn("rungs.csv"), "rungs.csv: 1 unreadable line skipped"),
    "trials.csv garbage line": (
        _insert("trials.csv", b"garbage,,,\n"),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv NUL bytes and garbage": (
        _append("trials.csv", b"\x00" * 64 + b"\nrandom,0,x\n"),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv bytes that are not UTF-8": (
        _insert("trials.csv", b"\xff\xfe\xfd,0,1\n"),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv two rows glued": (
        lambda r: _insert("trials.csv", _lines(r / "trials.csv")[1].rstrip() * 2 + b"\n")(r),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv first two data rows glued": (  # was: the run skipped, pandas took an index
        lambda r: _glue_first_rows(r / "trials.csv"),
        "trials.csv: 1 unreadable line skipped",
    ),
    "rungs.csv four extra fields on the first data row": (
        _edit_row("rungs.csv", b"\r\n", b",1,2,3,4\r\n"),
        "rungs.csv: 1 unreadable line skipped",
    ),
    "trials.csv a row of another run": (
        _edit_row("trials.csv", b"random,0,", b"tpe,0,"),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv an infinite MAE": (
        lambda r: _insert("trials.csv", b"random,0,99,COMPLETE,,3,9,inf,1,1,1,0,1\n")(r),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv an unknown state": (
        _edit_row("trials.csv", b",COMPLETE,", b",DONE,"),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv a second header": (
        lambda r: _insert("trials.csv", _lines(r / "trials.csv")[0])(r),
        "trials.csv: 1 unreadable line skipped",
    ),
    "trials.csv text in a timing": (
        lambda r: _insert("trials.csv", b"random,0,98,PRUNED,,1,1,5.0,abc,1,1,0,1\n")(r),
        "trials.csv: 1 unreadable line skipped",
    ),
    "rungs.csv rung zero": (
        _edit_row("rungs.csv", b"random,0,0,1,", b"random,0,0,0,"),
        "rungs.csv: 1 unreadable line skipped",
    ),
    "rungs.csv garbage line": (
        _insert("rungs.csv", b"\x00garbage\n"),
        "rungs.csv: 1 unreadable line skipped",
    ),
}


@pytest.mark.parametrize("case", list(DROPPED), ids=list(DROPPED))
def test_unreadable_lines_are_dropped_and_counted(results, capsys, case):
    damage, note = DROPPED[case]
    damage(results / BAD)
    a = analyze(results, "smoke")  # every number of the report (its plots cost seconds each)
    err = capsys.readouterr().err
    assert f"warning: {results / BAD}/{note}" in err and err.count("warning") == 1
    assert ("random", 0) in a.results.meta and a.choice  # the run itself is still used
    assert a.results.trials["val_mae"].dtype == float and a.results.rungs["rung"].dtype == int


def test_a_row_with_extra_fields_first_shifts_no_column_of_the_others(results, capsys):
    # converge.csv's first row with four extra fields: before, pandas took the first four
    # fields as an index and every row's columns moved four places (no warning).
    trials = analyze(results, "smoke").results.trials
    done = trials[trials["state"] == "COMPLETE"].head(2)
    header = "strategy,seed,trial,role,top_rung_mae,converged_mae,epochs"
    rows = [
        f"{r.strategy},{r.seed},{r.trial},incumbent,{r.val_mae},{r.val_mae / 2},9"
        for r in done.itertuples()
    ]
    path = results / "smoke" / "converge.csv"
    path.write_text("\n".join([header, rows[0] + ",1,2,3,4", rows[1], ""]))
    capsys.readouterr()
    converge = analyze(results, "smoke").results.converge
    assert f"warning: {path}: 1 unreadable line skipped" in capsys.readouterr().err
    assert len(converge) == 1 and converge["role"].tolist() == ["incumbent"]
    assert converge["top_rung_mae"].tolist() == [done["val_mae"].iloc[1]]
    assert converge["converged_mae"].tolist() == [done["val_mae"].iloc[1] / 2]


def test_a_report_without_plots_is_the_same_text_and_draws_nothing(results, capsys):
    rc, out, _ = _report(results, capsys, no_plots=True)
    folder = results / "smoke"
    text, html = (folder / "REPORT.md").read_text(), (folder / "REPORT.html").read_text()
    assert rc == 0 and "verdict:" in out and not (folder / "plots").exists()
    assert "](plots/" not in text and "data:image/png" not in html
    rc, out, _ = _report(results, capsys)
    drawn = (folder / "REPORT.md").read_text()
    assert rc == 0 and drawn.count("](plots/") == 8 and len(list((folder / "plots").iterdir()))
    assert {p.stem for p in (folder / "plots").iterdir()} <= set(FIGURES)
    (folder / "plots/mine.txt").write_text("a user's note")
    rc, _, err = _report(results, capsys, no_plots=True)  # an earlier report's figures go
    assert rc == 0 and [p.name for p in (folder / "plots").iterdir()] == ["mine.txt"]
    assert "figure files (png and svg) of an earlier report removed" in err

    def words(report):
        return [line for line in report.splitlines() if line and "](plots/" not in line]

    # the same lines, but for a sentence about a figure that is not there
    kept, full = words(text), words(drawn)
    assert len(kept) == len(full) and all(line.startswith(k) for k, line in zip(kept, full))


def test_only_the_figures_a_report_does_not_show_are_removed(tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in ("anytime.png", "anytime.svg", "pareto.png", "pareto.svg", "mine.png"):
        (plots / name).write_text("drawn before")
    assert remove_figures(plots, keep={"anytime"}) == 2  # pareto: not shown this time
    assert sorted(p.name for p in plots.iterdir()) == ["anytime.png", "anytime.svg", "mine.png"]
    (plots / "mine.png").unlink()
    assert remove_figures(plots) == 2 and not plots.exists()  # emptied: the folder goes too
    assert remove_figures(plots) == 0  # nothing there: nothing to do


def test_a_report_with_dropped_lines_is_written(results, capsys):
    for damage, _ in (DROPPED["trials.csv torn last line"], DROPPED["rungs.csv garbage line"]):
        damage(results / BAD)
    rc, out, err = _report(results, capsys)
    assert rc == 0 and "verdict:" in out and err.count("unreadable line skipped") == 2


SIDE = {
    "noise.csv empty": ("noise.csv", b"", None),
    "audit.csv header only": ("audit.csv", b"strategy,seed,trial,would_have_won\n", None),
    "noise.csv garbage": (
        "noise.csv",
        b"\x00\x01garbage\n1,2,3\n",
        "noise.csv: ignored: noise.csv has no header with the expected columns",
    ),
    "audit.csv a garbage row": (
        "audit.csv",
        b"strategy,seed,trial,would_have_won\nrandom,0,1,True\nxx\n",
        "audit.csv: 1 unreadable line skipped",
    ),
}


@pytest.mark.parametrize("case", list(SIDE), ids=list(SIDE))
def test_side_files_empty_or_damaged_are_treated_as_absent(results, capsys, case):
    name, content, warning = SIDE[case]
    (results / "smoke" / name).write_bytes(content)
    a = analyze(results, "smoke")
    err = capsys.readouterr().err
    assert a.floor["sd"] != a.floor["sd"] and a.false_prunes["audited"] == (
        1 if "row" in case else 0
    )
    assert (warning is None and "warning" not in err) or f"{results / 'smoke'}/{warning}" in err


def test_a_run_with_no_usable_rung_is_used_for_its_final_results(results, capsys):
    for rungs in (results / "smoke").glob("*/seed-*/rungs.csv"):
        _header_only(rungs)
    rc, out, err = _report(results, capsys)
    assert rc == 0 and "verdict:" in out and err.count("no usable rung") == 4


def _one_error_line(rc, err):
    lines = err.strip().splitlines()
    return rc == 2 and len(lines) == 1 and lines[0].startswith("error: ")


@pytest.mark.parametrize("command", ["report", "plan", "final"])
def test_nothing_usable_is_one_error_line(results, capsys, command):
    for meta in (results / "smoke").glob("*/seed-*/metadata.json"):
        meta.write_text("{")
    rc, _, err = _report(results, capsys, command)
    assert _one_error_line(rc, err) and "no usable runs (4 skipped; first: " in err


@pytest.mark.parametrize("command", ["report", "plan", "final"])
def test_no_complete_trial_anywhere_is_one_error_line(results, capsys, command):
    for trials in (results / "smoke").glob("*/seed-*/trials.csv"):
        trials.write_text(trials.read_text().replace(",COMPLETE,", ",PRUNED,"))
    rc, _, err = _report(results, capsys, command)
    assert _one_error_line(rc, err) and "no run has a complete trial yet (" in err


def test_plan_and_final_work_on_the_good_runs(results, capsys):
    (results / BAD / "metadata.json").write_text('{"strategy": "rand')
    rc, out, err = _report(results, capsys, "plan")
    assert rc == 0 and "Recommended:" in out and f"{results / BAD}: skipped" in err
    assert cli("final", seeds=2, max_epochs=1, results=results) == 0
    out, err = capsys.readouterr()
    assert "Recommended configuration against v4" in out and f"{results / BAD}: skipped" in err
    made_for = {json.loads((results / "smoke" / n).read_text())["strategy"] for n in NAMES}
    assert made_for == {analyze(results, "smoke").choice}  # what report checks them against


def _record(strategy, summary):
    return {
        "strategy": strategy,
        "summary": summary,
        "projections": [{"strategy": strategy, "trials": 3}],
        "table": [{"model": "recommended", "test_mae": "0.1"}],
        "n_trials": 3,
        "hours": 12,
    }


SIDE_JSON = {
    "plan.json torn": ("plan.json", b'{"strategy": "random", "summ', "skipped: unreadable"),
    "final.json a list": ("final.json", b"[1, 2]", "skipped: holds a list, not an object"),
    "final.json empty": ("final.json", b"", "skipped: unreadable or truncated"),
    "plan.json without its projections": (
        "plan.json",
        b'{"strategy": "CHOICE", "summary": "S", "n_trials": 1, "hours": 1}',
        "left out of the report (lacks projections)",
    ),
    "final.json made for another strategy": (
        "final.json",
        json.dumps(_record("tpe_other", "S")).encode(),
        "left out of the report (stale: made for tpe_other, the recommendation is now CHOICE); "
        "make it again with: python -m harness final --experiment smoke --results ",
    ),
    "final.json of an earlier version (no strategy)": (
        "final.json",
        json.dumps({"summary": "S", "table": []}).encode(),
        "left out of the report (stale: records no strategy, the recommendation is now CHOICE)",
    ),
}


@pytest.mark.parametrize("case", list(SIDE_JSON), ids=list(SIDE_JSON))
def test_a_damaged_or_stale_side_json_is_left_out_and_named(results, capsys, case):
    name, content, why = SIDE_JSON[case]
    choice = analyze(results, "smoke").choice
    path = results / "smoke" / name
    path.write_bytes(content.replace(b"CHOICE", choice.encode()))
    capsys.readouterr()
    rc, out, err = _report(results, capsys, no_plots=True)
    assert rc == 0 and "verdict:" in out
    named = [line for line in err.splitlines() if str(path) in line]
    assert len(named) == 1 and named[0].startswith(
        f"warning: {path}: {why.replace('CHOICE', choice)}"
    )
    report = (results / "smoke" / "REPORT.md").read_text()
    assert "## The overnight plan" not in report and "## The final check" not in report


def test_plan_and_final_made_for_the_current_choice_are_in_the_report(results, capsys):
    choice = analyze(results, "smoke").choice
    for name, summary in (("plan.json", "PLAN-SUMMARY"), ("final.json", "FINAL-SUMMARY")):
        (results / "smoke" / name).write_text(json.dumps(_record(choice, summary)))
    rc, _, err = _report(results, capsys)
    report = (results / "smoke" / "REPORT.md").read_text()
    assert rc == 0 and "PLAN-SUMMARY" in report and "FINAL-SUMMARY" in report
    assert "plan.json" not in err and "final.json" not in err


def test_a_full_disk_during_report_is_one_line(results, capsys, monkeypatch):
    import matplotlib.figure

    def disk_full(self, name, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    rc, _, err = _report(results, capsys)
    line = err.strip().splitlines()[-1]
    assert _one_error_line(rc, line) and "cannot write the plot (No space left on device)" in line
    assert "Traceback" not in err and not (results / "smoke" / "REPORT.md").exists()


def test_a_garbage_line_in_reeval_csv_is_dropped_by_compare(results, capsys):
    path = results / "smoke" / "reeval.csv"
    rows = path.read_text().splitlines()
    path.write_text("\n".join([*rows, "garbage,,,,,,,,,,,,,,,,,,,,,,x", ""]))
    rc = cli("compare", strategies=SHARED_STRATEGIES, seeds=2, results=results)
    err = capsys.readouterr().err
    assert rc == 0 and f"{path}: 1 unreadable line skipped" in err and "Traceback" not in err
    kept = path.read_text().splitlines()
    assert kept[0] == rows[0] and "garbage" not in path.read_text()
    assert len(kept) == len(rows)  # every run's rows kept, none retrained
