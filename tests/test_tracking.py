"""MLflow logging against a real local MLflow store: read back what was logged."""

import os
import sys

import pandas as pd
import pytest

from tests.e2e import cli, copy_results

try:
    import mlflow  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise  # CI installs the extra: a missing one must fail, not skip
    pytest.skip(
        "the mlflow extra is not installed here (CI installs it): pip install -e '.[mlflow]'",
        allow_module_level=True,
    )


@pytest.mark.slow
def test_trials_and_report_logged_and_read_back(smoke_compare, tmp_path, capsys):
    """Seed 0 of the shared real comparison, copied: compare --mlflow logs every trial of the
    runs it finds, once."""
    from mlflow.tracking import MlflowClient

    copy_results(
        smoke_compare, tmp_path, [f"smoke/{s}/seed-0" for s in ("tpe_hyperband", "random")]
    )
    compare = dict(strategies="tpe_hyperband,random", seeds=1, mlflow=True, results=tmp_path)
    assert cli("compare", **compare) == 0
    assert cli("compare", **compare) == 0  # again: nothing logged twice
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("smoke")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    trials = pd.concat(
        [
            pd.read_csv(tmp_path / f"smoke/{s}/seed-0/trials.csv")
            for s in ("tpe_hyperband", "random")
        ]
    )
    assert len(runs) == len(trials)  # one MLflow run per trial, once
    rungs = pd.read_csv(tmp_path / "smoke/tpe_hyperband/seed-0/rungs.csv")
    for run in runs:
        tags = run.data.tags
        if tags["strategy"] != "tpe_hyperband":
            continue
        t = int(tags["trial"])
        row = trials[(trials["strategy"] == "tpe_hyperband") & (trials["trial"] == t)].iloc[0]
        assert tags["seed"] == "0" and tags["state"] == row["state"]
        assert run.data.params["hidden_1"] == str(row["param_hidden_1"])
        history = client.get_metric_history(run.info.run_id, "val_mae")
        mine = rungs[rungs["trial"] == t]
        assert [m.step for m in history] == list(mine["step"])  # per-rung MAE as step metrics
        assert [m.value for m in history] == pytest.approx(list(mine["val_mae"]))
        assert len(client.get_metric_history(run.info.run_id, "train_seconds")) == len(mine)

    assert cli("report", mlflow=True, results=tmp_path) == 0
    report_runs = client.search_runs([exp.experiment_id], filter_string="tags.kind = 'report'")
    artifacts = {f.path for f in client.list_artifacts(report_runs[0].info.run_id)}
    plots = {f.path for f in client.list_artifacts(report_runs[0].info.run_id, "plots")}
    assert {"REPORT.md", "REPORT.html"} <= artifacts and "plots/anytime.png" in plots
    # without plots, the earlier report's plots/ still on disk are not logged as this one's
    assert cli("report", mlflow=True, no_plots=True, results=tmp_path) == 0
    runs = client.search_runs([exp.experiment_id], filter_string="tags.kind = 'report'")
    logged = [{f.path for f in client.list_artifacts(r.info.run_id)} for r in runs]
    assert len(logged) == 2 and sorted("plots" in a for a in logged) == [False, True]
    assert all({"REPORT.md", "REPORT.html"} <= a for a in logged)


def test_without_the_extra_the_flag_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    code = cli("run", strategy="random", results=tmp_path, mlflow=True)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: --mlflow needs the MLflow extra: pip install -e '.[mlflow]'"
    assert not (tmp_path / "smoke").exists()  # it failed before training anything


def test_a_damaged_run_folder_is_logged_from_its_readable_rows(tmp_path, capsys):
    from harness.records import RunRecorder
    from harness.tracking import MlflowLogger

    rec = RunRecorder(tmp_path / "smoke" / "random" / "seed-0", ("lr",))
    for trial in range(3):
        row = {"strategy": "random", "seed": 0, "trial": trial, "state": "COMPLETE"}
        rec.add_trial({**row, "val_mae": 5.0 - trial, "wall_seconds": 2.0}, {"lr": 0.01})
    rec.write_metadata({"strategy": "random", "seed": 0, "study_name": "smoke.random.seed-0"})
    with rec.trials.path.open("a") as fh:
        fh.write("garbage,,,,,,,,,,,,,,,,,,,,,,,,x\n")  # a plain read_csv raised ParserError
    logger = MlflowLogger(None, "smoke", tmp_path)
    assert logger.log_run(rec.directory) == 3
    (rec.directory / "metadata.json").write_text('{"strategy": "ran')
    capsys.readouterr()
    assert logger.log_run(rec.directory) == 0  # skipped, named once, no traceback
    assert capsys.readouterr().err.count("metadata.json: skipped: unreadable or truncated") == 1
